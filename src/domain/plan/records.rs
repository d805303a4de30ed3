//! Planning Route 53 records: what the decision calls for at a name (the writer's simple or
//! failover records, the read endpoint's simple or multivalue records) and the diff with what
//! the zone holds. A name holding something we cannot manage blocks the plan, whole.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{DnsPlan, read_set};
use crate::config::{ClusterConfig, DnsConfig, DnsRouting, ReplicasConfig};
use crate::domain::aws::{DnsState, Endpoint, FailoverRole, RecordSet, RecordType};
use crate::domain::decide::Decision;

fn record_type(addr: IpAddr) -> RecordType {
    match addr {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::Aaaa,
    }
}

fn empty_plan(cluster: &ClusterConfig, dns: &DnsConfig, endpoint: Endpoint) -> DnsPlan {
    DnsPlan {
        zone_id: dns.zone_id.clone(),
        name: dns.name.clone(),
        endpoint,
        upserts: vec![],
        deletes: vec![],
        nodes: cluster
            .nodes
            .iter()
            .map(|n| (n.address.to_string(), n.name.clone()))
            .collect(),
        blocked: None,
        routing: dns.routing,
        desired_sets: Vec::new(),
        marking: super::Marking::default(),
    }
}

/// An address record at the configured name.
fn address_record(dns: &DnsConfig, rtype: RecordType, values: Vec<String>) -> RecordSet {
    RecordSet {
        name: dns.name.clone(),
        rtype,
        set_identifier: None,
        failover: None,
        ttl: Some(dns.ttl),
        values,
        health_check_id: None,
        multivalue: false,
        alias: false,
    }
}

/// The writer records the decision calls for (`None`: fail-static).
fn desired_records(
    cluster: &ClusterConfig,
    dns: &DnsConfig,
    decision: &Decision,
) -> Option<Vec<RecordSet>> {
    let primary = cluster.node(decision.primary()?)?;
    let rtype = record_type(primary.address);
    let failover = |addr: IpAddr, role: FailoverRole, id: &str, hc: &Option<String>| {
        let mut r = address_record(dns, rtype.clone(), vec![addr.to_string()]);
        r.set_identifier = Some(id.to_string());
        r.failover = Some(role);
        r.health_check_id = hc.clone();
        r
    };
    Some(match dns.routing {
        DnsRouting::Simple => vec![address_record(
            dns,
            rtype.clone(),
            vec![primary.address.to_string()],
        )],
        // Rejected by config validation; never a route to more than the primary here.
        DnsRouting::Multivalue => return None,
        DnsRouting::Failover => {
            // No healthy standby: the secondary points at the primary too, never at a stale node.
            let secondary = decision
                .standby
                .as_deref()
                .and_then(|s| cluster.node(s))
                .unwrap_or(primary);
            let (ids, hcs) = (&dns.set_identifiers, &dns.health_check_ids);
            vec![
                failover(
                    primary.address,
                    FailoverRole::Primary,
                    &ids.primary,
                    &hcs.primary,
                ),
                failover(
                    secondary.address,
                    FailoverRole::Secondary,
                    &ids.secondary,
                    &hcs.secondary,
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
    let rtype = record_type(cluster.nodes.first()?.address);
    let members: Vec<(&str, String)> = nodes
        .iter()
        .filter_map(|n| cluster.node(n))
        .map(|n| (n.name.as_str(), n.address.to_string()))
        .collect();
    Some(match dns.routing {
        DnsRouting::Multivalue => members
            .into_iter()
            .map(|(name, addr)| {
                let mut r = address_record(dns, rtype.clone(), vec![addr]);
                r.set_identifier = Some(name.to_string());
                r.multivalue = true;
                r
            })
            .collect(),
        // An empty simple record is not allowed by Route 53: with nobody to serve reads and
        // no fallback, the record keeps its last value (reported as blocked).
        _ if members.is_empty() => return Some(vec![]),
        _ => vec![address_record(
            dns,
            rtype,
            members.into_iter().map(|(_, a)| a).collect(),
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
    let empty = empty_plan(cluster, dns, Endpoint::Reader);
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
                dns.name
            )),
            ..empty
        };
    }
    diff_records(dns, desired, current, empty)
}

/// Plan the cluster's writer records.
pub fn plan_dns(
    cluster: &ClusterConfig,
    dns: &DnsConfig,
    decision: &Decision,
    current: &DnsState,
) -> DnsPlan {
    let empty = empty_plan(cluster, dns, Endpoint::Writer);
    // Fail-static without a confirmed primary: the decision's reason says why.
    match desired_records(cluster, dns, decision) {
        Some(desired) => diff_records(dns, desired, current, empty),
        None => empty,
    }
}

/// Why a record set already at the name blocks the configured routing, if it does.
fn conflict(dns: &DnsConfig, desired: &[RecordSet], same_type: &[&RecordSet]) -> Option<String> {
    let c = same_type.iter().find(|r| match dns.routing {
        DnsRouting::Simple => r.set_identifier.is_some(),
        DnsRouting::Failover => {
            r.set_identifier.is_none()
                || !desired.iter().any(|d| d.set_identifier == r.set_identifier)
        }
        // Other replicas' records are ours to remove; any other policy is not.
        DnsRouting::Multivalue => r.set_identifier.is_none() || !r.multivalue,
    })?;
    Some(format!(
        "{} {} already exists as a {} record{}: Route 53 cannot mix it with the configured `{}` \
         routing; delete it or change `dns.routing`/`set_identifiers`",
        dns.name,
        c.rtype,
        if c.set_identifier.is_some() {
            "routing-policy"
        } else {
            "simple"
        },
        c.set_identifier
            .as_ref()
            .map(|s| format!(" (SetIdentifier {s:?})"))
            .unwrap_or_default(),
        dns.routing.as_str()
    ))
}

/// What must change at the configured name to hold exactly `desired` (all of one type).
fn diff_records(
    dns: &DnsConfig,
    desired: Vec<RecordSet>,
    current: &DnsState,
    mut plan: DnsPlan,
) -> DnsPlan {
    plan.desired_sets = desired
        .iter()
        .filter_map(|d| d.set_identifier.clone())
        .collect();
    let Some(rtype) = cluster_rtype(&desired, current, &dns.name) else {
        return plan;
    };
    let at_name: Vec<&RecordSet> = current
        .records
        .iter()
        .filter(|r| r.name == dns.name)
        .collect();
    if let Some(cname) = at_name.iter().find(|r| r.rtype == RecordType::Cname) {
        plan.blocked = Some(format!(
            "{} is a CNAME ({}): an address record cannot coexist with it; delete the CNAME",
            dns.name,
            cname.values.join(", ")
        ));
        return plan;
    }
    let same_type: Vec<&RecordSet> = at_name.into_iter().filter(|r| r.rtype == rtype).collect();
    if let Some(why) = conflict(dns, &desired, &same_type) {
        plan.blocked = Some(why);
        return plan;
    }
    if same_type.iter().any(|r| r.alias) {
        plan.blocked = Some(format!(
            "{} {rtype} is an alias record: not overwritten; delete it to let the router manage it",
            dns.name
        ));
        return plan;
    }
    if dns.routing == DnsRouting::Multivalue {
        plan.deletes = same_type
            .iter()
            .filter(|have| {
                !desired
                    .iter()
                    .any(|d| d.set_identifier == have.set_identifier)
            })
            .map(|r| (*r).clone())
            .collect();
    }
    let by_id: BTreeMap<Option<&String>, &&RecordSet> = same_type
        .iter()
        .map(|r| (r.set_identifier.as_ref(), r))
        .collect();
    plan.upserts = desired
        .into_iter()
        .filter(|want| {
            !by_id
                .get(&want.set_identifier.as_ref())
                .is_some_and(|have| same_record(have, want))
        })
        .collect();
    plan
}

fn same_record(have: &RecordSet, want: &RecordSet) -> bool {
    have.ttl == want.ttl
        && have.failover == want.failover
        && have.multivalue == want.multivalue
        && have.health_check_id == want.health_check_id
        && sorted(&have.values) == sorted(&want.values)
}

/// The record type the cluster's records have (A for IPv4 nodes, AAAA for IPv6): taken from
/// the desired records, or, when there are none (multivalue with nobody fit), from what the
/// name holds.
fn cluster_rtype(desired: &[RecordSet], current: &DnsState, name: &str) -> Option<RecordType> {
    desired.first().map(|d| d.rtype.clone()).or_else(|| {
        current
            .records
            .iter()
            .find(|r| r.name == name && matches!(r.rtype, RecordType::A | RecordType::Aaaa))
            .map(|r| r.rtype.clone())
    })
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}
