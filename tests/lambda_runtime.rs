//! The real Lambda runtime path: `cargo lambda watch --only-lambda-apis` emulates the Lambda
//! Runtime API, our binary runs against it exactly as in AWS (`lambda_runtime` polling for
//! invocations), and every sample event in `events/` is invoked with `cargo lambda invoke`.
//! The answers and what moto holds afterwards are the assertions.

mod common;

use std::collections::BTreeSet;

use common::lambda::{Lambda, TEST_SECRET, root};
use common::scenario::{Options, Scenario};
use common::*;
use patroni_router::clock::unix_now;
use patroni_router::webhook::{self, Secret};
use serde_json::{Value, json};
use tokio::process::Command;

fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(name)).expect("event file");
    serde_json::from_str(&text).expect("event is JSON")
}

/// A sample event re-stamped now with the test secret, by the library's re-signer (what
/// `patroni-router notify --resign-event FILE` prints).
fn resign(mut ev: Value) -> Value {
    let secret = Secret::new(TEST_SECRET.as_bytes().to_vec()).expect("secret");
    webhook::resign_event(&mut ev, Some(&secret), unix_now(), &webhook::nonce()).expect("re-sign");
    ev
}

/// `patroni-router notify` with this secret in its environment (none: no secret at all).
fn notify_with(secret: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patroni-router"));
    cmd.arg("notify")
        .env_remove("ROUTER_WEBHOOK_SECRET")
        .env_remove("ROUTER_WEBHOOK_SECRET_FILE");
    if let Some(s) = secret {
        cmd.env("ROUTER_WEBHOOK_SECRET", s);
    }
    cmd
}

/// `patroni-router notify ARGS` with the test secret; its stdout as JSON.
async fn notify_prints(args: &[&str]) -> Value {
    let o = notify_with(Some(TEST_SECRET))
        .args(args)
        .output()
        .await
        .expect("notify");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {o:?}"))
}

fn http_body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or("null")).expect("body is JSON")
}

/// The `error` of a function URL answer's JSON body ("" if none).
fn error_of(answer: &Value) -> String {
    http_body(answer)["error"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn every_sample_event_through_the_lambda_runtime() {
    // Every file in events/ must be exercised here.
    let files: BTreeSet<String> = std::fs::read_dir(root().join("events"))
        .expect("events/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let covered: BTreeSet<String> = [
        "plan.json",
        "scheduled.json",
        "reconcile.json",
        "webhook-unsigned.json",
        "webhook-malformed.json",
        "webhook-signed.json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(files, covered, "add an expectation for each new event file");

    let s = Scenario::new(Options::default()).await;
    let (aws, net, fake) = (&s.aws, &s.net, &s.fake);
    let (tg, zone, record) = (&s.tg, &s.zone, &s.record);
    fake.set_leader("pg1", 1);
    let nodes = nodes_json(fake, &net.instances);
    let config = json!({
        "patroni": {"request_timeout": "500ms", "poll_deadline": "2s"},
        "webhook": {"confirm_timeout": "3s", "confirm_interval": "100ms"},
        "clusters": [{"scope": "pgha", "nodes": nodes,
                      "target_group": {"arn": tg, "port": 5432},
                      "dns": {"hosted_zone_id": zone, "record_name": record}}]
    })
    .to_string();
    let lambda = Lambda::start(&config).await;
    let target = |i: usize| vec![format!("{}:5432", net.instances[i].0)];
    let a_record = || async {
        records(aws, zone, record)
            .await
            .into_iter()
            .next()
            .map(|r| r.3)
            .unwrap_or_default()
    };

    // Direct plan: reports, changes nothing.
    let r = lambda.invoke(&event("plan.json")).await;
    assert_eq!(r["mode"], "plan");
    assert_eq!(r["clusters"][0]["decision"]["primary"], "pg1");
    assert_eq!(r["clusters"][0]["changes"][0]["status"], "planned");
    assert!(registered(aws, tg).await.is_empty());

    // The schedule reconciles.
    let r = lambda.invoke(&event("scheduled.json")).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(registered(aws, tg).await, target(0));
    assert_eq!(a_record().await, vec![net.instances[0].1.clone()]);

    // A direct reconcile in steady state writes nothing.
    let r = lambda.invoke(&event("reconcile.json")).await;
    assert_eq!(r["mode"], "reconcile");
    assert_eq!(r["clusters"][0]["changes"], json!([]));

    // Patroni switches over to pg2. Bad webhooks: 401/400, and no Patroni or AWS call.
    fake.set_leader("pg2", 2);
    let hits: usize = fake.nodes.iter().map(|n| n.hits()).sum();
    let r = lambda.invoke(&event("webhook-unsigned.json")).await;
    assert_eq!(r["statusCode"], 401, "{r}");
    let r = lambda.invoke(&event("webhook-signed.json")).await;
    assert_eq!(
        r["statusCode"], 401,
        "the committed sample is stale until re-signed: {r}"
    );
    assert!(error_of(&r).contains("window"), "{r}");
    let r = lambda
        .invoke(&resign(event("webhook-malformed.json")))
        .await;
    assert_eq!(r["statusCode"], 400, "{r}");
    assert!(error_of(&r).contains("missing field"), "{r}");
    let mut other_scope = resign(event("webhook-signed.json"));
    other_scope["body"] = json!(
        other_scope["body"]
            .as_str()
            .unwrap_or("")
            .replace("pgha", "nope")
    );
    let r = lambda.invoke(&resign(other_scope)).await;
    assert_eq!(r["statusCode"], 404, "{r}");
    assert_eq!(
        fake.nodes.iter().map(|n| n.hits()).sum::<usize>(),
        hits,
        "no Patroni call"
    );
    assert_eq!(registered(aws, tg).await, target(0), "no AWS change");

    // A signed webhook routes the switchover: the sample re-signed by the binary.
    let sample = root().join("events/webhook-signed.json");
    let signed = notify_prints(&["--resign-event", &sample.to_string_lossy()]).await;
    let r = lambda.invoke(&signed).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    let report = http_body(&r);
    assert_eq!(
        report["clusters"][0]["decision"]["primary"], "pg2",
        "{report}"
    );
    assert_eq!(registered(aws, tg).await, target(1));
    assert_eq!(a_record().await, vec![net.instances[1].1.clone()]);

    // The same signed request again is a replay.
    let r = lambda.invoke(&signed).await;
    assert_eq!(r["statusCode"], 401, "{r}");
    assert!(error_of(&r).contains("replayed"), "{r}");

    // The sender end: `patroni-router notify` as Patroni runs it, through the emulator's
    // function URL, into the same function.
    let url = format!("http://127.0.0.1:{}/lambda-url/_/", lambda.port);
    let notify = |secret: Option<&str>, extra: &[&str]| {
        notify_with(secret)
            .args(["--url", &url, "--node", "pg3", "--attempts", "1"])
            .args(extra)
            .args(["on_role_change", "primary", "pgha"])
            .output()
    };
    fake.set_leader("pg3", 3);
    let o = notify(Some("not-the-router-secret-at-all"), &[])
        .await
        .expect("notify");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{o:?}");
    let o = notify(None, &["--auth", "hmac"]).await.expect("notify");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("ROUTER_WEBHOOK_SECRET"),
        "{o:?}"
    );
    assert_eq!(
        registered(aws, tg).await,
        target(1),
        "rejected notifications changed nothing"
    );
    let o = notify(Some(TEST_SECRET), &[]).await.expect("notify");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(registered(aws, tg).await, target(2));
    assert_eq!(a_record().await, vec![net.instances[2].1.clone()]);

    // The curl + openssl sender for nodes without the binary signs the same way.
    fake.set_leader("pg1", 4);
    let callback = |secret: &str| {
        Command::new(root().join("scripts/patroni-callback.sh"))
            .args([
                "--url",
                &url,
                "--node",
                "pg1",
                "on_role_change",
                "primary",
                "pgha",
            ])
            .env("ROUTER_WEBHOOK_SECRET", secret)
            .output()
    };
    let o = callback("not-the-router-secret-at-all")
        .await
        .expect("callback script");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert_eq!(registered(aws, tg).await, target(2));
    let o = callback(TEST_SECRET).await.expect("callback script");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(registered(aws, tg).await, target(0));

    // `notify --print` signs without sending; the printed request, sent as is, is accepted.
    fake.set_leader("pg2", 5);
    let printed = notify_prints(&[
        "--print",
        "--url",
        &url,
        "--node",
        "pg2",
        "on_role_change",
        "primary",
        "pgha",
    ])
    .await;
    assert_eq!(registered(aws, tg).await, target(0), "--print sent nothing");
    let mut req = reqwest::Client::new().post(printed["url"].as_str().expect("url"));
    for (k, v) in printed["headers"].as_object().expect("headers") {
        req = req.header(k.as_str(), v.as_str().expect("header value"));
    }
    let body = printed["body"].as_str().expect("body").to_string();
    let resp = req
        .body(body)
        .send()
        .await
        .expect("POST the printed request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(registered(aws, tg).await, target(1));

    // Secrets never reach the logs: the function's JSON log lines tell what happened to each
    // webhook (accepted, rejected and why) and never carry a secret, good or bad.
    let logs = std::fs::read_to_string(&lambda.log).expect("function logs");
    assert!(
        logs.contains("webhook accepted") && logs.contains("webhook rejected"),
        "{logs}"
    );
    assert!(
        logs.contains("\"decision\""),
        "one line per decision with the evidence"
    );
    for secret in [TEST_SECRET, "not-the-router-secret-at-all"] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    for line in logs.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }

    // Metrics: one EMF document per cluster per reconcile on stdout, none for plan runs.
    let emf: Vec<Value> = std::fs::read_to_string(&lambda.metrics)
        .expect("function stdout")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not EMF ({e}): {l}")))
        .collect();
    assert!(!emf.is_empty(), "no EMF line on stdout");
    // Per cluster (dimension Cluster), and after a scheduled run one for the process: its AWS
    // calls and how far behind verification is (no dimension).
    let (process, emf): (Vec<Value>, Vec<Value>) =
        emf.into_iter().partition(|d| d.get("AwsCalls").is_some());
    for d in emf.iter().chain(&process) {
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "PatroniRouter",
            "{d}"
        );
    }
    for d in &emf {
        assert_eq!(d["Cluster"], "pgha", "{d}");
    }
    assert!(!process.is_empty(), "the scheduled run's process metrics");
    for d in &process {
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]]),
            "{d}"
        );
        assert_eq!(d["AwsThrottled"], 0, "{d}");
        assert!(
            d["AwsCalls"].as_u64().is_some() && d["VerifyUnread"].as_u64().is_some(),
            "{d}"
        );
    }
    let moved: Vec<&Value> = emf.iter().filter(|d| d["PrimaryChanges"] == 1).collect();
    assert!(
        !moved.is_empty() && moved.iter().all(|d| d["DecisionConfirmed"] == 1),
        "the runs that moved routing are counted, with a confirmed decision: {emf:?}"
    );
    assert!(
        emf.iter()
            .any(|d| d["PrimaryChanges"] == 0 && d["ChangesApplied"] == 0),
        "steady-state runs count zero changes: {emf:?}"
    );
}
