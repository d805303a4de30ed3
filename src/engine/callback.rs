//! After a Patroni callback: the DCS and the nodes may lag the callback by a moment, so look
//! again — one poll loop — until a primary is confirmed, and if the callback named a
//! configured node as the new leader, until that node is the confirmed one (an unknown node
//! name just says "some node changed role"); at most `webhook.confirm_timeout`. Then reconcile
//! the cluster on that very evidence. The callback only decides how long to look; routing
//! always follows what Patroni confirms.

use std::time::Instant;

use tracing::info;

use super::evidence::{self, Board};
use super::{ReconcileError, Router};
use crate::clock::millis_since;
use crate::config::ClusterConfig;
use crate::domain::decide::{Decision, decide};
use crate::domain::patroni::NodeObservation;
use crate::domain::report::{Mode, Report};

fn settled(decision: &Decision, claimed: Option<&str>) -> bool {
    match (decision.primary(), claimed) {
        (Some(p), Some(c)) => p == c,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

impl Router {
    pub async fn run_after_callback(
        &self,
        scope: &str,
        claimed_leader: Option<&str>,
    ) -> Result<Report, ReconcileError> {
        let cluster = self.clusters(Some(scope))?[0];
        let claimed = claimed_leader.filter(|c| cluster.node(c).is_some());
        let started = Instant::now();
        let (observations, looks) = match &self.board {
            Some(board) => self.confirm_on_board(board, cluster, claimed).await,
            None => self.confirm_by_polling(cluster, claimed).await,
        };
        let decision = decide(cluster, &observations);
        info!(
            scope,
            looks,
            waited_ms = millis_since(started),
            settled = settled(&decision, claimed),
            decision = %decision.kind(),
            "callback: done waiting for confirmation"
        );
        self.run_clusters(Mode::Reconcile, vec![cluster], Some(observations))
            .await
    }

    /// Poll until settled (each poll decides as soon as its evidence suffices).
    async fn confirm_by_polling(
        &self,
        cluster: &ClusterConfig,
        claimed: Option<&str>,
    ) -> (Vec<NodeObservation>, u32) {
        let settings = &self.config.webhook;
        let started = Instant::now();
        let mut polls = 0;
        loop {
            polls += 1;
            let observations = evidence::poll(self, cluster).await;
            let done = settled(&decide(cluster, &observations), claimed);
            if done || started.elapsed() + settings.confirm_interval > settings.confirm_timeout {
                return (observations, polls);
            }
            tokio::time::sleep(settings.confirm_interval).await;
        }
    }

    /// Have the pollers poll now, then decide on each answer that arrives after the callback
    /// until settled.
    async fn confirm_on_board(
        &self,
        board: &Board,
        cluster: &ClusterConfig,
        claimed: Option<&str>,
    ) -> (Vec<NodeObservation>, u32) {
        let timeout = self.config.webhook.confirm_timeout;
        let since = Instant::now();
        board.kick(&cluster.scope);
        let mut looks = 0;
        loop {
            looks += 1;
            let observations = board.snapshot_since(cluster, since, Instant::now());
            if settled(&decide(cluster, &observations), claimed) {
                return (observations, looks);
            }
            let left = timeout.saturating_sub(since.elapsed());
            if left.is_zero() {
                return (board.snapshot(cluster, Instant::now()), looks);
            }
            let _ = tokio::time::timeout(left, board.changed(&cluster.scope)).await;
        }
    }
}
