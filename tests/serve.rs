//! `patroni-router serve`, the built binary as a service: the webhook's answers (and `notify`
//! against it), the single-flight rule, /metrics scraped over HTTP, readiness, and SIGTERM.
//! AWS is moto, Patroni is the fake from tests/common.

mod common;

use std::time::{Duration, Instant};

use common::fake_patroni::{Reply, patroni_json};
use common::serve::*;
use common::*;
use patroni_router::webhook;
use serde_json::{Value, json};
use tokio::process::Command;

#[tokio::test]
async fn webhook_answers_like_the_lambda_and_notify_works_against_it() {
    let w = World::new().await;
    let serve = Serve::start(&w.config("500ms"), "60s", &[]).await;
    // The first timer run routes pg1.
    serve.wait_ready(200, Duration::from_secs(10)).await;
    assert_eq!(registered(&w.aws, &w.tg).await, w.target(0));

    // Patroni switches over to pg2; bad requests are refused before any Patroni or AWS call.
    w.set_leader_pg2();
    let hits = w.hits();
    let body = notification("on_role_change", "primary", "pgha", "pg2");
    let (s, r) = serve
        .post(
            &[("content-type", "application/json".into())],
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(s, 401, "unsigned: {r}");
    let (s, r) = serve
        .post(
            &signed_headers(body.as_bytes(), "not-the-router-secret-at-all"),
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(s, 401, "bad signature: {r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("bad signature"),
        "{r}"
    );
    let malformed = json!({"action": "on_role_change", "timestamp": now()}).to_string();
    let mut headers = signed_headers(malformed.as_bytes(), TEST_SECRET);
    // The body's timestamp must match the header's: make them equal.
    let ts: i64 = headers[1].1.parse().expect("ts");
    let malformed = json!({"action": "on_role_change", "timestamp": ts}).to_string();
    headers = signed_headers(malformed.as_bytes(), TEST_SECRET);
    let (s, r) = serve.post(&headers, malformed.into_bytes()).await;
    assert_eq!(s, 400, "malformed: {r}");
    assert!(
        r["error"].as_str().unwrap_or("").contains("missing field"),
        "{r}"
    );
    let big = vec![b' '; webhook::MAX_BODY + 100];
    let (s, r) = serve
        .post(&signed_headers(&big, TEST_SECRET), big.clone())
        .await;
    assert_eq!(s, 413, "oversized: {r}");
    let (s, r) = serve
        .notify("on_role_change", "primary", "nope", "pg2")
        .await;
    assert_eq!(s, 404, "unknown scope: {r}");
    let (s, body) = serve.get("/webhook").await;
    assert_eq!(s, 405, "GET /webhook: {body}");
    let (s, _) = serve.get("/nothing-here").await;
    assert_eq!(s, 404);
    assert_eq!(w.hits(), hits, "no Patroni call for refused webhooks");
    assert_eq!(
        registered(&w.aws, &w.tg).await,
        w.target(0),
        "no AWS change"
    );

    // A signed webhook: 200 with the report of the run, and moto routes pg2.
    let (s, report) = serve
        .notify("on_role_change", "primary", "pgha", "pg2")
        .await;
    assert_eq!(s, 200, "{report}");
    let c = &report["clusters"][0];
    assert_eq!(c["scope"], "pgha");
    assert_eq!(c["decision"]["primary"], "pg2", "{report}");
    let applied: Vec<(&str, &str)> = c["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|ch| {
            (
                ch["action"].as_str().unwrap_or(""),
                ch["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(applied.contains(&("register", "applied")), "{report}");
    assert!(applied.contains(&("deregister", "applied")), "{report}");
    assert!(applied.contains(&("upsert", "applied")), "{report}");
    assert_eq!(registered(&w.aws, &w.tg).await, w.target(1));
    assert_eq!(w.a_record().await, vec![w.net.instances[1].1.clone()]);

    // The sender end, unchanged: `patroni-router notify` as Patroni runs it.
    w.fake.set_leader("pg3", 3);
    let url = serve.url("/webhook");
    let o = Command::new(env!("CARGO_BIN_EXE_patroni-router"))
        .args(["notify", "--url", &url, "--node", "pg3", "--attempts", "1"])
        .args(["on_role_change", "primary", "pgha"])
        .env("ROUTER_WEBHOOK_SECRET", TEST_SECRET)
        .env_remove("ROUTER_WEBHOOK_SECRET_FILE")
        .output()
        .await
        .expect("notify");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("HTTP 200"),
        "{o:?}"
    );
    assert_eq!(registered(&w.aws, &w.tg).await, w.target(2));
    assert_eq!(w.a_record().await, vec![w.net.instances[2].1.clone()]);

    // Every answer is counted by status.
    let m = serve.metrics().await;
    for (status, n) in [
        ("200", 2.0),
        ("401", 2.0),
        ("400", 1.0),
        ("413", 1.0),
        ("404", 1.0),
        ("405", 1.0),
    ] {
        let series = format!("patroni_router_webhook_requests_total{{status=\"{status}\"}}");
        assert_eq!(expect_metric(&m, &series), n, "{series}");
    }

    // The logs say what happened to each webhook and never carry a secret.
    let logs = serve.logs();
    assert!(
        logs.contains("webhook accepted") && logs.contains("webhook rejected"),
        "{logs}"
    );
    for secret in [TEST_SECRET, "not-the-router-secret-at-all"] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
}

impl World {
    fn set_leader_pg2(&self) {
        self.fake.set_leader("pg2", 2);
    }
}

#[tokio::test]
async fn webhooks_during_a_run_queue_exactly_one_follow_up() {
    let w = World::new().await;
    let serve = Serve::start(&w.config("3s"), "60s", &[]).await;
    serve.wait_ready(200, Duration::from_secs(10)).await;
    // Every /patroni answer now takes 300 ms: a webhook run (confirm poll + reconcile poll)
    // takes over 600 ms.
    for n in &w.fake.nodes {
        let role = if n.name == "pg1" {
            "primary"
        } else {
            "replica"
        };
        n.set(
            "/patroni",
            Reply::Slow(
                Duration::from_millis(300),
                patroni_json("pgha", &n.name, role, "running", 1),
            ),
        );
    }
    let first = tokio::spawn({
        let http = serve.http.clone();
        let url = serve.url("/webhook");
        async move {
            let body = notification("on_role_change", "primary", "pgha", "pg1");
            let mut req = http.post(url).body(body.clone());
            for (k, v) in signed_headers(body.as_bytes(), TEST_SECRET) {
                req = req.header(k, v);
            }
            let r = req.send().await.expect("POST");
            (r.status().as_u16(), r.json::<Value>().await.expect("JSON"))
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Three more while the first run is in flight.
    let (b, c, d) = tokio::join!(
        serve.notify("on_role_change", "primary", "pgha", "pg1"),
        serve.notify("on_start", "replica", "pgha", "pg2"),
        serve.notify("on_role_change", "primary", "pgha", "pg1"),
    );
    let a = first.await.expect("first webhook");
    for (s, r) in [&a, &b, &c, &d] {
        assert_eq!(*s, 200, "{r}");
        assert_eq!(r["clusters"][0]["decision"]["primary"], "pg1");
    }
    // The three queued ones got the report of the same (follow-up) run.
    assert_eq!(b.1, c.1);
    assert_eq!(c.1, d.1);

    // Longer than a run: an extra run after the answers would be counted by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = serve.metrics().await;
    assert_eq!(
        expect_metric(
            &m,
            "patroni_router_reconciles_total{cluster=\"pgha\",trigger=\"webhook\"}"
        ),
        2.0,
        "the first webhook's run and exactly one follow-up"
    );
    assert_eq!(
        expect_metric(
            &m,
            "patroni_router_reconciles_total{cluster=\"pgha\",trigger=\"timer\"}"
        ),
        1.0
    );
    for n in &w.fake.nodes {
        assert_eq!(
            n.max_concurrent("/patroni"),
            1,
            "{}: runs of one cluster overlapped",
            n.name
        );
    }
}

#[tokio::test]
async fn metrics_after_known_reconciles() {
    let w = World::new().await;
    w.set_view("pg1", 1, &[("pg2", 1234), ("pg3", 5678)]);
    let serve = Serve::start(&w.config("500ms"), "60s", &[]).await;
    serve.wait_ready(200, Duration::from_secs(10)).await;
    let m = serve.metrics().await;
    assert_eq!(
        expect_metric(
            &m,
            "patroni_router_decisions_total{cluster=\"pgha\",kind=\"confirmed\"}"
        ),
        1.0
    );
    assert_eq!(
        expect_metric(
            &m,
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg2\"}"
        ),
        1234.0
    );
    assert_eq!(
        expect_metric(
            &m,
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg3\"}"
        ),
        5678.0
    );

    // A switchover to pg2 with new lags, routed by a webhook.
    w.set_view("pg2", 2, &[("pg1", 42), ("pg3", 99)]);
    let (s, r) = serve
        .notify("on_role_change", "primary", "pgha", "pg2")
        .await;
    assert_eq!(s, 200, "{r}");
    let m = serve.metrics().await;
    for (series, value) in [
        (
            "patroni_router_decisions_total{cluster=\"pgha\",kind=\"confirmed\"}",
            2.0,
        ),
        (
            "patroni_router_decisions_total{cluster=\"pgha\",kind=\"no_primary\"}",
            0.0,
        ),
        (
            "patroni_router_primary_changes_total{cluster=\"pgha\"}",
            1.0,
        ),
        ("patroni_router_apply_errors_total{cluster=\"pgha\"}", 0.0),
        (
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg1\"}",
            42.0,
        ),
        (
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg3\"}",
            99.0,
        ),
        (
            "patroni_router_reconcile_duration_seconds_count{cluster=\"pgha\"}",
            2.0,
        ),
        (
            "patroni_router_reconciles_total{cluster=\"pgha\",trigger=\"webhook\"}",
            1.0,
        ),
        ("patroni_router_webhook_requests_total{status=\"200\"}", 1.0),
    ] {
        assert_eq!(expect_metric(&m, series), value, "{series}\n{m}");
    }
    assert!(
        metric(
            &m,
            "patroni_router_replication_lag_bytes{cluster=\"pgha\",member=\"pg2\"}"
        )
        .is_none(),
        "the new leader has no lag series: {m}"
    );
    let last = expect_metric(
        &m,
        "patroni_router_last_success_timestamp_seconds{cluster=\"pgha\"}",
    );
    assert!((last - now() as f64).abs() < 30.0, "{last}");
    assert!(m.contains("# TYPE patroni_router_reconcile_duration_seconds histogram"));
    assert_eq!(registered(&w.aws, &w.tg).await, w.target(1));
}

/// Readiness is this process taking webhooks and reaching its dependencies: a cluster without
/// a primary (every failover; Patroni down) keeps it ready — webhooks must get through exactly
/// then — and AWS unreachable for `--ready-after` intervals makes it not ready.
#[tokio::test]
async fn readiness_follows_aws_not_the_clusters() {
    let w = World::new().await;
    let serve = Serve::start(&w.config("200ms"), "200ms", &["--ready-after", "3"]).await;
    let ready = serve.wait_ready(200, Duration::from_secs(10)).await;
    assert_eq!(ready["ready"], true);
    // Every node stops answering: no primary can be confirmed; still ready.
    for n in &w.fake.nodes {
        n.fail(Reply::Close);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, body) = serve.get("/readyz").await;
    assert_eq!(s, 200, "ready while no primary can be confirmed: {body}");
    let m = serve.metrics().await;
    assert!(
        expect_metric(
            &m,
            "patroni_router_decisions_total{cluster=\"pgha\",kind=\"no_primary\"}"
        ) >= 1.0,
        "cluster health is in the metrics"
    );
    // AWS unreachable (a closed port): not ready after 3 intervals, alive all along.
    let mut config: Value = serde_json::from_str(&w.config("200ms")).expect("json");
    config["aws"] = json!({"endpoint_url": "http://127.0.0.1:1", "max_attempts": 1,
                           "attempt_timeout": "200ms"});
    let cut_off = Serve::start(&config.to_string(), "200ms", &["--ready-after", "3"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let body = cut_off.wait_ready(503, Duration::from_secs(10)).await;
        if body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("AWS unreachable")
        {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}\n{}", cut_off.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["ready"], false);
    let (s, _) = cut_off.get("/healthz").await;
    assert_eq!(s, 200, "alive while not ready");
}

#[tokio::test]
async fn sigterm_finishes_the_run_in_flight_then_exits_0() {
    let w = World::new().await;
    // The run's registration takes 1.5 s: SIGTERM arrives while it is in flight.
    let proxy = aws_proxy::AwsProxy::start(moto_endpoint()).await;
    proxy.inject(
        "RegisterTargets",
        aws_proxy::Fault::Delay(Duration::from_millis(1500)),
        1,
    );
    let mut config: Value = serde_json::from_str(&w.config("3s")).expect("json");
    config["aws"] = json!({"endpoint_url": proxy.url, "attempt_timeout": "5s"});
    let mut serve = Serve::start(&config.to_string(), "60s", &[]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.calls("RegisterTargets") == 0 {
        assert!(
            Instant::now() < deadline,
            "no run registered: {}",
            serve.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered(&w.aws, &w.tg).await.is_empty(), "run in flight");
    let pid = serve.child.id().expect("pid").to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(15), serve.child.wait())
        .await
        .expect("serve exits after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0), "{}", serve.logs());
    assert_eq!(
        registered(&w.aws, &w.tg).await,
        w.target(0),
        "the run in flight finished before the exit"
    );
    let logs = serve.logs();
    assert!(logs.contains("shutting down"), "{logs}");
}
