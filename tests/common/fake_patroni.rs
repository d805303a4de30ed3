//! A FAKE Patroni REST API for tests: answers `/patroni` and `/cluster` with whatever a test
//! sets, including faults real Patroni cannot produce on demand (hangs, garbage, closed
//! connections, split brain). Speaks just enough HTTP/1.1; every connection is closed after
//! one answer. Real Patroni is exercised by the end-to-end tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

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

/// Counts a request as in flight on its path until dropped.
struct InFlight {
    st: Arc<Mutex<State>>,
    path: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.st.lock().expect("fake state");
        if let Some(n) = s.in_flight.get_mut(&self.path) {
            *n = n.saturating_sub(1);
        }
    }
}

pub struct FakeNode {
    pub name: String,
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeNode {
    pub async fn start(name: &str) -> FakeNode {
        FakeNode::start_with(name, None).await
    }

    /// The same over HTTPS with this server config (certificate, client auth).
    pub async fn start_tls(name: &str, tls: Arc<rustls::ServerConfig>) -> FakeNode {
        FakeNode::start_with(name, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(name: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake patroni");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let st = Arc::clone(&st);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(sock, st).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(sock).await {
                                serve(stream, st).await;
                            }
                        }
                    }
                });
            }
        });
        FakeNode {
            name: name.to_string(),
            url,
            state,
            task,
        }
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .expect("fake state")
            .replies
            .insert(path.to_string(), reply);
    }

    /// Requests served so far (to prove that something was, or was not, polled).
    pub fn hits(&self) -> usize {
        self.state.lock().expect("fake state").hits
    }

    /// The most requests for `path` this node was ever answering at once.
    pub fn max_concurrent(&self, path: &str) -> usize {
        self.state
            .lock()
            .expect("fake state")
            .max_in_flight
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Answer both endpoints with the same fault.
    pub fn fail(&self, reply: Reply) {
        self.set("/patroni", reply.clone());
        self.set("/cluster", reply);
    }
}

/// Answer one request on one connection, as the test set it up.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, st: Arc<Mutex<State>>) {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        if len == buf.len() {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf[..len]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = {
        let mut s = st.lock().expect("fake state");
        s.hits += 1;
        let now = {
            let n = s.in_flight.entry(path.clone()).or_default();
            *n += 1;
            *n
        };
        let max = s.max_in_flight.entry(path.clone()).or_default();
        *max = (*max).max(now);
        s.replies.get(&path).cloned()
    };
    let _in_flight = InFlight {
        st: Arc::clone(&st),
        path: path.clone(),
    };
    let reply = reply.unwrap_or(Reply::Json(404, "{}".into()));
    let (status, body) = match reply {
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return;
        }
        Reply::Close => return,
        Reply::Slow(d, body) => {
            tokio::time::sleep(d).await;
            (200, body.into_bytes())
        }
        Reply::Json(status, body) => (status, body.into_bytes()),
        Reply::Raw(bytes) => (200, bytes),
        Reply::Redirect(to) => {
            let resp = format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            return;
        }
    };
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(&body).await;
    let _ = sock.shutdown().await;
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

/// Three (or more) fake nodes that answer like a healthy Patroni cluster.
pub struct FakeCluster {
    pub scope: String,
    pub nodes: Vec<FakeNode>,
}

impl FakeCluster {
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
            .expect("fake node exists")
    }

    fn names(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.name.as_str()).collect()
    }

    /// Every node agrees that `leader` leads on `timeline`; `leader` says it is primary.
    pub fn set_leader(&self, leader: &str, timeline: u64) {
        let names = self.names();
        let view = cluster_json(&self.scope, Some(leader), &names, timeline);
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
        }
    }
}
