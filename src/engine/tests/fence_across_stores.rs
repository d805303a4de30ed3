//! The fence across records and target groups: a record moves only when every routed group's
//! fence, read again before the write, lets the decision route; settings only on groups this
//! owner holds per tags read now. (Each test reproduced a defect found by review.)

use super::*;
use crate::adapters::Elb as _;
use crate::domain::aws::Target;
use crate::domain::ownership::Marker;

/// Where the other process's register went.
#[derive(Clone, Copy, PartialEq)]
enum OtherRegister {
    /// The group holds pg3 under the tl3 fence.
    Succeeded,
    /// The group still holds pg2 but carries the tl3 fence.
    Failed,
}

/// The group marked tl2 for pg2 (this process; cached so), the record still pg1/tl1; then
/// another process of the same owner marks the group tl3 for pg3 (its register as given) and
/// its record write fails too (or has not landed yet: records are written after every
/// cluster's target groups). Last, this process's stale view: pg2 claims timeline 2.
async fn newer_fence_on_the_group(w: &World, register: OtherRegister) {
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    w.fake(0).set_leader("a-pg2", 2);
    w.aws
        .fail("ChangeResourceRecordSets", Fault::AccessDenied, 1);
    let r = w.reconcile().await;
    assert!(!r.ok);
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
    assert_eq!(w.record("a").await, vec!["10.0.1.11"]);
    w.fake(0).set_leader("a-pg3", 3);
    if register == OtherRegister::Failed {
        w.aws
            .fail_on("RegisterTargets", &tg_arn("a"), Fault::AccessDenied, 1);
    }
    w.aws
        .fail("ChangeResourceRecordSets", Fault::AccessDenied, 1);
    let r = w
        .another_router()
        .run(Mode::Reconcile, None)
        .await
        .expect("run");
    assert!(!r.ok);
    let holds = match register {
        OtherRegister::Succeeded => "i-13:5432",
        OtherRegister::Failed => "i-12:5432",
    };
    assert_eq!(w.targets("a"), vec![holds]);
    let fence = Marker::from_tags(&w.aws.tags_of(&tg_arn("a"))).expect("marker");
    assert_eq!(fence.timeline, Some(3), "the tl3 fence is on the group");
    assert_eq!(w.record("a").await, vec!["10.0.1.11"]);
    w.fake(0).set_leader("a-pg2", 2);
}

/// A newer fence found on a target group at write time (its tags re-read before the change)
/// stops that group and the cluster's record: the record's plan was fenced in `mark` against
/// the cached tags, and its TXT compare-and-set only guards the TXT, which still holds the
/// older timeline (found by review: the record moved to pg2 behind the group's tl3 fence).
#[tokio::test]
async fn a_newer_fence_found_at_write_time_on_a_target_group_also_stops_the_record() {
    let w = World::new(&["a"], |_| {});
    newer_fence_on_the_group(&w, OtherRegister::Succeeded).await;
    let r = w.reconcile().await;
    assert!(
        r.clusters[0]
            .errors
            .iter()
            .any(|e| e.to_string().starts_with("fence:")),
        "the target group's re-read tags refuse timeline 2: {}",
        r.to_text()
    );
    assert_eq!(w.targets("a"), vec!["i-13:5432"], "the group is fenced");
    assert_ne!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "the record must not be routed to pg2 (timeline 2) behind the fence of timeline 3: {}",
        r.to_text()
    );
}

/// The control: without a fault, `records_within_fence` reads the group's tl3 fence and holds
/// the record (the fix works on this path).
#[tokio::test]
async fn control_a_record_moving_alone_is_held_by_the_groups_newer_fence() {
    let w = World::new(&["a"], |_| {});
    newer_fence_on_the_group(&w, OtherRegister::Failed).await;
    let r = w.reconcile().await;
    assert_eq!(w.record("a").await, vec!["10.0.1.11"], "{}", r.to_text());
}

/// Was routing wrong: `records_within_fence` skips a group whose tags cannot be read ("the
/// record's own marker still fences it") — but the TXT marker holds timeline 1, so the
/// record moves to pg2 (timeline 2) behind the group's tl3 fence on one failed DescribeTags.
#[tokio::test]
async fn a_record_moving_alone_is_held_when_its_groups_fence_cannot_be_read() {
    let w = World::new(&["a"], |_| {});
    newer_fence_on_the_group(&w, OtherRegister::Failed).await;
    let tag_reads = w.aws.calls("DescribeTags");
    w.aws.fail("DescribeTags", Fault::Throttle, 1);
    let r = w.reconcile().await;
    assert_eq!(
        w.aws.calls("DescribeTags"),
        tag_reads + 1,
        "records_within_fence read the tags (and failed)"
    );
    assert_ne!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "the record moved to pg2 (timeline 2) behind the group's timeline-3 fence: {}",
        r.to_text()
    );
}

/// Was routing wrong: `rechecked` is set by any written group, even one whose fence is never
/// checked (a members group) — so the records skip `records_within_fence` and the primary
/// group's newer fence (its plan a noop from the cached tags) is never read.
#[tokio::test]
async fn a_written_members_group_does_not_stand_for_the_primary_groups_fence() {
    let members = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/a-members/0123456789abcdef";
    let w = World::new(&["a"], |c| {
        let cluster = &mut c["clusters"][0];
        cluster.as_object_mut().map(|o| o.remove("target_group"));
        cluster["target_groups"] = json!([
            {"arn": tg_arn("a"), "port": 5432},
            {"arn": members, "port": 5432, "strategy": "members"},
        ]);
    });
    w.aws.add_target_group(members, TargetType::Instance);
    newer_fence_on_the_group(&w, OtherRegister::Failed).await;
    assert_eq!(w.aws.targets(members).len(), 3);
    // A member drops out of the members group (an instance replaced, an operator's edit).
    w.aws
        .deregister(
            members,
            &[Target {
                id: "i-13".into(),
                port: 5432,
            }],
        )
        .await
        .expect("deregister");
    let r = w.reconcile().await;
    assert_eq!(
        w.aws.targets(members).len(),
        3,
        "the members group was written"
    );
    assert_ne!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "the record moved to pg2 (timeline 2) behind the primary group's timeline-3 fence: {}",
        r.to_text()
    );
}

/// Was routing wrong: a written group whose re-read of the tags fails (`recheck` → an AWS error,
/// not a fence error) sets `rechecked` but not `fenced`: the record moves on the cached tags
/// alone, behind the group's newer fence (the scenario of 225fb07's own test, plus one
/// throttled DescribeTags).
#[tokio::test]
async fn a_failed_tag_read_at_write_time_holds_the_records() {
    let w = World::new(&["a"], |_| {});
    newer_fence_on_the_group(&w, OtherRegister::Succeeded).await;
    w.aws.fail("DescribeTags", Fault::Throttle, 1);
    let r = w.reconcile().await;
    assert_eq!(
        w.targets("a"),
        vec!["i-13:5432"],
        "the group is not written"
    );
    assert_ne!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "the record moved to pg2 (timeline 2) behind the group's timeline-3 fence: {}",
        r.to_text()
    );
}

/// Verification with the tags read fresh: team-b's marker is seen and its settings are left
/// alone (the control for the next test).
#[tokio::test]
async fn control_verification_leaves_the_settings_of_a_group_now_marked_by_another_owner() {
    let w = stale_owner_world().await;
    let v = w
        .router
        .verify(tokio::time::Instant::now() + Duration::from_secs(10))
        .await;
    assert_eq!(v.target_groups_read, 1, "{v:?}");
    assert_eq!(w.aws.calls("ModifyTargetGroupAttributes"), 0, "{v:?}");
}

/// Was a foreign write: verification computes `owned` from `memory.tags`; when its own DescribeTags
/// of the group fails (one throttle) the cache still holds this owner's marker from before
/// team-b marked the group, so team-b's group settings are rewritten.
#[tokio::test]
async fn a_failed_tag_read_in_verification_changes_no_settings() {
    let w = stale_owner_world().await;
    w.aws.fail("DescribeTags", Fault::Throttle, 3);
    let v = w
        .router
        .verify(tokio::time::Instant::now() + Duration::from_secs(10))
        .await;
    assert_eq!(v.target_groups_read, 1, "{v:?}");
    assert_eq!(
        w.aws.calls("ModifyTargetGroupAttributes") + w.aws.calls("ModifyTargetGroup"),
        0,
        "team-b's target group settings were modified on a stale cached marker: {v:?}"
    );
}

/// A change-driven router with `manage_settings` that routed (and marked, and cached the tags
/// of) cluster a's group; then team-b marks the group as its own; everything is due again.
async fn stale_owner_world() -> World {
    let w = World::new(&["a"], |c| {
        c["clusters"][0]["target_group"]["manage_settings"] = json!(true);
    })
    .change_driven();
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert!(
        Marker::from_tags(&w.aws.tags_of(&tg_arn("a"))).is_some(),
        "marked ours"
    );
    let team_b = crate::domain::ownership::Owner::of(Some("team-b"), "a", None).expect("owner");
    let marker = Marker::new(&team_b, Some(9), Some("x"), 1);
    let tags = marker.to_tags();
    let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    w.aws.set_tags(&tg_arn("a"), &tags);
    w.clock.advance(Duration::from_secs(7200));
    w
}
