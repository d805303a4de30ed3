//! `patroni-router serve`: the router as a long-running service (ECS, EKS, a systemd unit, the
//! local demo). The long-running router of [`crate::entry::service`] (pollers, a worker per
//! cluster) behind an HTTP front door:
//!
//! - [`door`]: hyper with a header-read timeout, a connection cap fitted into the open-files
//!   limit, a bounded graceful shutdown;
//! - [`http`]: `POST /webhook`, `GET /metrics`, `GET /healthz`, `GET /readyz` (tower-http
//!   request and body timeouts);
//! - [`metrics`]: the Prometheus metrics, derived from each run's report;
//! - [`ready`]: readiness — this process takes webhooks and reaches its dependencies.
//!
//! On shutdown (SIGTERM/SIGINT in the CLI) no new connection is accepted, idle ones close, the
//! runs in flight finish, then `run` returns.

pub mod door;
pub mod http;
pub mod metrics;
pub mod ready;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, error, info, warn};

use crate::clock::{Clock, SystemClock};
use crate::domain::report::{ClusterReport, Report};
use crate::engine::{ReconcileError, Router, Verified};
use crate::entry::service::scheduler::{Scheduler, Trigger};
use crate::entry::service::{self, Hooks, Outcome};
use crate::webhook::{Auth, Verifier};
use metrics::Metrics;
use ready::Health;

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The watch loop: each cluster is reconciled this long after its last run.
    pub interval: Duration,
    /// How many clusters are reconciled at once.
    pub max_parallel: usize,
    /// Not ready once AWS has been unreachable for this many intervals.
    pub ready_after: u32,
    /// The most HTTP connections open at once (fitted into the open-files limit).
    pub max_connections: usize,
    /// A client must send its request head within this (and not idle longer between requests).
    pub header_read_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "ROUTER_WEBHOOK_AUTH=iam is for the Lambda function URL (AWS checks the SigV4 \
         signature there); `serve` verifies the shared-secret signature: set \
         ROUTER_WEBHOOK_SECRET or ROUTER_WEBHOOK_SECRET_FILE instead"
    )]
    IamAuth,
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
}

/// What the HTTP handlers share.
pub struct App {
    pub router: Arc<Router>,
    pub verifier: Verifier,
    pub scheduler: Arc<Scheduler<Outcome>>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

/// After each run: metrics, readiness, a log line.
struct ServeHooks {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Hooks for ServeHooks {
    fn ran(
        &self,
        scope: &str,
        trigger: &Trigger,
        result: &Result<Report, ReconcileError>,
        secs: f64,
    ) {
        match result {
            Ok(report) => {
                let now = SystemClock.since_epoch().as_secs_f64();
                for c in &report.clusters {
                    let o = self.metrics.record(c, trigger.label(), secs, now);
                    self.health.ran(c);
                    log_run(c, trigger, o.primary_changed);
                }
            }
            Err(e) => {
                self.metrics.record_failure(scope, trigger.label());
                error!(scope, trigger = trigger.label(), error = %e, "reconcile failed");
            }
        }
    }

    fn verified(&self, v: &Verified) {
        self.metrics.verified(v);
        log_verified(v);
    }
}

/// Verification is quiet unless it found something.
fn log_verified(v: &Verified) {
    if !v.errors.is_empty() || !v.drift.is_empty() {
        warn!(changed = ?v.changed, drift = ?v.drift, errors = ?v.errors, "verification found problems");
    } else if !v.changed.is_empty() {
        info!(changed = ?v.changed, "verification: AWS changed under these clusters; running them");
    } else {
        debug!(
            first_read = ?v.first_read,
            read = v.target_groups_read + v.names_read,
            unread = v.unread,
            oldest_s = v.oldest_s,
            "verified"
        );
    }
}

/// Quiet in steady state (debug); info when something moved, warn on errors.
fn log_run(c: &ClusterReport, trigger: &Trigger, primary_changed: bool) {
    let changes = c.changes.len();
    if !c.errors.is_empty() {
        warn!(scope = %c.scope, trigger = trigger.label(), decision = %c.decision.kind(),
              primary = c.decision.primary(), changes, errors = ?c.errors, "reconciled with errors");
    } else if changes > 0 || primary_changed || !matches!(trigger, Trigger::Timer) {
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
    refuse_unservable(&auth)?;
    // Nonces live in memory: what this process never saw (before a restart) is refused by
    // its timestamp instead.
    let verifier = Verifier::new(auth, router.config().webhook.max_clock_skew)
        .refusing_before(crate::clock::unix_now());
    let scopes: Vec<String> = router
        .config()
        .clusters
        .iter()
        .map(|c| c.scope.clone())
        .collect();
    let listener = bind(opts.listen).await?;
    let metrics = Arc::new(Metrics::new(&scopes));
    if let Some(budget) = router.budget() {
        metrics.count_calls(Arc::clone(budget));
    }
    let health = Arc::new(Health::new(opts.interval.saturating_mul(opts.ready_after)));
    let (stop, stopped) = watch::channel(false);
    let hooks = Arc::new(ServeHooks {
        metrics: Arc::clone(&metrics),
        health: Arc::clone(&health),
    });
    let svc_opts = service::Options {
        interval: opts.interval,
        max_parallel: opts.max_parallel,
    };
    let svc = service::start(router, svc_opts, hooks, stopped);
    let limits = door::Limits {
        max_connections: door::fit_connections(opts.max_connections),
        header_read_timeout: opts.header_read_timeout,
        shutdown_grace: Duration::from_secs(5),
    };
    let app = Arc::new(App {
        router: svc.router,
        verifier,
        scheduler: svc.scheduler,
        metrics,
        health: Arc::clone(&health),
    });
    info!(
        listen = %listener.local_addr().unwrap_or(opts.listen),
        clusters = scopes.len(),
        interval = %humantime::format_duration(opts.interval),
        max_parallel = opts.max_parallel,
        max_connections = limits.max_connections,
        "serving: POST /webhook, GET /metrics, /healthz, /readyz"
    );
    let graceful = async move {
        shutdown.await;
        health.shutting_down();
        info!("shutting down: no new connections; waiting for the runs in flight");
        let _ = stop.send(true);
    };
    let shed = app.metrics.shed.clone();
    let routes = http::routes(app);
    tokio::join!(
        door::serve(listener, routes, limits, shed, graceful),
        svc.tasks
    );
    info!("stopped");
    Ok(())
}

/// `serve` answers webhooks signed with HMAC (or none, with a warning); IAM auth is the
/// Lambda's function URL, not something a plain HTTP server can check.
fn refuse_unservable(auth: &Auth) -> Result<(), ServeError> {
    match auth {
        Auth::Iam => Err(ServeError::IamAuth),
        Auth::Disabled => {
            warn!(
                "no webhook secret configured (ROUTER_WEBHOOK_SECRET or ROUTER_WEBHOOK_SECRET_FILE): \
                 POST /webhook answers 401; the watch loop runs"
            );
            Ok(())
        }
        Auth::Hmac(_) => Ok(()),
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr,
            message: e.to_string(),
        })
}
