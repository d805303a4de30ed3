//! Change-driven reads: steady state reads nothing, a failover reads then writes in its own
//! run, drift is found by verification, a cold start trusts markers only until verification
//! reads the targets, and a failed write is never trusted.

use std::time::Duration;

use tokio::time::Instant as Deadline;

use super::*;
use crate::adapters::Elb as _;
use crate::domain::aws::Target;

/// Read calls (Describe*, List*) so far, and those on `resource`.
fn reads(w: &World, resource: &str) -> (usize, usize) {
    let log = w.aws.call_log();
    let read = |op: &str| op.starts_with("Describe") || op.starts_with("List");
    let all = log.iter().filter(|(op, _)| read(op)).count();
    let on = log
        .iter()
        .filter(|(op, r)| read(op) && r.contains(resource))
        .count();
    (all, on)
}

fn soon() -> Deadline {
    Deadline::now() + Duration::from_secs(10)
}

/// Clusters `a` and `b` routed by a change-driven router, everything read once.
async fn steady() -> World {
    let w = World::new(&["a", "b"], |_| {}).change_driven();
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    let v = w.router.verify(soon()).await;
    assert_eq!(v.unread, 0, "{v:?}");
    let r = w.reconcile().await;
    assert!(r.ok && writes(&r) == 0, "{}", r.to_text());
    w
}

#[tokio::test]
async fn steady_state_reads_nothing_and_a_failover_reads_then_writes_in_its_own_run() {
    let w = steady().await;
    let before = reads(&w, "");
    for _ in 0..3 {
        let r = w.reconcile().await;
        assert!(r.ok, "{}", r.to_text());
        assert!(
            r.clusters.iter().all(|c| c.aws_age_ms.is_some()),
            "planned from memory"
        );
    }
    assert_eq!(reads(&w, ""), before, "steady state: no AWS reads at all");
    let b_before = reads(&w, &tg_arn("b")).1;
    let calls = |op: &str| w.aws.calls(op);
    let before = [
        calls("DescribeTags"),
        calls("DescribeTargetHealth"),
        calls("ListResourceRecordSets"),
    ];
    w.fake(0).set_leader("a-pg2", 2);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        w.targets("a"),
        vec!["i-12:5432"],
        "routed in the run that saw it"
    );
    assert!(r.clusters[0].aws_age_ms.is_some(), "planned from memory");
    let made = [
        calls("DescribeTags") - before[0],
        calls("DescribeTargetHealth") - before[1],
        calls("ListResourceRecordSets") - before[2],
    ];
    assert_eq!(w.record("a").await, vec!["10.0.1.12"]);
    assert_eq!(
        made,
        [2, 1, 0],
        "only the fence's checks before and after registering, and the deregistration's re-read"
    );
    assert_eq!(reads(&w, &tg_arn("b")).1, b_before, "b was not read");
}

#[tokio::test]
async fn a_failover_planned_from_a_stale_memory_fails_safe_and_the_next_run_reads() {
    let w = steady().await;
    // Another router rewrote a's marker meanwhile: the remembered one is stale.
    let name = record_name("a");
    let marker: Vec<_> = w
        .aws
        .records(ZONE)
        .into_iter()
        .filter(|r| r.name == name && r.rtype.as_str() == "TXT")
        .collect();
    assert_eq!(marker.len(), 1, "{marker:?}");
    let rewritten = marker[0].values[0].replace("at=", "at=9");
    w.aws.put_record(ZONE, record_set(&name, "TXT", &rewritten));
    w.fake(0).set_leader("a-pg2", 2);
    let r = w.reconcile().await;
    assert!(!r.ok, "the compare-and-set failed: {}", r.to_text());
    assert_eq!(
        w.record("a").await,
        vec!["10.0.1.11"],
        "nothing of the batch applied"
    );
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        w.record("a").await,
        vec!["10.0.1.12"],
        "read again, then routed"
    );
}

#[tokio::test]
async fn drift_from_outside_is_found_by_verification_and_repaired_by_the_next_run() {
    let w = steady().await;
    let arn = tg_arn("a");
    let pg3 = Target {
        id: "i-13".into(),
        port: 5432,
    };
    let pg1 = Target {
        id: "i-11".into(),
        port: 5432,
    };
    w.aws.register(&arn, &[pg3]).await.expect("register");
    w.aws.deregister(&arn, &[pg1]).await.expect("deregister");
    w.reconcile().await;
    assert_eq!(
        w.targets("a"),
        vec!["i-13:5432"],
        "runs do not read: not seen yet"
    );
    let v = w.router.verify(soon()).await;
    assert_eq!(
        v.target_groups_read, 0,
        "nothing due before the cycle: {v:?}"
    );
    w.clock.advance(Duration::from_secs(301));
    let v = w.router.verify(soon()).await;
    assert_eq!(v.changed, vec!["a"], "{v:?}");
    assert_eq!(v.target_groups_read, 2, "each group once per cycle");
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-11:5432"], "repaired");
}

#[tokio::test]
async fn a_cold_start_trusts_markers_only_until_verification_reads_the_targets() {
    let w = routed().await; // routed by an earlier process
    let cold = w.another_router().with_change_driven_reads();
    let before = w.aws.calls("DescribeTargetHealth");
    let r = cold.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        w.aws.calls("DescribeTargetHealth"),
        before,
        "no per-group read"
    );
    assert_eq!(r.clusters[0].unread_target_groups, vec![tg_arn("a")]);
    let v = cold.verify(soon()).await;
    assert_eq!((v.target_groups_read, v.unread), (1, 0), "{v:?}");
    // It holds what its marker says: a first read, not a change (quiet in the log).
    assert_eq!(v.first_read, vec!["a"], "{v:?}");
    assert!(v.changed.is_empty(), "{v:?}");
    let r = cold.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.clusters[0].unread_target_groups.is_empty());
}

#[tokio::test]
async fn a_marker_without_its_targets_is_repaired_once_verification_reads_them() {
    let w = routed().await;
    // An earlier process marked pg2's timeline, then failed to register it and stopped.
    w.fake(0).set_leader("a-pg2", 2);
    w.aws.fail("RegisterTargets", Fault::AccessDenied, 1);
    let r = w.reconcile().await;
    assert!(!r.ok);
    assert_eq!(w.targets("a"), vec!["i-11:5432"]);
    let cold = w.another_router().with_change_driven_reads();
    cold.run(Mode::Reconcile, None).await.expect("run");
    let v = cold.verify(soon()).await;
    assert_eq!(v.changed, vec!["a"], "{v:?}");
    let r = cold.run(Mode::Reconcile, None).await.expect("run");
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-12:5432"]);
}

#[tokio::test]
async fn after_a_failed_write_the_next_run_reads_instead_of_trusting_the_marker() {
    let w = steady().await;
    w.fake(0).set_leader("a-pg2", 2);
    w.aws.fail("RegisterTargets", Fault::AccessDenied, 1);
    let r = w.reconcile().await;
    assert!(!r.ok);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(
        w.targets("a"),
        vec!["i-12:5432"],
        "no wait for verification"
    );
}

#[tokio::test]
async fn a_failed_record_write_is_read_again_by_the_next_run() {
    let w = steady().await;
    w.fake(0).set_leader("a-pg2", 2);
    w.aws
        .fail("ChangeResourceRecordSets", Fault::AccessDenied, 1);
    let r = w.reconcile().await;
    assert!(!r.ok);
    assert_eq!(w.record("a").await, vec!["10.0.1.11"]);
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.record("a").await, vec!["10.0.1.12"]);
}

#[tokio::test]
async fn a_plan_always_reads_aws() {
    let w = steady().await;
    let before = w.aws.calls("DescribeTargetHealth");
    let r = w.plan().await;
    assert!(r.clusters.iter().all(|c| c.aws_age_ms.is_none()));
    assert_eq!(w.aws.calls("DescribeTargetHealth"), before + 2);
}

/// A verification period longer than anything a duration holds (`verify_every` is bounded by
/// the validation; a shard or a tiny share stretches the cycle) never overflows the settings
/// schedule (found by review: `cycles.groups * 4` panicked).
#[tokio::test]
async fn the_longest_accepted_verify_every_does_not_panic_verification() {
    let w = World::new(&["a"], |c| {
        c["aws"] = json!({"verify_every": "24h"});
        c["clusters"][0]["target_group"]["manage_settings"] = json!(true);
    })
    .change_driven();
    let v = w.router.verify(soon()).await;
    assert_eq!(v.target_groups_read, 1, "{v:?}");
}

/// A scheduled Lambda run is cut at the invocation's deadline (a cold start over many clusters
/// takes longer than one invocation): a run dropped halfway leaves the router whole — no lock
/// held, what was read kept — and the next run routes every cluster.
#[tokio::test]
async fn a_run_cut_short_leaves_the_router_whole_and_the_next_run_routes() {
    let w = World::new(&["a", "b"], |_| {}).change_driven();
    let b = w.fake(1);
    for (name, role) in [
        ("b-pg1", "primary"),
        ("b-pg2", "replica"),
        ("b-pg3", "replica"),
    ] {
        let body = crate::testkit::fake_patroni::patroni_json("b", name, role, "running", 1);
        b.node(name)
            .set("/patroni", Reply::Slow(Duration::from_millis(150), body));
    }
    let cut = tokio::time::timeout(
        Duration::from_millis(60),
        w.router.run(Mode::Reconcile, None),
    )
    .await;
    assert!(cut.is_err(), "the run was to be cut short");
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.targets("a"), vec!["i-11:5432"]);
    assert_eq!(w.targets("b"), vec!["i-21:5432"]);
    assert_eq!(w.record("b").await, vec!["10.0.2.11"]);
}
