//! What must change? A pure diff between the routing the decision calls for and the routing
//! AWS holds now. The AWS adapters read the current state into these plain types and apply
//! the plan; nothing here does I/O.
//!
//! Safety rules enforced here, whatever the caller does:
//! - without a confirmed primary nothing that depends on the primary changes (fail-static);
//! - only configured nodes are ever desired;
//! - a target is only deregistered if it is registered (and not already draining);
//! - if the desired state cannot be computed (a node lacks the id the target group needs),
//!   that resource is left alone and the reason is reported.

use std::net::IpAddr;

use serde::Serialize;

use crate::config::{
    ClusterConfig, DnsConfig, DnsRouting, ReplicasConfig, Strategy, TargetGroupConfig,
};
use crate::decide::Decision;

/// How a target group names its targets (read from AWS, not configured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    Instance,
    Ip,
    /// `lambda` or `alb`: not something a database can be behind.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Target {
    pub id: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.id, self.port)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisteredTarget {
    pub target: Target,
    /// AWS's target health state: `initial`, `healthy`, `unhealthy`, `draining`, `unused`, ...
    pub state: String,
}

impl RegisteredTarget {
    /// A draining target is on its way out: it counts as not registered.
    pub fn is_active(&self) -> bool {
        self.state != "draining"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroupState {
    pub arn: String,
    pub target_type: TargetType,
    pub targets: Vec<RegisteredTarget>,
}

/// One Route 53 record set, reduced to what we manage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "type")]
    pub rtype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// `PRIMARY` or `SECONDARY` for failover records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failover: Option<String>,
    pub ttl: Option<i64>,
    pub values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// A multivalue-answer record (the read endpoint's `multivalue` routing).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub multivalue: bool,
    /// An alias record has no values of its own; we never overwrite one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub alias: bool,
}

/// The record sets at the configured name (all types), as Route 53 holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsState {
    pub zone_id: String,
    pub records: Vec<RecordSet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroupPlan {
    pub arn: String,
    pub register: Vec<Target>,
    pub deregister: Vec<Target>,
    /// Why this target group is left alone, if it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

impl TargetGroupPlan {
    pub fn is_noop(&self) -> bool {
        self.register.is_empty() && self.deregister.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsPlan {
    pub zone_id: String,
    pub upserts: Vec<RecordSet>,
    /// Exactly as Route 53 holds them (a DELETE must match): multivalue records of replicas
    /// that left the read endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deletes: Vec<RecordSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
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
        TargetType::Unsupported(t) => Err(format!(
            "target type {t:?} cannot route to PostgreSQL: use an instance or ip target group"
        )),
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
        register: vec![],
        deregister: vec![],
        blocked: None,
    };
    let desired_nodes: Vec<&str> = match tg.strategy {
        Strategy::PrimaryOnly => match decision.primary() {
            Some(p) => vec![p],
            // Fail-static: the decision's reason says why; nothing to change.
            None => return plan,
        },
        Strategy::Replicas => match cluster
            .replicas
            .as_ref()
            .and_then(|r| read_set(r, decision))
        {
            Some(nodes) => nodes,
            None => return plan,
        },
        // Membership does not depend on who is primary (the health check decides), only on
        // the config; a node that proved misconfigured is still never routed to.
        Strategy::Members => cluster
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .filter(|n| !decision.misconfigured.contains_key(*n))
            .collect(),
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
    plan.deregister = active
        .into_iter()
        .filter(|a| !desired.contains(a))
        .cloned()
        .collect();
    plan.register.sort();
    plan.register.dedup();
    plan.deregister.sort();
    plan.deregister.dedup();
    plan
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

/// The records the decision calls for.
fn desired_records(
    cluster: &ClusterConfig,
    dns: &DnsConfig,
    decision: &Decision,
) -> Option<Vec<RecordSet>> {
    let primary = cluster.node(decision.primary()?)?;
    let rtype = match primary.address {
        IpAddr::V4(_) => "A",
        IpAddr::V6(_) => "AAAA",
    };
    let record = |addr: IpAddr,
                  set_id: Option<&String>,
                  failover: Option<&str>,
                  hc: &Option<String>| RecordSet {
        name: dns.normalized_name(),
        rtype: rtype.to_string(),
        set_identifier: set_id.cloned(),
        failover: failover.map(str::to_string),
        ttl: Some(dns.ttl),
        values: vec![addr.to_string()],
        health_check_id: hc.clone(),
        multivalue: false,
        alias: false,
    };
    Some(match dns.routing {
        DnsRouting::Simple => vec![record(primary.address, None, None, &None)],
        // Rejected by config validation; never a route to more than the primary here.
        DnsRouting::Multivalue => return None,
        DnsRouting::Failover => {
            // No healthy standby: the secondary points at the primary too, never at a stale node.
            let secondary = decision
                .standby
                .as_deref()
                .and_then(|s| cluster.node(s))
                .unwrap_or(primary);
            vec![
                record(
                    primary.address,
                    Some(&dns.set_identifiers.primary),
                    Some("PRIMARY"),
                    &dns.health_check_ids.primary,
                ),
                record(
                    secondary.address,
                    Some(&dns.set_identifiers.secondary),
                    Some("SECONDARY"),
                    &dns.health_check_ids.secondary,
                ),
            ]
        }
    })
}

/// The read endpoint's records: `simple` is one record holding every node of the read set;
/// `multivalue` is one multivalue-answer record per node, keyed by the node name.
fn desired_read_records(
    cluster: &ClusterConfig,
    dns: &DnsConfig,
    nodes: &[&str],
) -> Option<Vec<RecordSet>> {
    let addrs: Vec<IpAddr> = nodes
        .iter()
        .filter_map(|n| cluster.node(n))
        .map(|n| n.address)
        .collect();
    let rtype = match cluster.nodes.first()?.address {
        IpAddr::V4(_) => "A",
        IpAddr::V6(_) => "AAAA",
    };
    let record = |values: Vec<String>, set_identifier: Option<String>| RecordSet {
        name: dns.normalized_name(),
        rtype: rtype.to_string(),
        multivalue: set_identifier.is_some(),
        set_identifier,
        failover: None,
        ttl: Some(dns.ttl),
        values,
        health_check_id: None,
        alias: false,
    };
    Some(match dns.routing {
        DnsRouting::Multivalue => nodes
            .iter()
            .zip(&addrs)
            .map(|(n, a)| record(vec![a.to_string()], Some(n.to_string())))
            .collect(),
        // An empty simple record is not allowed by Route 53: with nobody to serve reads and
        // no fallback, the record keeps its last value (reported as blocked).
        _ if addrs.is_empty() => return Some(vec![]),
        _ => vec![record(
            addrs.iter().map(ToString::to_string).collect(),
            None,
        )],
    })
}

/// Plan the read endpoint's record.
pub fn plan_read_dns(
    cluster: &ClusterConfig,
    replicas: &ReplicasConfig,
    dns: &DnsConfig,
    decision: &Decision,
    current: &DnsState,
) -> DnsPlan {
    let empty = DnsPlan {
        zone_id: dns.zone_id().to_string(),
        upserts: vec![],
        deletes: vec![],
        blocked: None,
    };
    let Some(nodes) = read_set(replicas, decision) else {
        return empty;
    };
    let Some(desired) = desired_read_records(cluster, dns, &nodes) else {
        return empty;
    };
    if desired.is_empty() && dns.routing == DnsRouting::Simple {
        return DnsPlan {
            blocked: Some(format!(
                "no replica fits the read endpoint and fallback_to_primary is off: {} keeps its \
                 current value (a simple record cannot be empty; use multivalue routing to \
                 remove every replica)",
                dns.normalized_name()
            )),
            ..empty
        };
    }
    diff_records(dns, desired, current)
}

/// Plan the cluster's DNS records.
pub fn plan_dns(
    cluster: &ClusterConfig,
    dns: &DnsConfig,
    decision: &Decision,
    current: &DnsState,
) -> DnsPlan {
    // Fail-static without a confirmed primary: the decision's reason says why.
    let Some(desired) = desired_records(cluster, dns, decision) else {
        return DnsPlan {
            zone_id: dns.zone_id().to_string(),
            upserts: vec![],
            deletes: vec![],
            blocked: None,
        };
    };
    diff_records(dns, desired, current)
}

/// What must change at the configured name to hold exactly `desired` (all of one type).
fn diff_records(dns: &DnsConfig, desired: Vec<RecordSet>, current: &DnsState) -> DnsPlan {
    let mut plan = DnsPlan {
        zone_id: dns.zone_id().to_string(),
        upserts: vec![],
        deletes: vec![],
        blocked: None,
    };
    let name = dns.normalized_name();
    let rtype = match cluster_rtype(&desired, current, &name) {
        Some(t) => t,
        None => return plan,
    };
    let at_name: Vec<&RecordSet> = current.records.iter().filter(|r| r.name == name).collect();
    if let Some(cname) = at_name.iter().find(|r| r.rtype == "CNAME") {
        plan.blocked = Some(format!(
            "{name} is a CNAME ({}): an address record cannot coexist with it; delete the CNAME",
            cname.values.join(", ")
        ));
        return plan;
    }
    let same_type: Vec<&&RecordSet> = at_name.iter().filter(|r| r.rtype == rtype).collect();
    let conflicting = match dns.routing {
        DnsRouting::Simple => same_type.iter().find(|r| r.set_identifier.is_some()),
        DnsRouting::Failover => same_type.iter().find(|r| {
            r.set_identifier.is_none()
                || !desired.iter().any(|d| d.set_identifier == r.set_identifier)
        }),
        // Other replicas' records are ours to remove; any other policy is not.
        DnsRouting::Multivalue => same_type
            .iter()
            .find(|r| r.set_identifier.is_none() || !r.multivalue),
    };
    if let Some(c) = conflicting {
        plan.blocked = Some(format!(
            "{name} {rtype} already exists as a {} record{}: Route 53 cannot mix it with the \
             configured `{}` routing; delete it or change `dns.routing`/`set_identifiers`",
            if c.set_identifier.is_some() {
                "routing-policy"
            } else {
                "simple"
            },
            c.set_identifier
                .as_ref()
                .map(|s| format!(" (SetIdentifier {s:?})"))
                .unwrap_or_default(),
            match dns.routing {
                DnsRouting::Simple => "simple",
                DnsRouting::Failover => "failover",
                DnsRouting::Multivalue => "multivalue",
            }
        ));
        return plan;
    }
    for have in &same_type {
        if have.alias {
            plan.blocked = Some(format!(
                "{name} {rtype} is an alias record: not overwritten; delete it to let the router manage it"
            ));
            return plan;
        }
        if dns.routing == DnsRouting::Multivalue
            && !desired
                .iter()
                .any(|d| d.set_identifier == have.set_identifier)
        {
            plan.deletes.push((**have).clone());
        }
    }
    for want in desired {
        let have = same_type
            .iter()
            .find(|r| r.set_identifier == want.set_identifier);
        let same = have.is_some_and(|h| {
            h.ttl == want.ttl
                && h.failover == want.failover
                && h.multivalue == want.multivalue
                && h.health_check_id == want.health_check_id
                && sorted(&h.values) == sorted(&want.values)
        });
        if !same {
            plan.upserts.push(want);
        }
    }
    plan
}

/// The record type the cluster's records have (A for IPv4 nodes, AAAA for IPv6): taken from
/// the desired records, or, when there are none (multivalue with nobody fit), from what the
/// name holds.
fn cluster_rtype(desired: &[RecordSet], current: &DnsState, name: &str) -> Option<String> {
    desired.first().map(|d| d.rtype.clone()).or_else(|| {
        current
            .records
            .iter()
            .find(|r| r.name == name && (r.rtype == "A" || r.rtype == "AAAA"))
            .map(|r| r.rtype.clone())
    })
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[cfg(test)]
mod tests;
