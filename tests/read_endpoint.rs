//! The read endpoint on moto with fake Patroni nodes: the replicas target group and record
//! follow replication lag, `noloadbalance` and the fallback to the primary; nothing moves
//! without a confirmed primary.

mod common;

use common::fake_patroni::{Reply, patroni_json};
use common::scenario::{Options, Scenario, writes};
use common::*;
use patroni_router::domain::report::Mode;
use patroni_router::engine::Router;
use serde_json::{Value, json};

/// Every node agrees pg1 leads; each replica streams with its lag and tags.
fn set_view(s: &Scenario, replicas: &[(&str, u64, bool)]) {
    let mut members =
        vec![json!({"name": "pg1", "role": "leader", "state": "running", "timeline": 1})];
    for (name, lag, noloadbalance) in replicas {
        let mut m = json!({"name": name, "role": "replica", "state": "streaming", "timeline": 1, "lag": lag});
        if *noloadbalance {
            m["tags"] = json!({"noloadbalance": true});
        }
        members.push(m);
    }
    let view = json!({"scope": "pgha", "members": members}).to_string();
    for n in &s.fake.nodes {
        let role = if n.name == "pg1" {
            "primary"
        } else {
            "replica"
        };
        n.set(
            "/patroni",
            Reply::Json(200, patroni_json("pgha", &n.name, role, "running", 1)),
        );
        n.set("/cluster", Reply::Json(200, view.clone()));
    }
}

struct ReadWorld {
    s: Scenario,
    read_tg: String,
    read_record: String,
    router: Router,
}

async fn world(routing: &str, fallback: bool) -> ReadWorld {
    let s = Scenario::new(Options::default()).await;
    let read_tg = create_target_group(&s.aws, &s.net.vpc_id, false).await;
    let read_record = s.record.replacen("db.", "ro.", 1);
    let (tg, rec, zone) = (read_tg.clone(), read_record.clone(), s.zone.clone());
    let routing = routing.to_string();
    let router = s
        .router_with(move |c: &mut Value| {
            c["clusters"][0]["replicas"] = json!({
                "max_lag_bytes": 1_048_576,
                "fallback_to_primary": fallback,
                "target_group": {"arn": tg, "port": 5432},
                "dns": {"hosted_zone_id": zone, "record_name": rec, "ttl": 10, "routing": routing}
            });
        })
        .await;
    ReadWorld {
        s,
        read_tg,
        read_record,
        router,
    }
}

impl ReadWorld {
    async fn reconcile(&self) -> patroni_router::domain::report::Report {
        let r = self.router.run(Mode::Reconcile, None).await.expect("run");
        assert!(r.ok, "{}", r.to_text());
        r
    }

    async fn read_targets(&self) -> Vec<String> {
        registered(&self.s.aws, &self.read_tg).await
    }

    /// (set identifier, values) of each record at the read name.
    async fn read_records(&self) -> Vec<(Option<String>, Vec<String>)> {
        records(&self.s.aws, &self.s.zone, &self.read_record)
            .await
            .into_iter()
            .map(|(_, id, _, values)| (id, values))
            .collect()
    }

    fn inst(&self, i: usize) -> String {
        self.s.instance(i)
    }
}

#[tokio::test]
async fn multivalue_read_endpoint_follows_lag_and_noloadbalance() {
    let w = world("multivalue", true).await;
    let ip = |i: usize| w.s.ip(i);

    set_view(&w.s, &[("pg2", 0, false), ("pg3", 4096, false)]);
    w.reconcile().await;
    w.s.assert_routed_to(0).await;
    let mut both = vec![w.inst(1), w.inst(2)];
    both.sort(); // `registered` lists targets sorted; instance ids are random
    assert_eq!(w.read_targets().await, both);
    assert_eq!(
        w.read_records().await,
        vec![
            (Some("pg2".into()), vec![ip(1)]),
            (Some("pg3".into()), vec![ip(2)])
        ]
    );
    assert_eq!(
        writes(&w.reconcile().await),
        0,
        "steady state writes nothing"
    );

    // pg3 falls 10 MiB behind: out of the target group, its record deleted.
    set_view(&w.s, &[("pg2", 0, false), ("pg3", 10 << 20, false)]);
    let r = w.reconcile().await;
    assert_eq!(w.read_targets().await, vec![w.inst(1)]);
    assert_eq!(
        w.read_records().await,
        vec![(Some("pg2".into()), vec![ip(1)])]
    );
    assert!(
        r.clusters[0]
            .changes
            .iter()
            .any(|c| format!("{:?}", c.action) == "Delete" && c.node.as_deref() == Some("pg3")),
        "{}",
        r.to_text()
    );

    // pg2 tagged noloadbalance and pg3 still behind: nobody fit, reads fall back to pg1.
    set_view(&w.s, &[("pg2", 0, true), ("pg3", 10 << 20, false)]);
    w.reconcile().await;
    assert_eq!(w.read_targets().await, vec![w.inst(0)]);
    assert_eq!(
        w.read_records().await,
        vec![(Some("pg1".into()), vec![ip(0)])]
    );

    // Patroni unreachable: fail-static, the read endpoint stays as it is.
    for n in &w.s.fake.nodes {
        n.fail(Reply::Close);
    }
    let r = w.router.run(Mode::Reconcile, None).await.expect("run");
    assert_eq!(writes(&r), 0, "{}", r.to_text());
    assert_eq!(w.read_targets().await, vec![w.inst(0)]);
    assert_eq!(
        w.read_records().await,
        vec![(Some("pg1".into()), vec![ip(0)])]
    );
}

#[tokio::test]
async fn simple_read_record_holds_every_fit_replica_and_never_empties() {
    let w = world("simple", false).await;
    set_view(&w.s, &[("pg2", 0, false), ("pg3", 100, false)]);
    w.reconcile().await;
    let mut both = vec![w.s.ip(1), w.s.ip(2)];
    both.sort();
    let held: Vec<(Option<String>, Vec<String>)> = w
        .read_records()
        .await
        .into_iter()
        .map(|(id, mut v)| {
            v.sort();
            (id, v)
        })
        .collect();
    assert_eq!(held, vec![(None, both.clone())]);

    // No replica fit and no fallback: the group empties, the simple record cannot, and says so.
    set_view(&w.s, &[("pg2", 10 << 20, false), ("pg3", 10 << 20, false)]);
    let r = w.router.run(Mode::Reconcile, None).await.expect("run");
    assert!(w.read_targets().await.is_empty());
    assert!(
        !r.ok
            && r.clusters[0]
                .errors
                .iter()
                .any(|e| e.to_string().contains("fallback_to_primary")),
        "{}",
        r.to_text()
    );
    assert_eq!(
        w.read_records().await.len(),
        1,
        "the record keeps its last value"
    );
    w.s.assert_routed_to(0).await;
}
