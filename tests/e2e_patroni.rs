//! End to end on REAL Patroni: etcd, three Patroni nodes and PostgreSQL on loopback
//! (scripts/localcluster.sh), moto as AWS, and the `patroni-router watch` binary. Each scenario
//! is a real fault; the assertions are on what moto holds, sampled throughout. The routing lag
//! of each failover is printed (the numbers go to bench/RESULTS.md); nothing here asserts on time
//! beyond generous liveness bounds.
//!
//! Needs root (PostgreSQL runs as `postgres` via setpriv) and `scripts/localcluster.sh install`
//! (which `make test` runs).

mod common;

use std::time::{Duration, Instant};

use common::cluster::*;
use common::*;
use common::{nlb_forwarder, writer};
use serde_json::{Value, json};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_patroni_failovers_are_routed_and_faults_change_nothing() {
    let _serial = SERIAL.lock().await;
    let (c, env, _watch) = setup(false).await;
    let (aws, tg) = (env.aws.clone(), env.tg.clone());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("http");
    let sampler = Sampler::start(aws.clone(), tg.clone(), &c);
    let mut lags = Vec::new();

    // 1. The initial leader is routed.
    let first = primaries(&http, &c.nodes).await;
    assert_eq!(first.len(), 1, "one primary after bootstrap: {first:?}");
    let mut leader = first[0].clone();
    assert!(
        env.wait_routed(&env.target(c.index(&leader)), Duration::from_secs(30))
            .await,
        "initial routing"
    );
    // The read endpoint holds both streaming replicas (real Patroni lag, within 16 MiB).
    assert_eq!(
        env.wait_read_endpoint(&c, &leader, Duration::from_secs(30))
            .await,
        env.replicas_of(&c, &leader),
        "the read endpoint holds the two replicas"
    );

    // 2. Switchover.
    let mark = sampler.mark();
    let to = c
        .nodes
        .iter()
        .map(|(n, _)| n.clone())
        .find(|n| *n != leader)
        .expect("a replica");
    c.run("switchover", Some(&to)).await;
    let new = wait_primary_other_than(&c, &leader, Duration::from_secs(30))
        .await
        .expect("switchover promoted");
    assert_eq!(new, to);
    let want = env.target(c.index(&new));
    assert!(
        env.wait_routed(&want, Duration::from_secs(30)).await,
        "switchover routed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // let the sampler see it too
    let s = sampler.since(mark);
    check_samples(
        &s,
        &[env.target(c.index(&leader)), want.clone()],
        "switchover",
    );
    lags.push(("switchover", lag(&s, &new, &want)));
    let recs = records(&env.aws, &env.zone, &env.record).await;
    assert_eq!(
        recs[0].3,
        vec![env.instances[c.index(&new)].1.clone()],
        "the record follows"
    );
    // The read endpoint follows too: the new primary leaves it, the demoted one joins it once
    // it streams from the new primary.
    assert_eq!(
        env.wait_read_endpoint(&c, &new, Duration::from_secs(60))
            .await,
        env.replicas_of(&c, &new),
        "after the switchover the read endpoint holds the two replicas, not the primary"
    );
    leader = new;

    // 3. kill -9 of the primary's host (Patroni and postmaster).
    let mark = sampler.mark();
    let old_target = env.target(c.index(&leader));
    c.run("kill", Some(&leader)).await;
    let new = wait_primary_other_than(&c, &leader, Duration::from_secs(60))
        .await
        .expect("failover after host loss");
    let want = env.target(c.index(&new));
    assert!(
        env.wait_routed(&want, Duration::from_secs(30)).await,
        "host-loss failover routed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // let the sampler see it too
    let s = sampler.since(mark);
    check_samples(&s, &[old_target.clone(), want.clone()], "kill -9");
    // Until the new primary was promoted, routing stayed on the dead one (fail-static).
    for x in s.iter().take_while(|x| x.primaries.is_empty()) {
        assert_eq!(
            x.targets, old_target,
            "kill -9: routing moved before a primary was confirmed"
        );
    }
    lags.push(("kill -9", lag(&s, &new, &want)));
    c.run("start", Some(&leader)).await; // the old host comes back as a replica
    leader = new;

    // 4. SIGSTOP of the primary's Patroni: PostgreSQL stays writable, another node is promoted.
    let mark = sampler.mark();
    let frozen = leader.clone();
    tokio::time::sleep(Duration::from_secs(5)).await; // let the restarted node rejoin
    c.run("freeze", Some(&frozen)).await;
    let new = wait_primary_other_than(&c, &frozen, Duration::from_secs(60))
        .await
        .expect("failover after freeze");
    let want = env.target(c.index(&new));
    assert!(
        env.wait_routed(&want, Duration::from_secs(30)).await,
        "freeze failover routed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await; // let the sampler see it too
    let s = sampler.since(mark);
    check_samples(&s, &[env.target(c.index(&frozen)), want.clone()], "SIGSTOP");
    lags.push(("SIGSTOP", lag(&s, &new, &want)));
    c.run("thaw", Some(&frozen)).await;
    // The thawed node demotes itself; routing stays on the new leader.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        registered(&env.aws, &env.tg).await,
        want,
        "the frozen old primary is never routed again"
    );
    leader = new;

    // 5. etcd down: no primary can be confirmed; routing must not change. Then it converges.
    let mark = sampler.mark();
    let before = registered(&env.aws, &env.tg).await;
    c.run("etcd-stop", None).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let s = sampler.since(mark);
    // The samples must cover the outage without holes (how many depends on how slowly the
    // nodes answer while their DCS is gone).
    let span = s
        .last()
        .map(|l| l.at)
        .zip(s.first().map(|f| f.at))
        .map(|(l, f)| l - f);
    let gap = s.windows(2).map(|w| w[1].at - w[0].at).max();
    assert!(
        span >= Some(Duration::from_secs(10)) && gap <= Some(Duration::from_secs(1)),
        "sampled while etcd was down: {} samples over {span:?}, largest gap {gap:?}",
        s.len()
    );
    for x in &s {
        assert_eq!(x.targets, before, "etcd down: routing changed: {x:?}");
    }
    c.run("etcd-start", None).await;
    let start = Instant::now();
    let mut converged = false;
    while start.elapsed() < Duration::from_secs(60) && !converged {
        let p = primaries(&http, &c.nodes).await;
        if p.len() == 1 && registered(&env.aws, &env.tg).await == env.target(c.index(&p[0])) {
            converged = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        converged,
        "after etcd returns, routing converges on the primary"
    );
    let _ = leader;

    for (name, l) in &lags {
        record(&format!(
            "routing lag ({name}, watch 250ms): {}",
            l.map_or("n/a".to_string(), |d| format!("{} ms", d.as_millis()))
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_failovers_with_sync_replication() {
    let _serial = SERIAL.lock().await;
    let (c, env, _watch) = setup(true).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("http");
    let leader = primaries(&http, &c.nodes).await.pop().expect("a primary");
    assert!(
        env.wait_routed(&env.target(c.index(&leader)), Duration::from_secs(30))
            .await
    );

    // Clients connect through the address the router maintains (here: the NLB stand-in).
    let backends = env
        .instances
        .iter()
        .map(|(id, _)| id.clone())
        .zip(c.pg_ports.iter().copied())
        .collect();
    let fwd = nlb_forwarder::Forwarder::start(env.aws.clone(), env.tg.clone(), backends).await;
    let target = || writer::Target {
        host: "127.0.0.1".into(),
        port: fwd.port,
        user: "postgres".into(),
        password: "postgres-local".into(),
    };
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let client = tokio::spawn(writer::run(target(), stop_rx));
    tokio::time::sleep(Duration::from_secs(3)).await;

    // With synchronous_mode, Patroni switches over only to the sync standby.
    let to = wait_sync_standby(&c, Duration::from_secs(30))
        .await
        .expect("a sync standby before the switchover");
    c.run("switchover", Some(&to)).await;
    let new = wait_primary_other_than(&c, &leader, Duration::from_secs(30))
        .await
        .expect("switchover");
    assert!(
        env.wait_routed(&env.target(c.index(&new)), Duration::from_secs(30))
            .await
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert!(
        wait_sync_standby(&c, Duration::from_secs(30))
            .await
            .is_some(),
        "a sync standby before the host loss"
    );
    c.run("kill", Some(&new)).await;
    let newer = wait_primary_other_than(&c, &new, Duration::from_secs(60))
        .await
        .expect("failover");
    assert!(
        env.wait_routed(&env.target(c.index(&newer)), Duration::from_secs(30))
            .await
    );
    tokio::time::sleep(Duration::from_secs(5)).await;

    let _ = stop.send(true);
    let log = client.await.expect("writer");
    let missing = writer::missing(&target(), &log)
        .await
        .expect("read back through the router's address");
    record(&format!(
        "writer (sync replication): {} rows acknowledged, {} missing, {} reconnects, write-error windows: {:?}",
        log.acked,
        missing.len(),
        log.reconnects,
        log.error_windows
    ));
    assert!(log.acked > 10, "the writer made progress: {log:?}");
    assert!(
        !log.error_windows.is_empty(),
        "the failovers were felt by the client"
    );
    assert_eq!(missing, Vec::<i64>::new(), "acknowledged writes lost");
}

/// The DR runbook on real Patroni: a standby cluster (`pgdr`, replicating from the main
/// cluster's leader) is routed to its `standby_leader`; during its promotion routing never moves
/// (fail-static: the router's config still says standby, Patroni says primary); after the config
/// flip the router confirms the same node with zero changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_standby_cluster_is_routed_through_its_promotion() {
    let _serial = SERIAL.lock().await;
    let aws = aws().await;
    let net = network(2).await;
    let tg = create_target_group(&aws, &net.vpc_id, false).await;
    let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
    let record_name = format!("dr.{zone_name}");
    let c = Cluster::up(false).await;
    c.run("standby-up", None).await;
    let info: Value = serde_json::from_str(&lc(&["info", &c.dir]).await).expect("info JSON");
    let dr: Vec<(String, String)> = info["standby"]["nodes"]
        .as_array()
        .expect("standby nodes")
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap_or_default().to_string(),
                n["api_url"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let config = |standby: bool| {
        let nodes: Vec<Value> = dr
            .iter()
            .zip(&net.instances)
            .map(|((name, url), (id, ip))| json!({"name": name, "api_url": url, "address": ip, "instance_id": id}))
            .collect();
        json!({
            "patroni": {"request_timeout": "1s", "poll_deadline": "2s"},
            "clusters": [{"scope": "pgdr", "standby_cluster": standby, "nodes": nodes,
                          "target_group": {"arn": tg, "port": 5432},
                          "dns": {"hosted_zone_id": zone, "record_name": record_name}}]
        })
        .to_string()
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("http");
    let view: Value = http
        .get(format!("{}/cluster", dr[0].1))
        .send()
        .await
        .expect("dr /cluster")
        .json()
        .await
        .expect("dr /cluster JSON");
    let leader = view["members"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["role"] == "standby_leader"))
        .and_then(|x| x["name"].as_str())
        .expect("a standby_leader")
        .to_string();
    let i = dr.iter().position(|(n, _)| *n == leader).expect("leader");
    let want = vec![format!("{}:5432", net.instances[i].0)];

    // Before: the DR endpoint follows the standby leader.
    let watch = start_watch(&config(true)).await;
    assert!(
        wait_registered(&aws, &tg, &want, Duration::from_secs(30)).await,
        "the standby leader {leader} is routed"
    );

    // During: promote; routing must not move in any sample while the config says standby.
    c.run("standby-promote", None).await;
    let start = Instant::now();
    let mut promoted = false;
    let mut samples = 0;
    while start.elapsed() < Duration::from_secs(5) || !promoted {
        assert!(start.elapsed() < Duration::from_secs(60), "no promotion");
        promoted |= primaries(&http, &dr).await == [leader.clone()];
        assert_eq!(
            registered(&aws, &tg).await,
            want,
            "routing moved during the promotion"
        );
        samples += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cli = |args: &[&str], config: String| {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        async move {
            let out = Command::new(env!("CARGO_BIN_EXE_patroni-router"))
                .args(&args)
                .args(["--output", "json"])
                .env("ROUTER_CONFIG", config)
                .output()
                .await
                .expect("run the router");
            serde_json::from_slice::<Value>(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    };
    let status = cli(&["status"], config(true)).await;
    let decision = &status["clusters"][0]["decision"];
    assert_eq!(decision["kind"], "no_primary", "{status}");
    assert!(
        decision["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fix `standby_cluster`")),
        "{status}"
    );
    drop(watch);

    // After: the config flips; the same node is confirmed; routing does not change — only the
    // markers move the fence to the promotion's new timeline.
    let r = cli(&["reconcile"], config(false)).await;
    assert_eq!(
        r["clusters"][0]["decision"]["primary"],
        leader.as_str(),
        "{r}"
    );
    let changes = r["clusters"][0]["changes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        changes.iter().all(|c| c["action"] == "mark"),
        "only the fence moves: {r}"
    );
    assert_eq!(registered(&aws, &tg).await, want);
    let recs = records(&aws, &zone, &record_name).await;
    assert_eq!(recs[0].3, vec![net.instances[i].1.clone()], "the DR record");
    record(&format!(
        "standby cluster promotion: routing stayed on {leader} in all {samples} samples (100 ms) \
         until the config flip, then 0 changes"
    ));
}
