//! What one cluster's run changes in the metrics, computed from its report (pure).

use std::collections::BTreeMap;

use crate::domain::decide::DecisionKind;
use crate::domain::patroni::Lag;
use crate::domain::report::ClusterReport;

/// What one cluster's run changes in the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub kind: DecisionKind,
    /// The confirmed primary, if any: the next run's `previous_primary`.
    pub primary: Option<String>,
    /// The confirmed primary differs from the previous confirmed one.
    pub primary_changed: bool,
    /// Errors of the run: each failed AWS call (a failed change records one), read error or
    /// blocked change.
    pub errors: u64,
    /// Replication lag per member: `None` (unknown, unreachable, or the leader) removes the
    /// member's series rather than keeping a stale value.
    pub lag: Vec<(String, Option<u64>)>,
    /// Confirmed and no error: what `last_success_timestamp_seconds` counts.
    pub success: bool,
    /// Errors by kind (`ClusterError::kind`).
    pub error_kinds: Vec<(&'static str, u64)>,
    /// The routing lag of a failover this run routed, in seconds: total, to the decision, to
    /// the AWS write.
    pub routing_lag: Option<[f64; 3]>,
}

/// Pure: the metric updates for `report`, given the previous confirmed primary this process saw.
pub fn observe(report: &ClusterReport, previous_primary: Option<&str>) -> Observation {
    let primary = report.decision.primary().map(str::to_string);
    let primary_changed = match (previous_primary, primary.as_deref()) {
        (Some(before), Some(now)) => before != now,
        _ => false,
    };
    let lag = report
        .nodes
        .iter()
        .map(|n| {
            let bytes = match n.lag {
                Some(Lag::Bytes(b)) => Some(b),
                Some(Lag::Unknown) | None => None,
            };
            (n.name.clone(), bytes)
        })
        .collect();
    let errors = u64::try_from(report.errors.len()).unwrap_or(u64::MAX);
    let mut error_kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    for e in &report.errors {
        *error_kinds.entry(e.kind()).or_default() += 1;
    }
    let secs = |ms: u64| ms as f64 / 1000.0;
    Observation {
        kind: report.decision.kind(),
        success: primary.is_some() && errors == 0,
        primary,
        primary_changed,
        errors,
        lag,
        error_kinds: error_kinds.into_iter().collect(),
        routing_lag: report.routing_lag.map(|l| {
            [
                secs(l.total_ms),
                secs(l.to_decision_ms),
                secs(l.to_applied_ms),
            ]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::decide::Verdict;
    use crate::domain::report::ClusterError;
    use crate::testkit::reports::{cluster_report, confirmed};

    fn report(verdict: Verdict, errors: &[&str]) -> ClusterReport {
        let mut r = cluster_report(verdict);
        r.decision.reason = String::new();
        r.errors = errors
            .iter()
            .map(|e| ClusterError::Blocked {
                resource: "x".into(),
                reason: e.to_string(),
            })
            .collect();
        r
    }

    #[test]
    fn a_confirmed_clean_run_is_a_success_with_lag_per_member() {
        let o = observe(&report(confirmed("pg1"), &[]), None);
        assert_eq!(o.kind, "confirmed");
        assert_eq!(o.primary.as_deref(), Some("pg1"));
        assert!(o.success);
        assert!(!o.primary_changed, "the first primary seen is not a change");
        assert_eq!(o.errors, 0);
        assert_eq!(
            o.lag,
            vec![
                ("pg1".into(), None),
                ("pg2".into(), Some(1234)),
                ("pg3".into(), None)
            ]
        );
    }

    #[test]
    fn primary_changes_compare_with_the_previous_confirmed_primary() {
        assert!(observe(&report(confirmed("pg2"), &[]), Some("pg1")).primary_changed);
        assert!(!observe(&report(confirmed("pg1"), &[]), Some("pg1")).primary_changed);
        let none = observe(&report(Verdict::NoPrimary, &[]), Some("pg1"));
        assert!(!none.primary_changed && !none.success);
        assert_eq!(none.kind, "no_primary");
        assert_eq!(none.primary, None);
    }

    #[test]
    fn errors_make_a_run_unsuccessful() {
        let o = observe(&report(confirmed("pg1"), &["register failed", "x"]), None);
        assert_eq!(o.errors, 2);
        assert!(!o.success);
    }
}
