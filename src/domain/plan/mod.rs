//! What must change? A pure diff between the routing the decision calls for and the routing
//! AWS holds now. Each plan carries the endpoint it serves and which node each target or
//! address is, so a report is data, not a reverse lookup. Nothing here does I/O.
//!
//! Safety rules enforced here, whatever the caller does:
//! - without a confirmed primary nothing that depends on the primary changes (fail-static);
//! - only configured nodes are ever desired;
//! - a target is only deregistered if it is registered (and not already draining);
//! - if the desired state cannot be computed (a node lacks the id the target group needs),
//!   that resource is left alone and the reason is reported.

mod marking;
mod records;

use std::collections::BTreeMap;

use serde::Serialize;

pub use marking::{Marking, dns_claim, fence_step, mark_dns, mark_target_group, tag_claim};
pub use records::{plan_dns, plan_read_dns};

use crate::config::{ClusterConfig, DnsRouting, ReplicasConfig, Strategy, TargetGroupConfig};
use crate::domain::aws::{Endpoint, RecordSet, Target, TargetGroupState, TargetType};
use crate::domain::decide::Decision;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroupPlan {
    pub arn: String,
    pub endpoint: Endpoint,
    pub register: Vec<Target>,
    pub deregister: Vec<Target>,
    /// What may stay registered: the desired targets (and, for `members`, every configured
    /// node's). Whatever else is registered goes, even if it appeared after the read.
    #[serde(skip)]
    pub keep: Vec<Target>,
    /// Target id -> the configured node it is (for every node the group's type can name).
    #[serde(skip)]
    pub nodes: BTreeMap<String, String>,
    /// Why this target group is left alone, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Its owner marker: adoption, the routed timeline, or a conflict.
    pub marking: Marking,
}

impl TargetGroupPlan {
    pub fn is_noop(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }

    /// The configured node a target is, if it is one.
    pub fn node_of(&self, target: &Target) -> Option<&str> {
        self.nodes.get(&target.id).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsPlan {
    pub zone_id: String,
    /// The record name this plan manages.
    pub name: String,
    pub endpoint: Endpoint,
    pub upserts: Vec<RecordSet>,
    /// Exactly as Route 53 holds them (a DELETE must match): multivalue records of replicas
    /// that left the read endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deletes: Vec<RecordSet>,
    /// Address -> the configured node it is.
    #[serde(skip)]
    pub nodes: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    pub routing: DnsRouting,
    /// The SetIdentifiers of the records the decision calls for (multivalue: the nodes).
    #[serde(skip)]
    pub desired_sets: Vec<String>,
    /// Its owner marker (the TXT record at the name): adoption, the fence, or a conflict.
    pub marking: Marking,
}

impl DnsPlan {
    pub fn is_noop(&self) -> bool {
        self.upserts.is_empty() && self.deletes.is_empty()
    }

    /// The node a record routes to: its only value's node.
    pub fn node_of(&self, record: &RecordSet) -> Option<&str> {
        match record.values.as_slice() {
            [one] => self.nodes.get(one).map(String::as_str),
            _ => None,
        }
    }
}

/// The target id a node is registered under in a target group of `target_type`.
pub fn target_id(
    cluster: &ClusterConfig,
    node: &str,
    target_type: &TargetType,
) -> Result<String, String> {
    let n = cluster
        .node(node)
        .ok_or_else(|| format!("{node} is not a configured node"))?;
    match target_type {
        TargetType::Ip => Ok(n.address.to_string()),
        TargetType::Instance => n.instance_id.clone().ok_or_else(|| {
            format!(
                "node {node} has no instance_id but the target group is of type instance: \
                 add `instance_id` to the node"
            )
        }),
        other => Err(format!(
            "target type {:?} cannot route to PostgreSQL: use an instance or ip target group",
            other.as_str()
        )),
    }
}

/// The nodes a target group of this strategy should hold; `None`: leave it alone
/// (fail-static).
fn desired_nodes<'d>(
    cluster: &'d ClusterConfig,
    tg: &TargetGroupConfig,
    decision: &'d Decision,
) -> Option<Vec<&'d str>> {
    match tg.strategy {
        // Fail-static without a primary: the decision's reason says why.
        Strategy::PrimaryOnly => decision.primary().map(|p| vec![p]),
        Strategy::Replicas => cluster
            .replicas
            .as_ref()
            .and_then(|r| read_set(r, decision)),
        // Membership does not depend on who is primary (the health check decides), only on
        // the config; a node that proved misconfigured is still never routed to.
        Strategy::Members => Some(
            cluster
                .nodes
                .iter()
                .map(|n| n.name.as_str())
                .filter(|n| !decision.misconfigured.contains_key(*n))
                .collect(),
        ),
    }
}

/// Plan one target group.
pub fn plan_target_group(
    cluster: &ClusterConfig,
    tg: &TargetGroupConfig,
    decision: &Decision,
    current: &TargetGroupState,
) -> TargetGroupPlan {
    let mut plan = TargetGroupPlan {
        arn: tg.arn.clone(),
        endpoint: tg.endpoint(),
        register: vec![],
        deregister: vec![],
        keep: vec![],
        nodes: nameable_nodes(cluster, &current.target_type),
        blocked: None,
        marking: Marking::default(),
    };
    if decision.all_misconfigured {
        // Nothing that answered is one of ours: not even membership is touched.
        return plan;
    }
    let Some(desired_nodes) = desired_nodes(cluster, tg, decision) else {
        return plan;
    };
    let mut desired = Vec::with_capacity(desired_nodes.len());
    for node in desired_nodes {
        match target_id(cluster, node, &current.target_type) {
            Ok(id) => desired.push(Target { id, port: tg.port }),
            Err(e) => {
                plan.blocked = Some(e);
                return plan;
            }
        }
    }
    let active: Vec<&Target> = current
        .targets
        .iter()
        .filter(|t| t.is_active())
        .map(|t| &t.target)
        .collect();
    plan.register = desired
        .iter()
        .filter(|d| !active.contains(d))
        .cloned()
        .collect();
    // Membership is config: a configured node is never deregistered because it answered
    // wrongly or not at all (it is only left unregistered if it is not there).
    plan.keep = match tg.strategy {
        Strategy::Members => cluster
            .nodes
            .iter()
            .filter_map(|n| target_id(cluster, &n.name, &current.target_type).ok())
            .map(|id| Target { id, port: tg.port })
            .collect(),
        _ => desired.clone(),
    };
    plan.deregister = active
        .into_iter()
        .filter(|a| !plan.keep.contains(a))
        .cloned()
        .collect();
    plan.register.sort();
    plan.register.dedup();
    plan.deregister.sort();
    plan.deregister.dedup();
    plan
}

/// Target id -> configured node, for every node a group of `target_type` can name.
fn nameable_nodes(cluster: &ClusterConfig, target_type: &TargetType) -> BTreeMap<String, String> {
    cluster
        .nodes
        .iter()
        .filter_map(|n| {
            Some((
                target_id(cluster, &n.name, target_type).ok()?,
                n.name.clone(),
            ))
        })
        .collect()
}

/// The read endpoint's nodes: the replicas within `max_lag_bytes` (unknown lag counts as too
/// far) not tagged `noloadbalance`, in config order; if there are none, the primary when
/// `fallback_to_primary` is on. `None` without a confirmed primary: fail-static, like every
/// other route (replica lag is measured against the primary).
pub fn read_set<'d>(replicas: &ReplicasConfig, decision: &'d Decision) -> Option<Vec<&'d str>> {
    let primary = decision.primary()?;
    let fit: Vec<&str> = decision
        .replicas
        .iter()
        .filter(|r| !r.noloadbalance && r.lag.is_some_and(|l| l <= replicas.max_lag_bytes))
        .map(|r| r.name.as_str())
        .collect();
    if fit.is_empty() && replicas.fallback_to_primary {
        return Some(vec![primary]);
    }
    Some(fit)
}

#[cfg(test)]
mod tests;
