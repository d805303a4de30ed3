//! The reconcile engine: the one path every entry point uses (CLI `plan`/`reconcile`/`watch`/
//! `status`, the Lambda, `serve`), in phases, each in its own module:
//!
//! 1. [`observe`]: poll Patroni (every node at once, under a deadline) and read AWS (reads
//!    shared across clusters first: target-group types, whole zones);
//! 2. decide (`domain::decide`) and plan (`domain::plan`), pure, assembled by [`prepare`];
//! 3. apply: [`targets`] per cluster (marker first, register before deregister, verify the
//!    fence), then [`records`], one batch per zone with the marker as a compare-and-set;
//!    [`settings`]: target-group hygiene. Plan mode never applies;
//! 4. [`assemble`]: the report.
//!
//! Clusters are independent: one failing (Patroni or AWS) never blocks another. The engine
//! talks to the world only through the ports in `adapters`, so its safety rules are unit
//! tests against the in-memory AWS ([`tests`]).

mod assemble;
mod callback;
mod evidence;
mod lag;
mod mark;
mod observe;
pub mod pollers;
mod prepare;
mod records;
mod settings;
mod targets;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};

use crate::adapters::elb_sdk::SdkElb;
use crate::adapters::patroni_http::{ClientBuildError, HttpPatroni};
use crate::adapters::route53_sdk::SdkRoute53;
use crate::adapters::sdk::AwsClients;
use crate::adapters::{Elb, Patroni, Route53, Tags};
use crate::clock::{Clock, SystemClock, millis_since};
use crate::config::{ClusterConfig, Config};
use crate::domain::aws::TargetType;
use crate::domain::decide::decide;
use crate::domain::patroni::NodeObservation;
use crate::domain::report::{Mode, Report};
pub use evidence::Board;

/// How many clusters are worked on at once (each polls all its nodes concurrently).
const CLUSTER_CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("unknown scope {0:?}: it is not in the config (configured: {1})")]
    UnknownScope(String, String),
}

/// What the engine talks to.
#[derive(Clone)]
pub struct Ports {
    pub patroni: Arc<dyn Patroni>,
    pub elb: Arc<dyn Elb>,
    pub route53: Arc<dyn Route53>,
    pub clock: Arc<dyn Clock>,
}

/// What the engine remembers between runs of one process (one warm Lambda).
#[derive(Default)]
struct Memory {
    /// A target group's type never changes: read once.
    target_types: Mutex<HashMap<String, TargetType>>,
    /// When each target group's settings were last found in order (or fixed).
    settings_checked: Mutex<HashMap<String, Instant>>,
    /// Each target group's tags (owner marker and fence) as last read or written: read once
    /// per process, read again before any change to the group.
    tags: Mutex<HashMap<String, Tags>>,
    /// Each cluster's database (system identifier) as last reported: the default owner while
    /// no node answers.
    databases: Mutex<HashMap<String, String>>,
}

pub struct Router {
    config: Config,
    ports: Ports,
    memory: Memory,
    /// The latest answer of every node, kept by pollers (`watch`, `serve`); `None`: each run
    /// polls.
    board: Option<Arc<Board>>,
}

impl Router {
    /// The real router: Patroni over HTTP, AWS through the SDK.
    pub fn new(config: Config, aws: AwsClients) -> Result<Router, ClientBuildError> {
        let ports = Ports {
            patroni: Arc::new(HttpPatroni::new(&config.patroni)?),
            elb: Arc::new(SdkElb {
                client: aws.elb,
                budget: Arc::clone(&aws.budget),
            }),
            route53: Arc::new(SdkRoute53 {
                client: aws.route53,
                budget: Arc::clone(&aws.budget),
            }),
            clock: Arc::new(SystemClock),
        };
        Ok(Router::with_ports(config, ports))
    }

    pub fn with_ports(config: Config, ports: Ports) -> Router {
        Router {
            config,
            ports,
            memory: Memory::default(),
            board: None,
        }
    }

    /// Runs read the nodes' latest answers from `board` (kept fresh by [`pollers`]) instead
    /// of polling.
    pub fn with_board(mut self, board: Arc<Board>) -> Router {
        self.board = Some(board);
        self
    }

    pub fn board(&self) -> Option<&Arc<Board>> {
        self.board.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Wall-clock now, Unix ms.
    fn unix_ms(&self) -> u64 {
        u64::try_from(self.ports.clock.since_epoch().as_millis()).unwrap_or(u64::MAX)
    }

    /// Remember the database a cluster's nodes named; the last one known when none did.
    fn remember_database(&self, scope: &str, now: Option<&str>) -> Option<String> {
        let mut known = self
            .memory
            .databases
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match now {
            Some(db) => {
                known.insert(scope.to_string(), db.to_string());
                Some(db.to_string())
            }
            None => known.get(scope).cloned(),
        }
    }

    fn clusters(&self, scope: Option<&str>) -> Result<Vec<&ClusterConfig>, ReconcileError> {
        let Some(scope) = scope else {
            return Ok(self.config.clusters.iter().collect());
        };
        match self.config.cluster(scope) {
            Some(c) => Ok(vec![c]),
            None => {
                let known: Vec<&str> = self
                    .config
                    .clusters
                    .iter()
                    .map(|c| c.scope.as_str())
                    .collect();
                Err(ReconcileError::UnknownScope(
                    scope.to_string(),
                    known.join(", "),
                ))
            }
        }
    }

    /// Run once over every cluster, or only `scope`.
    pub async fn run(&self, mode: Mode, scope: Option<&str>) -> Result<Report, ReconcileError> {
        self.run_clusters(mode, self.clusters(scope)?, None).await
    }

    /// A run over `clusters`; `given`: what the nodes of the (only) cluster already answered.
    async fn run_clusters(
        &self,
        mode: Mode,
        clusters: Vec<&ClusterConfig>,
        given: Option<Vec<NodeObservation>>,
    ) -> Result<Report, ReconcileError> {
        let started = Instant::now();
        let shared = observe::shared_reads(self, &clusters, mode).await;
        let shared = &shared;
        // Boxed as `Send` one by one: a closure-built stream of futures over borrowed clusters
        // trips the compiler's higher-ranked lifetime check and loses `Send` for the run.
        let work: Vec<BoxFuture<'_, prepare::Prepared<'_>>> = clusters
            .into_iter()
            .map(|c| Box::pin(self.work_on(c, mode, shared, given.clone())) as BoxFuture<'_, _>)
            .collect();
        let mut prepared: Vec<prepare::Prepared> = stream::iter(work)
            .buffer_unordered(CLUSTER_CONCURRENCY)
            .collect()
            .await;
        if mode == Mode::Reconcile {
            records::apply(&*self.ports.route53, &mut prepared).await;
            lag::measure(self, &mut prepared).await;
        }
        let mut clusters: Vec<_> = prepared.into_iter().map(assemble::finish).collect();
        clusters.sort_by(|a, b| a.scope.cmp(&b.scope));
        Ok(Report {
            mode,
            ok: clusters.iter().all(|r| r.errors.is_empty()),
            duration_ms: millis_since(started),
            clusters,
        })
    }

    /// One cluster's part of a run: prepare, then apply its target groups (or only report
    /// the plan), then the settings check. Its records are applied with every cluster's.
    async fn work_on<'a>(
        &self,
        cluster: &'a ClusterConfig,
        mode: Mode,
        shared: &observe::SharedReads,
        given: Option<Vec<NodeObservation>>,
    ) -> prepare::Prepared<'a> {
        let started = Instant::now();
        let observations = match given {
            Some(o) => o,
            None => evidence::observe(self, cluster).await,
        };
        let mut p = self.prepare(cluster, started, observations, shared).await;
        if mode == Mode::Reconcile {
            targets::apply(self, &mut p).await;
        } else {
            p.plan_only();
        }
        settings::check(self, &mut p, mode, shared).await;
        p
    }

    /// Poll, decide, read AWS and plan one cluster; nothing applied yet.
    async fn prepare<'a>(
        &self,
        cluster: &'a ClusterConfig,
        started: Instant,
        observations: Vec<NodeObservation>,
        shared: &observe::SharedReads,
    ) -> prepare::Prepared<'a> {
        let decision = decide(cluster, &observations);
        let timing = prepare::Timing {
            started,
            decided_ms: millis_since(started),
            decided_at_ms: self.unix_ms(),
        };
        assemble::log_decision(cluster, &decision, &observations);
        let aws = observe::read_cluster(self, cluster, shared).await;
        let database = self.remember_database(&cluster.scope, decision.database.as_deref());
        let ctx = mark::Context {
            database: database.as_deref(),
            owner_id: self.config.owner_id.as_deref(),
            at_ms: self.unix_ms(),
            tags: &shared.tags,
        };
        prepare::prepare(cluster, timing, &observations, decision, aws, &ctx)
    }
}
