//! Decide and plan one cluster from what was observed: pure, no I/O. The result carries the
//! plans, the routing read from AWS and the errors met so far; apply and assemble take it on.

use std::time::Instant;

use super::assemble::{node_reports, planned_record_changes, planned_target_changes};
use super::mark::{self, Context};
use super::observe::AwsView;
use crate::adapters::AwsError;
use crate::config::{ClusterConfig, DnsConfig};
use crate::domain::aws::{DnsState, Endpoint, tg_name};
use crate::domain::decide::Decision;
use crate::domain::ownership::Owner;
use crate::domain::patroni::NodeObservation;
use crate::domain::plan::{self, DnsPlan, TargetGroupPlan};
use crate::domain::report::{
    ChangeReport, ClusterError, DriftReport, NodeReport, Routing, RoutingLag,
};

/// One cluster after polling, deciding, reading AWS and planning.
pub(super) struct Prepared<'a> {
    pub cluster: &'a ClusterConfig,
    pub started: Instant,
    pub decided_ms: u64,
    pub decided_at_ms: u64,
    pub decision: Decision,
    pub nodes: Vec<NodeReport>,
    pub routing: Routing,
    pub tg_plans: Vec<TargetGroupPlan>,
    /// The writer's record and the read endpoint's, each in its zone.
    pub dns_plans: Vec<DnsPlan>,
    pub changes: Vec<ChangeReport>,
    pub drift: Vec<DriftReport>,
    pub errors: Vec<ClusterError>,
    /// Who this router is for the cluster's markers (`None`: unknown, nothing is written).
    pub owner: Option<Owner>,
    /// Set when this run moved the writer to a new primary (see `lag`).
    pub routing_lag: Option<RoutingLag>,
    /// Target groups not read yet (their markers route the decision): not planned.
    pub unread: Vec<String>,
    /// How old the remembered AWS state planned from is, ms (`None`: read in this run).
    pub aws_age_ms: Option<u64>,
}

impl Prepared<'_> {
    /// Plan mode: every planned change reported as planned, none applied.
    pub fn plan_only(&mut self) {
        for p in &self.tg_plans {
            self.changes.extend(planned_target_changes(p));
        }
        for p in &self.dns_plans {
            self.changes.extend(planned_record_changes(p));
        }
    }

    pub fn error(&mut self, e: ClusterError) {
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }
}

fn blocked(resource: String, reason: &str) -> ClusterError {
    ClusterError::Blocked {
        resource,
        reason: reason.to_string(),
    }
}

/// When the run of a cluster started, and when it had decided (ms).
#[derive(Clone)]
pub(super) struct Timing {
    pub started: Instant,
    pub decided_ms: u64,
    /// Unix ms of the decision.
    pub decided_at_ms: u64,
}

pub(super) fn prepare<'a>(
    cluster: &'a ClusterConfig,
    timing: Timing,
    observations: &[NodeObservation],
    decision: Decision,
    aws: AwsView<'_>,
    ctx: &Context<'_>,
) -> Prepared<'a> {
    let mut errors = Vec::new();
    let mut routing = Routing::default();
    let mut tg_plans = Vec::new();
    for (tg, state) in aws.target_groups {
        match state {
            Ok(state) => {
                let p = plan::plan_target_group(cluster, tg, &decision, &state);
                if let Some(b) = &p.blocked {
                    errors.push(blocked(format!("target group {}", tg_name(&tg.arn)), b));
                }
                tg_plans.push(p);
                routing.target_groups.push(state);
            }
            Err(e) => errors.push(e.into()),
        }
    }
    let dns_plans = plan_records(cluster, &decision, aws.records, &mut routing, &mut errors);
    let nodes = node_reports(cluster, observations, &routing);
    let aws_age_ms = aws.age_ms;
    let mut p = Prepared {
        cluster,
        started: timing.started,
        decided_ms: timing.decided_ms,
        decided_at_ms: timing.decided_at_ms,
        decision,
        nodes,
        routing,
        tg_plans,
        dns_plans,
        changes: Vec::new(),
        drift: Vec::new(),
        errors,
        owner: None,
        routing_lag: None,
        unread: aws.unread,
        aws_age_ms,
    };
    mark::mark(&mut p, ctx);
    p
}

/// The writer's and the reader's record plans; what was read goes into `routing`, what could not
/// be read or planned into `errors`.
fn plan_records(
    cluster: &ClusterConfig,
    decision: &Decision,
    records: Vec<(Endpoint, &DnsConfig, Result<DnsState, AwsError>)>,
    routing: &mut Routing,
    errors: &mut Vec<ClusterError>,
) -> Vec<DnsPlan> {
    let mut dns_plans = Vec::new();
    for (endpoint, d, state) in records {
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                errors.push(e.into());
                continue;
            }
        };
        let (p, label) = match (endpoint, cluster.replicas.as_ref()) {
            (Endpoint::Reader, Some(r)) => (
                plan::plan_read_dns(cluster, r, d, decision, &state),
                "read record",
            ),
            _ => (plan::plan_dns(cluster, d, decision, &state), "record"),
        };
        if let Some(b) = &p.blocked {
            errors.push(blocked(format!("{label} {}", d.name), b));
        }
        dns_plans.push(p);
        match endpoint {
            Endpoint::Writer => routing.dns = Some(state),
            Endpoint::Reader => routing.read_dns = Some(state),
        }
    }
    dns_plans
}
