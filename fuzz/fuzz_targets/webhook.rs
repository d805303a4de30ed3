//! The webhook's untrusted input: any body, signed correctly or not, through the verifier;
//! any JSON through the Lambda event classifier. Rejections, never panics.
#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use patroni_router::entry::lambda::classify;
use patroni_router::webhook::{self, Auth, Request, Secret, Verifier};

const NOW: i64 = 1_795_625_978;

fuzz_target!(|data: &[u8]| {
    let Ok(secret) = Secret::new(b"fuzz-secret-0123456789abcdef".to_vec()) else { return };
    let verifier = Verifier::new(Auth::Hmac(secret.clone()), Duration::from_secs(300));
    let signed = data.first().is_some_and(|b| b % 2 == 0);
    let mut headers = HashMap::new();
    headers.insert("content-type".to_string(), "application/json".to_string());
    headers.insert(webhook::TIMESTAMP_HEADER.to_string(), NOW.to_string());
    let sig = if signed { webhook::sign(&secret, NOW, data) } else { String::from_utf8_lossy(data).into_owned() };
    headers.insert(webhook::SIGNATURE_HEADER.to_string(), sig);
    let req = Request { method: "POST".into(), headers, body: data.to_vec(), iam_caller: None };
    if let Err(rejection) = verifier.verify(&req, NOW) {
        assert!([400, 401, 404, 405, 413, 415].contains(&rejection.status()));
    }
    let _ = webhook::parse_notification(data);
    if let Ok(value) = serde_json::from_slice(data) {
        let _ = classify(&value);
    }
});
