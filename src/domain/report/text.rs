//! The report as text for a terminal: `plan`/`reconcile`'s block per cluster and `status`'s
//! table (like `patronictl list`, plus where routing points).

use std::fmt::Write as _;

use super::{ChangeReport, ChangeStatus, ClusterReport, Report};
use crate::domain::aws::tg_name;

impl Report {
    /// Human text: one block per cluster.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.clusters {
            cluster_block(&mut out, c);
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
                c.decision.kind().as_str().replace('_', " "),
                c.decision.reason
            );
            table(&mut out, &STATUS_HEADER, &status_rows(c));
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

fn cluster_block(out: &mut String, c: &ClusterReport) {
    let head = match c.decision.primary() {
        Some(p) => format!("primary {p}"),
        None => c.decision.kind().as_str().replace('_', " "),
    };
    let _ = writeln!(
        out,
        "{}: {} (decided in {} ms; {} ms with AWS)",
        c.scope, head, c.decided_ms, c.duration_ms
    );
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
        let _ = writeln!(out, "  {}", change_line(ch));
    }
    for d in &c.drift {
        let _ = writeln!(out, "  drift: {}", d.line());
    }
    for r in &c.left_alone {
        let _ = writeln!(out, "  left alone (not the router's): {r}");
    }
    for e in &c.errors {
        let _ = writeln!(out, "  error: {e}");
    }
}

fn change_line(ch: &ChangeReport) -> String {
    let status = match ch.status {
        ChangeStatus::Planned => "planned".to_string(),
        ChangeStatus::Applied => "applied".to_string(),
        ChangeStatus::Failed => format!("FAILED: {}", ch.error.as_deref().unwrap_or("?")),
        ChangeStatus::Skipped => format!("skipped: {}", ch.error.as_deref().unwrap_or("?")),
    };
    let node = ch
        .node
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    format!(
        "{:<10} {}{node} in {} -> {status}",
        ch.action.as_str(),
        ch.target,
        short_resource(&ch.resource)
    )
}

fn short_resource(resource: &str) -> String {
    if resource.starts_with("arn:") {
        format!("target group {}", tg_name(resource))
    } else {
        resource.to_string()
    }
}

const STATUS_HEADER: [&str; 8] = [
    "Member",
    "Address",
    "Role",
    "State",
    "TL",
    "Lag",
    "Routed by",
    "Error",
];

fn status_rows(c: &ClusterReport) -> Vec<[String; 8]> {
    c.nodes
        .iter()
        .map(|n| {
            let mut role = n
                .role
                .as_ref()
                .map_or_else(|| "?".to_string(), ToString::to_string);
            if c.decision.primary() == Some(n.name.as_str()) {
                role.push_str(" *");
            } else if c.decision.stale_primaries.contains(&n.name) {
                role.push_str(" (stale)");
            }
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            [
                n.name.clone(),
                n.address.clone(),
                role,
                or_dash(n.state.as_ref().map(ToString::to_string)),
                or_dash(n.timeline.map(|t| t.to_string())),
                or_dash(n.lag.map(|l| l.to_string())),
                or_dash((!n.routed_by.is_empty()).then(|| n.routed_by.join(","))),
                n.patroni_error
                    .clone()
                    .or_else(|| n.cluster_error.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect()
}

/// A boxed table with columns as wide as their widest cell.
fn table<const N: usize>(out: &mut String, header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for r in rows {
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
    for r in rows {
        let _ = writeln!(out, "{}", line(r));
    }
    let _ = writeln!(out, "{sep}");
}
