//! Assemble the report: change lines from the plans (which carry their node and endpoint),
//! what each node answered and where routing pointed at it, and the decision's log line.

use super::prepare::Prepared;
use crate::clock::millis_since;
use crate::config::ClusterConfig;
use crate::domain::aws::{DnsState, RecordSet, Target, tg_name};
use crate::domain::decide::Decision;
use crate::domain::patroni::{Member, NodeObservation};
use crate::domain::plan::{DnsPlan, TargetGroupPlan, read_set};
use crate::domain::report::{
    Action, ChangeReport, ChangeStatus, ClusterReport, NodeReport, Routing,
};

pub(super) fn target_change(
    plan: &TargetGroupPlan,
    action: Action,
    t: &Target,
    status: ChangeStatus,
    error: Option<String>,
) -> ChangeReport {
    ChangeReport {
        resource: plan.arn.clone(),
        endpoint: plan.endpoint,
        action,
        target: t.to_string(),
        node: plan.node_of(t).map(str::to_string),
        status,
        error,
    }
}

pub(super) fn record_change(
    plan: &DnsPlan,
    action: Action,
    r: &RecordSet,
    status: ChangeStatus,
    error: Option<String>,
) -> ChangeReport {
    ChangeReport {
        resource: format!("{}/{}", plan.zone_id, r.name),
        endpoint: plan.endpoint,
        action,
        target: r.describe(),
        node: plan.node_of(r).map(str::to_string),
        status,
        error,
    }
}

/// A target group's marker write.
pub(super) fn marking_change(
    plan: &TargetGroupPlan,
    status: ChangeStatus,
    error: Option<String>,
) -> ChangeReport {
    let tags: Vec<String> = plan
        .marking
        .add_tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ChangeReport {
        resource: plan.arn.clone(),
        endpoint: plan.endpoint,
        action: if plan.marking.adopt {
            Action::Adopt
        } else {
            Action::Mark
        },
        target: format!("tags {}", tags.join("; ")),
        node: None,
        status,
        error,
    }
}

/// A record name's marker write (the TXT record).
pub(super) fn record_marking_change(
    plan: &DnsPlan,
    status: ChangeStatus,
    error: Option<String>,
) -> Option<ChangeReport> {
    let (_, new) = plan.marking.txt.as_ref()?;
    let mut c = record_change(plan, Action::Mark, new, status, error);
    if plan.marking.adopt {
        c.action = Action::Adopt;
    }
    Some(c)
}

pub(super) fn planned_target_changes(p: &TargetGroupPlan) -> Vec<ChangeReport> {
    let marking = p
        .marking
        .writes()
        .then(|| marking_change(p, ChangeStatus::Planned, None));
    let register = p.register.iter().map(|t| (Action::Register, t));
    let deregister = p.deregister.iter().map(|t| (Action::Deregister, t));
    marking
        .into_iter()
        .chain(
            register
                .chain(deregister)
                .map(|(a, t)| target_change(p, a, t, ChangeStatus::Planned, None)),
        )
        .collect()
}

pub(super) fn planned_record_changes(p: &DnsPlan) -> Vec<ChangeReport> {
    let deletes = p.deletes.iter().map(|r| (Action::Delete, r));
    let upserts = p.upserts.iter().map(|r| (Action::Upsert, r));
    record_marking_change(p, ChangeStatus::Planned, None)
        .into_iter()
        .chain(
            deletes
                .chain(upserts)
                .map(|(a, r)| record_change(p, a, r, ChangeStatus::Planned, None)),
        )
        .collect()
}

pub(super) fn finish(p: Prepared<'_>) -> ClusterReport {
    let read_set = p
        .cluster
        .replicas
        .as_ref()
        .and_then(|r| read_set(r, &p.decision))
        .map(|nodes| nodes.into_iter().map(str::to_string).collect());
    let left_alone = p
        .dns_plans
        .iter()
        .flat_map(|d| d.marking.foreign.iter().cloned())
        .collect();
    let mut report = ClusterReport {
        scope: p.cluster.scope.clone(),
        left_alone,
        primary_moved: false,
        read_set,
        decision: p.decision,
        nodes: p.nodes,
        routing: p.routing,
        changes: p.changes,
        drift: p.drift,
        errors: p.errors,
        decided_ms: p.decided_ms,
        routing_lag: p.routing_lag,
        unread_target_groups: p.unread,
        aws_age_ms: p.aws_age_ms,
        duration_ms: millis_since(p.started),
    };
    report.primary_moved = report.moved_primary();
    report
}

/// Where routing points at `node` (target groups by name, records by label and set id).
fn routed_by(cluster: &ClusterConfig, node: &str, address: &str, routing: &Routing) -> Vec<String> {
    let mut out = Vec::new();
    for tg in &routing.target_groups {
        let id = crate::domain::plan::target_id(cluster, node, &tg.target_type);
        if let Ok(id) = id
            && tg
                .targets
                .iter()
                .any(|t| t.target.id == id && t.is_active())
        {
            out.push(format!("tg:{}", tg_name(&tg.arn)));
        }
    }
    let records: [(&str, &Option<DnsState>); 2] =
        [("dns", &routing.dns), ("dns-read", &routing.read_dns)];
    for (label, dns) in records {
        for r in dns.iter().flat_map(|d| &d.records) {
            if r.values.iter().any(|v| v == address) {
                out.push(match &r.set_identifier {
                    Some(id) => format!("{label}:{id}"),
                    None => label.to_string(),
                });
            }
        }
    }
    out
}

/// Per node: what it answered, and where routing pointed at it.
pub(super) fn node_reports(
    cluster: &ClusterConfig,
    observations: &[NodeObservation],
    routing: &Routing,
) -> Vec<NodeReport> {
    // Lag comes from the DCS view; take the first view that lists the member.
    let member = |name: &str| -> Option<&Member> {
        observations
            .iter()
            .filter_map(|o| o.cluster.as_ref().ok())
            .flat_map(|v| v.members.iter())
            .find(|m| m.name == name)
    };
    cluster
        .nodes
        .iter()
        .map(|n| {
            let obs = observations.iter().find(|o| o.name == n.name);
            let status = obs.and_then(|o| o.patroni.as_ref().ok());
            let address = n.address.to_string();
            NodeReport {
                name: n.name.clone(),
                routed_by: routed_by(cluster, &n.name, &address, routing),
                address,
                reachable: status.is_some(),
                role: status.map(|s| s.role.clone()),
                state: status.map(|s| s.state.clone()),
                timeline: status.and_then(|s| s.timeline),
                lag: member(&n.name).and_then(|m| m.lag),
                patroni_error: obs.and_then(|o| o.patroni.as_ref().err().map(|e| e.to_string())),
                cluster_error: obs.and_then(|o| o.cluster.as_ref().err().map(|e| e.to_string())),
            }
        })
        .collect()
}

/// One node's evidence as a line: its own answer, and every member as its DCS view has it
/// (roles, states and lag are what the leader choice and the read endpoint were decided on).
fn evidence(o: &NodeObservation) -> String {
    let own = match &o.patroni {
        Ok(s) => format!(
            "{}/{} TL {}{}",
            s.role,
            s.state,
            s.timeline.map_or("?".into(), |t| t.to_string()),
            if s.cluster_unlocked { " unlocked" } else { "" }
        ),
        Err(e) => format!("error: {e}"),
    };
    let view = match &o.cluster {
        Ok(v) if v.members.is_empty() => "no members".to_string(),
        Ok(v) => v
            .members
            .iter()
            .map(|m| {
                let mut s = format!("{}={}", m.name, m.role);
                if let Some(st) = &m.state {
                    s.push_str(&format!("/{st}"));
                }
                if let Some(l) = m.lag {
                    s.push_str(&format!(" lag {l}"));
                }
                if m.tag_is_set("noloadbalance") {
                    s.push_str(" noloadbalance");
                }
                s
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("error: {e}"),
    };
    format!("{}: patroni {own}; cluster {view}", o.name)
}

/// One structured line per decision with the evidence, so an operator can replay it.
/// The decision with its evidence: info when it moved or confirms no primary, else debug
/// (thousands of clusters in steady state are not news).
pub(super) fn log_decision(
    cluster: &ClusterConfig,
    d: &Decision,
    observations: &[NodeObservation],
    moved: bool,
) {
    let quiet = !moved && d.primary().is_some();
    if quiet && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let evidence: Vec<String> = observations.iter().map(evidence).collect();
    let replicas: Vec<&str> = d.replicas.iter().map(|r| r.name.as_str()).collect();
    macro_rules! log {
        ($level:ident) => {
            tracing::$level!(
                scope = %cluster.scope,
                decision = %d.kind(),
                primary = d.primary().unwrap_or(""),
                reason = %d.reason,
                stale_primaries = ?d.stale_primaries,
                following_replicas = ?replicas,
                evidence = ?evidence,
                "decision"
            )
        };
    }
    if quiet {
        log!(debug);
    } else {
        log!(info);
    }
}
