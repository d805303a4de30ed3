//! The router's configuration: what clusters exist, which nodes belong to them, and where
//! their traffic is routed. Parsing is strict (unknown keys are errors) and every error names
//! the field and says how to fix it, because a typo here would otherwise route a database.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Where the configuration is looked up in the environment (used by the Lambda).
pub const ENV_CONFIG: &str = "ROUTER_CONFIG";
pub const ENV_CONFIG_FILE: &str = "ROUTER_CONFIG_FILE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config {origin}: `{field}`: {message}")]
    Parse {
        origin: String,
        field: String,
        message: String,
    },
    #[error("config: `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error(
        "no configuration: pass --config FILE, or set {ENV_CONFIG} (inline JSON) or {ENV_CONFIG_FILE} (a path)"
    )]
    Missing,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub clusters: Vec<ClusterConfig>,
    /// How Patroni is polled; defaults suit a Lambda in the same VPC.
    #[serde(default)]
    pub patroni: PatroniSettings,
    /// How a webhook (Patroni callback) is handled.
    #[serde(default)]
    pub webhook: WebhookSettings,
    /// How AWS is called.
    #[serde(default)]
    pub aws: AwsSettings,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// After a callback, poll Patroni until a primary is confirmed, at most this long.
    #[serde(default = "default_confirm_timeout", with = "humantime_serde")]
    pub confirm_timeout: Duration,
    /// Pause between those polls.
    #[serde(default = "default_confirm_interval", with = "humantime_serde")]
    pub confirm_interval: Duration,
    /// Accepted clock difference for a notification's timestamp (and the replay window).
    #[serde(default = "default_max_clock_skew", with = "humantime_serde")]
    pub max_clock_skew: Duration,
}

fn default_confirm_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_confirm_interval() -> Duration {
    Duration::from_millis(250)
}
fn default_max_clock_skew() -> Duration {
    Duration::from_secs(300)
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            confirm_timeout: default_confirm_timeout(),
            confirm_interval: default_confirm_interval(),
            max_clock_skew: default_max_clock_skew(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PatroniSettings {
    /// Timeout of one HTTP request to one node (connect + answer).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Deadline for polling all nodes of a cluster; nodes not done by then count as unreachable.
    #[serde(default = "default_poll_deadline", with = "humantime_serde")]
    pub poll_deadline: Duration,
    /// HTTPS to Patroni's REST API with a private CA and, optionally, a client certificate.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM CA bundle; when set, only these CAs are trusted for Patroni (not the system's).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate (Patroni's `restapi.verify_client`), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub key_file: Option<std::path::PathBuf>,
}

/// How the AWS SDK is driven.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AwsSettings {
    /// Timeout of one attempt of one AWS call.
    #[serde(default = "default_attempt_timeout", with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Attempts per call (standard retry mode: backoff with jitter on throttling and 5xx).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Another endpoint for both services (a VPC endpoint, an emulator); default: the SDK's
    /// resolution (`AWS_ENDPOINT_URL`, then the public endpoints).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// How often `reconcile`/`watch` check target-group settings for drift (`plan` and
    /// `status` always do); "0s" checks on every run.
    #[serde(default = "default_settings_check_interval", with = "humantime_serde")]
    pub settings_check_interval: Duration,
}

fn default_settings_check_interval() -> Duration {
    Duration::from_secs(600)
}

fn default_attempt_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_max_attempts() -> u32 {
    4
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            attempt_timeout: default_attempt_timeout(),
            max_attempts: default_max_attempts(),
            endpoint_url: None,
            settings_check_interval: default_settings_check_interval(),
        }
    }
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_poll_deadline() -> Duration {
    Duration::from_secs(5)
}

impl Default for PatroniSettings {
    fn default() -> Self {
        PatroniSettings {
            request_timeout: default_request_timeout(),
            poll_deadline: default_poll_deadline(),
            tls: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Patroni's `scope` (the cluster name).
    pub scope: String,
    pub nodes: Vec<NodeConfig>,
    /// A standby cluster (DR): its leader has the role `standby_leader` instead of `primary`.
    #[serde(default)]
    pub standby_cluster: bool,
    #[serde(default)]
    pub target_group: Option<TargetGroupConfig>,
    /// More target groups routed the same way (e.g. one per NLB).
    #[serde(default)]
    pub target_groups: Vec<TargetGroupConfig>,
    #[serde(default)]
    pub dns: Option<DnsConfig>,
    /// The read endpoint: replicas within a lag bound, in their own target groups / record.
    #[serde(default)]
    pub replicas: Option<ReplicasConfig>,
    /// `replicas`' target groups as [`TargetGroupConfig`]s of strategy `replicas`, filled
    /// in when the config is loaded, so every target group goes through the same code.
    #[serde(skip)]
    read_target_groups: Vec<TargetGroupConfig>,
}

/// The read endpoint of a cluster: every streaming replica whose lag is at most
/// `max_lag_bytes` and that is not tagged `noloadbalance`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReplicasConfig {
    /// Replicas further behind than this are taken out of the read endpoint.
    #[serde(default = "default_max_lag_bytes")]
    pub max_lag_bytes: u64,
    /// With no replica fit to serve, route reads to the primary instead of to nobody.
    #[serde(default = "default_true")]
    pub fallback_to_primary: bool,
    #[serde(default)]
    pub target_group: Option<ReadTargetGroupConfig>,
    #[serde(default)]
    pub target_groups: Vec<ReadTargetGroupConfig>,
    /// A record holding every replica: `simple` (one record, all addresses) or `multivalue`
    /// (one multivalue-answer record per replica, SetIdentifier = the node name).
    #[serde(default)]
    pub dns: Option<DnsConfig>,
}

/// A replicas target group: like a primary one, without `strategy` (it is `replicas`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReadTargetGroupConfig {
    pub arn: String,
    pub port: u16,
    #[serde(default)]
    pub manage_settings: bool,
    #[serde(default = "default_max_deregistration_delay")]
    pub max_deregistration_delay: u32,
}

/// Patroni's own default for `maximum_lag_on_failover`: 1 MiB.
fn default_max_lag_bytes() -> u64 {
    1_048_576
}
fn default_true() -> bool {
    true
}

impl ClusterConfig {
    /// Every target group of this cluster: `target_group`, `target_groups`, then the replicas'.
    pub fn all_target_groups(&self) -> impl Iterator<Item = &TargetGroupConfig> {
        self.target_group
            .iter()
            .chain(self.target_groups.iter())
            .chain(self.read_target_groups.iter())
    }

    /// Build `read_target_groups` from `replicas` (after parsing).
    fn normalize(&mut self) {
        self.read_target_groups = self
            .replicas
            .iter()
            .flat_map(|r| r.target_group.iter().chain(r.target_groups.iter()))
            .map(|t| TargetGroupConfig {
                arn: t.arn.clone(),
                port: t.port,
                strategy: Strategy::Replicas,
                manage_settings: t.manage_settings,
                max_deregistration_delay: t.max_deregistration_delay,
                health_check_port: default_health_check_port(),
            })
            .collect();
    }

    pub fn node(&self, name: &str) -> Option<&NodeConfig> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Patroni member name (`name` in patroni.yml).
    pub name: String,
    /// Patroni REST API base URL, e.g. `http://10.0.1.10:8008`.
    pub api_url: String,
    /// The address clients reach PostgreSQL on: registered in an `ip` target group and
    /// written into DNS records.
    pub address: IpAddr,
    /// EC2 instance id, registered in an `instance` target group.
    #[serde(default)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupConfig {
    pub arn: String,
    /// The port registered for each target (PostgreSQL's port).
    pub port: u16,
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
    /// Fix drifted settings (attributes, health check) instead of only reporting them.
    #[serde(default)]
    pub manage_settings: bool,
    /// primary-only: the longest acceptable deregistration delay, seconds.
    #[serde(default = "default_max_deregistration_delay")]
    pub max_deregistration_delay: u32,
    /// members: the Patroni REST port the health check must ask.
    #[serde(default = "default_health_check_port")]
    pub health_check_port: u16,
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

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DnsRouting {
    /// One record -> the primary.
    Simple,
    /// Route 53 failover records: PRIMARY -> the primary, SECONDARY -> the best standby.
    Failover,
    /// `replicas.dns` only: one multivalue-answer record per replica (SetIdentifier = node).
    Multivalue,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    pub hosted_zone_id: String,
    pub record_name: String,
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    #[serde(default = "default_routing")]
    pub routing: DnsRouting,
    /// For `failover` routing: the records' SetIdentifiers.
    #[serde(default)]
    pub set_identifiers: SetIdentifiers,
    /// For `failover` routing: optional Route 53 health check ids per record.
    #[serde(default)]
    pub health_check_ids: HealthCheckIds,
}

fn default_ttl() -> i64 {
    10
}
fn default_routing() -> DnsRouting {
    DnsRouting::Simple
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetIdentifiers {
    pub primary: String,
    pub secondary: String,
}

impl Default for SetIdentifiers {
    fn default() -> Self {
        SetIdentifiers {
            primary: "primary".into(),
            secondary: "secondary".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckIds {
    #[serde(default)]
    pub primary: Option<String>,
    #[serde(default)]
    pub secondary: Option<String>,
}

/// The largest TTL we accept: the TTL bounds how long clients keep resolving the old
/// primary after a failover, so anything longer is almost surely a typo.
pub const MAX_TTL: i64 = 3600;

impl DnsConfig {
    /// The zone id without the `/hostedzone/` prefix the console and some APIs show.
    pub fn zone_id(&self) -> &str {
        self.hosted_zone_id
            .trim_start_matches("/hostedzone/")
            .trim_start_matches("hostedzone/")
    }

    /// The record name as Route 53 returns it: lower case, with the trailing dot.
    pub fn normalized_name(&self) -> String {
        normalize_record_name(&self.record_name)
    }
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
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Parse {
                origin: origin.to_string(),
                field: if field == "." || field == "?" {
                    "(document)".into()
                } else {
                    field
                },
                message: e.into_inner().to_string(),
            }
        })?;
        for c in &mut config.clusters {
            c.normalize();
        }
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
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

    fn validate(&self) -> Result<(), ConfigError> {
        if self.clusters.is_empty() {
            return Err(invalid(
                "clusters",
                "no cluster configured: add at least one {\"scope\", \"nodes\", ...}",
            ));
        }
        if self.patroni.request_timeout.is_zero() || self.patroni.poll_deadline.is_zero() {
            return Err(invalid(
                "patroni",
                "request_timeout and poll_deadline must be positive durations like \"2s\"",
            ));
        }
        if let Some(tls) = &self.patroni.tls
            && tls.cert_file.is_some() != tls.key_file.is_some()
        {
            return Err(invalid(
                "patroni.tls",
                "cert_file and key_file go together: set both for a client certificate, or neither",
            ));
        }
        if self.aws.attempt_timeout.is_zero() || !(1..=10).contains(&self.aws.max_attempts) {
            return Err(invalid(
                "aws",
                "attempt_timeout must be a positive duration and max_attempts 1..=10",
            ));
        }
        if let Some(url) = &self.aws.endpoint_url {
            validate_api_url(url, "aws.endpoint_url")?;
        }
        let w = &self.webhook;
        if w.confirm_interval.is_zero() || w.max_clock_skew.is_zero() {
            return Err(invalid(
                "webhook",
                "confirm_interval and max_clock_skew must be positive durations like \"250ms\"",
            ));
        }
        let mut scopes = HashSet::new();
        let mut arns = HashSet::new();
        let mut records = HashSet::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let at = format!("clusters[{i}]");
            if !scopes.insert(c.scope.as_str()) {
                return Err(invalid(
                    format!("{at}.scope"),
                    format!(
                        "scope {:?} is configured twice: each Patroni cluster once",
                        c.scope
                    ),
                ));
            }
            validate_cluster(c, &at)?;
            let dns = c.dns.iter().map(|d| (d, format!("{at}.dns.record_name")));
            let read_dns = c
                .replicas
                .iter()
                .filter_map(|r| r.dns.as_ref())
                .map(|d| (d, format!("{at}.replicas.dns.record_name")));
            for (d, field) in dns.chain(read_dns) {
                if records.insert((d.zone_id().to_string(), d.normalized_name())) {
                    continue;
                }
                return Err(invalid(
                    field,
                    format!(
                        "{} in zone {} is routed by two clusters: a record belongs to one cluster",
                        d.record_name,
                        d.zone_id()
                    ),
                ));
            }
            for (tg, field) in target_group_fields(c, &at) {
                if !arns.insert(tg.arn.as_str()) {
                    return Err(invalid(
                        format!("{field}.arn"),
                        format!(
                            "target group {} is routed twice: a target group belongs to one cluster",
                            tg.arn
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn validate_cluster(c: &ClusterConfig, at: &str) -> Result<(), ConfigError> {
    if c.scope.trim().is_empty() {
        return Err(invalid(
            format!("{at}.scope"),
            "empty: set it to Patroni's `scope` (the cluster name)",
        ));
    }
    if c.nodes.is_empty() {
        return Err(invalid(
            format!("{at}.nodes"),
            "no nodes: list every Patroni member of the cluster",
        ));
    }
    let mut names = HashSet::new();
    let mut urls = HashSet::new();
    for (j, n) in c.nodes.iter().enumerate() {
        let nat = format!("{at}.nodes[{j}]");
        if n.name.trim().is_empty() {
            return Err(invalid(
                format!("{nat}.name"),
                "empty: set it to the Patroni member name",
            ));
        }
        if !names.insert(n.name.as_str()) {
            return Err(invalid(
                format!("{nat}.name"),
                format!("duplicate node {:?}: each member once per cluster", n.name),
            ));
        }
        validate_api_url(&n.api_url, &format!("{nat}.api_url"))?;
        if !urls.insert(n.api_url.trim_end_matches('/')) {
            return Err(invalid(
                format!("{nat}.api_url"),
                format!(
                    "{} is used by two nodes: each node has its own REST API",
                    n.api_url
                ),
            ));
        }
        if let Some(id) = &n.instance_id
            && !(id.starts_with("i-") && id.len() > 2)
        {
            return Err(invalid(
                format!("{nat}.instance_id"),
                format!("{id:?} is not an EC2 instance id (like \"i-0abc123\")"),
            ));
        }
    }
    let tgs = target_group_fields(c, at);
    if tgs.is_empty() && c.dns.is_none() && c.replicas.is_none() {
        return Err(invalid(
            at,
            "nothing to route: set `target_group` and/or `dns` (and/or `replicas`)",
        ));
    }
    for (tg, tat) in tgs {
        if tg.strategy == Strategy::Replicas && !tat.contains(".replicas.") {
            return Err(invalid(
                format!("{tat}.strategy"),
                "`replicas` is set by listing the target group under the cluster's `replicas` \
                 (with `max_lag_bytes`): move it there",
            ));
        }
        validate_target_group_arn(&tg.arn, &format!("{tat}.arn"))?;
        if tg.max_deregistration_delay > 3600 {
            return Err(invalid(
                format!("{tat}.max_deregistration_delay"),
                "AWS allows 0..=3600 seconds; a database failover wants 0..10",
            ));
        }
        if tg.port == 0 {
            return Err(invalid(
                format!("{tat}.port"),
                "0 is not a port: set PostgreSQL's port, e.g. 5432",
            ));
        }
    }
    if let Some(d) = &c.dns {
        validate_dns(d, c, &format!("{at}.dns"))?;
        if d.routing == DnsRouting::Multivalue {
            return Err(invalid(
                format!("{at}.dns.routing"),
                "multivalue is for the read endpoint (`replicas.dns`): the primary's record \
                 names one node; use simple or failover",
            ));
        }
    }
    if let Some(r) = &c.replicas {
        let rat = format!("{at}.replicas");
        if r.target_group.is_none() && r.target_groups.is_empty() && r.dns.is_none() {
            return Err(invalid(
                rat,
                "the read endpoint routes nothing: set `target_group`, `target_groups` and/or `dns`",
            ));
        }
        if let Some(d) = &r.dns {
            validate_dns(d, c, &format!("{rat}.dns"))?;
            if d.routing == DnsRouting::Failover {
                return Err(invalid(
                    format!("{rat}.dns.routing"),
                    "failover routing names one node per record: use simple (one record, every \
                     replica) or multivalue (one record per replica)",
                ));
            }
        }
    }
    Ok(())
}

/// Each target group of the cluster with the config path that names it in errors.
fn target_group_fields<'a>(c: &'a ClusterConfig, at: &str) -> Vec<(&'a TargetGroupConfig, String)> {
    let primary = c
        .target_group
        .iter()
        .map(|tg| (tg, format!("{at}.target_group")))
        .chain(
            c.target_groups
                .iter()
                .enumerate()
                .map(|(i, tg)| (tg, format!("{at}.target_groups[{i}]"))),
        );
    let read_fields: Vec<String> = c
        .replicas
        .iter()
        .flat_map(|r| {
            r.target_group
                .iter()
                .map(|_| format!("{at}.replicas.target_group"))
                .chain(
                    (0..r.target_groups.len()).map(|i| format!("{at}.replicas.target_groups[{i}]")),
                )
        })
        .collect();
    primary
        .chain(c.read_target_groups.iter().zip(read_fields))
        .collect()
}

fn validate_api_url(url: &str, field: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        invalid(
            field,
            format!("{url:?} is not a URL ({e}): use e.g. \"http://10.0.1.10:8008\""),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(
            field,
            format!("{url:?} must be an http:// or https:// URL with a host"),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(
            field,
            format!("{url:?}: give the REST API base URL without query or fragment"),
        ));
    }
    Ok(())
}

/// `arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`
pub fn validate_target_group_arn(arn: &str, field: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        invalid(
            field,
            format!(
                "{arn:?} is not a target group ARN ({why}); expected \
                 arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"
            ),
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" || !parts[1].starts_with("aws") {
        return Err(bad("it must start with arn:aws"));
    }
    if parts[2] != "elasticloadbalancing" {
        return Err(bad("the service is not elasticloadbalancing"));
    }
    if parts[3].is_empty() || parts[4].is_empty() {
        return Err(bad("region or account missing"));
    }
    let resource: Vec<&str> = parts[5].split('/').collect();
    if resource.len() != 3
        || resource[0] != "targetgroup"
        || resource[1].is_empty()
        || resource[2].is_empty()
    {
        return Err(bad("the resource is not targetgroup/NAME/ID"));
    }
    Ok(())
}

fn validate_dns(d: &DnsConfig, c: &ClusterConfig, at: &str) -> Result<(), ConfigError> {
    let zone = d.zone_id();
    if zone.is_empty() || !zone.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(invalid(
            format!("{at}.hosted_zone_id"),
            format!(
                "{:?} is not a hosted zone id (like \"Z0123456789ABC\")",
                d.hosted_zone_id
            ),
        ));
    }
    let name = d.record_name.trim_end_matches('.');
    if name.is_empty()
        || name.len() > 253
        || name
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(invalid(
            format!("{at}.record_name"),
            format!(
                "{:?} is not a DNS name: use a name inside the hosted zone, e.g. \"db.example.internal.\"",
                d.record_name
            ),
        ));
    }
    if !(1..=MAX_TTL).contains(&d.ttl) {
        return Err(invalid(
            format!("{at}.ttl"),
            format!(
                "{} is out of range 1..={MAX_TTL}: the TTL bounds how long clients keep the old \
                 primary after a failover (10 is typical)",
                d.ttl
            ),
        ));
    }
    if d.routing == DnsRouting::Failover && d.set_identifiers.primary == d.set_identifiers.secondary
    {
        return Err(invalid(
            format!("{at}.set_identifiers"),
            "primary and secondary must differ: Route 53 keys failover records by SetIdentifier",
        ));
    }
    let v4 = c.nodes.iter().filter(|n| n.address.is_ipv4()).count();
    if v4 != 0 && v4 != c.nodes.len() {
        return Err(invalid(
            at,
            "nodes mix IPv4 and IPv6 addresses: one record type (A or AAAA) per cluster",
        ));
    }
    Ok(())
}

/// serde helpers for durations written like "2s" or "500ms".
mod humantime_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "{s:?} is not a duration ({e}): write e.g. \"2s\" or \"500ms\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
      "clusters": [{
        "scope": "pgha",
        "nodes": [
          {"name": "pg1", "api_url": "http://10.0.1.10:8008", "address": "10.0.1.10", "instance_id": "i-0aaa"},
          {"name": "pg2", "api_url": "http://10.0.1.11:8008", "address": "10.0.1.11", "instance_id": "i-0bbb"}
        ],
        "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef", "port": 5432, "strategy": "primary-only"},
        "dns": {"hosted_zone_id": "Z0123", "record_name": "db.example.internal.", "ttl": 10, "routing": "simple"}
      }]
    }"#;

    fn err_of(text: &str) -> String {
        Config::from_json(text, "test").unwrap_err().to_string()
    }

    fn with(from: &str, to: &str) -> String {
        assert!(GOOD.contains(from), "test edit {from:?} does not apply");
        GOOD.replacen(from, to, 1)
    }

    #[test]
    fn the_documented_example_parses() {
        let c = Config::from_json(GOOD, "test").expect("valid");
        assert_eq!(c.clusters[0].nodes.len(), 2);
        assert_eq!(
            c.clusters[0].target_group.as_ref().map(|t| t.port),
            Some(5432)
        );
        assert_eq!(c.patroni.request_timeout, Duration::from_secs(2));
    }

    const READ: &str = r#", "replicas": {"max_lag_bytes": 4096,
        "target_group": {"arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg-ro/0123456789abcdef", "port": 5432},
        "dns": {"hosted_zone_id": "Z0123", "record_name": "ro.example.internal.", "routing": "multivalue"}}"#;

    fn with_read(read: &str) -> String {
        with(
            "\"routing\": \"simple\"}",
            &format!("\"routing\": \"simple\"}}{read}"),
        )
    }

    #[test]
    fn the_read_endpoint_parses_into_a_replicas_target_group() {
        let c = Config::from_json(&with_read(READ), "test").expect("valid");
        let c = &c.clusters[0];
        let r = c.replicas.as_ref().expect("replicas");
        assert_eq!((r.max_lag_bytes, r.fallback_to_primary), (4096, true));
        let strategies: Vec<Strategy> = c.all_target_groups().map(|t| t.strategy).collect();
        assert_eq!(strategies, vec![Strategy::PrimaryOnly, Strategy::Replicas]);
    }

    #[test]
    fn read_endpoint_mistakes_name_the_field() {
        let e = err_of(&with_read(&READ.replace(
            "\"port\": 5432}",
            "\"port\": 5432, \"strategy\": \"members\"}",
        )));
        assert!(
            e.contains("replicas.target_group") && e.contains("unknown field `strategy`"),
            "{e}"
        );
        let e = err_of(&with_read(&READ.replace("multivalue", "failover")));
        assert!(e.contains("clusters[0].replicas.dns.routing"), "{e}");
        let e = err_of(&with_read(&READ.replace("ro.example", "db.example")));
        assert!(
            e.contains("clusters[0].replicas.dns.record_name") && e.contains("two"),
            "{e}"
        );
        let e = err_of(&with_read(&READ.replace("pg-ro", "pg")));
        assert!(
            e.contains("clusters[0].replicas.target_group.arn") && e.contains("twice"),
            "{e}"
        );
        let e = err_of(&with_read(r#", "replicas": {"max_lag_bytes": 1}"#));
        assert!(
            e.contains("clusters[0].replicas") && e.contains("routes nothing"),
            "{e}"
        );
        let e = err_of(&with(
            "\"routing\": \"simple\"",
            "\"routing\": \"multivalue\"",
        ));
        assert!(
            e.contains("clusters[0].dns.routing") && e.contains("read endpoint"),
            "{e}"
        );
        let e = err_of(&with(
            "\"strategy\": \"primary-only\"",
            "\"strategy\": \"replicas\"",
        ));
        assert!(
            e.contains("clusters[0].target_group.strategy") && e.contains("move it"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_names_the_field() {
        let e = err_of(&with("\"ttl\": 10", "\"ttl\": 10, \"tll\": 3"));
        assert!(e.contains("clusters[0].dns"), "{e}");
        assert!(e.contains("unknown field `tll`"), "{e}");
    }

    #[test]
    fn duplicate_node_is_rejected() {
        let e = err_of(&with("\"name\": \"pg2\"", "\"name\": \"pg1\""));
        assert!(
            e.contains("clusters[0].nodes[1].name") && e.contains("duplicate"),
            "{e}"
        );
    }

    #[test]
    fn bad_arn_is_rejected() {
        let e = err_of(&with(
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef",
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1",
        ));
        assert!(
            e.contains("target_group.arn") && e.contains("targetgroup/NAME/ID"),
            "{e}"
        );
    }

    #[test]
    fn ttl_out_of_range_is_rejected() {
        let e = err_of(&with("\"ttl\": 10", "\"ttl\": 86400"));
        assert!(e.contains("dns.ttl") && e.contains("out of range"), "{e}");
        let e = err_of(&with("\"ttl\": 10", "\"ttl\": 0"));
        assert!(e.contains("dns.ttl"), "{e}");
    }

    #[test]
    fn a_cluster_without_target_is_rejected() {
        let no_dns = GOOD.replace(
            ",\n        \"dns\": {\"hosted_zone_id\": \"Z0123\", \"record_name\": \"db.example.internal.\", \"ttl\": 10, \"routing\": \"simple\"}",
            "",
        );
        let neither = no_dns.replace(
            ",\n        \"target_group\": {\"arn\": \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg/0123456789abcdef\", \"port\": 5432, \"strategy\": \"primary-only\"}",
            "",
        );
        assert!(Config::from_json(&no_dns, "t").is_ok());
        let e = err_of(&neither);
        assert!(e.contains("nothing to route"), "{e}");
    }

    #[test]
    fn bad_address_and_url_are_named() {
        let e = err_of(&with("\"address\": \"10.0.1.11\"", "\"address\": \"db-2\""));
        assert!(e.contains("clusters[0].nodes[1].address"), "{e}");
        let e = err_of(&with("http://10.0.1.11:8008", "10.0.1.11:8008"));
        assert!(e.contains("clusters[0].nodes[1].api_url"), "{e}");
    }

    #[test]
    fn bad_strategy_lists_the_choices() {
        let e = err_of(&with("primary-only", "primary"));
        assert!(e.contains("strategy") && e.contains("members"), "{e}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for text in [
            "",
            "{",
            "[]",
            "null",
            "{\"clusters\": 3}",
            "{\"clusters\": []}",
        ] {
            assert!(Config::from_json(text, "t").is_err(), "{text}");
        }
    }

    #[test]
    fn durations_parse_and_bad_ones_are_named() {
        let c = Config::from_json(
            &GOOD.replacen('{', "{\"patroni\": {\"request_timeout\": \"500ms\"},", 1),
            "t",
        )
        .expect("valid");
        assert_eq!(c.patroni.request_timeout, Duration::from_millis(500));
        let e = err_of(&GOOD.replacen('{', "{\"patroni\": {\"request_timeout\": \"fast\"},", 1));
        assert!(e.contains("patroni.request_timeout"), "{e}");
    }

    #[test]
    fn a_record_routed_by_two_clusters_is_rejected() {
        let mut doc: serde_json::Value = serde_json::from_str(GOOD).expect("json");
        let mut second = doc["clusters"][0].clone();
        second["scope"] = "other".into();
        second["target_group"]["arn"] =
            "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/pg2/0123".into();
        second["dns"]["record_name"] = "DB.example.internal".into();
        doc["clusters"].as_array_mut().expect("array").push(second);
        let e = err_of(&doc.to_string());
        assert!(
            e.contains("clusters[1].dns.record_name") && e.contains("two clusters"),
            "{e}"
        );
    }

    #[test]
    fn record_names_normalize() {
        assert_eq!(
            normalize_record_name("DB.Example.internal"),
            "db.example.internal."
        );
        assert_eq!(
            normalize_record_name("db.example.internal."),
            "db.example.internal."
        );
    }
}
