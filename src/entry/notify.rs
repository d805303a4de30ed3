//! `patroni-router notify`: the sender end of the webhook, run by Patroni as a callback
//! (`<cmd> <action> <role> <scope>`). Builds a [`Notification`], signs it (shared-secret HMAC
//! or AWS SigV4 with the instance's role) and POSTs it, with a few quick retries. Patroni kills
//! a running callback when the next one starts, so every attempt is bounded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::webhook::{self, Notification, SIGNATURE_HEADER, Secret, TIMESTAMP_HEADER};

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
    #[arg(long)]
    pub url: String,
    /// hmac (shared secret) or iam (SigV4 with this host's AWS role). Default: hmac when a
    /// secret is configured, else iam.
    #[arg(long, value_enum)]
    pub auth: Option<AuthMode>,
    /// This node's Patroni member name (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Bound on one attempt; the router answers once Patroni confirms the primary.
    #[arg(long, default_value = "12s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Attempts on connection errors, 429 and 5xx (other answers are final).
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// The Patroni callback: on_role_change, on_start, on_stop, on_restart, on_reload.
    pub action: String,
    /// The role Patroni passes (primary, replica, ...).
    pub role: String,
    /// The cluster's scope.
    pub scope: String,
}

enum Signer {
    Hmac(Secret),
    Iam { identity: Identity, region: String },
}

/// Send the notification; `Ok(status)` on a 2xx answer.
pub async fn send(opts: &Options) -> Result<u16, NotifyError> {
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
        (Some(AuthMode::Iam), _) | (None, None) => iam_signer(&url).await?,
    };
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
        let n = Notification {
            action: opts.action.clone(),
            role: opts.role.clone(),
            scope: opts.scope.clone(),
            node: node.clone(),
            timestamp: unix_now(),
            nonce: nonce(),
        };
        let body = serde_json::to_vec(&n).map_err(|e| NotifyError::Signing(e.to_string()))?;
        let mut req = http
            .post(url.clone())
            .header("content-type", "application/json");
        match &signer {
            Signer::Hmac(secret) => {
                req = req
                    .header(TIMESTAMP_HEADER, n.timestamp.to_string())
                    .header(SIGNATURE_HEADER, webhook::sign(secret, n.timestamp, &body));
            }
            Signer::Iam { identity, region } => {
                for (k, v) in sigv4_headers(identity, region, url.as_str(), &body)? {
                    req = req.header(k, v);
                }
            }
        }
        match req.body(body).send().await {
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
            Err(e) => last = e.to_string(),
        }
    }
    Err(NotifyError::Unreachable {
        url: opts.url.clone(),
        attempts,
        last,
    })
}

async fn iam_signer(url: &reqwest::Url) -> Result<Signer, NotifyError> {
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let provider = config.credentials_provider().ok_or_else(|| {
        NotifyError::Credentials(
            "no credentials provider (and no ROUTER_WEBHOOK_SECRET for --auth hmac)".into(),
        )
    })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| NotifyError::Credentials(e.to_string()))?;
    let region = region_of_function_url(url)
        .or_else(|| config.region().map(|r| r.to_string()))
        .ok_or_else(|| {
            NotifyError::Credentials(
                "no region: use a function URL (…lambda-url.REGION.on.aws) or set AWS_REGION"
                    .into(),
            )
        })?;
    Ok(Signer::Iam {
        identity: creds.into(),
        region,
    })
}

/// `https://ID.lambda-url.REGION.on.aws/` -> `REGION`.
pub fn region_of_function_url(url: &reqwest::Url) -> Option<String> {
    let host = url.host_str()?;
    let mut labels = host.split('.');
    let (_id, kind, region) = (labels.next()?, labels.next()?, labels.next()?);
    (kind == "lambda-url").then(|| region.to_string())
}

/// The SigV4 headers for a function URL request (service `lambda`).
fn sigv4_headers(
    identity: &Identity,
    region: &str,
    url: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, NotifyError> {
    let err = |e: &dyn std::fmt::Display| NotifyError::Signing(e.to_string());
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| err(&e))?
        .into();
    let headers = [("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| err(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| err(&e))?.into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG does not fail on Linux; if it ever did, the time-based fallback still
    // differs per request, which is all a nonce needs.
    if getrandom::fill(&mut b).is_err() {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()] ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    b
}

fn nonce() -> String {
    hex::encode(random_bytes::<16>())
}

fn jitter(max: u64) -> u64 {
    if max == 0 {
        return 0;
    }
    u64::from_le_bytes(random_bytes::<8>()) % max
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_url_region_is_read_from_the_host() {
        let u = reqwest::Url::parse("https://abcdefg.lambda-url.eu-west-1.on.aws/").expect("url");
        assert_eq!(region_of_function_url(&u).as_deref(), Some("eu-west-1"));
        let u = reqwest::Url::parse("http://127.0.0.1:9000/").expect("url");
        assert_eq!(region_of_function_url(&u), None);
    }

    #[test]
    fn nonces_are_random_hex() {
        let (a, b) = (nonce(), nonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn sigv4_headers_carry_the_lambda_scope() {
        let creds =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let h = sigv4_headers(
            &creds.into(),
            "eu-west-1",
            "https://x.lambda-url.eu-west-1.on.aws/",
            b"{}",
        )
        .expect("signs");
        let auth = h
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/eu-west-1/lambda/aws4_request"), "{auth}");
        assert!(h.iter().any(|(k, _)| k == "x-amz-date"));
    }
}
