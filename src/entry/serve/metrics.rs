//! Prometheus metrics of `serve` (prometheus-client, OpenMetrics text on `GET /metrics`).
//!
//! What a run changes in the metrics is computed from its [`ClusterReport`] by the pure
//! [`observe`]; [`Metrics::record`] only applies that to the registry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::decide::DecisionKind;
use crate::domain::patroni::Lag;
use crate::domain::report::ClusterReport;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reconcile durations: a healthy run is tens of milliseconds; a webhook run includes the
/// wait for Patroni to confirm the new primary (seconds).
const DURATION_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    cluster: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MemberLabels {
    cluster: String,
    member: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    cluster: String,
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

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
    /// Confirmed and no error: what readiness and `last_success_timestamp_seconds` count.
    pub success: bool,
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
    Observation {
        kind: report.decision.kind(),
        success: primary.is_some() && errors == 0,
        primary,
        primary_changed,
        errors,
        lag,
    }
}

type HistogramFamily = Family<ClusterLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    decisions: Family<KindLabels, Counter>,
    primary_changes: Family<ClusterLabels, Counter>,
    apply_errors: Family<ClusterLabels, Counter>,
    lag: Family<MemberLabels, Gauge>,
    duration: HistogramFamily,
    last_success: Family<ClusterLabels, Gauge<f64, AtomicU64>>,
    reconciles: Family<TriggerLabels, Counter>,
    webhook_requests: Family<StatusLabels, Counter>,
    /// The last confirmed primary per cluster, for `primary_changes_total`.
    primaries: Mutex<HashMap<String, String>>,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

fn cluster(scope: &str) -> ClusterLabels {
    ClusterLabels {
        cluster: scope.to_string(),
    }
}

impl Metrics {
    /// The registry, with every per-cluster series present from the start.
    pub fn new(scopes: &[String]) -> Metrics {
        let mut registry = Registry::with_prefix("patroni_router");
        let m = Metrics {
            decisions: Family::default(),
            primary_changes: Family::default(),
            apply_errors: Family::default(),
            lag: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            last_success: Family::default(),
            reconciles: Family::default(),
            webhook_requests: Family::default(),
            primaries: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "decisions",
            "Reconciles per cluster by decision kind (confirmed, no_primary, ambiguous)",
            m.decisions.clone(),
        );
        registry.register(
            "primary_changes",
            "Times the confirmed primary differed from the previous confirmed one",
            m.primary_changes.clone(),
        );
        registry.register(
            "apply_errors",
            "Errors in reconciles: failed AWS calls (reads and changes), blocked changes",
            m.apply_errors.clone(),
        );
        registry.register(
            "replication_lag_bytes",
            "Replication lag per member as the DCS reports it (absent when unknown)",
            m.lag.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Duration of a reconcile of one cluster (a webhook's includes the confirmation wait)",
            m.duration.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last reconcile with a confirmed primary and no error",
            m.last_success.clone(),
        );
        registry.register(
            "reconciles",
            "Reconciles per cluster by trigger (timer, webhook)",
            m.reconciles.clone(),
        );
        registry.register(
            "webhook_requests",
            "Webhook requests by HTTP status answered",
            m.webhook_requests.clone(),
        );
        for scope in scopes {
            for kind in DecisionKind::ALL {
                m.decisions
                    .get_or_create(&KindLabels {
                        cluster: scope.clone(),
                        kind: kind.as_str().to_string(),
                    })
                    .get();
            }
            m.primary_changes.get_or_create(&cluster(scope)).get();
            m.apply_errors.get_or_create(&cluster(scope)).get();
        }
        Metrics { registry, ..m }
    }

    /// Apply one cluster's report; `now_unix` stamps a success. Returns the observation.
    pub fn record(
        &self,
        report: &ClusterReport,
        trigger: &str,
        duration_secs: f64,
        now_unix: f64,
    ) -> Observation {
        let scope = report.scope.as_str();
        let o = {
            let mut primaries = self.primaries.lock().unwrap_or_else(|e| e.into_inner());
            let o = observe(report, primaries.get(scope).map(String::as_str));
            if let Some(p) = &o.primary {
                primaries.insert(scope.to_string(), p.clone());
            }
            o
        };
        self.reconciles
            .get_or_create(&TriggerLabels {
                cluster: scope.to_string(),
                trigger: trigger.to_string(),
            })
            .inc();
        self.decisions
            .get_or_create(&KindLabels {
                cluster: scope.to_string(),
                kind: o.kind.as_str().to_string(),
            })
            .inc();
        if o.primary_changed {
            self.primary_changes.get_or_create(&cluster(scope)).inc();
        }
        if o.errors > 0 {
            self.apply_errors
                .get_or_create(&cluster(scope))
                .inc_by(o.errors);
        }
        for (member, lag) in &o.lag {
            let labels = MemberLabels {
                cluster: scope.to_string(),
                member: member.clone(),
            };
            match lag {
                Some(b) => {
                    self.lag
                        .get_or_create(&labels)
                        .set(i64::try_from(*b).unwrap_or(i64::MAX));
                }
                None => {
                    self.lag.remove(&labels);
                }
            }
        }
        self.duration
            .get_or_create(&cluster(scope))
            .observe(duration_secs);
        if o.success {
            self.last_success
                .get_or_create(&cluster(scope))
                .set(now_unix);
        }
        o
    }

    /// A run that produced no report at all (it cannot happen for a configured scope, but it
    /// is counted rather than lost).
    pub fn record_failure(&self, scope: &str, trigger: &str) {
        self.reconciles
            .get_or_create(&TriggerLabels {
                cluster: scope.to_string(),
                trigger: trigger.to_string(),
            })
            .inc();
        self.apply_errors.get_or_create(&cluster(scope)).inc();
    }

    pub fn webhook_request(&self, status: u16) {
        self.webhook_requests
            .get_or_create(&StatusLabels {
                status: status.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
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

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn the_registry_exposes_what_was_recorded() {
        let m = Metrics::new(&["pgha".into()]);
        let text = m.encode();
        assert!(
            line(
                &text,
                "patroni_router_decisions_total{cluster=\"pgha\",kind=\"ambiguous\"} 0"
            )
            .is_some(),
            "{text}"
        );
        m.record(&report(confirmed("pg1"), &[]), "timer", 0.02, 1000.0);
        m.record(&report(confirmed("pg2"), &["boom"]), "webhook", 0.3, 1001.0);
        m.webhook_request(200);
        let text = m.encode();
        for expected in [
            "patroni_router_decisions_total{cluster=\"pgha\",kind=\"confirmed\"} 2",
            "patroni_router_primary_changes_total{cluster=\"pgha\"} 1",
            "patroni_router_apply_errors_total{cluster=\"pgha\"} 1",
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg2\"} 1234",
            "patroni_router_reconcile_duration_seconds_count{cluster=\"pgha\"} 2",
            "patroni_router_last_success_timestamp_seconds{cluster=\"pgha\"} 1000",
            "patroni_router_reconciles_total{cluster=\"pgha\",trigger=\"webhook\"} 1",
            "patroni_router_webhook_requests_total{status=\"200\"} 1",
        ] {
            assert!(line(&text, expected).is_some(), "no {expected} in\n{text}");
        }
        assert!(!text.contains("member=\"pg3\""), "unknown lag is absent");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
