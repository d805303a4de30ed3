//! The Patroni callback webhook: the wire format both ends share (`notify` signs, the Lambda
//! and `serve` verify) and the verification itself.
//!
//! Wire format: `POST` with `Content-Type: application/json`, a JSON [`Notification`] body,
//! and for shared-secret auth the headers
//!   `X-Router-Timestamp: <unix seconds>`
//!   `X-Router-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! The body is only a trigger (which cluster to look at); the decision always comes from a
//! fresh poll of Patroni. Signing (and re-signing sample events) is in [`sign`].

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

mod sign;
mod verify;
pub(crate) use sign::random_bytes;
pub use sign::{ResignError, nonce, resign_event, sign, signed_headers};
pub use verify::{MAX_AHEAD, Verifier};

pub const TIMESTAMP_HEADER: &str = "x-router-timestamp";
pub const SIGNATURE_HEADER: &str = "x-router-signature";
/// A notification is ~200 bytes; anything much larger is not one.
pub const MAX_BODY: usize = 16 * 1024;
/// How far a timestamp may be from our clock (both ways).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);
/// The callbacks Patroni runs (`callbacks:` in patroni.yml).
pub const ACTIONS: &[&str] = &[
    "on_start",
    "on_stop",
    "on_restart",
    "on_reload",
    "on_role_change",
];

pub const ENV_SECRET: &str = "ROUTER_WEBHOOK_SECRET";
pub const ENV_SECRET_FILE: &str = "ROUTER_WEBHOOK_SECRET_FILE";
pub const ENV_AUTH: &str = "ROUTER_WEBHOOK_AUTH";
/// Shorter secrets are refused: they would be guessable offline from one signed request.
pub const MIN_SECRET_LEN: usize = 16;

/// What a callback tells us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// The Patroni callback: `on_role_change`, `on_start`, ...
    pub action: String,
    /// The role Patroni passed: `primary`, `replica`, `demoted`, ...
    pub role: String,
    /// The cluster (Patroni scope).
    pub scope: String,
    /// The member that ran the callback.
    pub node: String,
    /// Unix seconds when it was sent.
    pub timestamp: i64,
    /// Random, unique per request: a replay within the window is refused.
    pub nonce: String,
}

impl Notification {
    /// The node this notification says became the leader, if it says so. Only used to keep
    /// polling a little longer for it; it is never taken as the truth.
    pub fn claimed_leader(&self) -> Option<&str> {
        (self.action == "on_role_change"
            && matches!(self.role.as_str(), "primary" | "master" | "standby_leader"))
        .then_some(self.node.as_str())
    }
}

/// A shared secret; never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("cannot read {ENV_SECRET_FILE} {path}: {message}")]
    File { path: String, message: String },
    #[error(
        "the webhook secret is {0} bytes: use at least {MIN_SECRET_LEN} random bytes \
         (e.g. `openssl rand -hex 32`)"
    )]
    TooShort(usize),
    #[error("{ENV_AUTH}={0:?} is not `hmac` or `iam`")]
    BadMode(String),
    #[error("{ENV_AUTH}=hmac but no secret: set {ENV_SECRET} or {ENV_SECRET_FILE}")]
    NoSecret,
}

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Result<Secret, SecretError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Secret(bytes))
    }

    /// `ROUTER_WEBHOOK_SECRET`, else the file named by `ROUTER_WEBHOOK_SECRET_FILE` (one
    /// trailing newline trimmed). `Ok(None)` when neither is set.
    pub fn from_env() -> Result<Option<Secret>, SecretError> {
        if let Ok(s) = std::env::var(ENV_SECRET)
            && !s.is_empty()
        {
            return Secret::new(s.into_bytes()).map(Some);
        }
        if let Ok(path) = std::env::var(ENV_SECRET_FILE)
            && !path.is_empty()
        {
            let mut bytes = std::fs::read(&path).map_err(|e| SecretError::File {
                path: path.clone(),
                message: e.to_string(),
            })?;
            while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                bytes.pop();
            }
            return Secret::new(bytes).map(Some);
        }
        Ok(None)
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }
}

/// How webhooks are authenticated.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Shared secret, HMAC-SHA256 signature header.
    Hmac(Secret),
    /// AWS IAM: the function URL (`AuthType: AWS_IAM`) verified the SigV4 signature before
    /// invoking us; we require the caller identity AWS attached.
    Iam,
    /// Nothing configured: every webhook is refused.
    Disabled,
}

impl Auth {
    /// `ROUTER_WEBHOOK_AUTH` (`hmac`|`iam`), defaulting to `hmac` when a secret is configured.
    pub fn from_env() -> Result<Auth, SecretError> {
        let secret = Secret::from_env()?;
        match std::env::var(ENV_AUTH).ok().as_deref() {
            None | Some("") => Ok(secret.map_or(Auth::Disabled, Auth::Hmac)),
            Some("hmac") => secret.map(Auth::Hmac).ok_or(SecretError::NoSecret),
            Some("iam") => Ok(Auth::Iam),
            Some(other) => Err(SecretError::BadMode(other.to_string())),
        }
    }
}

/// An HTTP request as the entry points hand it over (header names lower case).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The IAM caller AWS authenticated (function URL with AWS_IAM auth), if any.
    pub iam_caller: Option<String>,
}

/// Why a webhook was refused, with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("method {0} not allowed: POST the notification")]
    MethodNotAllowed(String),
    #[error("body of {0} bytes is over the {MAX_BODY}-byte limit")]
    TooLarge(usize),
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unknown scope {0:?}: not a cluster in the router's config")]
    UnknownScope(String),
}

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MethodNotAllowed(_) => 405,
            Rejection::TooLarge(_) => 413,
            Rejection::Unauthorized(_) => 401,
            Rejection::UnsupportedMediaType => 415,
            Rejection::BadRequest(_) => 400,
            Rejection::UnknownScope(_) => 404,
        }
    }
}

/// What every webhook receiver (the Lambda function URL, `serve`'s `POST /webhook`) does
/// before any Patroni or AWS call: verify the request, then check that the scope is a
/// configured cluster (404 otherwise). Logs the outcome, never a secret.
pub fn admit(
    verifier: &Verifier,
    config: &crate::config::Config,
    req: &Request,
) -> Result<Notification, Rejection> {
    let checked = verifier
        .verify(req, crate::clock::unix_now())
        .and_then(|n| {
            if config.cluster(&n.scope).is_none() {
                Err(Rejection::UnknownScope(n.scope.clone()))
            } else {
                Ok(n)
            }
        });
    match &checked {
        Ok(n) => tracing::info!(
            scope = %n.scope, action = %n.action, role = %n.role, node = %n.node,
            "webhook accepted"
        ),
        Err(r) => tracing::warn!(status = r.status(), reason = %r, "webhook rejected"),
    }
    checked
}

impl Rejection {
    /// The JSON body of the error answer.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": self.to_string()})
    }
}

/// Parse and check a notification body (400 on anything off, naming the field).
pub fn parse_notification(body: &[u8]) -> Result<Notification, Rejection> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let n: Notification = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        Rejection::BadRequest(if path == "." || path == "?" {
            format!("body is not a notification: {}", e.into_inner())
        } else {
            format!("`{path}`: {}", e.into_inner())
        })
    })?;
    if !ACTIONS.contains(&n.action.as_str()) {
        return Err(Rejection::BadRequest(format!(
            "`action`: {:?} is not a Patroni callback ({})",
            n.action,
            ACTIONS.join(", ")
        )));
    }
    for (field, value, max) in [
        ("scope", &n.scope, 128),
        ("node", &n.node, 128),
        ("role", &n.role, 64),
        ("nonce", &n.nonce, 128),
    ] {
        if value.is_empty() || value.len() > max {
            return Err(Rejection::BadRequest(format!(
                "`{field}`: must be 1..={max} characters"
            )));
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests;
