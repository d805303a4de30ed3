//! `patroni-router notify`: the sender end of the webhook, run by Patroni as a callback
//! (`<cmd> <action> <role> <scope>`). Builds a [`Notification`], signs it (shared-secret HMAC
//! or AWS SigV4 with the instance's role) and POSTs it, with a few quick retries. Patroni kills
//! a running callback when the next one starts, so every attempt is bounded. `--print` prints
//! the signed request instead of sending it; `--resign-event FILE` prints a Lambda
//! function-URL event re-signed now (the samples in `events/`). The signing is
//! [`crate::webhook`]'s.

mod sigv4;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use aws_smithy_runtime_api::client::identity::Identity;

use crate::clock::unix_now;
use crate::webhook::{self, Notification, Secret};
pub use sigv4::region_of_function_url;
use sigv4::sigv4_headers;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Secret(#[from] webhook::SecretError),
    #[error("AWS credentials for --auth iam: {0}")]
    Credentials(String),
    #[error("signing the request: {0}")]
    Signing(String),
    #[error("--resign-event: {0}")]
    Resign(#[from] webhook::ResignError),
    #[error("{url} answered HTTP {status}: {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{url}: no answer after {attempts} attempt(s): {last}")]
    Unreachable {
        url: String,
        attempts: u32,
        last: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    Hmac,
    Iam,
}

/// `patroni-router notify`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The webhook URL (the Lambda function URL, or another receiver of the same format).
    #[arg(
        long,
        required_unless_present = "resign_event",
        default_value = "",
        hide_default_value = true
    )]
    pub url: String,
    /// hmac (shared secret) or iam (SigV4 with this host's AWS role). Default: hmac when a
    /// secret is configured, else iam.
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// This node: its Patroni member name (`name` in patroni.yml), which is how the router
    /// knows which node says it became primary; default: the host name. A name that is not a
    /// configured member only means "some node changed role" (the router looks at every node).
    #[arg(long)]
    pub node: Option<String>,
    /// Bound on one attempt; the router answers once Patroni confirms the primary.
    #[arg(long, default_value = "12s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Attempts on connection errors, 429 and 5xx (other answers are final).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// Print the signed request (JSON: method, url, headers, body) instead of sending it.
    #[arg(long)]
    pub print: bool,
    /// Print FILE, a Lambda function-URL event, re-signed now: a fresh timestamp and nonce in
    /// its body and a fresh signature (the secret as for sending). Nothing is sent.
    #[arg(long, value_name = "FILE", conflicts_with = "print")]
    pub resign_event: Option<PathBuf>,
    /// The Patroni callback: on_role_change, on_start, on_stop, on_restart, on_reload.
    #[arg(
        required_unless_present = "resign_event",
        default_value = "",
        hide_default_value = true
    )]
    pub action: String,
    /// The role Patroni passes (primary, replica, ...).
    #[arg(
        required_unless_present = "resign_event",
        default_value = "",
        hide_default_value = true
    )]
    pub role: String,
    /// The cluster's scope.
    #[arg(
        required_unless_present = "resign_event",
        default_value = "",
        hide_default_value = true
    )]
    pub scope: String,
}

/// What [`run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent; the receiver's 2xx status.
    Sent(u16),
    /// Printed a signed request or event on stdout; nothing was sent.
    Printed,
}

enum Signer {
    Hmac(Secret),
    Iam { identity: Identity, region: String },
}

/// `patroni-router notify`: send, print the signed request, or print a re-signed event.
pub async fn run(opts: &Options) -> Result<Outcome, NotifyError> {
    if let Some(file) = &opts.resign_event {
        print_json(&resign_file(file)?)?;
        return Ok(Outcome::Printed);
    }
    let url = checked_url(opts)?;
    let node = match &opts.node {
        Some(n) => n.clone(),
        None => hostname().ok_or_else(|| {
            NotifyError::Usage("cannot tell the node name: pass --node NAME".into())
        })?,
    };
    let secret = Secret::from_env()?;
    let signer = match (opts.auth, secret) {
        (Some(AuthMode::Hmac), None) => return Err(webhook::SecretError::NoSecret.into()),
        (Some(AuthMode::Hmac) | None, Some(s)) => Signer::Hmac(s),
        (Some(AuthMode::Iam), _) | (None, None) => {
            let (identity, region) = sigv4::credentials(&url).await?;
            Signer::Iam { identity, region }
        }
    };
    if opts.print {
        let req = signed_request(&signer, opts, &node, &url)?;
        let body = String::from_utf8_lossy(&req.body);
        let headers: serde_json::Map<String, serde_json::Value> = req
            .headers
            .into_iter()
            .map(|(k, v)| (k, v.into()))
            .collect();
        print_json(&serde_json::json!({
            "method": "POST", "url": url.as_str(), "headers": headers, "body": body,
        }))?;
        return Ok(Outcome::Printed);
    }
    deliver(opts, &url, &node, &signer).await.map(Outcome::Sent)
}

fn print_json(v: &serde_json::Value) -> Result<(), NotifyError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| NotifyError::Signing(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| NotifyError::Usage(format!("stdout: {e}")))
}

/// The event in `file`, re-signed now with the configured secret (if it is signed at all).
fn resign_file(file: &std::path::Path) -> Result<serde_json::Value, NotifyError> {
    let usage = |e: &dyn std::fmt::Display| NotifyError::Usage(format!("{}: {e}", file.display()));
    let text = std::fs::read_to_string(file).map_err(|e| usage(&e))?;
    let mut event: serde_json::Value = serde_json::from_str(&text).map_err(|e| usage(&e))?;
    let secret = Secret::from_env()?;
    webhook::resign_event(&mut event, secret.as_ref(), unix_now(), &webhook::nonce())?;
    Ok(event)
}

/// `--url`, ACTION, ROLE and SCOPE checked (clap makes them required without
/// `--resign-event`).
fn checked_url(opts: &Options) -> Result<reqwest::Url, NotifyError> {
    let url = reqwest::Url::parse(&opts.url)
        .map_err(|e| NotifyError::Usage(format!("--url {:?}: {e}", opts.url)))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotifyError::Usage(format!(
            "--url {:?}: must be http(s)",
            opts.url
        )));
    }
    if !webhook::ACTIONS.contains(&opts.action.as_str()) {
        return Err(NotifyError::Usage(format!(
            "ACTION {:?} is not a Patroni callback ({})",
            opts.action,
            webhook::ACTIONS.join(", ")
        )));
    }
    Ok(url)
}

/// A notification's body and headers, signed now (a fresh timestamp and nonce each time).
struct SignedRequest {
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

fn signed_request(
    signer: &Signer,
    opts: &Options,
    node: &str,
    url: &reqwest::Url,
) -> Result<SignedRequest, NotifyError> {
    let n = Notification {
        action: opts.action.clone(),
        role: opts.role.clone(),
        scope: opts.scope.clone(),
        node: node.to_string(),
        timestamp: unix_now(),
        nonce: webhook::nonce(),
    };
    let body = serde_json::to_vec(&n).map_err(|e| NotifyError::Signing(e.to_string()))?;
    let headers = match signer {
        Signer::Hmac(secret) => webhook::signed_headers(secret, n.timestamp, &body)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        Signer::Iam { identity, region } => {
            let mut h = vec![("content-type".to_string(), "application/json".to_string())];
            h.extend(sigv4_headers(identity, region, url.as_str(), &body)?);
            h
        }
    };
    Ok(SignedRequest { body, headers })
}

/// POST with retries; `Ok(status)` on a 2xx answer.
async fn deliver(
    opts: &Options,
    url: &reqwest::Url,
    node: &str,
    signer: &Signer,
) -> Result<u16, NotifyError> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2).min(opts.timeout))
        .timeout(opts.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NotifyError::Usage(format!("HTTP client: {e}")))?;
    let attempts = opts.attempts.max(1);
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            // 200 ms, 600 ms, 1.8 s ... with jitter, so retries from several nodes spread out.
            let base = 200u64 * 3u64.pow(attempt - 1);
            tokio::time::sleep(Duration::from_millis(base + jitter(base / 2))).await;
        }
        // A fresh timestamp and nonce per attempt: a retry is a new request, never a replay.
        let signed = signed_request(signer, opts, node, url)?;
        let mut req = http.post(url.clone());
        for (k, v) in signed.headers {
            req = req.header(k, v);
        }
        match req.body(signed.body).send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                if resp.status().is_success() {
                    return Ok(status);
                }
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                // 4xx other than 429 will not get better by retrying.
                if status != 429 && status < 500 {
                    return Err(NotifyError::Rejected {
                        url: opts.url.clone(),
                        status,
                        body: text,
                    });
                }
                last = format!("HTTP {status}: {text}");
            }
            Err(e) => last = crate::error_chain::one_line(&e),
        }
    }
    Err(NotifyError::Unreachable {
        url: opts.url.clone(),
        attempts,
        last,
    })
}

fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    u64::from_le_bytes(webhook::random_bytes::<8>()) % max
}

fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
}
