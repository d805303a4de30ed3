//! A whole moto world for a set of Patroni clusters (fake or real) and the router config that
//! routes them: one VPC; per cluster a target group and a record, the records spread over a
//! few private hosted zones; `instance` targets on one EC2 instance per node, or `ip` targets
//! on made-up VPC addresses (no EC2 at all: what a scale run of thousands of clusters needs).
//! The testbed binary (`examples/testbed.rs`), `make invoke-local`, `make demo` and the bench
//! all create their AWS side here.

use serde_json::{Value, json};

use super::moto::{self, MotoError};
use crate::adapters::sdk::AwsClients;

/// A Patroni cluster to route: its scope and its members' REST API URLs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterNodes {
    pub scope: String,
    /// `(member name, api_url)`, in order.
    pub nodes: Vec<(String, String)>,
}

/// How the moto world is shaped.
#[derive(Debug, Clone)]
pub struct WorldOptions {
    /// `ip` targets (synthetic addresses, no EC2) instead of one instance per node.
    pub ip_targets: bool,
    /// Private hosted zones the records spread over (at most one per cluster).
    pub zones: usize,
    /// The zones' domain: `example.internal.` gives `pgha.example.internal.` (one zone) or
    /// `pgha.z1.example.internal.` (several).
    pub domain: String,
    /// Target group names are `{prefix}-{i}`: unique per world on one moto server.
    pub prefix: String,
    /// `primary-only` or `members`.
    pub strategy: String,
    /// `simple` or `failover`.
    pub routing: String,
    /// Merged into the config's top level (`patroni`, `webhook`, `aws` settings, ...).
    pub extra: Value,
}

impl Default for WorldOptions {
    fn default() -> Self {
        WorldOptions {
            ip_targets: false,
            zones: 1,
            domain: "example.internal.".into(),
            prefix: moto::unique("tb"),
            strategy: "primary-only".into(),
            routing: "simple".into(),
            extra: json!({}),
        }
    }
}

/// The most clusters one world holds with `instance` targets (one /24 subnet per cluster).
pub const MAX_INSTANCE_CLUSTERS: usize = 250;

/// Create the moto world for `clusters`; returns the router config (JSON) that routes them.
pub async fn create(
    aws: &AwsClients,
    clusters: &[ClusterNodes],
    opts: &WorldOptions,
) -> Result<Value, MotoError> {
    if !opts.ip_targets && clusters.len() > MAX_INSTANCE_CLUSTERS {
        return Err(MotoError::Call {
            call: "RunInstances".into(),
            message: format!(
                "{} clusters: instance targets go up to {MAX_INSTANCE_CLUSTERS}; use ip targets",
                clusters.len()
            ),
        });
    }
    let vpc_id = moto::vpc().await?;
    let zones = create_zones(aws, &vpc_id, clusters.len(), opts).await?;
    let mut out = Vec::new();
    for (i, cluster) in clusters.iter().enumerate() {
        let nodes = if opts.ip_targets {
            ip_nodes(i, cluster)
        } else {
            instance_nodes(&vpc_id, i, cluster).await?
        };
        let name = format!("{}-{i}", opts.prefix);
        let tg = moto::create_target_group(aws, &vpc_id, &name, opts.ip_targets, true).await?;
        let (zone_id, zone_name) = &zones[i % zones.len()];
        out.push(json!({
            "scope": cluster.scope,
            "nodes": nodes,
            "target_group": {"arn": tg, "port": 5432, "strategy": opts.strategy},
            "dns": {"hosted_zone_id": zone_id, "record_name": format!("{}.{zone_name}", cluster.scope),
                    "ttl": 10, "routing": opts.routing},
        }));
    }
    let mut config = json!({
        "patroni": {"request_timeout": "1s", "poll_deadline": "3s"},
        "clusters": out,
    });
    if let (Some(c), Some(extra)) = (config.as_object_mut(), opts.extra.as_object()) {
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
    }
    Ok(config)
}

/// `(zone id, zone name)` for each of the world's zones.
async fn create_zones(
    aws: &AwsClients,
    vpc_id: &str,
    clusters: usize,
    opts: &WorldOptions,
) -> Result<Vec<(String, String)>, MotoError> {
    let count = opts.zones.clamp(1, clusters.max(1));
    let mut zones = Vec::new();
    for z in 0..count {
        let name = if count == 1 {
            opts.domain.clone()
        } else {
            format!("z{z}.{}", opts.domain)
        };
        zones.push((moto::create_zone(aws, vpc_id, &name).await?, name));
    }
    Ok(zones)
}

/// Nodes with made-up VPC addresses (cluster `i`, member `k`: `10.{1 + i/250}.{i%250}.{10+k}`).
fn ip_nodes(i: usize, cluster: &ClusterNodes) -> Vec<Value> {
    cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(k, (name, url))| {
            let address = format!("10.{}.{}.{}", 1 + i / 250, i % 250, 10 + k);
            json!({"name": name, "api_url": url, "address": address})
        })
        .collect()
}

/// One instance per node in subnet `10.0.{i}.0/24` of the world's VPC.
async fn instance_nodes(
    vpc_id: &str,
    i: usize,
    cluster: &ClusterNodes,
) -> Result<Vec<Value>, MotoError> {
    let subnet = moto::subnet(vpc_id, &format!("10.0.{i}.0/24")).await?;
    let mut nodes = Vec::new();
    for (k, (name, url)) in cluster.nodes.iter().enumerate() {
        let ip = format!("10.0.{i}.{}", 10 + k);
        let id = moto::instance(&subnet, &ip, name).await?;
        nodes.push(json!({"name": name, "api_url": url, "address": ip, "instance_id": id}));
    }
    Ok(nodes)
}
