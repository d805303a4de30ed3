//! AWS faults, through the fault-injecting proxy in front of moto: throttling, server errors,
//! timeouts, partial applies, access denied, a missing target group, concurrent runs.

use std::time::Duration;

use patroni_router::domain::report::{Action, ChangeStatus, Mode, Report};
use serde_json::{Value, json};

use super::common::aws_proxy::Fault;
use super::common::scenario::{Options, Scenario, writes};
use super::{assert_converges, errors, reconcile_bounded, routed};

fn fast_aws(attempts: u32) -> Value {
    json!({"aws": {"attempt_timeout": "1s", "max_attempts": attempts}})
}

/// pg1 routed through the fault proxy (`attempts` per AWS call); then pg2 leads and `op`
/// fails with `fault` the next `times` times.
async fn failover_under(attempts: u32, op: &str, fault: Fault, times: usize) -> Scenario {
    let s = routed(Options {
        proxy: true,
        extra: fast_aws(attempts),
        ..Options::default()
    })
    .await;
    s.fake.set_leader("pg2", 2);
    s.proxy().inject(op, fault, times);
    s
}

/// The run under the fault failed, and its errors name all of `words` (a lower-case word in
/// any case).
fn assert_failed_naming(r: &Report, words: &[&str]) {
    assert!(!r.ok);
    let errors = errors(r);
    let lower = errors.to_lowercase();
    for w in words {
        assert!(
            errors.contains(w) || lower.contains(w),
            "{w:?} not in {errors}"
        );
    }
}

/// The failed run kept the old primary registered (`why`); once the fault clears, one run
/// converges and the next writes nothing.
async fn assert_kept_then_converges(s: &Scenario, why: &str) {
    assert_eq!(s.targets().await, vec![s.instance(0)], "{why}");
    s.proxy().clear();
    assert_converges(s).await;
}

#[tokio::test]
async fn throttling_is_retried_with_backoff() {
    let s = failover_under(4, "RegisterTargets", Fault::Error(400, "Throttling"), 2).await;
    s.proxy().inject(
        "ChangeResourceRecordSets",
        Fault::Error(400, "PriorRequestNotComplete"),
        1,
    );
    s.proxy().reset_counts();
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "retries absorbed the throttling: {}", r.to_text());
    assert_eq!(s.proxy().calls("RegisterTargets"), 3);
    assert_eq!(s.proxy().calls("ChangeResourceRecordSets"), 2);
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn persistent_throttling_is_reported_and_the_next_run_converges() {
    let s = failover_under(2, "RegisterTargets", Fault::Error(400, "Throttling"), 100).await;
    let r = reconcile_bounded(&s).await;
    assert_failed_naming(&r, &["RegisterTargets", "Throttling"]);
    let changes = &r.clusters[0].changes;
    assert!(changes.iter().any(|c| c.status == ChangeStatus::Failed));
    assert!(
        changes.iter().any(|c| c.status == ChangeStatus::Skipped),
        "no deregister after a failed register: the group is never emptied"
    );
    assert_kept_then_converges(&s, "the old primary stays registered").await;
}

#[tokio::test]
async fn server_errors_are_retried() {
    let s = failover_under(
        4,
        "DescribeTargetHealth",
        Fault::Error(503, "ServiceUnavailable"),
        2,
    )
    .await;
    let r = reconcile_bounded(&s).await;
    assert!(r.ok, "{}", r.to_text());
    s.assert_routed_to(1).await;
}

#[tokio::test]
async fn aws_timeouts_are_bounded_and_reported() {
    let delay = Fault::Delay(Duration::from_secs(3));
    let s = failover_under(2, "DescribeTargetHealth", delay, 2).await;
    let r = reconcile_bounded(&s).await;
    assert_failed_naming(&r, &["DescribeTargetHealth", "timeout"]);
    assert_kept_then_converges(&s, "an unread group is not changed").await;
}

#[tokio::test]
async fn register_succeeding_and_deregister_failing_is_a_partial_apply_that_converges() {
    let fault = Fault::Error(500, "InternalFailure");
    let s = failover_under(1, "DeregisterTargets", fault, 1).await;
    let r = reconcile_bounded(&s).await;
    assert!(!r.ok);
    let statuses: Vec<(String, ChangeStatus)> = r.clusters[0]
        .changes
        .iter()
        .filter(|c| c.resource.starts_with("arn:"))
        .map(|c| (format!("{:?}", c.action), c.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            // The fence moves first (tags), then the targets.
            ("Mark".to_string(), ChangeStatus::Applied),
            ("Register".to_string(), ChangeStatus::Applied),
            ("Deregister".to_string(), ChangeStatus::Failed)
        ]
    );
    let mut both = vec![s.instance(0), s.instance(1)];
    both.sort();
    assert_eq!(s.targets().await, both);
    assert_converges(&s).await;
}

#[tokio::test]
async fn access_denied_names_the_call_and_the_fix() {
    let denied = Fault::Error(403, "AccessDenied");
    let s = failover_under(1, "ListResourceRecordSets", denied, 1).await;
    let r = reconcile_bounded(&s).await;
    let errors = errors(&r);
    assert!(
        errors.contains("ListResourceRecordSets") && errors.contains("grant the router's role"),
        "{errors}"
    );
    assert_eq!(
        s.a_record().await,
        vec![s.ip(0)],
        "an unread record is not changed"
    );
    assert_eq!(
        s.targets().await,
        vec![s.instance(1)],
        "the target group is independent of the record"
    );
}

#[tokio::test]
async fn a_missing_target_group_is_reported_and_dns_still_routes() {
    let s = routed(Options::default()).await;
    s.fake.set_leader("pg2", 2);
    let gone = s.tg.replace("targetgroup/", "targetgroup/gone-");
    let router = s
        .router_with(|c| c["clusters"][0]["target_group"]["arn"] = json!(gone))
        .await;
    let r = router.run(Mode::Reconcile, None).await.expect("run");
    let errors = errors(&r);
    assert!(
        errors.contains("gone-") && errors.contains("target_group.arn"),
        "{errors}"
    );
    assert_eq!(s.a_record().await, vec![s.ip(1)]);
}

#[tokio::test]
async fn two_reconciles_at_once_converge_and_never_flap() {
    let s = routed(Options::default()).await;
    // Each failover is on a newer timeline, as in Patroni (the fence refuses going back).
    for (step, (leader, i)) in [("pg2", 1usize), ("pg3", 2), ("pg1", 0)]
        .into_iter()
        .enumerate()
    {
        s.fake.set_leader(leader, 10 + step as u64);
        let (a, b) = tokio::join!(s.reconcile(), s.reconcile());
        for r in [&a, &b] {
            assert_eq!(r.clusters[0].decision.primary(), Some(leader));
            // Neither run ever asks for another node: the only failure possible is a race
            // on the same change (moto refuses deregistering what is already gone).
            for c in &r.clusters[0].changes {
                let node = c.node.as_deref().unwrap_or(leader);
                let towards_leader = matches!(c.action, Action::Deregister) || node == leader;
                assert!(towards_leader, "{}", r.to_text());
            }
        }
        let r = s.reconcile().await;
        assert!(r.ok, "{}", r.to_text());
        s.assert_routed_to(i).await;
        assert_eq!(writes(&s.reconcile().await), 0);
    }
}
