//! The FAKE Patroni, the project's only one: nodes that answer `/patroni` and `/cluster` (and
//! any other path) with whatever a test sets, including faults real Patroni cannot produce on
//! demand (hangs, garbage, closed connections, split brain). Two faces over the same state:
//! in memory, as the engine's [`Patroni`] port (unit tests, no network), and over HTTP(S) on a
//! loopback address and port of its own per node (integration tests, the bench, the local
//! Lambda invoke). Real Patroni is exercised by the end-to-end tests.

mod http;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::adapters::Patroni;
use crate::adapters::patroni_http::MAX_BODY;
use crate::config::NodeConfig;
use crate::domain::patroni::{
    NodeObservation, PollError, Switch, parse_cluster, parse_history, parse_patroni,
};

#[derive(Clone, Debug)]
pub enum Reply {
    /// HTTP status and a body (sent with Content-Type: application/json).
    Json(u16, String),
    /// Accept the connection, never answer.
    Hang,
    /// Accept the connection and close it without a byte (what /cluster does with the DCS down).
    Close,
    /// Answer after a delay.
    Slow(Duration, String),
    /// Arbitrary bytes after the status line and headers.
    Raw(Vec<u8>),
    /// A redirect to another URL.
    Redirect(String),
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    hits: usize,
    /// Requests being answered now, and the most ever at once, per path.
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
}

type Shared = Arc<Mutex<State>>;

fn lock(st: &Shared) -> std::sync::MutexGuard<'_, State> {
    st.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts a request as in flight on its path until dropped.
struct InFlight {
    st: Shared,
    path: String,
}

impl InFlight {
    /// Count a request for `path` and take the reply set for it.
    fn enter(st: &Shared, path: &str) -> (InFlight, Reply) {
        let mut s = lock(st);
        s.hits += 1;
        let now = {
            let n = s.in_flight.entry(path.to_string()).or_default();
            *n += 1;
            *n
        };
        let max = s.max_in_flight.entry(path.to_string()).or_default();
        *max = (*max).max(now);
        let reply = s
            .replies
            .get(path)
            .cloned()
            .unwrap_or(Reply::Json(404, "{}".into()));
        let guard = InFlight {
            st: Arc::clone(st),
            path: path.to_string(),
        };
        (guard, reply)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(n) = lock(&self.st).in_flight.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}

pub struct FakeNode {
    pub name: String,
    /// The base URL a config's `api_url` names (a placeholder for an in-memory node).
    pub url: String,
    state: Shared,
    /// The HTTP face, when the node has one.
    listener: Option<http::Listener>,
}

impl FakeNode {
    /// A node that only answers in memory (through [`FakeCluster`]'s [`Patroni`] face).
    pub fn in_memory(name: &str) -> FakeNode {
        FakeNode {
            name: name.to_string(),
            url: format!("http://{name}.fake.invalid:8008"),
            state: Shared::default(),
            listener: None,
        }
    }

    /// A node served over HTTP on a free port of 127.0.0.1.
    pub async fn start(name: &str) -> FakeNode {
        FakeNode::serve(name, ([127, 0, 0, 1], 0).into(), None)
            .await
            .unwrap_or_else(|e| panic!("fake patroni {name}: {e}"))
    }

    /// The same over HTTPS with this server config (certificate, client auth).
    pub async fn start_tls(name: &str, tls: Arc<rustls::ServerConfig>) -> FakeNode {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        FakeNode::serve(name, ([127, 0, 0, 1], 0).into(), Some(acceptor))
            .await
            .unwrap_or_else(|e| panic!("fake patroni {name}: {e}"))
    }

    /// A node served on `addr` (port 0: any free port), as a real host has its own address.
    pub async fn serve(
        name: &str,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<FakeNode> {
        let state = Shared::default();
        let listener = http::Listener::bind(addr, tls, &state).await?;
        Ok(FakeNode {
            name: name.to_string(),
            url: format!("{}://{}", listener.scheme(), listener.addr),
            state,
            listener: Some(listener),
        })
    }

    /// Where the HTTP face listens (`None` for an in-memory node).
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|l| l.addr)
    }

    /// Stop listening, as a dead Patroni: connections are refused until
    /// [`FakeNode::listen_again`].
    pub async fn stop_listening(&self) {
        if let Some(l) = &self.listener {
            l.stop().await;
        }
    }

    /// Listen again on the same address and port.
    pub async fn listen_again(&self) -> std::io::Result<()> {
        match &self.listener {
            Some(l) => l.start(&self.state).await,
            None => Ok(()),
        }
    }

    /// Whether the HTTP face accepts connections now.
    pub fn is_listening(&self) -> bool {
        self.listener
            .as_ref()
            .is_some_and(http::Listener::is_listening)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        lock(&self.state).replies.insert(path.to_string(), reply);
    }

    /// Answer both endpoints with the same fault.
    pub fn fail(&self, reply: Reply) {
        self.set("/patroni", reply.clone());
        self.set("/cluster", reply);
    }

    /// Requests served so far (to prove that something was, or was not, polled).
    pub fn hits(&self) -> usize {
        lock(&self.state).hits
    }

    /// The most requests for `path` this node was ever answering at once.
    pub fn max_concurrent(&self, path: &str) -> usize {
        lock(&self.state)
            .max_in_flight
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// What the in-memory face answers for `path`: the body, or the error the HTTP adapter
    /// would report for the same reply.
    async fn get(&self, path: &str) -> Result<Vec<u8>, PollError> {
        let (_in_flight, reply) = InFlight::enter(&self.state, path);
        let body = match reply {
            Reply::Json(200 | 503, body) => body.into_bytes(),
            Reply::Json(status, _) => return Err(PollError::Status(status)),
            Reply::Hang => std::future::pending().await,
            Reply::Close => {
                return Err(PollError::Other(
                    "connection closed before message completed".into(),
                ));
            }
            Reply::Slow(d, body) => {
                tokio::time::sleep(d).await;
                body.into_bytes()
            }
            Reply::Raw(bytes) => bytes,
            Reply::Redirect(_) => return Err(PollError::Status(302)),
        };
        if body.len() > MAX_BODY {
            return Err(PollError::TooLarge(MAX_BODY));
        }
        Ok(body)
    }
}

/// `GET /patroni` as Patroni 4 answers it.
pub fn patroni_json(scope: &str, name: &str, role: &str, state: &str, timeline: u64) -> String {
    json!({
        "state": state, "role": role, "timeline": timeline, "server_version": 150018,
        "patroni": {"version": "4.1.5", "scope": scope, "name": name},
        "dcs_last_seen": 1795625978u64, "database_system_identifier": "7712154790783901088"
    })
    .to_string()
}

/// `GET /cluster`: `leader` leads (if any), everyone else streams with `lag` bytes.
/// Patroni's `/history` when `leader` was promoted to `timeline` just now: one row per earlier
/// timeline, the last one stamped now.
pub fn history_json(leader: &str, timeline: u64) -> String {
    let t = time::OffsetDateTime::now_utc();
    let now = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    let rows: Vec<Value> = (1..timeline)
        .map(|tl| match tl + 1 == timeline {
            true => json!([tl, tl * 1000, "no recovery target specified", now, leader]),
            false => json!([tl, tl * 1000, "no recovery target specified"]),
        })
        .collect();
    Value::Array(rows).to_string()
}

pub fn cluster_json(scope: &str, leader: Option<&str>, members: &[&str], timeline: u64) -> String {
    let members: Vec<Value> = members
        .iter()
        .map(|m| {
            if Some(*m) == leader {
                json!({"name": m, "role": "leader", "state": "running", "host": "127.0.0.1",
                       "port": 5432, "timeline": timeline})
            } else {
                json!({"name": m, "role": "replica", "state": "streaming", "host": "127.0.0.1",
                       "port": 5432, "timeline": timeline, "lag": 0})
            }
        })
        .collect();
    json!({"members": members, "scope": scope}).to_string()
}

/// A cluster of fake nodes that answer like a healthy Patroni cluster once given a leader.
pub struct FakeCluster {
    pub scope: String,
    pub nodes: Vec<FakeNode>,
}

impl FakeCluster {
    /// In memory only: the cluster is the engine's [`Patroni`] port, no sockets.
    pub fn in_memory(scope: &str, names: &[&str]) -> FakeCluster {
        FakeCluster {
            scope: scope.to_string(),
            nodes: names.iter().map(|n| FakeNode::in_memory(n)).collect(),
        }
    }

    /// Each node over HTTP on its own loopback port.
    pub async fn start(scope: &str, names: &[&str]) -> FakeCluster {
        let mut nodes = Vec::new();
        for n in names {
            nodes.push(FakeNode::start(n).await);
        }
        FakeCluster {
            scope: scope.to_string(),
            nodes,
        }
    }

    pub async fn start_tls(
        scope: &str,
        names: &[&str],
        tls: Arc<rustls::ServerConfig>,
    ) -> FakeCluster {
        let mut nodes = Vec::new();
        for n in names {
            nodes.push(FakeNode::start_tls(n, Arc::clone(&tls)).await);
        }
        FakeCluster {
            scope: scope.to_string(),
            nodes,
        }
    }

    pub fn node(&self, name: &str) -> &FakeNode {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no fake node {name}"))
    }

    pub fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Every node agrees that `leader` leads on `timeline`; `leader` says it is primary.
    pub fn set_leader(&self, leader: &str, timeline: u64) {
        let names = self.names();
        let view = cluster_json(&self.scope, Some(leader), &names, timeline);
        let history = history_json(leader, timeline);
        for n in &self.nodes {
            let role = if n.name == leader {
                "primary"
            } else {
                "replica"
            };
            n.set(
                "/patroni",
                Reply::Json(
                    200,
                    patroni_json(&self.scope, &n.name, role, "running", timeline),
                ),
            );
            n.set("/cluster", Reply::Json(200, view.clone()));
            n.set("/history", Reply::Json(200, history.clone()));
        }
    }

    /// The config's `nodes` for these fake nodes at these addresses (one per node).
    pub fn nodes_json(&self, addresses: &[(Option<String>, String)]) -> Vec<Value> {
        self.nodes
            .iter()
            .zip(addresses)
            .map(|(n, (instance, ip))| {
                let mut v = json!({"name": n.name, "api_url": n.url, "address": ip});
                if let Some(id) = instance {
                    v["instance_id"] = json!(id);
                }
                v
            })
            .collect()
    }
}

#[async_trait]
impl Patroni for FakeCluster {
    async fn observe(&self, node: &NodeConfig) -> NodeObservation {
        let Some(fake) = self.nodes.iter().find(|n| n.name == node.name) else {
            return NodeObservation::failed(
                &node.name,
                PollError::Connect(format!("no fake node {}", node.name)),
            );
        };
        let (patroni, cluster) = tokio::join!(fake.get("/patroni"), fake.get("/cluster"));
        NodeObservation {
            name: node.name.clone(),
            patroni: patroni.and_then(|b| parse_patroni(&b)),
            cluster: cluster.and_then(|b| parse_cluster(&b)),
        }
    }

    async fn history(&self, node: &NodeConfig) -> Result<Vec<Switch>, PollError> {
        let Some(fake) = self.nodes.iter().find(|n| n.name == node.name) else {
            return Err(PollError::Connect(format!("no fake node {}", node.name)));
        };
        parse_history(&fake.get("/history").await?)
    }
}
