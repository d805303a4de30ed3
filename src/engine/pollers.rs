//! The pollers of a long-running router (`watch`, `serve`): one task per node, each asking its
//! node every `interval` (or at once when a webhook kicks its cluster) and keeping the answer on
//! the [`Board`]. A hung node holds only its own task, for at most one request timeout; the
//! others keep answering, and every answer can move the decision. Nodes are polled in their
//! own phase of the interval, so many nodes make a steady trickle of requests, not bursts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Board, Router};
use crate::domain::patroni::{NodeObservation, PollError};

/// Start a poller for every node of every cluster of `router` (which must keep a board).
pub fn spawn(
    router: &Arc<Router>,
    interval: Duration,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let Some(board) = router.board().cloned() else {
        return Vec::new();
    };
    let mut tasks = Vec::new();
    for (c, cluster) in router.config().clusters.iter().enumerate() {
        for n in 0..cluster.nodes.len() {
            let node = Node {
                router: Arc::clone(router),
                board: Arc::clone(&board),
                cluster: c,
                node: n,
            };
            tasks.push(tokio::spawn(node.poll(interval, shutdown.clone())));
        }
    }
    tasks
}

/// One node of one cluster (indexes into the router's config).
struct Node {
    router: Arc<Router>,
    board: Arc<Board>,
    cluster: usize,
    node: usize,
}

impl Node {
    async fn poll(self, interval: Duration, mut shutdown: watch::Receiver<bool>) {
        let cluster = &self.router.config().clusters[self.cluster];
        let node = &cluster.nodes[self.node];
        // The adapter bounds each request; this bounds a node that trickles bytes forever.
        let bound = self.router.config().patroni.request_timeout * 2;
        // After the first poll (at once), each node keeps its own phase of the interval:
        // thousands of nodes are asked a few at a time, not all at each tick.
        let mut phase = Some(crate::clock::phase(&node.api_url, interval));
        loop {
            let started = Instant::now();
            let observe = self.router.ports.patroni.observe(node);
            let observation = match tokio::time::timeout(bound, observe).await {
                Ok(o) => o,
                Err(_) => NodeObservation::failed(
                    &node.name,
                    PollError::Timeout(format!(
                        "no answer within {}",
                        humantime::format_duration(bound)
                    )),
                ),
            };
            self.board
                .record(&cluster.scope, self.node, observation, Instant::now());
            let next = tokio::time::Instant::from_std(started + phase.take().unwrap_or(interval));
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep_until(next) => {}
                () = self.board.kicked(&cluster.scope) => {}
            }
        }
    }
}
