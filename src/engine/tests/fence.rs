//! The fence and ownership on the in-memory AWS: routing never goes back to an older
//! timeline, across processes; what another owner holds is never changed; membership is
//! config; markers ride on reads the router already makes.

use super::*;
use crate::domain::ownership::{Marker, Owner, TAG_OWNER};
use crate::testkit::fake_patroni::{cluster_json as view_json, patroni_json};

/// pg2 routed on timeline 2 (after pg1 on 1).
async fn failed_over() -> World {
    let w = routed().await;
    w.fake(0).set_leader("a-pg2", 2);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
    w
}

/// The thawed old leader pg1 says it leads on timeline 1; pg2 and pg3 hang.
fn thaw_old_leader(w: &World) {
    let f = w.fake(0);
    let names = f.names();
    f.node("a-pg1").set(
        "/patroni",
        Reply::Json(200, patroni_json("a", "a-pg1", "primary", "running", 1)),
    );
    f.node("a-pg1").set(
        "/cluster",
        Reply::Json(200, view_json("a", Some("a-pg1"), &names, 1)),
    );
    f.node("a-pg2").fail(Reply::Hang);
    f.node("a-pg3").fail(Reply::Hang);
}

fn fence_error(r: &Report) -> String {
    r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .find(|e| e.starts_with("fence:"))
        .unwrap_or_else(|| panic!("no fence error: {}", r.to_text()))
}

#[tokio::test]
async fn a_thawed_old_leader_is_never_routed_back_to_even_by_a_new_process() {
    let w = failed_over().await;
    thaw_old_leader(&w);
    let before = w.aws.writes();
    let r = w.reconcile().await;
    assert_eq!(
        r.clusters[0].decision.primary(),
        Some("a-pg1"),
        "decide alone would route back"
    );
    let e = fence_error(&r);
    assert!(
        e.contains("timeline 1") && e.contains("timeline 2") && e.contains("a-pg2"),
        "{e}"
    );
    assert!(!r.ok, "exit 2: an operator must look");
    assert_eq!(w.aws.writes(), before, "no write call");
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
    assert_eq!(w.record("a").await, vec!["10.0.1.12"]);
    // A cold start (a new Lambda, a person running reconcile) reads the fence from AWS.
    let fresh = w.another_router();
    let r = fresh.run(Mode::Reconcile, None).await.expect("run");
    assert!(fence_error(&r).contains("timeline 2"));
    assert_eq!(w.aws.writes(), before);
}

#[tokio::test]
async fn adoption_marks_unmarked_resources_once_and_plan_shows_it() {
    let w = World::new(&["a"], |_| {});
    let planned = w.plan().await;
    let adopt: Vec<&str> = planned.clusters[0]
        .changes
        .iter()
        .filter(|c| c.action == Action::Adopt)
        .map(|c| c.resource.as_str())
        .collect();
    assert_eq!(adopt.len(), 2, "the target group and the record: {adopt:?}");
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    let owner = w.aws.tags_of(&tg_arn("a"));
    assert!(
        owner
            .get(TAG_OWNER)
            .is_some_and(|o| o.contains("db-7712154790783901088")),
        "{owner:?}"
    );
    let txt = w.txt("a").await;
    let m = Marker::from_txt(&txt).expect("a marker");
    assert_eq!((m.timeline, m.leader.as_deref()), (Some(1), Some("a-pg1")));
    let (writes, tag_reads) = (w.aws.writes(), w.aws.calls("DescribeTags"));
    for _ in 0..3 {
        let r = w.reconcile().await;
        assert_eq!(super::writes(&r), 0);
    }
    assert_eq!(w.aws.writes(), writes, "steady state: no write call");
    assert_eq!(
        w.aws.calls("DescribeTags"),
        tag_reads,
        "the fence adds no read in steady state"
    );
}

#[tokio::test]
async fn what_another_owner_marked_is_never_changed() {
    let w = World::new(&["a"], |_| {});
    let team_b = Owner::of(Some("team-b"), "a", None).expect("owner");
    let marker = Marker::new(&team_b, Some(9), Some("x"), 1);
    let mut txt = record_set(&record_name("a"), "TXT", &marker.to_txt());
    txt.ttl = Some(300);
    w.aws.put_record(ZONE, txt);
    let owner_tag = marker.to_tags().remove(0);
    w.aws.set_tags(
        &tg_arn("a"),
        &[(owner_tag.0.as_str(), owner_tag.1.as_str())],
    );
    let r = w.reconcile().await;
    assert_eq!(w.aws.writes(), 0, "no write call");
    assert!(!r.ok);
    let errors: Vec<String> = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e.contains("ownership conflict") && e.contains("team-b")),
        "{errors:?}"
    );
}

#[tokio::test]
async fn membership_is_config_a_misnamed_node_is_never_deregistered() {
    let members = |c: &mut Value| c["clusters"][0]["target_group"]["strategy"] = json!("members");
    let w = World::new(&["a"], members);
    w.reconcile().await;
    let all = vec!["i-11:5432", "i-12:5432", "i-13:5432"];
    assert_eq!(w.targets("a"), all);
    // The primary's Patroni answers as another scope: it stays registered.
    w.fake(0).node("a-pg1").set(
        "/patroni",
        Reply::Json(
            200,
            patroni_json("renamed", "a-pg1", "primary", "running", 1),
        ),
    );
    w.reconcile().await;
    assert_eq!(w.targets("a"), all, "a misnamed node is not deregistered");
    // Every node answers as another scope: nothing changes, and it is an error.
    for n in w.fake(0).names() {
        let role = if n == "a-pg1" { "primary" } else { "replica" };
        w.fake(0).node(n).set(
            "/patroni",
            Reply::Json(200, patroni_json("typo", n, role, "running", 1)),
        );
    }
    let before = w.aws.writes();
    let r = w.reconcile().await;
    assert_eq!(w.aws.writes(), before);
    assert_eq!(w.targets("a"), all);
    assert!(!r.ok, "exit non-zero");
    let e = r.clusters[0]
        .errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        e.contains("misconfigured") && e.contains("every node"),
        "{e}"
    );
}

#[tokio::test]
async fn foreign_multivalue_records_are_never_deleted() {
    let read = |c: &mut Value| {
        c["clusters"][0]["replicas"] = json!({"dns": {"hosted_zone_id": ZONE,
            "record_name": "ro.a.example.internal.", "routing": "multivalue"}});
    };
    let w = World::new(&["a"], read);
    let mut foreign = record_set("ro.a.example.internal.", "A", "10.0.9.9");
    foreign.set_identifier = Some("analytics-replica".into());
    foreign.multivalue = true;
    w.aws.put_record(ZONE, foreign.clone());
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert!(w.aws.records(ZONE).contains(&foreign), "still there");
    assert!(
        r.clusters[0]
            .left_alone
            .iter()
            .any(|l| l.contains("analytics-replica")),
        "{}",
        r.to_text()
    );
    // A replica leaving the read endpoint deletes its own record, never the foreign one.
    w.fake(0).node("a-pg3").fail(Reply::Close);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    let ids: Vec<Option<String>> = w
        .aws
        .records(ZONE)
        .into_iter()
        .filter(|r| {
            r.name == "ro.a.example.internal." && r.rtype == crate::domain::aws::RecordType::A
        })
        .map(|r| r.set_identifier)
        .collect();
    assert_eq!(
        ids,
        vec![
            Some("a-pg2".to_string()),
            Some("analytics-replica".to_string())
        ]
    );
}

#[tokio::test]
async fn without_a_confirmed_primary_the_markers_and_their_fence_stay_as_they_are() {
    let w = failed_over().await;
    let (txt, tags) = (w.txt("a").await, w.aws.tags_of(&tg_arn("a")));
    let before = w.aws.writes();
    for n in &w.fake(0).nodes {
        n.fail(Reply::Close);
    }
    let r = w.reconcile().await;
    assert_eq!(r.clusters[0].decision.kind(), "no_primary");
    assert_eq!(w.aws.writes(), before, "no write call: {}", r.to_text());
    assert_eq!((w.txt("a").await, w.aws.tags_of(&tg_arn("a"))), (txt, tags));
    // The fence's leader holding without a timeline keeps the fence.
    w.fake(0).set_leader("a-pg2", 2);
    let mut no_tl: Value =
        serde_json::from_str(&patroni_json("a", "a-pg2", "primary", "running", 2)).expect("json");
    no_tl.as_object_mut().map(|o| o.remove("timeline"));
    w.fake(0)
        .node("a-pg2")
        .set("/patroni", Reply::Json(200, no_tl.to_string()));
    let r = w.reconcile().await;
    assert_eq!(r.clusters[0].decision.primary(), Some("a-pg2"));
    let m = Marker::from_txt(&w.txt("a").await).expect("marker");
    assert_eq!((m.timeline, m.leader.as_deref()), (Some(2), Some("a-pg2")));
}

/// Found by review: ownership guards the targets and the markers, not the settings: with
/// `manage_settings`, the settings check (`settings::check` in a run, `check_group` in
/// verification) rewrites the attributes (and health check) of a target group another owner
/// marked — the very misconfiguration the marker exists to catch.
#[tokio::test]
async fn settings_of_a_target_group_another_owner_marked_are_never_changed() {
    let w = World::new(&["a"], |c| {
        c["clusters"][0]["target_group"]["manage_settings"] = json!(true);
    });
    let team_b = Owner::of(Some("team-b"), "a", None).expect("owner");
    let marker = Marker::new(&team_b, Some(9), Some("x"), 1);
    let owner_tag = marker.to_tags().remove(0);
    w.aws.set_tags(
        &tg_arn("a"),
        &[(owner_tag.0.as_str(), owner_tag.1.as_str())],
    );
    let r = w.reconcile().await;
    assert!(!r.ok, "an ownership conflict: {}", r.to_text());
    let modified = w.aws.calls("ModifyTargetGroupAttributes") + w.aws.calls("ModifyTargetGroup");
    assert_eq!(
        modified,
        0,
        "team-b's target group settings were modified: {}",
        r.to_text()
    );
}
