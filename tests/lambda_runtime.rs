//! The real Lambda runtime path: `cargo lambda watch --only-lambda-apis` emulates the Lambda
//! Runtime API, our binary runs against it exactly as in AWS (`lambda_runtime` polling for
//! invocations), and every sample event in `events/` is invoked with `cargo lambda invoke`.
//! The answers and what moto holds afterwards are the assertions.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::fake_patroni::FakeCluster;
use common::*;
use patroni_router::webhook::{self, Secret};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// The test secret the README documents for the sample events.
const TEST_SECRET: &str = "patroni-router-test-secret-0123456789";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo_lambda() -> PathBuf {
    let p = std::env::var_os("CARGO_LAMBDA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/cargo-lambda"));
    assert!(
        p.exists(),
        "{} not found: run `make venv` (cargo-lambda comes from PyPI) or set CARGO_LAMBDA",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

fn event(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("events").join(name)).expect("event file");
    serde_json::from_str(&text).expect("event is JSON")
}

/// What scripts/sign-event.py does: a fresh timestamp and nonce, a new signature.
fn resign(mut ev: Value) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("clock");
    let mut body = ev["body"].as_str().unwrap_or_default().to_string();
    if let Ok(mut doc) = serde_json::from_str::<Value>(&body)
        && doc.get("timestamp").is_some()
    {
        doc["timestamp"] = json!(now);
        doc["nonce"] = json!(format!("test-{}", unique("")));
        body = doc.to_string();
        ev["body"] = json!(body);
    }
    let secret = Secret::new(TEST_SECRET.as_bytes().to_vec()).expect("secret");
    ev["headers"][webhook::TIMESTAMP_HEADER] = json!(now.to_string());
    ev["headers"][webhook::SIGNATURE_HEADER] = json!(webhook::sign(&secret, now, body.as_bytes()));
    ev
}

struct Lambda {
    port: u16,
    _emulator: Child,
    _function: Child,
    /// The function's logs (stderr), to check what they do and do not say.
    log: PathBuf,
    /// The function's stdout: CloudWatch EMF metric lines.
    metrics: PathBuf,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.metrics);
    }
}

impl Lambda {
    async fn start(config: &str) -> Lambda {
        let port = free_port();
        let emulator = Command::new(cargo_lambda())
            .args([
                "lambda",
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start cargo lambda watch");
        wait_for_port(port).await;
        let log = std::env::temp_dir().join(format!("{}.log", unique("lambda-")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let metrics = std::env::temp_dir().join(format!("{}.emf", unique("lambda-")));
        let metrics_file = std::fs::File::create(&metrics).expect("metrics file");
        let function = Command::new(env!("CARGO_BIN_EXE_patroni-router"))
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("ROUTER_CONFIG", config)
            .env("ROUTER_WEBHOOK_SECRET", TEST_SECRET)
            .env_remove("ROUTER_CONFIG_FILE")
            .stdout(Stdio::from(metrics_file))
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .expect("start the function");
        Lambda {
            port,
            _emulator: emulator,
            _function: function,
            log,
            metrics,
        }
    }

    /// `cargo lambda invoke --data-file` with this payload; returns the function's answer.
    async fn invoke(&self, payload: &Value) -> Value {
        let file = std::env::temp_dir().join(format!("{}.json", unique("event-")));
        std::fs::write(&file, payload.to_string()).expect("write event");
        let out = Command::new(cargo_lambda())
            .args([
                "lambda",
                "invoke",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .arg("_")
            .output()
            .await
            .expect("cargo lambda invoke");
        let _ = std::fs::remove_file(&file);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "invoke failed: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {stdout}"))
    }
}

fn http_body(answer: &Value) -> Value {
    serde_json::from_str(answer["body"].as_str().unwrap_or("null")).expect("body is JSON")
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

    let aws = aws().await;
    let net = network(3).await;
    let fake = FakeCluster::start("pgha", &["pg1", "pg2", "pg3"]).await;
    fake.set_leader("pg1", 1);
    let tg = create_target_group(&aws, &net.vpc_id, false).await;
    let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
    let record = format!("db.{zone_name}");
    let nodes = nodes_json(&fake, &net.instances);
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
        records(&aws, &zone, &record)
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
    assert!(registered(&aws, &tg).await.is_empty());

    // The schedule reconciles.
    let r = lambda.invoke(&event("scheduled.json")).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(registered(&aws, &tg).await, target(0));
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
    assert!(
        http_body(&r)["error"]
            .as_str()
            .unwrap_or("")
            .contains("window"),
        "{r}"
    );
    let r = lambda
        .invoke(&resign(event("webhook-malformed.json")))
        .await;
    assert_eq!(r["statusCode"], 400, "{r}");
    assert!(
        http_body(&r)["error"]
            .as_str()
            .unwrap_or("")
            .contains("missing field"),
        "{r}"
    );
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
    assert_eq!(registered(&aws, &tg).await, target(0), "no AWS change");

    // A signed webhook routes the switchover.
    let signed = resign(event("webhook-signed.json"));
    let r = lambda.invoke(&signed).await;
    assert_eq!(r["statusCode"], 200, "{r}");
    let report = http_body(&r);
    assert_eq!(
        report["clusters"][0]["decision"]["primary"], "pg2",
        "{report}"
    );
    assert_eq!(registered(&aws, &tg).await, target(1));
    assert_eq!(a_record().await, vec![net.instances[1].1.clone()]);

    // The same signed request again is a replay.
    let r = lambda.invoke(&signed).await;
    assert_eq!(r["statusCode"], 401, "{r}");
    assert!(
        http_body(&r)["error"]
            .as_str()
            .unwrap_or("")
            .contains("replayed"),
        "{r}"
    );

    // The sender end: `patroni-router notify` as Patroni runs it, through the emulator's
    // function URL, into the same function.
    let url = format!("http://127.0.0.1:{}/lambda-url/_/", lambda.port);
    let notify = |secret: Option<&str>, extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_patroni-router"));
        cmd.args(["notify", "--url", &url, "--node", "pg3", "--attempts", "1"])
            .args(extra);
        cmd.args(["on_role_change", "primary", "pgha"]);
        cmd.env_remove("ROUTER_WEBHOOK_SECRET")
            .env_remove("ROUTER_WEBHOOK_SECRET_FILE");
        if let Some(s) = secret {
            cmd.env("ROUTER_WEBHOOK_SECRET", s);
        }
        cmd.output()
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
        registered(&aws, &tg).await,
        target(1),
        "rejected notifications changed nothing"
    );
    let o = notify(Some(TEST_SECRET), &[]).await.expect("notify");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(registered(&aws, &tg).await, target(2));
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
    assert_eq!(registered(&aws, &tg).await, target(2));
    let o = callback(TEST_SECRET).await.expect("callback script");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(registered(&aws, &tg).await, target(0));

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
    for d in &emf {
        assert_eq!(
            d["_aws"]["CloudWatchMetrics"][0]["Namespace"], "PatroniRouter",
            "{d}"
        );
        assert_eq!(d["Cluster"], "pgha", "{d}");
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
