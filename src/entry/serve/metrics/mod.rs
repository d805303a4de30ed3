//! Prometheus metrics of `serve` (prometheus-client, OpenMetrics text on `GET /metrics`).
//!
//! What a run changes in the metrics is computed from its [`ClusterReport`] by the pure
//! [`observe`]; [`Metrics::record`] only applies that to the registry. [`NAMES`] lists every
//! series family, for the Grafana dashboard's test.

mod aws;
mod observe;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use observe::{Observation, observe};

use crate::domain::decide::DecisionKind;
use crate::domain::report::ClusterReport;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reconcile durations: a healthy run is tens of milliseconds; a webhook run includes the
/// wait for Patroni to confirm the new primary (seconds).
const DURATION_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Routing lags: from tens of milliseconds (a webhook) to a few intervals (no webhook).
const LAG_BUCKETS: &[f64] = &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0];

/// Every series family, as exposed (counters get `_total`).
pub const NAMES: &[&str] = &[
    "patroni_router_decisions_total",
    "patroni_router_primary_changes_total",
    "patroni_router_apply_errors_total",
    "patroni_router_errors_total",
    "patroni_router_replication_lag_bytes",
    "patroni_router_reconcile_duration_seconds",
    "patroni_router_routing_lag_seconds",
    "patroni_router_routing_lag_decide_seconds",
    "patroni_router_routing_lag_apply_seconds",
    "patroni_router_last_success_timestamp_seconds",
    "patroni_router_reconciles_total",
    "patroni_router_webhook_requests_total",
    "patroni_router_http_connections_shed_total",
    "patroni_router_aws_calls_total",
    "patroni_router_aws_throttled_total",
    "patroni_router_verify_unread",
    "patroni_router_verify_oldest_seconds",
    "patroni_router_verify_cycle_seconds",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClusterLabels {
    cluster: String,
}

/// A cluster and one more dimension: decision kind, error kind, trigger, member.
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

type Histograms = Family<ClusterLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS.iter().copied())
}

fn lag_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS.iter().copied())
}

fn cluster(scope: &str) -> ClusterLabels {
    ClusterLabels {
        cluster: scope.to_string(),
    }
}

fn kind(scope: &str, kind: &str) -> KindLabels {
    KindLabels {
        cluster: scope.to_string(),
        kind: kind.to_string(),
    }
}

pub struct Metrics {
    registry: Registry,
    decisions: Family<KindLabels, Counter>,
    primary_changes: Family<ClusterLabels, Counter>,
    apply_errors: Family<ClusterLabels, Counter>,
    errors: Family<KindLabels, Counter>,
    lag: Family<MemberLabels, Gauge>,
    duration: Histograms,
    /// Promotion to AWS written; to the decision; decision to AWS written.
    routing_lag: [Histograms; 3],
    last_success: Family<ClusterLabels, Gauge<f64, AtomicU64>>,
    reconciles: Family<TriggerLabels, Counter>,
    webhook_requests: Family<StatusLabels, Counter>,
    /// Connections `serve`'s front door closed at its cap.
    pub shed: Counter,
    /// The last confirmed primary per cluster, for `primary_changes_total`.
    primaries: Mutex<HashMap<String, String>>,
    aws: aws::AwsMetrics,
}

impl Metrics {
    /// The registry, with every per-cluster series present from the start.
    pub fn new(scopes: &[String]) -> Metrics {
        let lag = || Family::new_with_constructor(lag_histogram as fn() -> Histogram);
        let mut m = Metrics {
            registry: Registry::with_prefix("patroni_router"),
            decisions: Family::default(),
            primary_changes: Family::default(),
            apply_errors: Family::default(),
            errors: Family::default(),
            lag: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            routing_lag: [lag(), lag(), lag()],
            last_success: Family::default(),
            reconciles: Family::default(),
            webhook_requests: Family::default(),
            shed: Counter::default(),
            primaries: Mutex::new(HashMap::new()),
            aws: aws::AwsMetrics::default(),
        };
        m.register_all();
        m.aws.register(&mut m.registry);
        for scope in scopes {
            for k in DecisionKind::ALL {
                m.decisions.get_or_create(&kind(scope, k.as_str())).get();
            }
            m.primary_changes.get_or_create(&cluster(scope)).get();
            m.apply_errors.get_or_create(&cluster(scope)).get();
        }
        m
    }

    fn register_all(&mut self) {
        /// `name: field => "help"` registers `self.field` as `patroni_router_name`.
        macro_rules! families {
            ($($name:literal: $field:ident => $help:literal,)+) => {
                $(self.registry.register($name, $help, self.$field.clone());)+
            };
        }
        families! {
            "decisions": decisions => "Reconciles per cluster by decision kind (confirmed, no_primary, ambiguous)",
            "primary_changes": primary_changes => "Times the confirmed primary differed from the previous confirmed one",
            "apply_errors": apply_errors => "Errors in reconciles: failed AWS calls (reads and changes), blocked changes",
            "errors": errors => "Errors in reconciles by kind (aws, throttled, blocked, conflict, fence, misconfigured)",
            "replication_lag_bytes": lag => "Replication lag per member as the DCS reports it (absent when unknown)",
            "reconcile_duration_seconds": duration => "Duration of a reconcile of one cluster (a webhook's includes the confirmation wait)",
            "last_success_timestamp_seconds": last_success => "Unix time of the last reconcile with a confirmed primary and no error",
            "reconciles": reconciles => "Reconciles per cluster by trigger (timer, webhook, evidence)",
            "webhook_requests": webhook_requests => "Webhook requests by HTTP status answered",
            "http_connections_shed": shed => "HTTP connections closed at once because the connection cap was reached",
        }
        let [total, decide, apply] = &self.routing_lag;
        let lags = [
            (
                "routing_lag_seconds",
                "Per failover: the new primary's promotion (its /history) to AWS routing to it",
                total,
            ),
            (
                "routing_lag_decide_seconds",
                "Per failover: promotion to the router's decision",
                decide,
            ),
            (
                "routing_lag_apply_seconds",
                "Per failover: the router's decision to the AWS write done",
                apply,
            ),
        ];
        for (name, help, family) in lags {
            self.registry.register(name, help, family.clone());
        }
    }

    /// Apply one cluster's report; `now_unix` stamps a success. Returns the observation.
    pub fn record(
        &self,
        report: &ClusterReport,
        trigger: &str,
        secs: f64,
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
        let labels = TriggerLabels {
            cluster: scope.to_string(),
            trigger: trigger.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.decisions
            .get_or_create(&kind(scope, o.kind.as_str()))
            .inc();
        if o.primary_changed {
            self.primary_changes.get_or_create(&cluster(scope)).inc();
        }
        if o.errors > 0 {
            self.apply_errors
                .get_or_create(&cluster(scope))
                .inc_by(o.errors);
        }
        for (k, n) in &o.error_kinds {
            self.errors.get_or_create(&kind(scope, k)).inc_by(*n);
        }
        self.record_lag(scope, &o);
        self.duration.get_or_create(&cluster(scope)).observe(secs);
        if o.success {
            self.last_success
                .get_or_create(&cluster(scope))
                .set(now_unix);
        }
        o
    }

    fn record_lag(&self, scope: &str, o: &Observation) {
        for (member, lag) in &o.lag {
            let labels = MemberLabels {
                cluster: scope.to_string(),
                member: member.clone(),
            };
            match lag {
                Some(b) => {
                    let bytes = i64::try_from(*b).unwrap_or(i64::MAX);
                    self.lag.get_or_create(&labels).set(bytes);
                }
                None => {
                    self.lag.remove(&labels);
                }
            }
        }
        if let Some(phases) = o.routing_lag {
            for (family, secs) in self.routing_lag.iter().zip(phases) {
                family.get_or_create(&cluster(scope)).observe(secs);
            }
        }
    }

    /// A run that produced no report at all (it cannot happen for a configured scope, but it
    /// is counted rather than lost).
    pub fn record_failure(&self, scope: &str, trigger: &str) {
        let labels = TriggerLabels {
            cluster: scope.to_string(),
            trigger: trigger.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.apply_errors.get_or_create(&cluster(scope)).inc();
    }

    pub fn webhook_request(&self, status: u16) {
        let labels = StatusLabels {
            status: status.to_string(),
        };
        self.webhook_requests.get_or_create(&labels).inc();
    }

    /// Count the AWS calls of this budget (at each scrape).
    pub fn count_calls(&self, budget: std::sync::Arc<crate::adapters::budget::Budget>) {
        self.aws.set_budget(budget);
    }

    /// After each verification.
    pub fn verified(&self, v: &crate::engine::Verified) {
        self.aws.verified(v);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        self.aws.sync();
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
    use crate::domain::report::{ClusterError, RoutingLag};
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
        let mut failover = report(confirmed("pg2"), &["boom"]);
        failover.routing_lag = Some(RoutingLag::between(1_000, 1_300, 1_450));
        m.record(&failover, "webhook", 0.3, 1001.0);
        m.webhook_request(200);
        m.shed.inc();
        let budget = std::sync::Arc::new(crate::adapters::budget::Budget::new(&Default::default()));
        budget.counted("DescribeTargetHealth", false);
        budget.counted("ListResourceRecordSets", true);
        m.count_calls(budget);
        m.verified(&crate::engine::Verified {
            unread: 3,
            oldest_s: 40,
            cycle_target_groups_s: 300,
            ..Default::default()
        });
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
            "patroni_router_errors_total{cluster=\"pgha\",kind=\"blocked\"} 1",
            "patroni_router_routing_lag_seconds_sum{cluster=\"pgha\"} 0.45",
            "patroni_router_routing_lag_decide_seconds_sum{cluster=\"pgha\"} 0.3",
            "patroni_router_routing_lag_apply_seconds_sum{cluster=\"pgha\"} 0.15",
            "patroni_router_http_connections_shed_total 1",
            "patroni_router_aws_calls_total{operation=\"DescribeTargetHealth\"} 1",
            "patroni_router_aws_throttled_total{operation=\"ListResourceRecordSets\"} 1",
            "patroni_router_verify_unread 3",
            "patroni_router_verify_oldest_seconds 40",
            "patroni_router_verify_cycle_seconds{item=\"target_groups\"} 300",
        ] {
            assert!(line(&text, expected).is_some(), "no {expected} in\n{text}");
        }
        assert!(!text.contains("member=\"pg3\""), "unknown lag is absent");
        for name in NAMES {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} is exposed:\n{text}"
            );
        }
        assert!(text.trim_end().ends_with("# EOF"));
    }

    /// Every `patroni_router_*` series a PromQL text names, without histogram suffixes.
    fn series_in(text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, _) in text.match_indices("patroni_router_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name)
                .to_string();
            out.push(base);
        }
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_grafana_dashboard_queries_only_series_serve_exposes() {
        let dashboard = include_str!("../../../../deploy/grafana/patroni-router.json");
        let json: serde_json::Value = serde_json::from_str(dashboard).expect("dashboard JSON");
        let queried = series_in(dashboard);
        assert!(queried.len() >= 10, "{queried:?}");
        for name in &queried {
            assert!(
                NAMES.contains(&name.as_str()),
                "the dashboard queries {name}, never exposed"
            );
        }
        for must in [
            "patroni_router_routing_lag_seconds",
            "patroni_router_decisions_total",
        ] {
            assert!(
                queried.iter().any(|q| q == must),
                "the dashboard shows {must}"
            );
        }
        assert!(json["panels"].as_array().is_some_and(|p| p.len() >= 6));
    }
}
