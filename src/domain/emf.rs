//! Metrics as CloudWatch Embedded Metric Format (EMF): one JSON line per cluster per
//! reconcile, written to the Lambda's stdout. CloudWatch Logs extracts the metrics from the
//! log line itself: no PutMetricData call, no extra latency or IAM permission in the function.
//! Pure: [`document`] builds the line from a [`ClusterReport`]; the Lambda prints it.
//!
//! Spec: <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>

use serde_json::{Map, Value, json};

use crate::domain::patroni::Lag;
use crate::domain::report::{ChangeStatus, ClusterReport};

pub const DEFAULT_NAMESPACE: &str = "PatroniRouter";
/// Overrides the namespace (e.g. one per environment).
pub const ENV_NAMESPACE: &str = "ROUTER_METRICS_NAMESPACE";
/// The dimension every metric carries (also published without it, for all-cluster alarms).
pub const DIMENSION: &str = "Cluster";

/// One metric of a run: name, CloudWatch unit, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub value: u64,
}

fn m(name: &'static str, unit: &'static str, value: u64) -> Metric {
    Metric { name, unit, value }
}

/// How many of the run's errors are of this kind.
fn errors_of(c: &ClusterReport, kind: &str) -> u64 {
    let n = c.errors.iter().filter(|e| e.kind() == kind).count();
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The metrics of one cluster's run. Decisions are 0/1 per run, so `Sum` over a period counts
/// runs of each kind; `MaxReplicationLag` is left out when no member's lag is known.
pub fn metrics(c: &ClusterReport) -> Vec<Metric> {
    let kind = c.decision.kind();
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let mut out = vec![
        m("PrimaryChanges", "Count", u64::from(c.primary_moved)),
        m("DecisionConfirmed", "Count", u64::from(kind == "confirmed")),
        m(
            "DecisionNoPrimary",
            "Count",
            u64::from(kind == "no_primary"),
        ),
        m("DecisionAmbiguous", "Count", u64::from(kind == "ambiguous")),
        m(
            "StalePrimaries",
            "Count",
            count(c.decision.stale_primaries.len()),
        ),
        m(
            "ChangesApplied",
            "Count",
            count(
                c.changes
                    .iter()
                    .filter(|ch| ch.status == ChangeStatus::Applied)
                    .count(),
            ),
        ),
        m("ApplyErrors", "Count", count(c.errors.len())),
        m("FenceRefused", "Count", errors_of(c, "fence")),
        m("OwnershipConflicts", "Count", errors_of(c, "conflict")),
        m("ReconcileDuration", "Milliseconds", c.duration_ms),
    ];
    let max_lag = c
        .nodes
        .iter()
        .filter_map(|n| match n.lag {
            Some(Lag::Bytes(b)) => Some(b),
            _ => None,
        })
        .max();
    if let Some(lag) = max_lag {
        out.push(m("MaxReplicationLag", "Bytes", lag));
    }
    if let Some(set) = &c.read_set {
        out.push(m("ReadEndpointNodes", "Count", count(set.len())));
    }
    if let Some(l) = c.routing_lag {
        out.push(m("RoutingLag", "Milliseconds", l.total_ms));
        out.push(m("RoutingLagDecide", "Milliseconds", l.to_decision_ms));
        out.push(m("RoutingLagApply", "Milliseconds", l.to_applied_ms));
    }
    out
}

/// An EMF document: the metrics declared under `dimensions` and their values at the root.
fn envelope(
    namespace: &str,
    dimensions: Value,
    metrics: &[Metric],
    timestamp_ms: u64,
) -> Map<String, Value> {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|x| json!({"Name": x.name, "Unit": x.unit}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": dimensions, "Metrics": definitions}],
        }),
    );
    for x in metrics {
        root.insert(x.name.into(), json!(x.value));
    }
    root
}

/// The EMF document for one cluster's run, stamped `timestamp_ms` (Unix epoch, ms): per
/// cluster, and once more with no dimension for alarms across clusters.
pub fn document(namespace: &str, c: &ClusterReport, timestamp_ms: u64) -> Value {
    let mut root = envelope(
        namespace,
        json!([[DIMENSION], []]),
        &metrics(c),
        timestamp_ms,
    );
    root.insert(DIMENSION.into(), Value::String(c.scope.clone()));
    // Context for Logs Insights; not metrics (not listed in `Metrics`).
    root.insert("decision".into(), json!(c.decision.kind()));
    if let Some(p) = c.decision.primary() {
        root.insert("primary".into(), json!(p));
    }
    Value::Object(root)
}

/// The EMF document for the whole process (no dimension): e.g. its AWS calls and how far
/// behind verification is, after a scheduled run.
pub fn process_document(namespace: &str, metrics: &[Metric], timestamp_ms: u64) -> Value {
    Value::Object(envelope(namespace, json!([[]]), metrics, timestamp_ms))
}

/// The process's metrics: AWS calls and throttles since the last emission, verification's
/// backlog.
pub fn process_metrics(calls: u64, throttled: u64, oldest_s: u64, unread: u64) -> Vec<Metric> {
    vec![
        m("AwsCalls", "Count", calls),
        m("AwsThrottled", "Count", throttled),
        m("VerifyOldest", "Seconds", oldest_s),
        m("VerifyUnread", "Count", unread),
    ]
}

/// A config version refused (the Lambda's config in S3): the previous one keeps routing.
pub fn config_metrics(rejected: u64) -> Vec<Metric> {
    vec![m("ConfigRejected", "Count", rejected)]
}

/// The namespace from the environment, or the default.
pub fn namespace_from_env() -> String {
    std::env::var(ENV_NAMESPACE)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::aws::Endpoint;
    use crate::domain::decide::Verdict;
    use crate::domain::report::{Action, ChangeReport, ClusterError};
    use crate::testkit::reports::cluster_report;

    fn report(verdict: Verdict) -> ClusterReport {
        let mut r = cluster_report(verdict);
        r.decision.stale_primaries = vec!["pg3".into()];
        r.primary_moved = true;
        r.read_set = Some(vec!["pg2".into(), "pg3".into()]);
        r.nodes[1].lag = Some(Lag::Bytes(4096));
        let change = |action, target: &str, node: &str, status, error: Option<&str>| ChangeReport {
            resource: "arn".into(),
            endpoint: Endpoint::Writer,
            action,
            target: target.into(),
            node: Some(node.into()),
            status,
            error: error.map(str::to_string),
        };
        r.changes = vec![
            change(
                Action::Register,
                "i-1:5432",
                "pg1",
                ChangeStatus::Applied,
                None,
            ),
            change(
                Action::Deregister,
                "i-2:5432",
                "pg2",
                ChangeStatus::Failed,
                Some("throttled"),
            ),
        ];
        r.errors = vec![ClusterError::Blocked {
            resource: "target group pg".into(),
            reason: "deregister failed".into(),
        }];
        r.duration_ms = 42;
        r.routing_lag = Some(crate::domain::report::RoutingLag::between(
            1_000, 1_080, 1_120,
        ));
        r
    }

    #[test]
    fn every_declared_metric_is_a_number_at_the_root() {
        let d = document(
            "PatroniRouter",
            &report(Verdict::Confirmed {
                primary: "pg1".into(),
                timeline: Some(2),
            }),
            1_700_000_000_000,
        );
        let cw = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "PatroniRouter");
        assert_eq!(cw["Dimensions"], json!([["Cluster"], []]));
        assert_eq!(d["Cluster"], "pgha", "the dimension's value is at the root");
        assert_eq!(d["_aws"]["Timestamp"], 1_700_000_000_000u64);
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .map(|x| x["Name"].as_str().expect("name"))
            .collect();
        assert_eq!(names.len(), 15, "{names:?}");
        for name in names {
            assert!(d[name].is_u64(), "{name} is not a number at the root: {d}");
        }
        let v = |k: &str| d[k].as_u64().expect("number");
        assert_eq!(
            (
                v("PrimaryChanges"),
                v("DecisionConfirmed"),
                v("DecisionNoPrimary")
            ),
            (1, 1, 0)
        );
        assert_eq!(
            (v("StalePrimaries"), v("ChangesApplied"), v("ApplyErrors")),
            (1, 1, 1)
        );
        assert_eq!(v("MaxReplicationLag"), 4096, "unknown lag is not a number");
        assert_eq!((v("ReconcileDuration"), v("ReadEndpointNodes")), (42, 2));
        assert_eq!(
            (v("RoutingLag"), v("RoutingLagDecide"), v("RoutingLagApply")),
            (120, 80, 40)
        );
        assert_eq!(d["primary"], "pg1");
    }

    #[test]
    fn the_templates_alarms_watch_metrics_the_router_emits() {
        let r = report(Verdict::Confirmed {
            primary: "pg1".into(),
            timeline: Some(2),
        });
        let emitted = emitted(&r);
        let template = include_str!("../../template.yaml");
        let lines: Vec<&str> = template.lines().map(str::trim).collect();
        let mut watched = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if *l == "Namespace: !Ref MetricsNamespace" {
                let name = lines[i + 1]
                    .strip_prefix("MetricName: ")
                    .expect("MetricName follows Namespace");
                watched.push(name);
            }
        }
        assert_eq!(watched.len(), 9, "{watched:?}");
        for name in &watched {
            assert!(
                emitted.contains(name),
                "the template alarms on {name}, never emitted"
            );
        }
        // The Terraform module alarms on the same metrics.
        let module = include_str!("../../deploy/terraform/alarms.tf");
        let mut tf: Vec<&str> = module
            .lines()
            .filter_map(|l| l.trim().strip_prefix("metric"))
            .filter_map(|l| l.trim_start().strip_prefix('=')?.trim().split('"').nth(1))
            .collect();
        tf.sort_unstable();
        watched.sort_unstable();
        assert_eq!(
            tf, watched,
            "template.yaml and deploy/terraform alarm on the same metrics"
        );
    }

    #[test]
    fn fail_static_runs_count_by_kind_and_omit_unknown_lag() {
        let mut r = report(Verdict::Ambiguous);
        r.primary_moved = false;
        r.read_set = None;
        r.routing_lag = None;
        for n in &mut r.nodes {
            n.lag = None;
        }
        let d = document("X", &r, 0);
        assert_eq!(d["DecisionAmbiguous"], 1);
        assert_eq!(d["DecisionConfirmed"], 0);
        assert!(d.get("MaxReplicationLag").is_none());
        assert!(d.get("ReadEndpointNodes").is_none());
        assert!(d.get("RoutingLag").is_none(), "no failover, no lag");
        assert!(d.get("primary").is_none());
        let declared = d["_aws"]["CloudWatchMetrics"][0]["Metrics"].to_string();
        assert!(
            !declared.contains("MaxReplicationLag"),
            "an undeclared-value metric is not declared"
        );
    }

    /// Every metric name the router emits: per cluster, per process, for the config.
    fn emitted(r: &ClusterReport) -> Vec<&'static str> {
        metrics(r)
            .into_iter()
            .chain(process_metrics(0, 0, 0, 0))
            .chain(config_metrics(0))
            .map(|x| x.name)
            .collect()
    }

    /// The metric names a CloudWatch dashboard body shows: `["<namespace>", "<name>"]` pairs.
    fn dashboard_metrics(body: &str, namespace: &str) -> Vec<String> {
        let mut out: Vec<String> = body
            .split(&format!("[\"{namespace}\", \""))
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_string))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    #[test]
    fn the_dashboards_show_metrics_the_router_emits_and_sam_and_terraform_agree() {
        let r = report(Verdict::Confirmed {
            primary: "pg1".into(),
            timeline: Some(2),
        });
        let emitted = emitted(&r);
        let sam = dashboard_metrics(include_str!("../../template.yaml"), "${MetricsNamespace}");
        let tf = dashboard_metrics(
            include_str!("../../deploy/terraform/dashboard.json.tftpl"),
            "${namespace}",
        );
        assert!(sam.len() >= 12, "{sam:?}");
        assert_eq!(
            sam, tf,
            "template.yaml and deploy/terraform show the same metrics"
        );
        for name in &sam {
            assert!(
                emitted.contains(&name.as_str()),
                "the dashboard shows {name}, never emitted"
            );
        }
        for must in [
            "RoutingLag",
            "RoutingLagDecide",
            "RoutingLagApply",
            "DecisionAmbiguous",
        ] {
            assert!(sam.iter().any(|n| n == must), "the dashboard shows {must}");
        }
    }
}
