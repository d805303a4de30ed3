//! The config file as written: strict serde types (unknown keys are errors, naming the
//! field). `validate` turns these into the validated [`super::Config`]; nothing else reads them.

use std::net::IpAddr;

use serde::Deserialize;

use super::settings::{AwsSettings, PatroniSettings, WebhookSettings};
use super::{DnsRouting, Strategy};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub patroni: PatroniSettings,
    #[serde(default)]
    pub webhook: WebhookSettings,
    #[serde(default)]
    pub aws: AwsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub scope: String,
    pub nodes: Vec<RawNode>,
    #[serde(default)]
    pub standby_cluster: bool,
    #[serde(default)]
    pub target_group: Option<RawTargetGroup>,
    #[serde(default)]
    pub target_groups: Vec<RawTargetGroup>,
    #[serde(default)]
    pub dns: Option<RawDns>,
    #[serde(default)]
    pub replicas: Option<RawReplicas>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: String,
    pub api_url: String,
    pub address: IpAddr,
    #[serde(default)]
    pub instance_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTargetGroup {
    pub arn: String,
    pub port: u16,
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    #[serde(default)]
    pub manage_settings: bool,
    #[serde(default = "default_max_deregistration_delay")]
    pub max_deregistration_delay: u32,
    #[serde(default = "default_health_check_port")]
    pub health_check_port: u16,
}

/// A replicas target group: like a primary one, without `strategy` (it is `replicas`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReadTargetGroup {
    pub arn: String,
    pub port: u16,
    #[serde(default)]
    pub manage_settings: bool,
    #[serde(default = "default_max_deregistration_delay")]
    pub max_deregistration_delay: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplicas {
    #[serde(default = "default_max_lag_bytes")]
    pub max_lag_bytes: u64,
    #[serde(default = "default_true")]
    pub fallback_to_primary: bool,
    #[serde(default)]
    pub target_group: Option<RawReadTargetGroup>,
    #[serde(default)]
    pub target_groups: Vec<RawReadTargetGroup>,
    #[serde(default)]
    pub dns: Option<RawDns>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub hosted_zone_id: String,
    pub record_name: String,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    #[serde(default = "default_routing")]
    pub routing: DnsRouting,
    #[serde(default)]
    pub set_identifiers: RawSetIdentifiers,
    #[serde(default)]
    pub health_check_ids: RawHealthCheckIds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSetIdentifiers {
    pub primary: String,
    pub secondary: String,
}

impl Default for RawSetIdentifiers {
    fn default() -> Self {
        RawSetIdentifiers {
            primary: "primary".into(),
            secondary: "secondary".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheckIds {
    #[serde(default)]
    pub primary: Option<String>,
    #[serde(default)]
    pub secondary: Option<String>,
}

/// Patroni's own default for `maximum_lag_on_failover`: 1 MiB.
fn default_max_lag_bytes() -> u64 {
    1_048_576
}
fn default_true() -> bool {
    true
}
fn default_max_deregistration_delay() -> u32 {
    10
}
fn default_health_check_port() -> u16 {
    8008
}
fn default_strategy() -> Strategy {
    Strategy::PrimaryOnly
}
fn default_ttl() -> i64 {
    10
}
fn default_routing() -> DnsRouting {
    DnsRouting::Simple
}
