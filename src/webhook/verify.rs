//! Verifying a webhook before anything else happens: method, size, authentication (an HMAC
//! signature compared in constant time, or the IAM caller AWS attached), timestamp, content
//! type, body shape, and replay. Nothing here calls Patroni or AWS, so a rejected request
//! costs nothing else.
//!
//! Replay: a nonce is remembered until its *timestamp* leaves the accepted window, so a
//! request cannot be accepted twice while its timestamp is valid. A timestamp may be at most
//! `max_clock_skew` old, but at most [`MAX_AHEAD`] in the future; and a long-running receiver
//! (`serve`) refuses timestamps from before it started, so the nonces it forgot by restarting
//! can only be replayed if they were stamped ahead of the restart by at most [`MAX_AHEAD`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hmac::Mac;

use super::{
    Auth, MAX_BODY, Notification, Rejection, Request, SIGNATURE_HEADER, Secret, TIMESTAMP_HEADER,
    parse_notification,
};

/// How far ahead of our clock a timestamp may be (a sender's clock running fast).
pub const MAX_AHEAD: Duration = Duration::from_secs(30);

/// Verifies webhooks and remembers recent nonces (per process).
pub struct Verifier {
    auth: Auth,
    /// How old a timestamp may be.
    window: i64,
    /// How far ahead it may be.
    ahead: i64,
    /// Timestamps before this are refused (the receiver's start), if set.
    not_before: Option<i64>,
    /// Nonce -> when its timestamp leaves the window.
    seen: Mutex<HashMap<String, i64>>,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Verifier {
    pub fn new(auth: Auth, window: Duration) -> Verifier {
        Verifier {
            auth,
            window: secs(window),
            ahead: secs(window.min(MAX_AHEAD)),
            not_before: None,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Refuse timestamps from before `start` (unix seconds): what a restarted receiver forgot.
    pub fn refusing_before(mut self, start: i64) -> Verifier {
        self.not_before = Some(start);
        self
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Check a request at time `now` (unix seconds). Cheap checks first.
    pub fn verify(&self, req: &Request, now: i64) -> Result<Notification, Rejection> {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Err(Rejection::MethodNotAllowed(req.method.clone()));
        }
        if req.body.len() > MAX_BODY {
            return Err(Rejection::TooLarge(req.body.len()));
        }
        self.authenticate(req, now)?;
        let is_json = req
            .headers
            .get("content-type")
            .map(|c| c.to_ascii_lowercase())
            .is_some_and(|c| c.split(';').next().map(str::trim) == Some("application/json"));
        if !is_json {
            return Err(Rejection::UnsupportedMediaType);
        }
        let n = parse_notification(&req.body)?;
        if let Auth::Hmac(_) = self.auth
            && req.headers.get(TIMESTAMP_HEADER).map(|t| t.trim()) != Some(&n.timestamp.to_string())
        {
            return Err(Rejection::BadRequest(
                "`timestamp` differs from X-Router-Timestamp".into(),
            ));
        }
        self.check_time(n.timestamp, now)?;
        self.remember(&n.nonce, n.timestamp, now)?;
        Ok(n)
    }

    fn authenticate(&self, req: &Request, now: i64) -> Result<(), Rejection> {
        match &self.auth {
            Auth::Disabled => Err(Rejection::Unauthorized(
                "webhook auth is not configured on the router (set ROUTER_WEBHOOK_SECRET or \
                 ROUTER_WEBHOOK_AUTH=iam)",
            )),
            Auth::Iam if req.iam_caller.is_none() => Err(Rejection::Unauthorized(
                "no IAM caller: the function URL must use AuthType AWS_IAM",
            )),
            Auth::Iam => Ok(()),
            Auth::Hmac(secret) => self.check_signature(secret, req, now),
        }
    }

    fn check_signature(&self, secret: &Secret, req: &Request, now: i64) -> Result<(), Rejection> {
        let ts = req
            .headers
            .get(TIMESTAMP_HEADER)
            .and_then(|t| t.trim().parse::<i64>().ok())
            .ok_or(Rejection::Unauthorized("missing or bad X-Router-Timestamp"))?;
        self.check_time(ts, now)?;
        let sig = req
            .headers
            .get(SIGNATURE_HEADER)
            .and_then(|s| s.trim().strip_prefix("v1="))
            .and_then(|h| hex::decode(h).ok())
            .ok_or(Rejection::Unauthorized(
                "missing or malformed X-Router-Signature",
            ))?;
        let mut mac = secret.mac();
        mac.update(ts.to_string().as_bytes());
        mac.update(b".");
        mac.update(&req.body);
        // Constant-time comparison.
        mac.verify_slice(&sig)
            .map_err(|_| Rejection::Unauthorized("bad signature"))
    }

    fn check_time(&self, ts: i64, now: i64) -> Result<(), Rejection> {
        if ts < now.saturating_sub(self.window) || ts > now.saturating_add(self.ahead) {
            return Err(Rejection::Unauthorized(
                "timestamp outside the allowed window",
            ));
        }
        if self.not_before.is_some_and(|start| ts < start) {
            return Err(Rejection::Unauthorized(
                "timestamp from before this router started: send it again",
            ));
        }
        Ok(())
    }

    /// Remember `nonce` until its timestamp `ts` leaves the window; refuse it if seen.
    fn remember(&self, nonce: &str, ts: i64, now: i64) -> Result<(), Rejection> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, expires| *expires >= now);
        if seen.contains_key(nonce) {
            return Err(Rejection::Unauthorized("replayed nonce"));
        }
        seen.insert(nonce.to_string(), ts.saturating_add(self.window));
        Ok(())
    }
}
