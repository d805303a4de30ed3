//! What a run did, per cluster: the decision and why, what each node answered, where routing
//! pointed, each change and whether it was applied. Serialized as JSON (Lambda, `--output
//! json`) or rendered as text ([`text`]) for a terminal.

mod text;

use serde::{Serialize, Serializer};

use crate::domain::aws::{DnsState, Endpoint, TargetGroupState, tg_name};
use crate::domain::decide::Decision;
use crate::domain::patroni::{Lag, PgState, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Read-only: compute the changes, apply none.
    Plan,
    /// Apply the changes.
    Reconcile,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub mode: Mode,
    /// False when any cluster had an error (an AWS call failed, a change was blocked).
    pub ok: bool,
    pub duration_ms: u64,
    pub clusters: Vec<ClusterReport>,
}

/// A failed AWS call: which call, on which resource, what AWS said, and what to do.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{operation} on {resource} failed: {message}{hint}")]
pub struct AwsError {
    pub operation: &'static str,
    pub resource: String,
    /// AWS's error code when there is one (`AccessDenied`, `TargetGroupNotFound`, ...).
    pub code: Option<String>,
    pub message: String,
    hint: String,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        resource: &str,
        code: Option<&str>,
        message: String,
    ) -> Self {
        let hint = match code {
            Some(c) if c.contains("AccessDenied") || c.contains("UnauthorizedOperation") => {
                format!(" (grant the router's role {operation} on this resource)")
            }
            Some("TargetGroupNotFound") => " (check `target_group.arn` and the region)".into(),
            Some("NoSuchHostedZone") => " (check `dns.hosted_zone_id`)".into(),
            Some(c) if is_throttling(c) => {
                " (AWS throttled the call after retries; the next run retries)".into()
            }
            _ => String::new(),
        };
        AwsError {
            operation,
            resource: resource.to_string(),
            code: code.map(str::to_string),
            message,
            hint,
        }
    }

    /// AWS refused the call for its rate (after the SDK's retries).
    pub fn is_throttling(&self) -> bool {
        self.code.as_deref().is_some_and(is_throttling)
    }
}

fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "PriorRequestNotComplete"
            | "TooManyRequestsException"
    )
}

/// Why a cluster's run is not clean: an AWS call failed, or a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// A resource left alone, and why (a conflicting record, a node without the id a target
    /// group needs, ...).
    #[error("{resource}: {reason}")]
    Blocked { resource: String, reason: String },
    /// A record or target group marked by another owner: never changed.
    #[error("ownership conflict: {0}")]
    Conflict(String),
    /// The decision would move the fence backwards: nothing of the cluster changed.
    #[error("fence: {0}")]
    Fence(String),
    /// Every node that answered is of another scope or member: the config is wrong.
    #[error("misconfigured: {0}")]
    Misconfigured(String),
}

impl ClusterError {
    /// A short kind, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ClusterError::Aws(e) if e.is_throttling() => "throttled",
            ClusterError::Aws(_) => "aws",
            ClusterError::Blocked { .. } => "blocked",
            ClusterError::Conflict(_) => "conflict",
            ClusterError::Fence(_) => "fence",
            ClusterError::Misconfigured(_) => "misconfigured",
        }
    }
}

/// Errors are reported as their message.
impl Serialize for ClusterError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub scope: String,
    pub decision: Decision,
    /// This run applied a change routing the writer endpoint to the confirmed primary (a
    /// failover or switchover reached AWS, or routing was first set up).
    pub primary_moved: bool,
    /// The read endpoint's nodes as decided (`None`: no read endpoint, or fail-static).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_set: Option<Vec<String>>,
    pub nodes: Vec<NodeReport>,
    /// Routing as read from AWS before any change of this run.
    pub routing: Routing,
    pub changes: Vec<ChangeReport>,
    /// Target-group settings that differ from what the strategy needs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftReport>,
    /// Records at the router's names that another made: never changed or deleted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_alone: Vec<String>,
    pub errors: Vec<ClusterError>,
    /// From the start of the cluster's run to its decision (asking Patroni, deciding).
    pub decided_ms: u64,
    /// When this run moved the writer to a new primary: how long from its promotion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_lag: Option<RoutingLag>,
    /// Target groups this process has not read yet, whose markers say they route the
    /// decision (change-driven reads after a cold start): not planned until read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unread_target_groups: Vec<String>,
    /// Change-driven reads: how old the remembered AWS state this run planned from is (ms);
    /// absent when the run read AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_age_ms: Option<u64>,
    /// The whole run of the cluster, AWS calls and their retries included.
    pub duration_ms: u64,
}

impl ClusterReport {
    /// Changes applied in this run (write calls that succeeded).
    pub fn writes(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.status == ChangeStatus::Applied)
            .count()
    }

    /// Did this run apply a change routing the writer endpoint to the confirmed primary?
    pub fn moved_primary(&self) -> bool {
        let Some(primary) = self.decision.primary() else {
            return false;
        };
        self.changes.iter().any(|c| {
            c.status == ChangeStatus::Applied
                && c.endpoint == Endpoint::Writer
                && matches!(c.action, Action::Register | Action::Upsert)
                && c.node.as_deref() == Some(primary)
        })
    }
}

/// How long a failover took to reach AWS: from Patroni's promotion of the new primary (the
/// timestamp of its timeline switch in `GET /history`) to the router's decision, and on to
/// the AWS write. The promotion time is the database host's clock: skew shows up here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoutingLag {
    /// Promotion to AWS written.
    pub total_ms: u64,
    /// Promotion to the router's decision.
    pub to_decision_ms: u64,
    /// Decision to AWS written.
    pub to_applied_ms: u64,
}

impl RoutingLag {
    /// From the three instants (Unix ms); a clock behind ours counts as no lag, not negative.
    pub fn between(promoted: u64, decided: u64, applied: u64) -> RoutingLag {
        RoutingLag {
            total_ms: applied.saturating_sub(promoted),
            to_decision_ms: decided.saturating_sub(promoted),
            to_applied_ms: applied.saturating_sub(decided),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    pub target_group: String,
    pub setting: String,
    pub current: String,
    pub desired: String,
    /// Fixed in this run (`manage_settings: true` and the change applied).
    pub fixed: bool,
}

impl DriftReport {
    pub fn line(&self) -> String {
        format!(
            "target group {}: {} is {}, wants {}{}",
            tg_name(&self.target_group),
            self.setting,
            self.current,
            self.desired,
            if self.fixed {
                " (fixed)"
            } else {
                " (set manage_settings: true to fix)"
            }
        )
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Routing {
    pub target_groups: Vec<TargetGroupState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsState>,
    /// The read endpoint's record (`replicas.dns`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_dns: Option<DnsState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub address: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<PgState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<u64>,
    /// Replication lag in bytes as the DCS reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<Lag>,
    /// Where routing pointed at this node before the run: target group names, record ids.
    pub routed_by: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patroni_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Register,
    Deregister,
    Upsert,
    /// A replica's multivalue record removed from the read endpoint.
    Delete,
    /// Target-group settings (attributes, health check) brought in line.
    ModifySettings,
    /// An unmarked record or target group marked as the router's (the config names it).
    Adopt,
    /// The router's marker updated: the fence moved forward (or the records it holds).
    Mark,
    /// A registration of this run taken back: a newer fence appeared while routing.
    Undo,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Register => "register",
            Action::Deregister => "deregister",
            Action::Upsert => "upsert",
            Action::Delete => "delete",
            Action::ModifySettings => "settings",
            Action::Adopt => "adopt",
            Action::Mark => "mark",
            Action::Undo => "undo",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    /// `plan` mode: would be applied.
    Planned,
    Applied,
    Failed,
    /// Not attempted because an earlier step failed (e.g. no deregister after a failed register).
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    /// The target group ARN or `ZONE/record-name`.
    pub resource: String,
    /// The endpoint the resource serves.
    pub endpoint: Endpoint,
    pub action: Action,
    /// `id:port` for a target; `TYPE value [SetIdentifier]` for a record.
    pub target: String,
    /// The configured node this change is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub status: ChangeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
