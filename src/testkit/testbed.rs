//! The testbed: N fake Patroni clusters of three nodes pg1..pg3, each node on a loopback
//! address and port of its own (as real hosts are), pg1 leading on timeline 1 at start, with
//! faults and failovers set through [`Testbed`]'s methods or its HTTP control interface
//! ([`control`](self::control)). `examples/testbed.rs` serves it; the bench and
//! `make invoke-local` drive it.

mod control;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::fake_patroni::{FakeCluster, FakeNode, Reply};
use super::world::ClusterNodes;

pub use control::serve_control;

/// The members of every testbed cluster.
pub const MEMBERS: [&str; 3] = ["pg1", "pg2", "pg3"];

/// Where the testbed's nodes live.
#[derive(Debug, Clone)]
pub struct Layout {
    pub clusters: usize,
    /// The scope of a lone cluster; with several, `{scope}0`, `{scope}1`, ...
    pub scope: String,
    /// The first node's address; node `k` (cluster `k / 3`, member `k % 3`) is this + `k`.
    pub first_address: Ipv4Addr,
    /// Every node's port (0: any free port per node).
    pub port: u16,
}

impl Layout {
    pub fn scope(&self, i: usize) -> String {
        if self.clusters == 1 {
            self.scope.clone()
        } else {
            format!("{}{i}", self.scope)
        }
    }

    /// The address of member `m` of cluster `i`, refused outside 127.0.0.0/8.
    pub fn address(&self, i: usize, m: usize) -> Result<SocketAddr, TestbedError> {
        let k = u32::try_from(i * MEMBERS.len() + m).map_err(|_| TestbedError::TooMany)?;
        let ip = u32::from(self.first_address)
            .checked_add(k)
            .map(Ipv4Addr::from)
            .filter(|ip| ip.octets()[0] == 127)
            .ok_or(TestbedError::TooMany)?;
        Ok(SocketAddr::from((ip, self.port)))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    #[error("the nodes do not fit in 127.0.0.0/8 from this first address")]
    TooMany,
    #[error(
        "cannot listen on {addr}: {source} (another testbed there? pick another --first-address)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no cluster {0:?}")]
    NoCluster(String),
    #[error("no member {0:?} (members are pg1, pg2, pg3)")]
    NoMember(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A fault on one node, kept across leader changes until cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Frozen: accepts connections, never answers (a SIGSTOPped Patroni, a lost host).
    Hang,
    /// Accepts connections and closes them without a byte.
    Close,
    /// Not listening: connections are refused (Patroni is down).
    Down,
}

struct State {
    leader: String,
    timeline: u64,
    faults: HashMap<String, Fault>,
}

struct Served {
    fake: FakeCluster,
    state: Mutex<State>,
}

impl Served {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every node answers as the state says: the leader's view, then each node's fault.
    fn apply(&self, st: &State) {
        self.fake.set_leader(&st.leader, st.timeline);
        for (name, fault) in &st.faults {
            let node = self.fake.node(name);
            match fault {
                Fault::Hang => node.fail(Reply::Hang),
                Fault::Close => node.fail(Reply::Close),
                Fault::Down => {}
            }
        }
    }

    fn node(&self, member: &str) -> Result<&FakeNode, TestbedError> {
        self.fake
            .nodes
            .iter()
            .find(|n| n.name == member)
            .ok_or_else(|| TestbedError::NoMember(member.to_string()))
    }
}

/// The running fake clusters.
pub struct Testbed {
    clusters: Vec<Served>,
}

impl Testbed {
    /// Bind every node of `layout` (pg1 leads on timeline 1).
    pub async fn start(layout: &Layout) -> Result<Testbed, TestbedError> {
        let mut clusters = Vec::with_capacity(layout.clusters);
        for i in 0..layout.clusters {
            let mut nodes = Vec::new();
            for (m, name) in MEMBERS.iter().enumerate() {
                let addr = layout.address(i, m)?;
                let node = FakeNode::serve(name, addr, None)
                    .await
                    .map_err(|source| TestbedError::Bind { addr, source })?;
                nodes.push(node);
            }
            let fake = FakeCluster {
                scope: layout.scope(i),
                nodes,
            };
            let state = State {
                leader: MEMBERS[0].to_string(),
                timeline: 1,
                faults: HashMap::new(),
            };
            let served = Served {
                fake,
                state: Mutex::new(state),
            };
            served.apply(&served.state());
            clusters.push(served);
        }
        Ok(Testbed { clusters })
    }

    fn cluster(&self, scope: &str) -> Result<&Served, TestbedError> {
        self.clusters
            .iter()
            .find(|c| c.fake.scope == scope)
            .ok_or_else(|| TestbedError::NoCluster(scope.to_string()))
    }

    /// The clusters as a world needs them (scope, member names and URLs).
    pub fn cluster_nodes(&self) -> Vec<ClusterNodes> {
        self.clusters
            .iter()
            .map(|c| ClusterNodes {
                scope: c.fake.scope.clone(),
                nodes: c
                    .fake
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.url.clone()))
                    .collect(),
            })
            .collect()
    }

    /// Every cluster: leader, timeline, and each node's URL and fault.
    pub fn describe(&self) -> Value {
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|c| {
                let st = c.state();
                let nodes: Vec<Value> = c
                    .fake
                    .nodes
                    .iter()
                    .map(|n| json!({"name": n.name, "api_url": n.url, "fault": st.faults.get(&n.name)}))
                    .collect();
                json!({"scope": c.fake.scope, "leader": st.leader, "timeline": st.timeline, "nodes": nodes})
            })
            .collect();
        json!({"clusters": clusters})
    }

    /// `member` of `scope` becomes the leader on the next timeline; returns that timeline.
    pub fn set_leader(&self, scope: &str, member: &str) -> Result<u64, TestbedError> {
        let c = self.cluster(scope)?;
        c.node(member)?;
        let mut st = c.state();
        st.leader = member.to_string();
        st.timeline += 1;
        c.apply(&st);
        Ok(st.timeline)
    }

    /// [`Testbed::set_leader`] in every cluster; returns how many.
    pub fn set_leader_everywhere(&self, member: &str) -> Result<usize, TestbedError> {
        for c in &self.clusters {
            self.set_leader(&c.fake.scope, member)?;
        }
        Ok(self.clusters.len())
    }

    /// Set (`Some`) or clear (`None`) a fault on one node.
    pub async fn set_fault(
        &self,
        scope: &str,
        member: &str,
        fault: Option<Fault>,
    ) -> Result<(), TestbedError> {
        let c = self.cluster(scope)?;
        let node = c.node(member)?;
        {
            let mut st = c.state();
            match fault {
                Some(f) => st.faults.insert(member.to_string(), f),
                None => st.faults.remove(member),
            };
            c.apply(&st);
        }
        if fault == Some(Fault::Down) {
            node.stop_listening().await;
        } else {
            node.listen_again().await?;
        }
        Ok(())
    }
}
