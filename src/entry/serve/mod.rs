//! `patroni-router serve`: the router as a long-running service (ECS, EKS, a systemd unit, the
//! local demo). One more entry point over the same reconcile path as the CLI and the Lambda:
//!
//! - [`scheduler`]: a worker per cluster (the watch loop at `--interval`, and an immediate run
//!   on a valid webhook); runs of one cluster never overlap, clusters run in parallel up to
//!   `--max-parallel`;
//! - [`http`]: `POST /webhook`, `GET /metrics`, `GET /healthz`, `GET /readyz`;
//! - [`metrics`]: the Prometheus metrics, derived from each run's report;
//! - [`ready`]: readiness, from each cluster's last successful reconcile.
//!
//! On shutdown (SIGTERM/SIGINT in the CLI) no new connection is accepted, the runs in flight
//! finish, then `run` returns.

pub mod http;
pub mod metrics;
pub mod ready;
pub mod scheduler;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::domain::report::{ClusterReport, Mode, Report};
use crate::engine::Router;
use crate::webhook::{Auth, Verifier};
use metrics::Metrics;
use ready::Health;
use scheduler::{Runner, Scheduler, Trigger};

/// What a webhook waiting for a run gets: the report, or why there is none.
pub type Outcome = Result<Arc<Report>, String>;

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The watch loop: each cluster is reconciled this long after its last run.
    pub interval: Duration,
    /// How many clusters are reconciled at once.
    pub max_parallel: usize,
    /// Ready while every cluster's last successful reconcile is at most this many intervals old.
    pub ready_after: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "ROUTER_WEBHOOK_AUTH=iam is for the Lambda function URL (AWS checks the SigV4 \
         signature there); `serve` verifies the shared-secret signature: set \
         ROUTER_WEBHOOK_SECRET or ROUTER_WEBHOOK_SECRET_FILE instead"
    )]
    IamAuth,
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Http(std::io::Error),
}

/// What the HTTP handlers share.
pub struct App {
    pub router: Arc<Router>,
    pub verifier: Verifier,
    pub scheduler: Arc<Scheduler<Outcome>>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// The runner of the real service: the one reconcile path, then metrics, readiness and logs.
struct Live {
    router: Arc<Router>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Runner for Live {
    type Output = Outcome;

    async fn run(&self, scope: &str, trigger: &Trigger) -> Outcome {
        let started = Instant::now();
        let result = match trigger {
            Trigger::Timer => self.router.run(Mode::Reconcile, Some(scope)).await,
            Trigger::Webhook { claimed_leader } => {
                self.router
                    .run_after_callback(scope, claimed_leader.as_deref())
                    .await
            }
        };
        let secs = started.elapsed().as_secs_f64();
        match result {
            Ok(report) => {
                for c in &report.clusters {
                    let o = self.metrics.record(
                        c,
                        trigger.label(),
                        secs,
                        SystemClock.since_epoch().as_secs_f64(),
                    );
                    if o.success {
                        self.health.succeeded(&c.scope);
                    }
                    log_run(c, trigger, o.primary_changed);
                }
                Ok(Arc::new(report))
            }
            Err(e) => {
                self.metrics.record_failure(scope, trigger.label());
                error!(scope, trigger = trigger.label(), error = %e, "reconcile failed");
                Err(e.to_string())
            }
        }
    }
}

/// Quiet in steady state (debug); info when something moved, warn on errors.
fn log_run(c: &ClusterReport, trigger: &Trigger, primary_changed: bool) {
    let changes = c.changes.len();
    if !c.errors.is_empty() {
        warn!(scope = %c.scope, trigger = trigger.label(), decision = %c.decision.kind(),
              primary = c.decision.primary(), changes, errors = ?c.errors, "reconciled with errors");
    } else if changes > 0 || primary_changed || matches!(trigger, Trigger::Webhook { .. }) {
        info!(scope = %c.scope, trigger = trigger.label(), decision = %c.decision.kind(),
              primary = c.decision.primary(), changes, duration_ms = c.duration_ms, "reconciled");
    } else {
        debug!(scope = %c.scope, trigger = trigger.label(), decision = %c.decision.kind(),
               primary = c.decision.primary(), duration_ms = c.duration_ms, "reconciled");
    }
}

/// Serve until `shutdown` completes; then stop accepting, let the runs in flight finish and
/// return.
pub async fn run(
    router: Router,
    auth: Auth,
    opts: &Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    match auth {
        Auth::Iam => return Err(ServeError::IamAuth),
        Auth::Disabled => warn!(
            "no webhook secret configured (ROUTER_WEBHOOK_SECRET or ROUTER_WEBHOOK_SECRET_FILE): \
             POST /webhook answers 401; the watch loop runs"
        ),
        Auth::Hmac(_) => {}
    }
    let verifier = Verifier::new(auth, router.config().webhook.max_clock_skew);
    let scopes: Vec<String> = router
        .config()
        .clusters
        .iter()
        .map(|c| c.scope.clone())
        .collect();
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: opts.listen,
            source,
        })?;
    let router = Arc::new(router);
    let metrics = Arc::new(Metrics::new(&scopes));
    let health = Arc::new(Health::new(
        scopes.clone(),
        opts.interval.saturating_mul(opts.ready_after),
    ));
    let (stop, stopped) = watch::channel(false);
    let runner = Arc::new(Live {
        router: Arc::clone(&router),
        metrics: Arc::clone(&metrics),
        health: Arc::clone(&health),
    });
    let (scheduler, workers) =
        Scheduler::start(&scopes, runner, opts.interval, opts.max_parallel, stopped);
    let app = Arc::new(App {
        router,
        verifier,
        scheduler,
        metrics,
        health,
    });
    info!(
        listen = %listener.local_addr().unwrap_or(opts.listen),
        clusters = scopes.len(),
        interval = %humantime::format_duration(opts.interval),
        max_parallel = opts.max_parallel,
        ready_after = opts.ready_after,
        "serving: POST /webhook, GET /metrics, /healthz, /readyz"
    );
    let graceful = async move {
        shutdown.await;
        info!("shutting down: no new connections; waiting for the runs in flight");
        let _ = stop.send(true);
    };
    let server = axum::serve(listener, http::routes(app)).with_graceful_shutdown(graceful);
    let (served, ()) = tokio::join!(server.into_future(), workers);
    info!("stopped");
    served.map_err(ServeError::Http)
}
