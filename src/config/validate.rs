//! From the raw config to the validated one. Each check knows the path of what it checks
//! from where it is called, so an error names the exact field and says how to fix it.

use std::collections::HashSet;

use super::identifiers::{api_url, hosted_zone_id, owner_id, record_name, target_group_arn};
use super::raw::{RawCluster, RawConfig, RawDns, RawNode, RawReplicas, RawTargetGroup};
use super::{
    ClusterConfig, Config, ConfigError, DnsConfig, DnsRouting, HealthCheckIds, MAX_TTL, NodeConfig,
    ReplicasConfig, SetIdentifiers, Strategy, TargetGroupConfig, normalize_record_name,
};

/// A validation error before we know which document it is in.
#[derive(Debug)]
pub(super) struct Invalid {
    field: String,
    message: String,
}

impl Invalid {
    pub(super) fn at(self, origin: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: origin.to_string(),
            field: self.field,
            message: self.message,
        }
    }
}

pub(super) type Checked<T> = Result<T, Invalid>;

pub(super) fn invalid<T>(field: impl Into<String>, message: impl Into<String>) -> Checked<T> {
    Err(Invalid {
        field: field.into(),
        message: message.into(),
    })
}

pub(super) fn config(raw: RawConfig) -> Checked<Config> {
    if raw.clusters.is_empty() {
        return invalid(
            "clusters",
            "no cluster configured: add at least one {\"scope\", \"nodes\", ...}",
        );
    }
    super::validate_settings::settings(&raw)?;
    let mut clusters = Vec::with_capacity(raw.clusters.len());
    let mut tg_paths = Vec::with_capacity(raw.clusters.len());
    for (i, c) in raw.clusters.iter().enumerate() {
        let (checked, paths) = cluster(c, &format!("clusters[{i}]"))?;
        clusters.push(checked);
        tg_paths.push(paths);
    }
    unique_across_clusters(&clusters, &tg_paths)?;
    if let Some(owner) = &raw.owner_id {
        owner_id(owner)?;
    }
    Ok(Config {
        owner_id: raw.owner_id,
        clusters,
        patroni: raw.patroni,
        webhook: raw.webhook,
        aws: raw.aws,
    })
}

/// Scopes, records and target groups each belong to one cluster. `tg_paths[i][j]` is the
/// config path of `clusters[i].target_groups[j]`.
fn unique_across_clusters(clusters: &[ClusterConfig], tg_paths: &[Vec<String>]) -> Checked<()> {
    let mut scopes = HashSet::new();
    let mut records = HashSet::new();
    let mut arns = HashSet::new();
    for (i, c) in clusters.iter().enumerate() {
        let at = format!("clusters[{i}]");
        if !scopes.insert(c.scope.as_str()) {
            return invalid(
                format!("{at}.scope"),
                format!(
                    "scope {:?} is configured twice: each Patroni cluster once",
                    c.scope
                ),
            );
        }
        for (field, d) in dns_fields(c, &at) {
            if !records.insert((d.zone_id.as_str(), d.name.as_str())) {
                return invalid(
                    field,
                    format!(
                        "{} in zone {} is routed by two clusters: a record belongs to one cluster",
                        d.name, d.zone_id
                    ),
                );
            }
        }
        for (field, tg) in tg_paths[i].iter().zip(&c.target_groups) {
            if !arns.insert(tg.arn.as_str()) {
                return invalid(
                    format!("{field}.arn"),
                    format!(
                        "target group {} is routed twice: a target group belongs to one cluster",
                        tg.arn
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Each record of a validated cluster with the config path that names it in errors.
fn dns_fields<'a>(c: &'a ClusterConfig, at: &str) -> Vec<(String, &'a DnsConfig)> {
    let writer = c.dns.iter().map(|d| (format!("{at}.dns.record_name"), d));
    let reader = c
        .replicas
        .iter()
        .filter_map(|r| r.dns.as_ref())
        .map(|d| (format!("{at}.replicas.dns.record_name"), d));
    writer.chain(reader).collect()
}

/// A validated cluster and the config path of each of its target groups, in order.
fn cluster(c: &RawCluster, at: &str) -> Checked<(ClusterConfig, Vec<String>)> {
    if c.scope.trim().is_empty() {
        return invalid(
            format!("{at}.scope"),
            "empty: set it to Patroni's `scope` (the cluster name)",
        );
    }
    let nodes = nodes(&c.nodes, at)?;
    let mut target_groups = Vec::new();
    let mut paths = Vec::new();
    for (field, tg) in writer_target_groups(c, at) {
        target_groups.push(target_group(tg, &field)?);
        paths.push(field);
    }
    let dns = match &c.dns {
        Some(d) => Some(writer_dns(d, &nodes, &format!("{at}.dns"))?),
        None => None,
    };
    let replicas = match &c.replicas {
        Some(r) => {
            let at = format!("{at}.replicas");
            let read = read_target_groups(r, &at, &target_groups)?;
            for (field, tg) in read {
                target_groups.push(tg);
                paths.push(field);
            }
            Some(replicas(r, &nodes, &at)?)
        }
        None => None,
    };
    if target_groups.is_empty() && dns.is_none() && replicas.is_none() {
        return invalid(
            at,
            "nothing to route: set `target_group` and/or `dns` (and/or `replicas`)",
        );
    }
    let checked = ClusterConfig {
        scope: c.scope.clone(),
        nodes,
        standby_cluster: c.standby_cluster,
        target_groups,
        dns,
        replicas,
    };
    Ok((checked, paths))
}

fn writer_target_groups<'a>(c: &'a RawCluster, at: &str) -> Vec<(String, &'a RawTargetGroup)> {
    c.target_group
        .iter()
        .map(|tg| (format!("{at}.target_group"), tg))
        .chain(
            c.target_groups
                .iter()
                .enumerate()
                .map(|(i, tg)| (format!("{at}.target_groups[{i}]"), tg)),
        )
        .collect()
}

/// Two nodes routed to the same address (or instance) would make a failover to the second
/// one route to the first: refused, naming both.
fn distinct_targets(raw: &[RawNode], at: &str) -> Checked<()> {
    for (j, n) in raw.iter().enumerate() {
        let first = |same: &dyn Fn(&RawNode) -> bool| raw[..j].iter().position(same);
        if let Some(i) = first(&|m| m.address == n.address) {
            return invalid(
                format!("{at}.nodes[{j}].address"),
                format!(
                    "{} is also the address of {:?} (nodes[{i}]): each node has its own address",
                    n.address, raw[i].name
                ),
            );
        }
        let id = n.instance_id.as_deref();
        if let Some(i) = id.and_then(|id| first(&|m| m.instance_id.as_deref() == Some(id))) {
            return invalid(
                format!("{at}.nodes[{j}].instance_id"),
                format!(
                    "{} is also the instance of {:?} (nodes[{i}]): each node is its own instance",
                    id.unwrap_or_default(),
                    raw[i].name
                ),
            );
        }
    }
    Ok(())
}

fn nodes(raw: &[RawNode], at: &str) -> Checked<Vec<NodeConfig>> {
    if raw.is_empty() {
        return invalid(
            format!("{at}.nodes"),
            "no nodes: list every Patroni member of the cluster",
        );
    }
    let mut names = HashSet::new();
    let mut urls = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (j, n) in raw.iter().enumerate() {
        let nat = format!("{at}.nodes[{j}]");
        if n.name.trim().is_empty() {
            return invalid(
                format!("{nat}.name"),
                "empty: set it to the Patroni member name",
            );
        }
        if !names.insert(n.name.as_str()) {
            return invalid(
                format!("{nat}.name"),
                format!("duplicate node {:?}: each member once per cluster", n.name),
            );
        }
        api_url(&n.api_url, &format!("{nat}.api_url"))?;
        if !urls.insert(n.api_url.trim_end_matches('/')) {
            return invalid(
                format!("{nat}.api_url"),
                format!(
                    "{} is used by two nodes: each node has its own REST API",
                    n.api_url
                ),
            );
        }
        if let Some(id) = &n.instance_id
            && !(id.starts_with("i-") && id.len() > 2)
        {
            return invalid(
                format!("{nat}.instance_id"),
                format!("{id:?} is not an EC2 instance id (like \"i-0abc123\")"),
            );
        }
        out.push(NodeConfig {
            name: n.name.clone(),
            api_url: n.api_url.clone(),
            address: n.address,
            instance_id: n.instance_id.clone(),
        });
    }
    distinct_targets(raw, at)?;
    Ok(out)
}

fn target_group(tg: &RawTargetGroup, at: &str) -> Checked<TargetGroupConfig> {
    if tg.strategy == Strategy::Replicas {
        return invalid(
            format!("{at}.strategy"),
            "`replicas` is set by listing the target group under the cluster's `replicas` \
             (with `max_lag_bytes`): move it there",
        );
    }
    target_group_arn(&tg.arn, &format!("{at}.arn"))?;
    if tg.max_deregistration_delay > 3600 {
        return invalid(
            format!("{at}.max_deregistration_delay"),
            "AWS allows 0..=3600 seconds; a database failover wants 0..10",
        );
    }
    if tg.port == 0 {
        return invalid(
            format!("{at}.port"),
            "0 is not a port: set PostgreSQL's port, e.g. 5432",
        );
    }
    Ok(TargetGroupConfig {
        arn: tg.arn.clone(),
        port: tg.port,
        strategy: tg.strategy,
        manage_settings: tg.manage_settings,
        max_deregistration_delay: tg.max_deregistration_delay,
        health_check_port: tg.health_check_port,
    })
}

fn writer_dns(d: &RawDns, nodes: &[NodeConfig], at: &str) -> Checked<DnsConfig> {
    if d.routing == DnsRouting::Multivalue {
        return invalid(
            format!("{at}.routing"),
            "multivalue is for the read endpoint (`replicas.dns`): the primary's record \
             names one node; use simple or failover",
        );
    }
    dns(d, nodes, at)
}

/// The read endpoint's target groups (strategy `replicas`) with their config paths; none may
/// be one of the writer's.
fn read_target_groups(
    r: &RawReplicas,
    at: &str,
    writer: &[TargetGroupConfig],
) -> Checked<Vec<(String, TargetGroupConfig)>> {
    let read = r
        .target_group
        .iter()
        .map(|tg| (format!("{at}.target_group"), tg))
        .chain(
            r.target_groups
                .iter()
                .enumerate()
                .map(|(i, tg)| (format!("{at}.target_groups[{i}]"), tg)),
        );
    let mut out: Vec<(String, TargetGroupConfig)> = Vec::new();
    for (field, tg) in read {
        let as_writer = RawTargetGroup {
            arn: tg.arn.clone(),
            port: tg.port,
            strategy: Strategy::PrimaryOnly,
            manage_settings: tg.manage_settings,
            max_deregistration_delay: tg.max_deregistration_delay,
            health_check_port: 8008,
        };
        let mut checked = target_group(&as_writer, &field)?;
        checked.strategy = Strategy::Replicas;
        let mut seen = writer.iter().chain(out.iter().map(|(_, t)| t));
        if seen.any(|t| t.arn == checked.arn) {
            return invalid(
                format!("{field}.arn"),
                format!(
                    "target group {} is routed twice: a target group belongs to one cluster",
                    checked.arn
                ),
            );
        }
        out.push((field, checked));
    }
    Ok(out)
}

fn replicas(r: &RawReplicas, nodes: &[NodeConfig], at: &str) -> Checked<ReplicasConfig> {
    if r.target_group.is_none() && r.target_groups.is_empty() && r.dns.is_none() {
        return invalid(
            at,
            "the read endpoint routes nothing: set `target_group`, `target_groups` and/or `dns`",
        );
    }
    let dns = match &r.dns {
        Some(d) => Some(read_dns(d, nodes, &format!("{at}.dns"))?),
        None => None,
    };
    Ok(ReplicasConfig {
        max_lag_bytes: r.max_lag_bytes,
        fallback_to_primary: r.fallback_to_primary,
        dns,
    })
}

fn read_dns(d: &RawDns, nodes: &[NodeConfig], at: &str) -> Checked<DnsConfig> {
    if d.routing == DnsRouting::Failover {
        return invalid(
            format!("{at}.routing"),
            "failover routing names one node per record: use simple (one record, every \
             replica) or multivalue (one record per replica)",
        );
    }
    dns(d, nodes, at)
}

fn dns(d: &RawDns, nodes: &[NodeConfig], at: &str) -> Checked<DnsConfig> {
    let zone = hosted_zone_id(&d.hosted_zone_id, &format!("{at}.hosted_zone_id"))?;
    record_name(&d.record_name, &format!("{at}.record_name"))?;
    if !(1..=MAX_TTL).contains(&d.ttl) {
        return invalid(
            format!("{at}.ttl"),
            format!(
                "{} is out of range 1..={MAX_TTL}: the TTL bounds how long clients keep the old \
                 primary after a failover (10 is typical)",
                d.ttl
            ),
        );
    }
    let ids = &d.set_identifiers;
    if d.routing == DnsRouting::Failover && ids.primary == ids.secondary {
        return invalid(
            format!("{at}.set_identifiers"),
            "primary and secondary must differ: Route 53 keys failover records by SetIdentifier",
        );
    }
    let v4 = nodes.iter().filter(|n| n.address.is_ipv4()).count();
    if v4 != 0 && v4 != nodes.len() {
        return invalid(
            at,
            "nodes mix IPv4 and IPv6 addresses: one record type (A or AAAA) per cluster",
        );
    }
    Ok(DnsConfig {
        zone_id: zone.to_string(),
        name: normalize_record_name(&d.record_name),
        ttl: d.ttl,
        routing: d.routing,
        set_identifiers: SetIdentifiers {
            primary: ids.primary.clone(),
            secondary: ids.secondary.clone(),
        },
        health_check_ids: HealthCheckIds {
            primary: d.health_check_ids.primary.clone(),
            secondary: d.health_check_ids.secondary.clone(),
        },
    })
}
