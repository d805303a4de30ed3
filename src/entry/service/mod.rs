//! The long-running router, shared by `watch` and `serve`: per-node pollers keep a board of
//! the nodes' latest answers, and a worker per cluster reconciles on its timer, on a webhook,
//! and as soon as new answers move the decision to another primary. What happens after a run
//! (printing, metrics, readiness) is the entry point's [`Hooks`].

pub mod scheduler;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::domain::decide::decide;
use crate::domain::report::{Mode, Report};
use crate::engine::{Board, ReconcileError, Router, Verified, pollers};
use scheduler::{Runner, Scheduler, Trigger};

/// What a webhook waiting for a run gets: the report, or why there is none.
pub type Outcome = Result<Arc<Report>, String>;

/// What the entry point does with each run.
pub trait Hooks: Send + Sync + 'static {
    fn ran(
        &self,
        scope: &str,
        trigger: &Trigger,
        result: &Result<Report, ReconcileError>,
        secs: f64,
    );

    /// After each verification (see [`Router::verify`]).
    fn verified(&self, _verified: &Verified) {}
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The safety net: each cluster is reconciled this long after its last run; every node
    /// is polled this often.
    pub interval: Duration,
    /// How many clusters are reconciled at once.
    pub max_parallel: usize,
}

/// The running service: the router (with its board), the scheduler to ask for runs, and the
/// future that drives the workers and pollers until the shutdown.
pub struct Service<F> {
    pub router: Arc<Router>,
    pub scheduler: Arc<Scheduler<Outcome>>,
    pub tasks: F,
}

/// Start the pollers and the workers; both stop when `shutdown` turns true (the runs in
/// flight finish first).
pub fn start(
    router: Router,
    opts: Options,
    hooks: Arc<dyn Hooks>,
    shutdown: watch::Receiver<bool>,
) -> Service<impl Future<Output = ()> + Send + use<>> {
    let clusters = &router.config().clusters;
    // An answer older than two intervals and a request timeout: the node stopped answering.
    let max_age = opts.interval * 2 + router.config().patroni.request_timeout;
    let board = Arc::new(Board::new(clusters, max_age));
    let scopes: Vec<String> = clusters.iter().map(|c| c.scope.clone()).collect();
    let router = Arc::new(router.with_board(board).with_change_driven_reads());
    let polls = pollers::spawn(&router, opts.interval, &shutdown);
    let runner = Arc::new(Live {
        router: Arc::clone(&router),
        hooks: Arc::clone(&hooks),
        routed: Mutex::new(HashMap::new()),
    });
    let (scheduler, workers) = Scheduler::start(
        &scopes,
        runner,
        opts.interval,
        opts.max_parallel,
        shutdown.clone(),
    );
    let verifier = tokio::spawn(verify(
        Arc::clone(&router),
        Arc::clone(&scheduler),
        Arc::clone(&hooks),
        shutdown,
    ));
    let tasks = async move {
        workers.await;
        for p in polls {
            let _ = p.await;
        }
        let _ = verifier.await;
    };
    Service {
        router,
        scheduler,
        tasks,
    }
}

/// How long one verification may go on before the loop looks at the shutdown again.
const VERIFY_SLICE: Duration = Duration::from_secs(5);

/// Verify what this process remembers of AWS, continuously within the budget; a cluster
/// whose AWS state changed under it is run at once.
async fn verify(
    router: Arc<Router>,
    scheduler: Arc<Scheduler<Outcome>>,
    hooks: Arc<dyn Hooks>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let until = tokio::time::Instant::now() + VERIFY_SLICE;
        let verified = tokio::select! {
            v = router.verify(until) => v,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        for scope in verified.changed.iter().chain(&verified.first_read) {
            scheduler.nudge(scope);
        }
        let idle = verified.target_groups_read + verified.names_read == 0;
        hooks.verified(&verified);
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }
}

/// The runner of the service: the one reconcile path, then the hooks.
struct Live {
    router: Arc<Router>,
    hooks: Arc<dyn Hooks>,
    /// The primary each cluster's last run decided on.
    routed: Mutex<HashMap<String, Option<String>>>,
}

impl Live {
    fn routed(&self, scope: &str) -> Option<Option<String>> {
        let routed = self.routed.lock().unwrap_or_else(|p| p.into_inner());
        routed.get(scope).cloned()
    }
}

impl Runner for Live {
    type Output = Outcome;

    async fn run(&self, scope: &str, trigger: &Trigger) -> Outcome {
        let started = Instant::now();
        let result = match trigger {
            Trigger::Webhook { claimed_leader } => {
                self.router
                    .run_after_callback(scope, claimed_leader.as_deref())
                    .await
            }
            Trigger::Timer | Trigger::Evidence => {
                self.router.run(Mode::Reconcile, Some(scope)).await
            }
        };
        let secs = started.elapsed().as_secs_f64();
        if let Ok(report) = &result {
            let mut routed = self.routed.lock().unwrap_or_else(|p| p.into_inner());
            for c in &report.clusters {
                routed.insert(c.scope.clone(), c.decision.primary().map(str::to_string));
            }
        }
        self.hooks.ran(scope, trigger, &result, secs);
        match result {
            Ok(report) => Ok(Arc::new(report)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// New answers that confirm a primary other than the last run's: run now.
    async fn evidence(&self, scope: &str) {
        let (Some(board), Some(cluster)) =
            (self.router.board(), self.router.config().cluster(scope))
        else {
            return std::future::pending().await;
        };
        loop {
            board.changed(scope).await;
            let d = decide(cluster, &board.snapshot(cluster, Instant::now()));
            if let Some(primary) = d.primary()
                && self.routed(scope) != Some(Some(primary.to_string()))
            {
                return;
            }
        }
    }
}
