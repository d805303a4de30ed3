//! The engine's safety rules as unit tests: the real engine over the in-memory AWS (with
//! injected failures) and the fake Patroni's in-memory face. No moto, no network.

mod evidence;
mod fence;
mod fence_across_stores;
mod race;
mod reads;
mod records;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Ports, Router};
use crate::adapters::Patroni;
use crate::adapters::memory::{Fault, MemoryAws};
use crate::clock::ManualClock;
use crate::config::Config;
use crate::config::NodeConfig;
use crate::domain::aws::TargetType;
use crate::domain::patroni::{NodeObservation, PollError, Switch};
use crate::domain::report::{Action, ChangeStatus, Mode, Report};
use crate::testkit::fake_patroni::{FakeCluster, Reply};

pub(super) const ZONE: &str = "Z0123";

pub(super) fn tg_arn(scope: &str) -> String {
    format!(
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{scope}/0123456789abcdef"
    )
}

pub(super) fn record_name(scope: &str) -> String {
    format!("{scope}.example.internal.")
}

/// A cluster `scope` of pg1..pg3 at 10.0.`net`.(11..13), instance i-`net`(1..3), a
/// primary-only instance target group and a simple record.
fn cluster_json(scope: &str, net: u8, fake: &FakeCluster) -> Value {
    let nodes: Vec<Value> = fake
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({"name": n.name, "api_url": n.url, "address": format!("10.0.{net}.{}", 11 + i),
                   "instance_id": format!("i-{net}{}", i + 1)})
        })
        .collect();
    json!({"scope": scope, "nodes": nodes,
           "target_group": {"arn": tg_arn(scope), "port": 5432},
           "dns": {"hosted_zone_id": ZONE, "record_name": record_name(scope), "ttl": 10}})
}

/// Clusters on the in-memory AWS, their fake Patroni nodes, and a router over them.
pub(super) struct World {
    pub aws: Arc<MemoryAws>,
    pub fakes: Vec<Arc<FakeCluster>>,
    pub clock: Arc<ManualClock>,
    pub router: Router,
}

/// The fake clusters answering in memory for every cluster of the config.
struct Fakes(Vec<Arc<FakeCluster>>);

impl Fakes {
    fn of(&self, node: &NodeConfig) -> &FakeCluster {
        self.0
            .iter()
            .find(|f| f.nodes.iter().any(|n| n.url == node.api_url))
            .unwrap_or(&self.0[0])
    }
}

#[async_trait::async_trait]
impl Patroni for Fakes {
    async fn observe(&self, node: &NodeConfig) -> NodeObservation {
        self.of(node).observe(node).await
    }

    async fn history(&self, node: &NodeConfig) -> Result<Vec<Switch>, PollError> {
        self.of(node).history(node).await
    }
}

impl World {
    /// `scopes` clusters, each with pg1 leading on timeline 1; `edit` tweaks the config.
    pub fn new(scopes: &[&str], edit: impl FnOnce(&mut Value)) -> World {
        let aws = Arc::new(MemoryAws::new());
        aws.add_zone(ZONE);
        let mut fakes = Vec::new();
        let mut clusters = Vec::new();
        for (i, scope) in scopes.iter().enumerate() {
            let names: Vec<String> = (1..=3).map(|n| format!("{scope}-pg{n}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let fake = FakeCluster::in_memory(scope, &names);
            fake.set_leader(names[0], 1);
            aws.add_target_group(&tg_arn(scope), TargetType::Instance);
            clusters.push(cluster_json(scope, u8::try_from(i + 1).unwrap_or(1), &fake));
            fakes.push(Arc::new(fake));
        }
        let mut config = json!({
            "patroni": {"request_timeout": "200ms", "poll_deadline": "300ms"},
            "clusters": clusters,
        });
        edit(&mut config);
        let config = Config::from_json(&config.to_string(), "engine test").expect("valid config");
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_795_000_000)));
        let ports = Ports {
            patroni: Arc::new(Fakes(fakes.clone())),
            elb: aws.clone(),
            route53: aws.clone(),
            clock: clock.clone(),
        };
        World {
            aws,
            fakes,
            clock,
            router: Router::with_ports(config, ports),
        }
    }

    /// The same world, its router reading AWS only when a decision calls for it.
    pub fn change_driven(mut self) -> World {
        self.router = self.router.with_change_driven_reads();
        self
    }

    /// A second router over the same AWS and Patroni: another process, with nothing cached.
    pub fn another_router(&self) -> Router {
        Router::with_ports(self.router.config.clone(), self.router.ports.clone())
    }

    /// The marker TXT value at cluster `scope`'s record.
    pub async fn txt(&self, scope: &str) -> String {
        use crate::adapters::Route53 as _;
        let recs = self
            .aws
            .list(ZONE, Some(&record_name(scope)))
            .await
            .unwrap_or_default();
        recs.into_iter()
            .filter(|r| r.rtype == crate::domain::aws::RecordType::Txt)
            .flat_map(|r| r.values)
            .next()
            .unwrap_or_default()
    }

    pub fn fake(&self, i: usize) -> &FakeCluster {
        &self.fakes[i]
    }

    pub async fn reconcile(&self) -> Report {
        self.router.run(Mode::Reconcile, None).await.expect("run")
    }

    pub async fn plan(&self) -> Report {
        self.router.run(Mode::Plan, None).await.expect("run")
    }

    /// Registered targets of cluster `scope`, as `id:port`.
    pub fn targets(&self, scope: &str) -> Vec<String> {
        self.aws.targets(&tg_arn(scope))
    }

    /// The values of cluster `scope`'s simple record.
    pub async fn record(&self, scope: &str) -> Vec<String> {
        use crate::adapters::Route53 as _;
        let recs = self
            .aws
            .list(ZONE, Some(&record_name(scope)))
            .await
            .unwrap_or_default();
        recs.into_iter()
            .filter(|r| r.rtype == crate::domain::aws::RecordType::A)
            .flat_map(|r| r.values)
            .collect()
    }
}

/// A record set as someone else would have made it.
pub(super) fn record_set(name: &str, rtype: &str, value: &str) -> crate::domain::aws::RecordSet {
    crate::domain::aws::RecordSet {
        name: name.into(),
        rtype: rtype.into(),
        set_identifier: None,
        failover: None,
        ttl: Some(10),
        values: vec![value.into()],
        health_check_id: None,
        multivalue: false,
        alias: false,
    }
}

pub(super) fn writes(r: &Report) -> usize {
    r.clusters.iter().map(|c| c.writes()).sum()
}

/// World with pg1 of cluster `a` routed.
async fn routed() -> World {
    let w = World::new(&["a"], |_| {});
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-11:5432"]);
    assert_eq!(w.record("a").await, vec!["10.0.1.11"]);
    w
}

#[tokio::test]
async fn a_leader_change_registers_before_it_deregisters_and_steady_state_writes_nothing() {
    let w = routed().await;
    w.fake(0).set_leader("a-pg2", 2);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert!(r.clusters[0].primary_moved);
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
    assert_eq!(w.record("a").await, vec!["10.0.1.12"]);
    let log: Vec<&str> = w.aws.call_log().into_iter().map(|(op, _)| op).collect();
    let reg = log.iter().rposition(|op| *op == "RegisterTargets");
    let dereg = log.iter().rposition(|op| *op == "DeregisterTargets");
    assert!(reg < dereg, "register before deregister: {log:?}");
    let before = w.aws.writes();
    let r = w.reconcile().await;
    assert_eq!(
        (writes(&r), w.aws.writes()),
        (0, before),
        "steady state writes nothing"
    );
}

#[tokio::test]
async fn a_failed_register_deregisters_nothing_and_the_next_run_converges() {
    let w = routed().await;
    w.fake(0).set_leader("a-pg2", 2);
    w.aws.fail("RegisterTargets", Fault::AccessDenied, 1);
    let r = w.reconcile().await;
    let c = &r.clusters[0];
    assert!(!r.ok);
    assert_eq!(w.aws.calls("DeregisterTargets"), 0, "nothing deregistered");
    assert_eq!(
        w.targets("a"),
        vec!["i-11:5432"],
        "the old target stays: never empty"
    );
    let skipped = c
        .changes
        .iter()
        .find(|ch| ch.action == Action::Deregister)
        .expect("the deregister is reported");
    assert_eq!(skipped.status, ChangeStatus::Skipped);
    assert!(
        c.errors.iter().any(|e| e
            .to_string()
            .contains("grant the router's role RegisterTargets")),
        "{:?}",
        c.errors
    );
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
}

#[tokio::test]
async fn throttling_that_outlasts_retries_is_reported_and_nothing_else_breaks() {
    let w = routed().await;
    w.fake(0).set_leader("a-pg2", 2);
    w.aws.fail("DeregisterTargets", Fault::Throttle, 1);
    let r = w.reconcile().await;
    let c = &r.clusters[0];
    assert!(
        c.errors.iter().any(|e| e.to_string().contains("throttled")),
        "{:?}",
        c.errors
    );
    assert_eq!(
        w.targets("a"),
        vec!["i-11:5432", "i-12:5432"],
        "registered, not yet deregistered"
    );
    assert_eq!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "the record moved anyway"
    );
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
}

#[tokio::test]
async fn without_a_confirmed_primary_nothing_is_written() {
    let w = routed().await;
    for n in &w.fake(0).nodes {
        n.fail(Reply::Close);
    }
    let before = w.aws.writes();
    let r = w.reconcile().await;
    assert_eq!(r.clusters[0].decision.kind(), "no_primary");
    assert_eq!(w.aws.writes(), before);
    assert_eq!(w.targets("a"), vec!["i-11:5432"]);
}

#[tokio::test]
async fn a_hung_node_is_bounded_by_the_poll_deadline() {
    let w = routed().await;
    w.fake(0).node("a-pg3").fail(Reply::Hang);
    let started = std::time::Instant::now();
    let r = w.reconcile().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.clusters[0].decision.primary(), Some("a-pg1"));
    assert!(
        r.clusters[0].nodes[2]
            .patroni_error
            .as_deref()
            .unwrap_or("")
            .contains("deadline")
    );
}

#[tokio::test]
async fn plan_mode_calls_no_write_even_with_changes_to_make() {
    let w = routed().await;
    w.fake(0).set_leader("a-pg2", 2);
    let before = w.aws.writes();
    let r = w.plan().await;
    assert_eq!(w.aws.writes(), before, "plan never calls apply");
    let planned: Vec<_> = r.clusters[0]
        .changes
        .iter()
        .map(|c| (c.action, c.status))
        .collect();
    assert_eq!(
        planned,
        vec![
            (Action::Mark, ChangeStatus::Planned),
            (Action::Register, ChangeStatus::Planned),
            (Action::Deregister, ChangeStatus::Planned),
            (Action::Mark, ChangeStatus::Planned),
            (Action::Upsert, ChangeStatus::Planned)
        ],
        "the fence moves with the routing, markers first"
    );
    assert!(!r.clusters[0].primary_moved, "planned is not moved");
}

#[tokio::test]
async fn a_missing_target_group_fails_its_cluster_only() {
    let w = World::new(&["a", "b"], |c| {
        c["clusters"][0]["target_group"]["arn"] = json!(tg_arn("gone"));
    });
    let r = w.reconcile().await;
    let (a, b) = (&r.clusters[0], &r.clusters[1]);
    assert!(
        a.errors
            .iter()
            .any(|e| e.to_string().contains("TargetGroupNotFound")),
        "{:?}",
        a.errors
    );
    assert_eq!(
        w.record("a").await,
        vec!["10.0.1.11"],
        "a's record is still routed"
    );
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert_eq!(w.targets("b"), vec!["i-21:5432"]);
}

/// `serve` spawns a task per cluster: the engine's runs must be `Send`.
#[test]
fn runs_are_send() {
    fn send<T: Send>(_: &T) {}
    let w = World::new(&["a"], |_| {});
    send(&w.router.run(Mode::Reconcile, None));
    send(&w.router.run_after_callback("a", None));
}
