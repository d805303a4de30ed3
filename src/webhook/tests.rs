use super::*;

const NOW: i64 = 1_795_625_978;

fn secret() -> Secret {
    Secret::new(b"test-secret-0123456789abcdef".to_vec()).expect("long enough")
}

fn body(ts: i64, nonce: &str) -> Vec<u8> {
    serde_json::to_vec(&Notification {
        action: "on_role_change".into(),
        role: "primary".into(),
        scope: "pgha".into(),
        node: "pg2".into(),
        timestamp: ts,
        nonce: nonce.into(),
    })
    .expect("json")
}

/// A request as `notify` signs it.
fn signed(ts: i64, body: Vec<u8>) -> Request {
    let headers = signed_headers(&secret(), ts, &body)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    Request {
        method: "POST".into(),
        headers,
        body,
        iam_caller: None,
    }
}

fn verifier() -> Verifier {
    Verifier::new(Auth::Hmac(secret()), DEFAULT_WINDOW)
}

fn status(r: Result<Notification, Rejection>) -> u16 {
    r.map(|_| 200).unwrap_or_else(|e| e.status())
}

#[test]
fn a_signed_notification_is_accepted() {
    let n = verifier()
        .verify(&signed(NOW, body(NOW, "n1")), NOW)
        .expect("valid");
    assert_eq!(n.scope, "pgha");
    assert_eq!(n.claimed_leader(), Some("pg2"));
}

#[test]
fn missing_bad_tampered_and_stale_signatures_get_401() {
    let v = verifier();
    let mut r = signed(NOW, body(NOW, "a"));
    r.headers.remove(SIGNATURE_HEADER);
    assert_eq!(status(v.verify(&r, NOW)), 401);

    let mut r = signed(NOW, body(NOW, "b"));
    r.headers
        .insert(SIGNATURE_HEADER.into(), format!("v1={}", "00".repeat(32)));
    assert_eq!(status(v.verify(&r, NOW)), 401);

    let mut r = signed(NOW, body(NOW, "c"));
    r.body = body(NOW, "c")
        .into_iter()
        .map(|b| if b == b'2' { b'3' } else { b })
        .collect();
    assert_eq!(status(v.verify(&r, NOW)), 401, "tampered body");

    let mut r = signed(NOW, body(NOW, "d"));
    r.headers
        .insert(TIMESTAMP_HEADER.into(), (NOW + 1).to_string());
    assert_eq!(status(v.verify(&r, NOW)), 401, "timestamp is signed");

    let old = NOW - 301;
    assert_eq!(
        status(v.verify(&signed(old, body(old, "e")), NOW)),
        401,
        "stale"
    );
    let future = NOW + 301;
    assert_eq!(
        status(v.verify(&signed(future, body(future, "f")), NOW)),
        401,
        "future"
    );
    let ok = NOW - 299;
    assert_eq!(
        status(v.verify(&signed(ok, body(ok, "g")), NOW)),
        200,
        "inside the window"
    );

    let mut r = signed(NOW, body(NOW, "h"));
    r.headers.remove(TIMESTAMP_HEADER);
    assert_eq!(status(v.verify(&r, NOW)), 401);
}

#[test]
fn a_replayed_nonce_gets_401_until_the_window_passes() {
    let v = verifier();
    let r = signed(NOW, body(NOW, "same"));
    assert_eq!(status(v.verify(&r, NOW)), 200);
    assert_eq!(status(v.verify(&r, NOW + 1)), 401);
    // A fresh signature with the same nonce is still a replay.
    let later = NOW + 10;
    assert_eq!(
        status(v.verify(&signed(later, body(later, "same")), later)),
        401
    );
}

#[test]
fn size_method_and_content_type_are_checked() {
    let v = verifier();
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(status(v.verify(&signed(NOW, huge), NOW)), 413);
    let mut r = signed(NOW, body(NOW, "m"));
    r.method = "GET".into();
    assert_eq!(status(v.verify(&r, NOW)), 405);
    let mut r = signed(NOW, body(NOW, "t"));
    r.headers.insert("content-type".into(), "text/plain".into());
    assert_eq!(status(v.verify(&r, NOW)), 415);
    let mut r = signed(NOW, body(NOW, "u"));
    r.headers.insert(
        "content-type".into(),
        "application/json; charset=utf-8".into(),
    );
    assert_eq!(status(v.verify(&r, NOW)), 200);
}

#[test]
fn signed_but_malformed_bodies_get_400_naming_the_field() {
    let v = verifier();
    for (b, field) in [
        (b"{not json".to_vec(), "not a notification"),
        (br#"{"action":"on_role_change"}"#.to_vec(), "missing field"),
        (
            format!(r#"{{"action":"drop_table","role":"primary","scope":"pgha","node":"pg2","timestamp":{NOW},"nonce":"x"}}"#)
                .into_bytes(),
            "`action`",
        ),
        (
            format!(r#"{{"action":"on_start","role":"primary","scope":"","node":"pg2","timestamp":{NOW},"nonce":"x"}}"#)
                .into_bytes(),
            "`scope`",
        ),
        (
            format!(r#"{{"action":"on_start","role":"primary","scope":"s","node":"pg2","timestamp":"{NOW}","nonce":"x"}}"#)
                .into_bytes(),
            "`timestamp`",
        ),
        (body(NOW - 5, "ts-mismatch"), "differs"),
    ] {
        let e = v.verify(&signed(NOW, b), NOW).expect_err("must be rejected");
        assert_eq!(e.status(), 400, "{e}");
        assert!(e.to_string().contains(field), "{e} should mention {field}");
    }
}

#[test]
fn disabled_and_iam_modes() {
    let r = signed(NOW, body(NOW, "i"));
    let e = Verifier::new(Auth::Disabled, DEFAULT_WINDOW)
        .verify(&r, NOW)
        .expect_err("disabled");
    assert_eq!(e.status(), 401);
    assert!(e.to_string().contains("ROUTER_WEBHOOK_SECRET"));

    let iam = Verifier::new(Auth::Iam, DEFAULT_WINDOW);
    assert_eq!(
        status(iam.verify(&r, NOW)),
        401,
        "no IAM caller attached by AWS"
    );
    let mut r2 = r.clone();
    r2.iam_caller = Some("arn:aws:sts::123456789012:assumed-role/db/i-0aaa".into());
    assert_eq!(status(iam.verify(&r2, NOW)), 200);
    assert_eq!(
        status(iam.verify(&r2, NOW)),
        401,
        "replay protection applies to IAM too"
    );
}

#[test]
fn secrets_are_never_printed_and_must_be_long() {
    assert_eq!(format!("{:?}", secret()), "Secret(<redacted>)");
    assert!(!format!("{:?}", Auth::Hmac(secret())).contains("test-secret"));
    assert_eq!(
        Secret::new(b"short".to_vec()).err(),
        Some(SecretError::TooShort(5))
    );
}

#[test]
fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
    // Independent vector: printf '%s' '1700000000.{}' | openssl dgst -sha256 -hmac test-secret-0123456789abcdef
    assert_eq!(
        sign(&secret(), 1_700_000_000, b"{}"),
        "v1=ebcc30eddb6d7b4bc23dce56f1fa9113cbb6b2c1cf89df9e5b85995fb1b1277b"
    );
}

/// A function-URL event as in `events/`: signed at `ts` (0: never signed).
fn event(ts: i64, body: &[u8]) -> serde_json::Value {
    let mut headers = serde_json::json!({"content-type": "application/json"});
    if ts != 0 {
        headers[TIMESTAMP_HEADER] = ts.to_string().into();
        headers[SIGNATURE_HEADER] = sign(&secret(), ts, body).into();
    }
    serde_json::json!({"headers": headers, "body": String::from_utf8_lossy(body), "isBase64Encoded": false})
}

/// The request the Lambda sees for a function-URL event.
fn request_of(event: &serde_json::Value) -> Request {
    let headers = event["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    let body = event["body"].as_str().unwrap_or_default();
    let body = if event["isBase64Encoded"] == true {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("base64")
    } else {
        body.as_bytes().to_vec()
    };
    Request {
        method: "POST".into(),
        headers,
        body,
        iam_caller: None,
    }
}

#[test]
fn a_stale_event_re_signed_now_verifies_and_only_once() {
    let later = NOW + 3600;
    let mut ev = event(NOW, &body(NOW, "old"));
    let v = verifier();
    assert_eq!(status(v.verify(&request_of(&ev), later)), 401, "stale");
    resign_event(&mut ev, Some(&secret()), later, "fresh").expect("re-signs");
    let n = v.verify(&request_of(&ev), later).expect("verifies now");
    assert_eq!((n.timestamp, n.nonce.as_str()), (later, "fresh"));
    assert_eq!(ev["headers"][TIMESTAMP_HEADER], later.to_string());
    assert_eq!(status(v.verify(&request_of(&ev), later)), 401, "a replay");
}

#[test]
fn re_signing_keeps_unsigned_events_unsigned_and_base64_bodies_base64() {
    let mut unsigned = event(0, &body(NOW, "u"));
    resign_event(&mut unsigned, None, NOW + 60, "u2").expect("no secret needed");
    assert!(unsigned["headers"].get(SIGNATURE_HEADER).is_none());
    assert!(unsigned["body"].as_str().unwrap_or("").contains("\"u2\""));

    use base64::Engine;
    let mut ev = event(NOW, &body(NOW, "b"));
    ev["body"] = base64::engine::general_purpose::STANDARD
        .encode(body(NOW, "b"))
        .into();
    ev["isBase64Encoded"] = true.into();
    resign_event(&mut ev, Some(&secret()), NOW + 60, "b2").expect("re-signs");
    let n = verifier()
        .verify(&request_of(&ev), NOW + 60)
        .expect("verifies");
    assert_eq!(n.nonce, "b2");
}

#[test]
fn re_signing_a_signed_event_needs_the_secret_and_an_event() {
    let mut ev = event(NOW, &body(NOW, "s"));
    assert_eq!(
        resign_event(&mut ev, None, NOW, "s2"),
        Err(ResignError::NoSecret)
    );
    let mut not_event = serde_json::json!({"body": 5});
    assert!(matches!(
        resign_event(&mut not_event, Some(&secret()), NOW, "x"),
        Err(ResignError::NotAnEvent(_))
    ));
    // A malformed body (no timestamp) is signed as it is: the receiver answers 400, not 401.
    let mut malformed = event(NOW, br#"{"action":"on_role_change"}"#);
    resign_event(&mut malformed, Some(&secret()), NOW + 60, "m").expect("re-signs");
    assert_eq!(
        status(verifier().verify(&request_of(&malformed), NOW + 60)),
        400
    );
}

#[test]
fn nonces_are_random_hex() {
    let (a, b) = (nonce(), nonce());
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
}

#[test]
fn a_nonce_is_kept_until_its_timestamp_leaves_the_window() {
    let v = Verifier::new(Auth::Hmac(secret()), Duration::from_secs(5));
    // Stamped 4 s ahead (a fast clock): accepted once.
    let ahead = NOW + 4;
    assert_eq!(
        status(v.verify(&signed(ahead, body(ahead, "f1")), NOW)),
        200
    );
    // 6.5 s later its timestamp is still valid: the replay must still be refused.
    let later = NOW + 6;
    assert_eq!(
        status(v.verify(&signed(ahead, body(ahead, "f1")), later)),
        401
    );
    // Once the timestamp has left the window, it is refused for its age anyway.
    let e = v
        .verify(&signed(ahead, body(ahead, "f1")), ahead + 6)
        .unwrap_err();
    assert!(e.to_string().contains("window"), "{e}");
}

#[test]
fn timestamps_far_ahead_and_from_before_a_restart_are_refused() {
    let v = Verifier::new(Auth::Hmac(secret()), DEFAULT_WINDOW);
    let far = NOW + i64::try_from(MAX_AHEAD.as_secs()).unwrap_or(30) + 1;
    assert_eq!(status(v.verify(&signed(far, body(far, "a1")), NOW)), 401);
    let restarted = Verifier::new(Auth::Hmac(secret()), DEFAULT_WINDOW).refusing_before(NOW);
    let before = NOW - 2;
    let e = restarted
        .verify(&signed(before, body(before, "b1")), NOW)
        .unwrap_err();
    assert!(e.to_string().contains("before this router started"), "{e}");
    assert_eq!(
        status(restarted.verify(&signed(NOW, body(NOW, "b2")), NOW)),
        200
    );
}
