//! The process-wide settings (how Patroni is polled, how AWS is called, how webhooks are
//! handled): plain values with defaults, parsed as they are and range-checked by `validate`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
/// Right after a role change the DCS or the node lags the callback by some tens of ms: look
/// again soon (each look asks every node at once; a callback looks for at most 10 s).
fn default_confirm_interval() -> Duration {
    Duration::from_millis(50)
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
    /// Once the answers so far confirm a primary, how much longer the other nodes get before
    /// they count as not having answered: no hung node delays a decision by more.
    #[serde(default = "default_straggler_grace", with = "humantime_serde")]
    pub straggler_grace: Duration,
    /// HTTPS to Patroni's REST API with a private CA and, optionally, a client certificate.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
    /// The most requests to Patroni in flight at once, all clusters together (default: half
    /// of the open files the process may have, after a reserve: 448 in Lambda).
    #[serde(default)]
    pub max_in_flight: Option<usize>,
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_poll_deadline() -> Duration {
    Duration::from_secs(5)
}
fn default_straggler_grace() -> Duration {
    Duration::from_millis(100)
}

impl Default for PatroniSettings {
    fn default() -> Self {
        PatroniSettings {
            request_timeout: default_request_timeout(),
            poll_deadline: default_poll_deadline(),
            straggler_grace: default_straggler_grace(),
            tls: None,
            max_in_flight: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM CA bundle; when set, only these CAs are trusted for Patroni (not the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (Patroni's `restapi.verify_client`), with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
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
    /// The router's share of AWS's API budgets (see [`BudgetSettings`]).
    #[serde(default)]
    pub budget: BudgetSettings,
    /// `watch`, `serve` and the Lambda read AWS when a decision changes and verify what they
    /// remember on a rotating schedule: each target group and record at most this often
    /// (less often when the budget cannot afford it; the report says how often).
    #[serde(default = "default_verify_every", with = "humantime_serde")]
    pub verify_every: Duration,
}

fn default_verify_every() -> Duration {
    Duration::from_secs(300)
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
            budget: BudgetSettings::default(),
            verify_every: default_verify_every(),
        }
    }
}

/// One API family's bucket as AWS documents it.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    /// Tokens the bucket holds when full.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: f64,
}

/// `aws.budget` in the config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetSettings {
    /// The share of each bucket this router may use (0 < share <= 1).
    #[serde(default = "default_share")]
    pub share: f64,
    #[serde(default = "elb_describe")]
    pub elb_describe: Bucket,
    #[serde(default = "elb_modify")]
    pub elb_modify: Bucket,
    #[serde(default = "route53")]
    pub route53: Bucket,
}

fn default_share() -> f64 {
    0.2
}
fn elb_describe() -> Bucket {
    Bucket {
        burst: 40,
        per_second: 10.0,
    }
}
fn elb_modify() -> Bucket {
    Bucket {
        burst: 20,
        per_second: 10.0,
    }
}
fn route53() -> Bucket {
    Bucket {
        burst: 5,
        per_second: 5.0,
    }
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            share: default_share(),
            elb_describe: elb_describe(),
            elb_modify: elb_modify(),
            route53: route53(),
        }
    }
}

/// serde helpers for durations written like "2s" or "500ms".
pub(super) mod humantime_serde {
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
