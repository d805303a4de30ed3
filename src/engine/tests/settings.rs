//! Target-group hygiene: checked once per `settings_check_interval`, fixed with
//! `manage_settings`, a failed fix retried on the next run.

use super::*;

fn managed(c: &mut Value) {
    c["clusters"][0]["target_group"]["manage_settings"] = json!(true);
}

#[tokio::test]
async fn settings_are_checked_once_per_interval_not_every_run() {
    let w = World::new(&["a"], |_| {});
    let attrs = || w.aws.calls("DescribeTargetGroupAttributes");
    let r = w.reconcile().await;
    assert_eq!(attrs(), 1);
    assert_eq!(
        r.clusters[0].drift.len(),
        2,
        "delay and termination drift reported"
    );
    w.reconcile().await;
    assert_eq!(attrs(), 1, "not due again within the interval");
    w.clock.advance(Duration::from_secs(601));
    w.reconcile().await;
    assert_eq!(attrs(), 2, "due after the interval");
    w.plan().await;
    assert_eq!(attrs(), 3, "plan always checks");
}

#[tokio::test]
async fn managed_settings_are_fixed_and_a_failed_fix_is_retried_next_run() {
    let w = World::new(&["a"], managed);
    w.aws
        .fail("ModifyTargetGroupAttributes", Fault::Throttle, 1);
    let r = w.reconcile().await;
    assert!(r.clusters[0].drift.iter().all(|d| !d.fixed));
    w.reconcile().await;
    assert_eq!(
        w.aws.calls("DescribeTargetGroupAttributes"),
        2,
        "retried: not marked checked"
    );
    assert_eq!(w.aws.calls("ModifyTargetGroupAttributes"), 2);
    w.clock.advance(Duration::from_secs(601));
    let r = w.reconcile().await;
    assert!(
        r.clusters[0].drift.is_empty(),
        "fixed: {:?}",
        r.clusters[0].drift
    );
}
