//! The sender's half of the wire format, in one place: the HMAC signature, the headers of a
//! signed request, fresh nonces, and re-signing a Lambda function-URL event (the samples in
//! `events/` are stale until re-stamped). `patroni-router notify` and the tests use these;
//! `scripts/patroni-callback.sh` is the one other signer (curl + openssl, for nodes without
//! the binary), and a test checks it against the same verifier.

use base64::Engine;
use hmac::Mac;
use serde_json::{Value, json};

use super::{SIGNATURE_HEADER, Secret, TIMESTAMP_HEADER};

/// The `X-Router-Signature` value for a body sent at `timestamp`.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let mut mac = secret.mac();
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The headers of a signed request, in this order: content type, timestamp, signature.
pub fn signed_headers(secret: &Secret, timestamp: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".to_string()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, timestamp, body)),
    ]
}

/// `N` random bytes from the OS.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS RNG does not fail on Linux; if it ever did, the time-based fallback still
    // differs per request, which is all a nonce needs.
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()] ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    b
}

/// A fresh nonce: 16 random bytes as hex.
pub fn nonce() -> String {
    hex::encode(random_bytes::<16>())
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResignError {
    #[error("not a function URL event: {0}")]
    NotAnEvent(&'static str),
    #[error("the body is marked base64 but does not decode: {0}")]
    Base64(String),
    #[error(
        "the event is signed (x-router-signature): set ROUTER_WEBHOOK_SECRET or \
         ROUTER_WEBHOOK_SECRET_FILE to re-sign it"
    )]
    NoSecret,
}

/// Re-stamp a function-URL event so that it verifies at `now`: a body that carries a
/// `timestamp` gets `now` and `nonce`; an event with an `x-router-signature` header gets a
/// fresh `x-router-timestamp` and signature (that needs `secret`). An unsigned event stays
/// unsigned. A base64 body (`isBase64Encoded`) stays base64.
pub fn resign_event(
    event: &mut Value,
    secret: Option<&Secret>,
    now: i64,
    nonce: &str,
) -> Result<(), ResignError> {
    let base64 = event["isBase64Encoded"].as_bool().unwrap_or(false);
    let raw = match &event["body"] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        _ => return Err(ResignError::NotAnEvent("`body` is not a string")),
    };
    let mut body = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(raw.as_bytes())
            .map_err(|e| ResignError::Base64(e.to_string()))?
    } else {
        raw.into_bytes()
    };
    if let Ok(mut doc) = serde_json::from_slice::<Value>(&body)
        && doc.get("timestamp").is_some()
    {
        doc["timestamp"] = json!(now);
        doc["nonce"] = json!(nonce);
        body = doc.to_string().into_bytes();
        event["body"] = json!(if base64 {
            base64::engine::general_purpose::STANDARD.encode(&body)
        } else {
            String::from_utf8_lossy(&body).into_owned()
        });
    }
    let Some(headers) = event.get_mut("headers").and_then(Value::as_object_mut) else {
        return Err(ResignError::NotAnEvent("no `headers` object"));
    };
    if headers.contains_key(SIGNATURE_HEADER) {
        let secret = secret.ok_or(ResignError::NoSecret)?;
        headers.insert(TIMESTAMP_HEADER.into(), json!(now.to_string()));
        headers.insert(SIGNATURE_HEADER.into(), json!(sign(secret, now, &body)));
    }
    Ok(())
}
