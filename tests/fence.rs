//! The fence and ownership on moto with FAKE Patroni nodes: the five measured cases (route
//! back to a thawed old leader; `members` emptied by misnamed nodes; another team's multivalue
//! record; timeline gaps; another owner's record) each make no write call and give a reason;
//! two routers racing — one stale, one current — end on the newest timeline.

mod common;

use common::fake_patroni::{FakeCluster, Reply, cluster_json, patroni_json};
use common::scenario::{Options, Scenario};
use common::*;
use patroni_router::domain::report::{Mode, Report};
use serde_json::{Value, json};

fn errors(r: &Report) -> String {
    r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every write the run applied.
fn writes(r: &Report) -> usize {
    r.clusters.iter().map(|c| c.writes()).sum()
}

/// pg1 routed on timeline 1, then pg2 on timeline 2.
async fn failed_over(opts: Options) -> Scenario {
    let s = Scenario::new(opts).await;
    s.fake.set_leader("pg1", 1);
    assert!(s.reconcile().await.ok);
    s.fake.set_leader("pg2", 2);
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
    s
}

#[tokio::test]
async fn a_thawed_old_leader_is_not_routed_back_to_by_any_router() {
    let s = failed_over(Options::default()).await;
    // pg1 thaws: it still says it leads on timeline 1; pg2 and pg3 are unreachable from here.
    s.fake.node("pg1").set(
        "/patroni",
        Reply::Json(200, patroni_json("pgha", "pg1", "primary", "running", 1)),
    );
    s.fake.node("pg1").set(
        "/cluster",
        Reply::Json(
            200,
            cluster_json("pgha", Some("pg1"), &["pg1", "pg2", "pg3"], 1),
        ),
    );
    s.fake.node("pg2").fail(Reply::Hang);
    s.fake.node("pg3").fail(Reply::Hang);
    let r = s.reconcile().await;
    assert_eq!(r.clusters[0].decision.primary(), Some("pg1"));
    let e = errors(&r);
    assert!(
        e.contains("fence:") && e.contains("timeline 1") && e.contains("timeline 2"),
        "{e}"
    );
    assert_eq!(writes(&r), 0);
    assert!(!r.ok, "exit 2");
    s.assert_routed_to(1).await;
    // A router started now (a Lambda cold start, a person running reconcile) reads the fence.
    let fresh = s.router_with(|_| {}).await;
    let r = fresh.run(Mode::Reconcile, None).await.expect("run");
    assert!(errors(&r).contains("fence:"), "{}", r.to_text());
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn misnamed_nodes_never_empty_a_members_group() {
    let opts = Options {
        strategy: "members",
        extra: json!({"owner_id": "fence-test"}),
        ..Options::default()
    };
    let s = Scenario::new(opts).await;
    s.fake.set_leader("pg1", 1);
    assert!(s.reconcile().await.ok);
    let all = s.targets().await;
    assert_eq!(all.len(), 3);
    for n in ["pg1", "pg2", "pg3"] {
        let role = if n == "pg1" { "primary" } else { "replica" };
        s.fake.node(n).set(
            "/patroni",
            Reply::Json(200, patroni_json("renamed", n, role, "running", 1)),
        );
    }
    let r = s.reconcile().await;
    assert_eq!(s.targets().await, all, "nothing deregistered");
    assert_eq!(writes(&r), 0);
    assert!(!r.ok, "exit non-zero: {}", r.to_text());
    assert!(
        errors(&r).contains("every node that answered is misconfigured"),
        "{}",
        r.to_text()
    );
}

#[tokio::test]
async fn timeline_gaps_change_nothing() {
    let s = failed_over(Options::default()).await;
    // A replica on a newer timeline than the leader the views name.
    s.fake.node("pg3").set(
        "/patroni",
        Reply::Json(200, patroni_json("pgha", "pg3", "replica", "running", 3)),
    );
    let r = s.reconcile().await;
    assert_eq!(r.clusters[0].decision.kind(), "ambiguous");
    assert!(
        r.clusters[0].decision.reason.contains("timeline 3"),
        "{}",
        r.to_text()
    );
    assert_eq!(writes(&r), 0);
    // A leader that reports no timeline while another node claims primary.
    s.fake.set_leader("pg2", 2);
    let mut leader: Value =
        serde_json::from_str(&patroni_json("pgha", "pg2", "primary", "running", 2)).expect("json");
    leader.as_object_mut().map(|o| o.remove("timeline"));
    s.fake
        .node("pg2")
        .set("/patroni", Reply::Json(200, leader.to_string()));
    s.fake.node("pg1").set(
        "/patroni",
        Reply::Json(200, patroni_json("pgha", "pg1", "primary", "running", 1)),
    );
    let r = s.reconcile().await;
    assert_eq!(r.clusters[0].decision.kind(), "ambiguous");
    assert!(
        r.clusters[0].decision.reason.contains("no timeline"),
        "{}",
        r.to_text()
    );
    assert_eq!(writes(&r), 0);
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn another_owners_record_is_never_changed_and_an_unmarked_one_is_adopted() {
    let s = Scenario::new(Options::default()).await;
    s.fake.set_leader("pg1", 1);
    let theirs = "\"heritage=patroni-router owner=team-b scope=billing tl=9 leader=x at=1\"";
    put_txt(&s, theirs).await;
    let r = s.reconcile().await;
    let e = errors(&r);
    assert!(
        e.contains("ownership conflict") && e.contains("team-b"),
        "{e}"
    );
    assert!(s.a_record().await.is_empty(), "the record was not written");
    assert_eq!(
        marker(&s.aws, &s.zone, &s.record).await.as_deref(),
        Some(theirs)
    );
    // Without the other owner's marker, the name is adopted on the first run.
    delete_txt(&s, theirs).await;
    let r = s.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    let mine = marker(&s.aws, &s.zone, &s.record).await.unwrap_or_default();
    assert!(mine.contains("tl=1 leader=pg1"), "{mine}");
    assert!(
        r.clusters[0]
            .changes
            .iter()
            .any(|c| format!("{:?}", c.action) == "Adopt")
    );
}

async fn txt_change(s: &Scenario, action: aws_sdk_route53::types::ChangeAction, value: &str) {
    use aws_sdk_route53::types::{Change, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let set = ResourceRecordSet::builder()
        .name(&s.record)
        .r#type(RrType::Txt)
        .ttl(300)
        .resource_records(
            ResourceRecord::builder()
                .value(value)
                .build()
                .expect("record"),
        )
        .build()
        .expect("set");
    let change = Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .expect("change");
    s.aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&s.zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(change)
                .build()
                .expect("batch"),
        )
        .send()
        .await
        .expect("change TXT in moto");
}

async fn put_txt(s: &Scenario, value: &str) {
    txt_change(s, aws_sdk_route53::types::ChangeAction::Create, value).await;
}

async fn delete_txt(s: &Scenario, value: &str) {
    txt_change(s, aws_sdk_route53::types::ChangeAction::Delete, value).await;
}

#[tokio::test]
async fn another_teams_multivalue_record_is_never_deleted() {
    let s = Scenario::new(Options::default()).await;
    let read = s.record.replacen("db.", "ro.", 1);
    let (zone, name) = (s.zone.clone(), read.clone());
    let router = s
        .router_with(move |c: &mut Value| {
            c["clusters"][0]["replicas"] = json!({"dns": {"hosted_zone_id": zone,
                "record_name": name, "ttl": 10, "routing": "multivalue"}});
        })
        .await;
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
    };
    let foreign = ResourceRecordSet::builder()
        .name(&read)
        .r#type(RrType::A)
        .ttl(60)
        .set_identifier("analytics-replica")
        .multi_value_answer(true)
        .resource_records(
            ResourceRecord::builder()
                .value("10.0.9.9")
                .build()
                .expect("rr"),
        )
        .build()
        .expect("set");
    let change = Change::builder()
        .action(ChangeAction::Create)
        .resource_record_set(foreign)
        .build()
        .expect("c");
    s.aws
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&s.zone)
        .change_batch(ChangeBatch::builder().changes(change).build().expect("b"))
        .send()
        .await
        .expect("foreign record");
    s.fake.set_leader("pg1", 1);
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    s.fake.node("pg3").fail(Reply::Close); // pg3 leaves the read endpoint
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    assert!(
        r.clusters[0]
            .left_alone
            .iter()
            .any(|l| l.contains("analytics-replica")),
        "{}",
        r.to_text()
    );
    let ids: Vec<Option<String>> = records(&s.aws, &s.zone, &read)
        .await
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(
        ids,
        vec![
            Some("analytics-replica".to_string()),
            Some("pg2".to_string())
        ]
    );
}

#[tokio::test]
async fn a_stale_router_racing_a_current_one_never_leaves_routing_behind() {
    let s = failed_over(Options::default()).await;
    // The current router sees pg3 promoted on timeline 3; a stale one still sees pg2 on 2.
    s.fake.set_leader("pg3", 3);
    let stale_view = FakeCluster::start("pgha", &["pg1", "pg2", "pg3"]).await;
    stale_view.set_leader("pg2", 2);
    let urls: Vec<String> = stale_view.nodes.iter().map(|n| n.url.clone()).collect();
    let stale = s
        .router_with(move |c: &mut Value| {
            for (i, url) in urls.iter().enumerate() {
                c["clusters"][0]["nodes"][i]["api_url"] = json!(url);
            }
        })
        .await;
    for round in 0..5 {
        let (current, behind) = tokio::join!(s.reconcile(), stale.run(Mode::Reconcile, None));
        let behind = behind.expect("run");
        assert_eq!(behind.clusters[0].decision.primary(), Some("pg2"));
        assert_eq!(current.clusters[0].decision.primary(), Some("pg3"));
        // Whatever the interleaving, once the current router has run again routing is on
        // timeline 3 — and the stale router's next run does not take it back.
        s.reconcile().await;
        s.assert_routed_to(2).await;
        let again = stale.run(Mode::Reconcile, None).await.expect("run");
        assert_eq!(writes(&again), 0, "round {round}: {}", again.to_text());
        s.assert_routed_to(2).await;
        let fence = marker(&s.aws, &s.zone, &s.record).await.unwrap_or_default();
        assert!(fence.contains("tl=3 leader=pg3"), "round {round}: {fence}");
    }
}
