//! The core slice end to end on real AWS SDK calls against moto, with fake Patroni nodes:
//! what moto holds after each reconcile is the assertion.

mod common;

use common::fake_patroni::{FakeCluster, Reply, cluster_json, patroni_json};
use common::scenario::{Options, Scenario, writes};
use common::*;
use patroni_router::domain::report::{Action, ChangeStatus, Mode};
use serde_json::json;

async fn setup(ip: bool, strategy: &'static str, routing: &'static str) -> Scenario {
    Scenario::new(Options {
        ip,
        strategy,
        routing,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn routes_to_the_leader_then_makes_zero_writes_in_steady_state() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);

    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(r.clusters[0].decision.primary(), Some("pg1"));
    assert_eq!(s.targets().await, vec![s.instance(0)]);
    assert_eq!(s.a_record().await, vec![s.ip(0)]);

    let again = s.reconcile().await;
    assert!(again.ok, "{}", again.to_text());
    assert_eq!(
        writes(&again),
        0,
        "steady state must make no write: {}",
        again.to_text()
    );
    assert!(again.clusters[0].changes.is_empty());
}

#[tokio::test]
async fn follows_a_leader_change_registering_before_deregistering() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);
    s.reconcile().await;

    s.fake.set_leader("pg2", 2);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(s.targets().await, vec![s.instance(1)]);
    assert_eq!(s.a_record().await, vec![s.ip(1)]);
    let actions: Vec<String> = r.clusters[0]
        .changes
        .iter()
        .map(|c| format!("{:?} {}", c.action, c.node.as_deref().unwrap_or("?")))
        .collect();
    // Each resource's marker moves the fence first: the tags before the targets, the TXT in
    // the same batch as the record.
    assert_eq!(
        actions,
        vec![
            "Mark ?",
            "Register pg2",
            "Deregister pg1",
            "Mark ?",
            "Upsert pg2"
        ]
    );
    assert!(
        r.clusters[0]
            .changes
            .iter()
            .all(|c| c.status == ChangeStatus::Applied)
    );
    assert_eq!(writes(&s.reconcile().await), 0);
}

#[tokio::test]
async fn all_nodes_unreachable_changes_nothing() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);
    s.reconcile().await;

    for n in &s.fake.nodes {
        n.fail(Reply::Close);
    }
    let r = s.reconcile().await;
    assert_eq!(r.clusters[0].decision.kind(), "no_primary");
    assert!(r.clusters[0].changes.is_empty(), "{}", r.to_text());
    assert_eq!(
        s.targets().await,
        vec![s.instance(0)],
        "fail-static: routing kept"
    );
    assert_eq!(s.a_record().await, vec![s.ip(0)]);
}

#[tokio::test]
async fn disagreeing_cluster_views_change_nothing() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);
    s.reconcile().await;

    let names = ["pg1", "pg2", "pg3"];
    s.fake.node("pg2").set(
        "/cluster",
        Reply::Json(200, cluster_json("pgha", Some("pg2"), &names, 2)),
    );
    s.fake.node("pg2").set(
        "/patroni",
        Reply::Json(200, patroni_json("pgha", "pg2", "primary", "running", 2)),
    );
    let r = s.reconcile().await;
    assert_eq!(
        r.clusters[0].decision.kind(),
        "ambiguous",
        "{}",
        r.to_text()
    );
    assert!(r.clusters[0].changes.is_empty());
    assert_eq!(s.targets().await, vec![s.instance(0)]);
    assert_eq!(s.a_record().await, vec![s.ip(0)]);
}

#[tokio::test]
async fn ip_target_group_and_failover_records() {
    let s = setup(true, "primary-only", "failover").await;
    s.fake.set_leader("pg3", 1);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(s.targets().await, vec![format!("{}:5432", s.ip(2))]);
    let recs = records(&s.aws, &s.zone, &s.record).await;
    let by_role: Vec<(Option<String>, Vec<String>)> =
        recs.iter().map(|r| (r.2.clone(), r.3.clone())).collect();
    assert_eq!(
        by_role,
        vec![
            (Some("PRIMARY".into()), vec![s.ip(2)]),
            (Some("SECONDARY".into()), vec![s.ip(0)]),
        ]
    );
    assert_eq!(writes(&s.reconcile().await), 0);
}

#[tokio::test]
async fn members_strategy_keeps_every_node_registered() {
    // With Patroni unreachable from the first run, only a configured owner can mark what the
    // router changes (the default owner is the database, which nobody has named yet).
    let s = Scenario::new(Options {
        strategy: "members",
        extra: json!({"owner_id": "moto-test"}),
        ..Options::default()
    })
    .await;
    // Even with Patroni unreachable, membership is config-driven.
    for n in &s.fake.nodes {
        n.fail(Reply::Close);
    }
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    let mut want = vec![s.instance(0), s.instance(1), s.instance(2)];
    want.sort();
    assert_eq!(s.targets().await, want);
    assert_eq!(
        s.a_record().await,
        Vec::<String>::new(),
        "no record without a confirmed primary"
    );

    s.fake.set_leader("pg2", 1);
    let r = s.reconcile().await;
    assert_eq!(s.targets().await, want);
    assert_eq!(s.a_record().await, vec![s.ip(1)]);
    // Only the record: the A record and its marker, in one change batch; no target change.
    assert_eq!(writes(&r), 2, "only the record: {}", r.to_text());
    assert!(
        r.clusters[0]
            .changes
            .iter()
            .all(|c| !c.resource.starts_with("arn:")),
        "only the record: {}",
        r.to_text()
    );
}

#[tokio::test]
async fn plan_mode_reports_and_changes_nothing() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg2", 1);
    let r = s.router.run(Mode::Plan, None).await.expect("plan");
    let c = &r.clusters[0];
    // Register and upsert, each with the adoption of its (unmarked) resource.
    assert_eq!(c.changes.len(), 4, "{}", r.to_text());
    let adopted = c
        .changes
        .iter()
        .filter(|c| c.action == Action::Adopt)
        .count();
    assert_eq!(adopted, 2, "{}", r.to_text());
    assert!(c.changes.iter().all(|c| c.status == ChangeStatus::Planned));
    assert!(s.targets().await.is_empty());
    assert!(s.a_record().await.is_empty());
}

#[tokio::test]
async fn a_node_of_another_scope_is_never_routed_to() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);
    s.fake.node("pg1").set(
        "/patroni",
        Reply::Json(200, patroni_json("other", "pg1", "primary", "running", 1)),
    );
    let r = s.reconcile().await;
    assert_eq!(
        r.clusters[0].decision.kind(),
        "no_primary",
        "{}",
        r.to_text()
    );
    assert!(s.targets().await.is_empty());
}

#[tokio::test]
async fn clusters_are_independent_and_records_in_one_zone_all_land() {
    let aws = aws().await;
    let net = network(3).await;
    let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
    let a = FakeCluster::start("alpha", &["a1", "a2"]).await;
    let b = FakeCluster::start("beta", &["b1", "b2"]).await;
    a.set_leader("a2", 1);
    b.set_leader("b1", 1);
    let tg_a = create_target_group(&aws, &net.vpc_id, false).await;
    // beta's target group does not exist: beta fails, alpha must still be routed.
    let tg_b = tg_a.replace("targetgroup/", "targetgroup/missing-");
    let nodes = |f: &FakeCluster, off: usize| -> Vec<serde_json::Value> {
        f.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                json!({"name": n.name, "api_url": n.url, "address": net.instances[off + i].1,
                                 "instance_id": net.instances[off + i].0})
            })
            .collect()
    };
    let config = json!({"clusters": [
        {"scope": "alpha", "nodes": nodes(&a, 0), "target_group": {"arn": tg_a, "port": 5432},
         "dns": {"hosted_zone_id": zone, "record_name": format!("alpha.{zone_name}")}},
        {"scope": "beta", "nodes": nodes(&b, 1), "target_group": {"arn": tg_b, "port": 5432},
         "dns": {"hosted_zone_id": zone, "record_name": format!("beta.{zone_name}")}}
    ]})
    .to_string();
    let router = router(&config).await;
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(!r.ok);
    let alpha = &r.clusters[0];
    let beta = &r.clusters[1];
    assert!(alpha.errors.is_empty(), "{}", r.to_text());
    assert_eq!(
        registered(&aws, &tg_a).await,
        vec![format!("{}:5432", net.instances[1].0)]
    );
    assert!(
        beta.errors
            .iter()
            .any(|e| e.to_string().contains("missing-")),
        "the error names the resource: {:?}",
        beta.errors
    );
    // beta's DNS does not depend on its target group: both records landed, in one batch.
    let ra = records(&aws, &zone, &format!("alpha.{zone_name}")).await;
    let rb = records(&aws, &zone, &format!("beta.{zone_name}")).await;
    assert_eq!(ra[0].3, vec![net.instances[1].1.clone()]);
    assert_eq!(rb[0].3, vec![net.instances[1].1.clone()]);

    let r = router
        .run(Mode::Reconcile, Some("alpha"))
        .await
        .expect("scoped run");
    assert_eq!(r.clusters.len(), 1);
    assert_eq!(writes(&r), 0);
    assert!(router.run(Mode::Reconcile, Some("gamma")).await.is_err());
}

#[tokio::test]
async fn a_missing_hosted_zone_is_reported_with_its_id() {
    let s = setup(false, "primary-only", "simple").await;
    s.fake.set_leader("pg1", 1);
    let router = s
        .router_with(|c| c["clusters"][0]["dns"]["hosted_zone_id"] = json!("ZNOSUCHZONE1"))
        .await;
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(!r.ok);
    let errors = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(errors.contains("ZNOSUCHZONE1"), "{errors}");
    // The target group is still routed.
    assert_eq!(s.targets().await, vec![s.instance(0)]);
}

#[tokio::test]
async fn many_clusters_share_reads_and_steady_state_makes_at_most_two_reads_per_cluster() {
    let aws = aws().await;
    let net = network(3).await;
    let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
    let proxy = common::aws_proxy::AwsProxy::start(moto_endpoint()).await;
    let mut clusters = Vec::new();
    let mut fakes = Vec::new();
    let mut tgs = Vec::new();
    for c in 0..4 {
        let scope = format!("c{c}");
        let fake = FakeCluster::start(&scope, &["pg1", "pg2", "pg3"]).await;
        fake.set_leader("pg2", 1);
        let tg = create_target_group(&aws, &net.vpc_id, true).await;
        let nodes: Vec<_> = fake
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"name": n.name, "api_url": n.url, "address": format!("10.1.{c}.{}", 10 + i)}))
            .collect();
        clusters.push(json!({"scope": scope, "nodes": nodes, "target_group": {"arn": tg, "port": 5432},
                             "dns": {"hosted_zone_id": zone, "record_name": format!("{scope}.{zone_name}")}}));
        fakes.push(fake);
        tgs.push(tg);
    }
    let config = json!({"aws": {"endpoint_url": proxy.url}, "clusters": clusters}).to_string();
    let router = router(&config).await;

    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    for (c, tg) in tgs.iter().enumerate() {
        assert_eq!(
            registered(&aws, tg).await,
            vec![format!("10.1.{c}.11:5432")]
        );
        let recs = records(&aws, &zone, &format!("c{c}.{zone_name}")).await;
        assert_eq!(recs[0].3, vec![format!("10.1.{c}.11")]);
    }
    assert_eq!(
        proxy.calls("DescribeTargetGroups"),
        1,
        "target types: one batched call"
    );
    assert_eq!(
        proxy.calls("ListResourceRecordSets"),
        1,
        "one zone, read whole once"
    );
    assert_eq!(
        proxy.calls("ChangeResourceRecordSets"),
        1,
        "one change batch for the zone"
    );

    proxy.reset_counts();
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok && writes(&r) == 0, "{}", r.to_text());
    let (reads, writes) = proxy.totals();
    assert_eq!(writes, 0, "steady state: zero writes");
    assert!(
        reads <= 2 * clusters.len(),
        "steady state: {reads} reads for {} clusters",
        clusters.len()
    );
    assert_eq!(
        proxy.calls("DescribeTargetGroups"),
        0,
        "target types are cached"
    );
}
