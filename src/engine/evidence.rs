//! Evidence that never waits for the slowest node. Every node of a cluster is asked at once;
//! the decision is recomputed on each answer, and once it is sufficient under the same rules —
//! the views that answered agree, the leader they name confirms itself, nothing that answered
//! contradicts — the stragglers get `patroni.straggler_grace` more, then count as not having
//! answered (no vote, never a yes). Without a sufficient decision the poll waits for every
//! request's timeout, as before.
//!
//! Long-running routers (`watch`, `serve`) keep a [`Board`] instead: each node polled on its
//! own cadence by its own task, its latest answer kept with its age; a run reads the board.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::Notify;

use super::Router;
use crate::config::ClusterConfig;
use crate::domain::decide::{Verdict, decide};
use crate::domain::patroni::{NodeObservation, PollError};

/// The observations of `cluster`: the board's when the router keeps one, else a fresh poll.
pub(super) async fn observe(router: &Router, cluster: &ClusterConfig) -> Vec<NodeObservation> {
    match &router.board {
        Some(board) => board.snapshot(cluster, Instant::now()),
        None => poll(router, cluster).await,
    }
}

fn confirmed(cluster: &ClusterConfig, answered: &[NodeObservation]) -> bool {
    matches!(decide(cluster, answered).verdict, Verdict::Confirmed { .. })
}

/// Ask every node of `cluster` at once; one observation per node in config order.
pub(super) async fn poll(router: &Router, cluster: &ClusterConfig) -> Vec<NodeObservation> {
    let settings = &router.config.patroni;
    let patroni = &*router.ports.patroni;
    let started = tokio::time::Instant::now();
    let deadline = started + settings.poll_deadline;
    let mut asks: FuturesUnordered<_> = cluster
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| async move { (i, patroni.observe(node).await) })
        .collect();
    let mut got: Vec<Option<NodeObservation>> = vec![None; cluster.nodes.len()];
    let mut cutoff = deadline;
    let mut sufficient = false;
    loop {
        tokio::select! {
            next = asks.next() => match next {
                Some((i, obs)) => got[i] = Some(obs),
                None => break,
            },
            () = tokio::time::sleep_until(cutoff) => break,
        }
        if !sufficient {
            let answered: Vec<NodeObservation> = got.iter().flatten().cloned().collect();
            if confirmed(cluster, &answered) {
                sufficient = true;
                cutoff = deadline.min(tokio::time::Instant::now() + settings.straggler_grace);
            }
        }
    }
    let why = || {
        if sufficient {
            format!(
                "no answer by the straggler deadline ({} after the others' evidence sufficed)",
                humantime::format_duration(settings.straggler_grace)
            )
        } else {
            format!(
                "poll deadline of {} passed",
                humantime::format_duration(settings.poll_deadline)
            )
        }
    };
    cluster
        .nodes
        .iter()
        .zip(got)
        .map(|(node, obs)| {
            obs.unwrap_or_else(|| NodeObservation::failed(&node.name, PollError::Timeout(why())))
        })
        .collect()
}

/// One node's latest answer and when it arrived.
struct Entry {
    observation: NodeObservation,
    at: Instant,
}

/// The latest answer of every node of every cluster, kept by the pollers of a long-running
/// router. An answer older than `max_age` counts as none (the node stopped answering).
pub struct Board {
    max_age: Duration,
    clusters: HashMap<String, Mutex<Vec<Option<Entry>>>>,
    changed: HashMap<String, Notify>,
    kicks: HashMap<String, Notify>,
}

impl Board {
    pub fn new(clusters: &[ClusterConfig], max_age: Duration) -> Board {
        let scopes = || clusters.iter().map(|c| c.scope.clone());
        Board {
            max_age,
            clusters: clusters
                .iter()
                .map(|c| {
                    (
                        c.scope.clone(),
                        Mutex::new((0..c.nodes.len()).map(|_| None).collect()),
                    )
                })
                .collect(),
            changed: scopes().map(|s| (s, Notify::new())).collect(),
            kicks: scopes().map(|s| (s, Notify::new())).collect(),
        }
    }

    /// A node's new answer; wakes whoever waits on the cluster's changes.
    pub fn record(&self, scope: &str, index: usize, observation: NodeObservation, at: Instant) {
        if let Some(nodes) = self.clusters.get(scope) {
            let mut nodes = nodes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = nodes.get_mut(index) {
                *slot = Some(Entry { observation, at });
            }
        }
        if let Some(n) = self.changed.get(scope) {
            n.notify_one();
        }
    }

    /// Resolves when a node of `scope` answered since the last call.
    pub async fn changed(&self, scope: &str) {
        match self.changed.get(scope) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Ask every poller of `scope` to poll now (a webhook said something changed).
    pub fn kick(&self, scope: &str) {
        if let Some(n) = self.kicks.get(scope) {
            n.notify_waiters();
        }
    }

    /// Resolves when `scope`'s pollers are asked to poll now.
    pub async fn kicked(&self, scope: &str) {
        match self.kicks.get(scope) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Every node's latest answer, if fresh; a node with none (or a stale one) as not
    /// answered.
    pub fn snapshot(&self, cluster: &ClusterConfig, now: Instant) -> Vec<NodeObservation> {
        self.snapshot_since(cluster, now.checked_sub(self.max_age).unwrap_or(now), now)
    }

    /// The same, counting only answers that arrived at or after `since`.
    pub fn snapshot_since(
        &self,
        cluster: &ClusterConfig,
        since: Instant,
        now: Instant,
    ) -> Vec<NodeObservation> {
        let Some(nodes) = self.clusters.get(&cluster.scope) else {
            return Vec::new();
        };
        let nodes = nodes.lock().unwrap_or_else(|p| p.into_inner());
        cluster
            .nodes
            .iter()
            .zip(nodes.iter())
            .map(|(node, entry)| match entry {
                Some(e) if e.at >= since => e.observation.clone(),
                Some(e) => NodeObservation::failed(
                    &node.name,
                    PollError::Timeout(format!(
                        "no answer in the last {} (the last one {} ago)",
                        humantime::format_duration(round_ms(now.saturating_duration_since(since))),
                        humantime::format_duration(round_ms(now.saturating_duration_since(e.at)))
                    )),
                ),
                None => {
                    NodeObservation::failed(&node.name, PollError::Timeout("no answer yet".into()))
                }
            })
            .collect()
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
