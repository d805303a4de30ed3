//! The CLI binary as a user runs it: exit codes, messages, JSON and text output, against moto
//! and fake Patroni nodes.

mod common;

use common::cli::*;
use common::fake_patroni::{FakeCluster, Reply};
use common::*;
use serde_json::{Value, json};
use tokio::process::Command;

#[tokio::test]
async fn bad_config_exits_1_naming_the_field() {
    let cfg = write_config(
        r#"{"clusters": [{"scope": "pgha", "nodes": [
            {"name": "pg1", "api_url": "http://127.0.0.1:1", "address": "10.0.0.1", "instance_id": "i-1"}],
            "dns": {"hosted_zone_id": "Z1", "record_name": "db.example.", "ttl": 99999}}]}"#,
    );
    let o = run(&["plan", "--config", cfg.arg()], &[]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("clusters[0].dns.ttl"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[tokio::test]
async fn missing_config_says_where_it_is_looked_for() {
    let o = run(&["plan"], &[]).await;
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("--config") && e.contains("ROUTER_CONFIG"), "{e}");
}

#[tokio::test]
async fn unreadable_config_file_is_named() {
    let o = run(&["plan", "--config", "/nonexistent/router.json"], &[]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/router.json"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn reconcile_json_status_table_and_env_config() {
    let aws = aws().await;
    let net = network(2).await;
    let fake = FakeCluster::start("pgha", &["pg1", "pg2"]).await;
    fake.set_leader("pg2", 3);
    let tg = create_target_group(&aws, &net.vpc_id, false).await;
    let nodes = nodes_json(&fake, &net.instances);
    let config = json!({"clusters": [{"scope": "pgha", "nodes": nodes,
                        "target_group": {"arn": tg, "port": 5432}}]})
    .to_string();
    let cfg = write_config(&config);

    let o = run(
        &["reconcile", "--config", cfg.arg(), "--output", "json"],
        &[],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).expect("stdout is the JSON report");
    assert_eq!(report["ok"], true);
    assert_eq!(report["clusters"][0]["decision"]["kind"], "confirmed");
    assert_eq!(report["clusters"][0]["decision"]["primary"], "pg2");
    assert_eq!(report["clusters"][0]["changes"][0]["status"], "applied");
    assert_eq!(
        registered(&aws, &tg).await,
        vec![format!("{}:5432", net.instances[1].0)]
    );

    // Config from the environment, as in Lambda; status shows the routing.
    let o = run(&["status"], &[("ROUTER_CONFIG", &config)]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = stdout(&o);
    let pg2 = table
        .lines()
        .find(|l| l.starts_with("| pg2"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        pg2.contains("primary *") && pg2.contains("tg:") && pg2.contains("| 3 "),
        "{table}"
    );
    let pg1 = table
        .lines()
        .find(|l| l.starts_with("| pg1"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(pg1.contains("replica") && !pg1.contains("tg:"), "{table}");

    // Text plan in steady state.
    let o = run(&["plan", "--config", cfg.arg()], &[]).await;
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("pgha: primary pg2") && stdout(&o).contains("no change"),
        "{}",
        stdout(&o)
    );

    // A failing AWS resource: exit 2 and the error names it.
    let broken = config.replace("targetgroup/", "targetgroup/gone-");
    let o = run(&["reconcile"], &[("ROUTER_CONFIG", &broken)]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stdout(&o).contains("gone-"), "{}", stdout(&o));

    // Unknown scope.
    let o = run(&["plan", "--config", cfg.arg(), "--scope", "nope"], &[]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nope"));
}

#[tokio::test]
async fn watch_follows_a_failover_and_stops_on_sigterm() {
    let aws = aws().await;
    let net = network(2).await;
    let fake = FakeCluster::start("pgha", &["pg1", "pg2"]).await;
    fake.set_leader("pg1", 1);
    let tg = create_target_group(&aws, &net.vpc_id, false).await;
    let nodes = nodes_json(&fake, &net.instances);
    let config = json!({"clusters": [{"scope": "pgha", "nodes": nodes,
                        "target_group": {"arn": tg, "port": 5432}}]})
    .to_string();
    let mut child = Command::new(BIN)
        .args(["watch", "--interval", "200ms", "--output", "json"])
        .env("ROUTER_CONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn watch");
    let want = |i: usize| vec![format!("{}:5432", net.instances[i].0)];
    let wait_for = |i: usize| {
        let aws = aws.clone();
        let tg = tg.clone();
        let want = want(i);
        async move {
            for _ in 0..100 {
                if registered(&aws, &tg).await == want {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(wait_for(0).await, "watch routed the first leader");
    fake.set_leader("pg2", 2);
    assert!(wait_for(1).await, "watch followed the failover");
    for n in &fake.nodes {
        n.fail(Reply::Close);
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        registered(&aws, &tg).await,
        want(1),
        "fail-static while Patroni is gone"
    );

    let pid = child.id().expect("pid").to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
        .await
        .expect("watch exits after SIGTERM")
        .expect("wait");
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
}
