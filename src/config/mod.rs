//! The router's configuration: what clusters exist, which nodes belong to them, and where
//! their traffic is routed. The file is parsed strictly into [`raw`] types (unknown keys are
//! errors), then [`validate`]d into the types below; every error names the field and says how
//! to fix it, because a typo here would otherwise route a database.

mod identifiers;
mod raw;
pub mod settings;
mod shard;
mod validate;
mod validate_settings;

use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use crate::domain::aws::Endpoint;
pub use settings::{
    AwsSettings, Bucket, BudgetSettings, PatroniSettings, TlsSettings, WebhookSettings,
};
pub use shard::{ENV_SHARD, Shard};

/// Where the configuration is looked up in the environment (used by the Lambda).
pub const ENV_CONFIG: &str = "ROUTER_CONFIG";
pub const ENV_CONFIG_FILE: &str = "ROUTER_CONFIG_FILE";
/// The Lambda only: the config as an S3 object, `s3://bucket/key`.
pub const ENV_CONFIG_S3: &str = "ROUTER_CONFIG_S3";

/// The largest TTL we accept: the TTL bounds how long clients keep resolving the old
/// primary after a failover, so anything longer is almost surely a typo.
pub const MAX_TTL: i64 = 3600;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config {origin}: `{field}`: {message}")]
    Invalid {
        origin: String,
        field: String,
        message: String,
    },
    #[error(
        "no configuration: pass --config FILE, or set {ENV_CONFIG} (inline JSON) or {ENV_CONFIG_FILE} (a path); the Lambda also reads {ENV_CONFIG_S3} (s3://bucket/key)"
    )]
    Missing,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub clusters: Vec<ClusterConfig>,
    /// Who owns what this router routes (the marker on records and target groups); `None`:
    /// derived per cluster from the database it routes (see `domain::ownership`).
    pub owner_id: Option<String>,
    /// How Patroni is polled; defaults suit a Lambda in the same VPC.
    pub patroni: PatroniSettings,
    /// How a webhook (Patroni callback) is handled.
    pub webhook: WebhookSettings,
    /// How AWS is called.
    pub aws: AwsSettings,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Patroni's `scope` (the cluster name).
    pub scope: String,
    pub nodes: Vec<NodeConfig>,
    /// A standby cluster (DR): its leader has the role `standby_leader` instead of `primary`.
    pub standby_cluster: bool,
    /// Every target group: the writer's (`target_group`, `target_groups`), then the read
    /// endpoint's (strategy `replicas`).
    pub target_groups: Vec<TargetGroupConfig>,
    /// The writer's record.
    pub dns: Option<DnsConfig>,
    /// The read endpoint.
    pub replicas: Option<ReplicasConfig>,
}

impl ClusterConfig {
    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The cluster's records: the writer's, then the read endpoint's.
    pub fn records(&self) -> impl Iterator<Item = (Endpoint, &DnsConfig)> {
        self.dns.iter().map(|d| (Endpoint::Writer, d)).chain(
            self.replicas
                .iter()
                .filter_map(|r| r.dns.as_ref())
                .map(|d| (Endpoint::Reader, d)),
        )
    }
}

/// The read endpoint of a cluster: every streaming replica whose lag is at most
/// `max_lag_bytes` and that is not tagged `noloadbalance`. Its target groups are in
/// [`ClusterConfig::target_groups`] with strategy [`Strategy::Replicas`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicasConfig {
    /// Replicas further behind than this are taken out of the read endpoint.
    pub max_lag_bytes: u64,
    /// With no replica fit to serve, route reads to the primary instead of to nobody.
    pub fallback_to_primary: bool,
    /// A record holding every replica: `simple` (one record, all addresses) or `multivalue`
    /// (one multivalue-answer record per replica, SetIdentifier = the node name).
    pub dns: Option<DnsConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Patroni member name (`name` in patroni.yml).
    pub name: String,
    /// Patroni REST API base URL, e.g. `http://10.0.1.10:8008`.
    pub api_url: String,
    /// The address clients reach PostgreSQL on: registered in an `ip` target group and
    /// written into DNS records.
    pub address: IpAddr,
    /// EC2 instance id, registered in an `instance` target group.
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Only the primary is registered; every other target is deregistered.
    PrimaryOnly,
    /// Every configured node stays registered; the target group's health check on
    /// Patroni's `/primary` picks the primary.
    Members,
    /// The read endpoint (set by `replicas.target_groups`, not written in the config): the
    /// replicas within `replicas.max_lag_bytes`.
    Replicas,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TargetGroupConfig {
    pub arn: String,
    /// The port registered for each target (PostgreSQL's port).
    pub port: u16,
    pub strategy: Strategy,
    /// Fix drifted settings (attributes, health check) instead of only reporting them.
    pub manage_settings: bool,
    /// primary-only and replicas: the longest acceptable deregistration delay, seconds.
    pub max_deregistration_delay: u32,
    /// members: the Patroni REST port the health check must ask.
    pub health_check_port: u16,
}

impl TargetGroupConfig {
    pub fn endpoint(&self) -> Endpoint {
        match self.strategy {
            Strategy::Replicas => Endpoint::Reader,
            Strategy::PrimaryOnly | Strategy::Members => Endpoint::Writer,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DnsRouting {
    /// One record -> the primary.
    Simple,
    /// Route 53 failover records: PRIMARY -> the primary, SECONDARY -> the best standby.
    Failover,
    /// `replicas.dns` only: one multivalue-answer record per replica (SetIdentifier = node).
    Multivalue,
}

impl DnsRouting {
    pub fn as_str(self) -> &'static str {
        match self {
            DnsRouting::Simple => "simple",
            DnsRouting::Failover => "failover",
            DnsRouting::Multivalue => "multivalue",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsConfig {
    /// The zone id without the `/hostedzone/` prefix the console and some APIs show.
    pub zone_id: String,
    /// The record name as Route 53 returns it: lower case, with the trailing dot.
    pub name: String,
    pub ttl: i64,
    pub routing: DnsRouting,
    /// For `failover` routing: the records' SetIdentifiers.
    pub set_identifiers: SetIdentifiers,
    /// For `failover` routing: optional Route 53 health check ids per record.
    pub health_check_ids: HealthCheckIds,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SetIdentifiers {
    pub primary: String,
    pub secondary: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthCheckIds {
    pub primary: Option<String>,
    pub secondary: Option<String>,
}

/// Route 53 answers names in lower case with a trailing dot; compare in that form.
pub fn normalize_record_name(name: &str) -> String {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n
}

impl Config {
    /// Parse and validate a config document. `origin` names where it came from, for errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Invalid {
                origin: origin.to_string(),
                field: if field == "." || field == "?" {
                    "(document)".into()
                } else {
                    field
                },
                message: e.into_inner().to_string(),
            }
        })?;
        validate::config(raw).map_err(|e| e.at(origin))
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Config::from_json(&text, &path.display().to_string())
    }

    /// The Lambda's way: `ROUTER_CONFIG` (inline JSON) wins over `ROUTER_CONFIG_FILE`.
    pub fn from_env() -> Result<Config, ConfigError> {
        if let Ok(text) = std::env::var(ENV_CONFIG)
            && !text.trim().is_empty()
        {
            return Config::from_json(&text, ENV_CONFIG);
        }
        if let Ok(path) = std::env::var(ENV_CONFIG_FILE)
            && !path.trim().is_empty()
        {
            return Config::from_file(Path::new(&path));
        }
        Err(ConfigError::Missing)
    }

    pub fn cluster(&self, scope: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.scope == scope)
    }
}

#[cfg(test)]
mod tests;
