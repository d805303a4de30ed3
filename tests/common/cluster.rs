//! The REAL local cluster for the end-to-end tests: etcd, three Patroni nodes and PostgreSQL
//! on loopback (scripts/localcluster.sh), moto for AWS, `watch` routing it, and a sampler of
//! who answers /primary and what the target group holds.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patroni_router::adapters::sdk::AwsClients;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::*;

pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/localcluster.sh")
}

pub async fn lc(args: &[&str]) -> String {
    let out = Command::new(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run localcluster.sh");
    assert!(
        out.status.success(),
        "localcluster.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The cluster; torn down on drop, also when an assertion fails.
pub struct Cluster {
    pub dir: String,
    pub nodes: Vec<(String, String)>, // (name, api_url)
    pub pg_ports: Vec<u16>,
}

impl Cluster {
    pub async fn up(sync: bool) -> Cluster {
        let dir = lc(if sync { &["up", "--sync"] } else { &["up"] }).await;
        let info: Value = serde_json::from_str(&lc(&["info", &dir]).await).expect("info JSON");
        let list = info["nodes"].as_array().expect("nodes");
        let nodes = list
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or_default().to_string(),
                    n["api_url"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let pg_ports = list
            .iter()
            .map(|n| n["pg_port"].as_u64().unwrap_or(0) as u16)
            .collect();
        Cluster {
            dir,
            nodes,
            pg_ports,
        }
    }

    pub async fn run(&self, cmd: &str, node: Option<&str>) {
        let mut args = vec![cmd, self.dir.as_str()];
        args.extend(node);
        lc(&args).await;
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|(n, _)| n == name)
            .expect("node")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(script())
            .args(["down", &self.dir])
            .status();
    }
}

/// Which nodes answer `/primary` with 200 right now (asked at once: a node that does not
/// answer costs one timeout, not one per node).
pub async fn primaries(http: &reqwest::Client, nodes: &[(String, String)]) -> Vec<String> {
    let asks = nodes.iter().map(|(name, url)| async move {
        let ok = http
            .get(format!("{url}/primary"))
            .send()
            .await
            .map(|r| r.status().as_u16() == 200)
            .unwrap_or(false);
        ok.then(|| name.clone())
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

#[derive(Clone, Debug)]
pub struct Sample {
    pub at: Instant,
    pub primaries: Vec<String>,
    pub targets: Vec<String>,
}

/// Samples /primary of every node and the target group every 100 ms, in the background.
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(aws: AwsClients, tg: String, c: &Cluster) -> Sampler {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let nodes = c.nodes.clone();
        let s = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_millis(300))
                .build()
                .expect("http");
            loop {
                let primaries = primaries(&http, &nodes).await;
                let targets = registered(&aws, &tg).await;
                s.lock().expect("samples").push(Sample {
                    at: Instant::now(),
                    primaries,
                    targets,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler { samples, task }
    }

    pub fn mark(&self) -> usize {
        self.samples.lock().expect("samples").len()
    }

    pub fn since(&self, mark: usize) -> Vec<Sample> {
        self.samples.lock().expect("samples")[mark..].to_vec()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct Env {
    pub aws: AwsClients,
    pub tg: String,
    /// The read endpoint's target group (`replicas`, `max_lag_bytes` 16 MiB).
    pub read_tg: String,
    pub zone: String,
    pub record: String,
    pub instances: Vec<(String, String)>,
}

impl Env {
    pub fn target(&self, i: usize) -> Vec<String> {
        vec![format!("{}:5432", self.instances[i].0)]
    }

    /// Wait (bounded) until the target group holds exactly `want`.
    pub async fn wait_routed(&self, want: &[String], bound: Duration) -> bool {
        wait_registered(&self.aws, &self.tg, want, bound).await
    }

    /// Every node but `leader`, as targets (sorted like `registered`).
    pub fn replicas_of(&self, c: &Cluster, leader: &str) -> Vec<String> {
        let mut want: Vec<String> = c
            .nodes
            .iter()
            .filter(|(n, _)| n != leader)
            .flat_map(|(n, _)| self.target(c.index(n)))
            .collect();
        want.sort();
        want
    }

    /// Wait (bounded) until the read endpoint holds exactly every node but `leader`; returns
    /// what it held last.
    pub async fn wait_read_endpoint(
        &self,
        c: &Cluster,
        leader: &str,
        bound: Duration,
    ) -> Vec<String> {
        let want = self.replicas_of(c, leader);
        wait_registered(&self.aws, &self.read_tg, &want, bound).await;
        registered(&self.aws, &self.read_tg).await
    }
}

pub async fn wait_registered(aws: &AwsClients, tg: &str, want: &[String], bound: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if registered(aws, tg).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

pub async fn wait_primary_other_than(c: &Cluster, old: &str, bound: Duration) -> Option<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .ok()?;
    let start = Instant::now();
    while start.elapsed() < bound {
        let p = primaries(&http, &c.nodes).await;
        if p.len() == 1 && p[0] != old {
            return Some(p[0].clone());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Wait until the DCS names a streaming sync standby: with `synchronous_mode`, Patroni only
/// fails over to it, so a host loss before one is chosen leaves the cluster without a primary.
pub async fn wait_sync_standby(c: &Cluster, bound: Duration) -> Option<String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("http");
    let start = Instant::now();
    while start.elapsed() < bound {
        for (_, url) in &c.nodes {
            let Ok(resp) = http.get(format!("{url}/cluster")).send().await else {
                continue;
            };
            let Ok(v) = resp.json::<Value>().await else {
                continue;
            };
            let members = v["members"].as_array().cloned().unwrap_or_default();
            if let Some(m) = members
                .iter()
                .find(|m| m["role"] == "sync_standby" && m["state"] == "streaming")
            {
                return m["name"].as_str().map(str::to_string);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Routing lag: from the first sample where `new` alone answers /primary, to the first sample
/// where the target group holds exactly it.
pub fn lag(samples: &[Sample], new: &str, want: &[String]) -> Option<Duration> {
    let promoted = samples
        .iter()
        .find(|s| s.primaries == [new.to_string()])?
        .at;
    let routed = samples
        .iter()
        .find(|s| s.at >= promoted && s.targets == want)?
        .at;
    Some(routed.duration_since(promoted))
}

/// Invariants over a scenario's samples: never empty, never a node that was not primary.
pub fn check_samples(samples: &[Sample], allowed: &[Vec<String>], scenario: &str) {
    for s in samples {
        assert!(
            !s.targets.is_empty(),
            "{scenario}: the target group was emptied: {s:?}"
        );
        for t in &s.targets {
            assert!(
                allowed.iter().any(|a| a.contains(t)),
                "{scenario}: routed to {t}, which was not a primary in this scenario"
            );
        }
    }
}

pub async fn start_watch(config: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_patroni-router"))
        .args(["watch", "--interval", "250ms"])
        .env("ROUTER_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start watch")
}

/// Measurements go to stderr and to target/e2e-results.txt (cargo test hides a passing test's
/// output; `make test` prints the file).
pub fn record(line: &str) {
    use std::io::Write as _;
    eprintln!("{line}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/e2e-results.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// One real cluster at a time: two would fight over 2 cores.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A cluster, the AWS side in moto, and `watch` routing it.
pub async fn setup(sync: bool) -> (Cluster, Env, Child) {
    let c = Cluster::up(sync).await;
    let (env, watch) = route(&c, |_, url| url.to_string()).await;
    (c, env, watch)
}

/// The AWS side in moto and `watch` routing `c`, reaching each node's REST API at
/// `api_url(name, url)`.
pub async fn route(c: &Cluster, api_url: impl Fn(&str, &str) -> String) -> (Env, Child) {
    let aws = aws().await;
    let net = network(3).await;
    let tg = create_target_group(&aws, &net.vpc_id, false).await;
    let read_tg = create_target_group(&aws, &net.vpc_id, false).await;
    let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
    let record = format!("db.{zone_name}");
    let nodes: Vec<Value> = c
        .nodes
        .iter()
        .zip(&net.instances)
        .map(|((name, url), (id, ip))| {
            let url = api_url(name, url);
            json!({"name": name, "api_url": url, "address": ip, "instance_id": id})
        })
        .collect();
    let config = json!({
        "patroni": {"request_timeout": "1s", "poll_deadline": "2s"},
        "clusters": [{"scope": "pgha", "nodes": nodes,
                      "target_group": {"arn": tg, "port": 5432},
                      "dns": {"hosted_zone_id": zone, "record_name": record},
                      "replicas": {"max_lag_bytes": 16 << 20,
                                   "target_group": {"arn": read_tg, "port": 5432}}}]
    })
    .to_string();
    let env = Env {
        aws,
        tg,
        read_tg,
        zone,
        record,
        instances: net.instances.clone(),
    };
    let watch = start_watch(&config).await;
    (env, watch)
}
