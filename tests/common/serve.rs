//! `serve` as a user runs it, for the service tests: a moto + fake Patroni world, the built
//! binary serving it (its stderr in a file), and signed notifications.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use patroni_router::webhook::{self, Secret};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::fake_patroni::{FakeCluster, Reply, patroni_json};
use super::*;

pub const TEST_SECRET: &str = "patroni-router-test-secret-0123456789";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .expect("clock")
}

/// One moto + fake Patroni world: pg1..pg3 on three instances, a target group and a record.
pub struct World {
    pub aws: patroni_router::adapters::sdk::AwsClients,
    pub net: Network,
    pub fake: FakeCluster,
    pub tg: String,
    pub zone: String,
    pub record: String,
}

impl World {
    pub async fn new() -> World {
        let aws = aws().await;
        let net = network(3).await;
        let fake = FakeCluster::start("pgha", &["pg1", "pg2", "pg3"]).await;
        fake.set_leader("pg1", 1);
        let tg = create_target_group(&aws, &net.vpc_id, false).await;
        let (zone, zone_name) = create_zone(&aws, &net.vpc_id).await;
        let record = format!("db.{zone_name}");
        World {
            aws,
            net,
            fake,
            tg,
            zone,
            record,
        }
    }

    pub fn config(&self, request_timeout: &str) -> String {
        json!({
            "patroni": {"request_timeout": request_timeout, "poll_deadline": "5s"},
            "webhook": {"confirm_timeout": "3s", "confirm_interval": "100ms"},
            "clusters": [{"scope": "pgha", "nodes": nodes_json(&self.fake, &self.net.instances),
                          "target_group": {"arn": self.tg, "port": 5432},
                          "dns": {"hosted_zone_id": self.zone, "record_name": self.record}}]
        })
        .to_string()
    }

    /// The target moto holds for instance `i`.
    pub fn target(&self, i: usize) -> Vec<String> {
        vec![format!("{}:5432", self.net.instances[i].0)]
    }

    pub async fn a_record(&self) -> Vec<String> {
        records(&self.aws, &self.zone, &self.record)
            .await
            .into_iter()
            .next()
            .map(|r| r.3)
            .unwrap_or_default()
    }

    pub fn hits(&self) -> usize {
        self.fake.nodes.iter().map(|n| n.hits()).sum()
    }

    /// `leader` leads on `timeline`; the others stream with the given lag (bytes).
    pub fn set_view(&self, leader: &str, timeline: u64, lags: &[(&str, u64)]) {
        let members: Vec<Value> = self
            .fake
            .nodes
            .iter()
            .map(|n| {
                if n.name == leader {
                    json!({"name": n.name, "role": "leader", "state": "running",
                           "host": "127.0.0.1", "port": 5432, "timeline": timeline})
                } else {
                    let lag = lags
                        .iter()
                        .find(|(m, _)| *m == n.name)
                        .map_or(0, |(_, l)| *l);
                    json!({"name": n.name, "role": "replica", "state": "streaming",
                           "host": "127.0.0.1", "port": 5432, "timeline": timeline, "lag": lag})
                }
            })
            .collect();
        let view = json!({"members": members, "scope": "pgha"}).to_string();
        for n in &self.fake.nodes {
            let role = if n.name == leader {
                "primary"
            } else {
                "replica"
            };
            n.set(
                "/patroni",
                Reply::Json(
                    200,
                    patroni_json("pgha", &n.name, role, "running", timeline),
                ),
            );
            n.set("/cluster", Reply::Json(200, view.clone()));
        }
    }
}

/// The binary running `serve`, its stderr in a file.
pub struct Serve {
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

impl Serve {
    pub async fn start(config: &str, interval: &str, extra: &[&str]) -> Serve {
        Serve::start_limited(config, interval, extra, None).await
    }

    /// The same with at most `open_files` descriptors (`ulimit -n`, soft and hard).
    pub async fn start_limited(
        config: &str,
        interval: &str,
        extra: &[&str],
        open_files: Option<u64>,
    ) -> Serve {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{}.log", unique("serve-")));
        let log_file = std::fs::File::create(&log).expect("log file");
        let bin = env!("CARGO_BIN_EXE_patroni-router");
        let mut cmd = match open_files {
            None => Command::new(bin),
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), bin]);
                c
            }
        };
        let child = cmd
            .args(["serve", "--log-format", "json", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--interval", interval])
            .args(extra)
            .env("ROUTER_CONFIG", config)
            .env("ROUTER_WEBHOOK_SECRET", TEST_SECRET)
            .env_remove("ROUTER_CONFIG_FILE")
            .env_remove("ROUTER_WEBHOOK_SECRET_FILE")
            .env_remove("ROUTER_WEBHOOK_AUTH")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true)
            .spawn()
            .expect("start serve");
        let s = Serve {
            port,
            child,
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(r) = s.http.get(s.url("/healthz")).send().await
                && r.status() == 200
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not come up: {}",
                s.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn metrics(&self) -> String {
        let (status, text) = self.get("/metrics").await;
        assert_eq!(status, 200);
        text
    }

    /// Until /readyz answers `status` (panics after `within`).
    pub async fn wait_ready(&self, status: u16, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (s, body) = self.get("/readyz").await;
            if s == status {
                return serde_json::from_str(&body).expect("readyz body is JSON");
            }
            assert!(
                Instant::now() < deadline,
                "/readyz stayed {s}: {body}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POST raw bytes to /webhook with these headers.
    pub async fn post(&self, headers: &[(&str, String)], body: Vec<u8>) -> (u16, Value) {
        let mut req = self.http.post(self.url("/webhook")).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.expect("POST /webhook");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
        )
    }

    /// A signed notification as `patroni-router notify` sends it.
    pub async fn notify(&self, action: &str, role: &str, scope: &str, node: &str) -> (u16, Value) {
        let body = notification(action, role, scope, node);
        self.post(
            &signed_headers(body.as_bytes(), TEST_SECRET),
            body.into_bytes(),
        )
        .await
    }
}

pub fn notification(action: &str, role: &str, scope: &str, node: &str) -> String {
    json!({"action": action, "role": role, "scope": scope, "node": node,
           "timestamp": now(), "nonce": unique("n-")})
    .to_string()
}

/// The headers `notify` sends: the library's signer, now.
pub fn signed_headers(body: &[u8], secret: &str) -> Vec<(&'static str, String)> {
    let secret = Secret::new(secret.as_bytes().to_vec()).expect("secret");
    webhook::signed_headers(&secret, now(), body)
}

/// The value of the sample `series` (name and labels exactly as exposed).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

pub fn expect_metric(text: &str, series: &str) -> f64 {
    metric(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}
