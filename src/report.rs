//! What a run did, per cluster: the decision and why, what each node answered, where routing
//! pointed, each change and whether it was applied. Serialized as JSON (Lambda, `--output json`)
//! or rendered as text for a terminal.

use std::fmt::Write as _;

use serde::Serialize;

use crate::decide::Decision;
use crate::patroni::Lag;
use crate::plan::{DnsState, TargetGroupState};

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
    pub errors: Vec<String>,
    pub duration_ms: u64,
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

impl ClusterReport {
    pub fn writes(&self) -> usize {
        self.changes
            .iter()
            .filter(|c| c.status == ChangeStatus::Applied)
            .count()
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
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
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

/// The short name of a target group ARN (`targetgroup/NAME/ID` -> `NAME`).
pub fn tg_name(arn: &str) -> &str {
    arn.rsplit('/').nth(1).unwrap_or(arn)
}

impl Report {
    /// Human text: one block per cluster.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            let head = match c.decision.primary() {
                Some(p) => format!("primary {p}"),
                None => c.decision.kind().replace('_', " "),
            };
            let _ = writeln!(out, "{}: {} ({} ms)", c.scope, head, c.duration_ms);
            let _ = writeln!(out, "  why: {}", c.decision.reason);
            for (node, why) in &c.decision.misconfigured {
                let _ = writeln!(out, "  misconfigured: {node}: {why}");
            }
            for w in &c.decision.warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
            if c.changes.is_empty() {
                let _ = writeln!(out, "  no change");
            }
            for ch in &c.changes {
                let action = match ch.action {
                    Action::Register => "register",
                    Action::Deregister => "deregister",
                    Action::Upsert => "upsert",
                    Action::Delete => "delete",
                    Action::ModifySettings => "settings",
                };
                let status = match ch.status {
                    ChangeStatus::Planned => "planned".to_string(),
                    ChangeStatus::Applied => "applied".to_string(),
                    ChangeStatus::Failed => {
                        format!("FAILED: {}", ch.error.as_deref().unwrap_or("?"))
                    }
                    ChangeStatus::Skipped => {
                        format!("skipped: {}", ch.error.as_deref().unwrap_or("?"))
                    }
                };
                let node = ch
                    .node
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {action:<10} {}{node} in {} -> {status}",
                    ch.target,
                    short_resource(&ch.resource)
                );
            }
            for d in &c.drift {
                let _ = writeln!(out, "  drift: {}", d.line());
            }
            for e in &c.errors {
                let _ = writeln!(out, "  error: {e}");
            }
        }
        out
    }

    /// A table like `patronictl list`, plus where routing points.
    pub fn to_status_table(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            let _ = writeln!(
                out,
                "Cluster {} - {}: {}",
                c.scope,
                c.decision.kind().replace('_', " "),
                c.decision.reason
            );
            let header = [
                "Member",
                "Address",
                "Role",
                "State",
                "TL",
                "Lag",
                "Routed by",
                "Error",
            ];
            let rows: Vec<[String; 8]> = c
                .nodes
                .iter()
                .map(|n| {
                    let mut role = n.role.clone().unwrap_or_else(|| "?".into());
                    if c.decision.primary() == Some(n.name.as_str()) {
                        role.push_str(" *");
                    } else if c.decision.stale_primaries.contains(&n.name) {
                        role.push_str(" (stale)");
                    }
                    [
                        n.name.clone(),
                        n.address.clone(),
                        role,
                        n.state.clone().unwrap_or_else(|| "-".into()),
                        n.timeline.map_or("-".into(), |t| t.to_string()),
                        n.lag.map_or("-".into(), |l| l.to_string()),
                        if n.routed_by.is_empty() {
                            "-".into()
                        } else {
                            n.routed_by.join(",")
                        },
                        n.patroni_error
                            .clone()
                            .or_else(|| n.cluster_error.clone())
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            let mut widths = header.map(str::len);
            for r in &rows {
                for (w, cell) in widths.iter_mut().zip(r.iter()) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: &[String]| {
                let mut s = String::new();
                for (i, cell) in cells.iter().enumerate() {
                    let _ = write!(s, "| {:<w$} ", cell, w = widths[i]);
                }
                s.push('|');
                s
            };
            let sep: String = widths
                .iter()
                .map(|w| format!("+{}", "-".repeat(w + 2)))
                .collect::<String>()
                + "+";
            let _ = writeln!(out, "{sep}");
            let _ = writeln!(out, "{}", line(&header.map(str::to_string)));
            let _ = writeln!(out, "{sep}");
            for r in &rows {
                let _ = writeln!(out, "{}", line(r));
            }
            let _ = writeln!(out, "{sep}");
            for d in &c.drift {
                let _ = writeln!(out, "drift: {}", d.line());
            }
            for e in &c.errors {
                let _ = writeln!(out, "error: {e}");
            }
        }
        out
    }
}

fn short_resource(resource: &str) -> String {
    if resource.starts_with("arn:") {
        format!("target group {}", tg_name(resource))
    } else {
        resource.to_string()
    }
}
