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
mod check;
mod evidence;
mod known;
mod lag;
mod mark;
mod observe;
pub mod pollers;
mod prepare;
mod recall;
mod records;
mod settings;
mod targets;
#[cfg(test)]
mod tests;
mod verify;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::{StreamExt, stream};

use crate::adapters::budget::{Budget, Priority, with_priority};
use crate::adapters::elb_sdk::SdkElb;
use crate::adapters::patroni_http::{ClientBuildError, HttpPatroni};
use crate::adapters::route53_sdk::SdkRoute53;
use crate::adapters::sdk::AwsClients;
use crate::adapters::{Elb, Patroni, Route53, Tags};
use crate::clock::{Clock, SystemClock, millis_since};
use crate::config::{ClusterConfig, Config};
use crate::domain::aws::{DnsState, TargetGroupState, TargetType};
use crate::domain::decide::decide;
use crate::domain::ownership::Owner;
use crate::domain::patroni::NodeObservation;
use crate::domain::report::{Mode, Report};
pub use evidence::Board;
pub use verify::Verified;

/// How many clusters are worked on at once (each polls all its nodes concurrently).
const CLUSTER_CONCURRENCY: usize = 32;

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

/// When a run reads AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Every run reads what it plans from (one-shot commands: `plan`, `reconcile`, `status`).
    Always,
    /// A run plans from what this process remembers of AWS — a failover too: its writes
    /// re-check what they must — and reads only what it remembers nothing it can plan from;
    /// [`Router::verify`] refreshes the memory on a rotating schedule within the budget
    /// (`watch`, `serve`, the Lambda).
    ChangeDriven,
}

/// What the engine remembers between runs of one process (one warm Lambda).
struct Memory {
    /// When the process (its router) started.
    started: Instant,
    /// What AWS held, as last read or written (change-driven reads plan from it).
    known: known::Known,
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
    /// Held while reading what a cold start never read (tags, whole zones), so that the
    /// first runs of many clusters at once make one read, not one each.
    cold: tokio::sync::Mutex<()>,
}

impl Memory {
    fn new(started: Instant) -> Memory {
        Memory {
            started,
            known: known::Known::default(),
            target_types: Mutex::default(),
            settings_checked: Mutex::default(),
            tags: Mutex::default(),
            databases: Mutex::default(),
            cold: tokio::sync::Mutex::default(),
        }
    }
}

pub struct Router {
    config: Config,
    ports: Ports,
    memory: Memory,
    /// The latest answer of every node, kept by pollers (`watch`, `serve`); `None`: each run
    /// polls.
    board: Option<Arc<Board>>,
    reads: Reads,
    /// How often verification reads each item (from the config and the budget).
    cycles: verify::Cycles,
    /// The AWS budget of the SDK adapters (`None` with other ports).
    budget: Option<Arc<Budget>>,
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
        let mut router = Router::with_ports(config, ports);
        router.budget = Some(aws.budget);
        Ok(router)
    }

    pub fn with_ports(config: Config, ports: Ports) -> Router {
        let cycles = verify::Cycles::of(&config.clusters, &config.aws);
        let started = ports.clock.now();
        Router {
            cycles,
            budget: None,
            config,
            ports,
            memory: Memory::new(started),
            board: None,
            reads: Reads::Always,
        }
    }

    /// Runs read AWS only when a decision calls for it (see [`Reads::ChangeDriven`]).
    pub fn with_change_driven_reads(mut self) -> Router {
        self.reads = Reads::ChangeDriven;
        self
    }

    /// Runs read the nodes' latest answers from `board` (kept fresh by [`pollers`]) instead
    /// of polling.
    pub fn with_board(mut self, board: Arc<Board>) -> Router {
        self.board = Some(board);
        self
    }

    /// The process's AWS budget (its call counts), with the SDK adapters.
    pub fn budget(&self) -> Option<&Arc<Budget>> {
        self.budget.as_ref()
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
            with_priority(Priority::Urgent, records::apply(self, &mut prepared)).await;
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
        let mut p = self
            .prepare(cluster, mode, started, observations, shared)
            .await;
        if mode == Mode::Reconcile {
            // A failover's writes (and the checks around them) go first in the budget.
            let priority = match mark::moves_routing(&p) {
                true => Priority::Urgent,
                false => Priority::Normal,
            };
            with_priority(priority, targets::apply(self, &mut p)).await;
        } else {
            p.plan_only();
        }
        settings::check(self, &mut p, mode, shared).await;
        p
    }

    /// Decide and plan one cluster from what the nodes said, reading AWS as [`Reads`] says;
    /// nothing applied yet.
    async fn prepare<'a>(
        &self,
        cluster: &'a ClusterConfig,
        mode: Mode,
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
        let moved = self
            .memory
            .known
            .leader_moved(&cluster.scope, decision.primary());
        assemble::log_decision(cluster, &decision, &observations, moved);
        let database = self.remember_database(&cluster.scope, decision.database.as_deref());
        let ctx = mark::Context {
            database: database.as_deref(),
            owner_id: self.config.owner_id.as_deref(),
            at_ms: self.unix_ms(),
            tags: &shared.tags,
        };
        // Change-driven: plan from what is remembered — also a failover's: registering and
        // UPSERTs are idempotent, the writes re-check the fence and ownership first, the
        // deregistration re-reads the targets and the record batch carries the marker as a
        // compare-and-set, so a stale memory fails safe and is read at the next run.
        if self.change_driven(mode) {
            let owner = Owner::of(ctx.owner_id, &cluster.scope, ctx.database);
            let view = recall::remembered(self, cluster, &decision, owner.as_ref(), shared).await;
            if let Some(view) = view {
                return prepare::prepare(cluster, timing, &observations, decision, view, &ctx);
            }
        }
        let priority = match moved {
            true => Priority::Urgent,
            false => Priority::Normal,
        };
        let aws = with_priority(priority, observe::read_cluster(self, cluster, shared)).await;
        prepare::prepare(cluster, timing, &observations, decision, aws, &ctx)
    }

    /// Plans from remembered AWS state? Only reconcile runs: a plan always reads.
    fn change_driven(&self, mode: Mode) -> bool {
        self.reads == Reads::ChangeDriven && mode == Mode::Reconcile
    }

    /// Remember a target group as read now (a first read dated back by its spread, so
    /// first verifications do not all come due at once).
    fn remember_group(&self, state: TargetGroupState, now: Instant) {
        let known = &self.memory.known;
        let at = match known.group(&state.arn) {
            Some(_) => now,
            None => back(now, crate::clock::phase(&state.arn, self.cycles.groups)),
        };
        known.put_group(state, at);
    }

    /// Remember a record name as read now (first reads spread like target groups').
    fn remember_name(&self, name: &str, state: DnsState, now: Instant) {
        let known = &self.memory.known;
        let at = match known.name(&state.zone_id, name) {
            Some(_) => now,
            None => back(now, crate::clock::phase(name, self.cycles.names)),
        };
        known.put_name(name, state, at);
    }
}

/// `now - by`, or `now` when the clock cannot go back that far.
fn back(now: Instant, by: std::time::Duration) -> Instant {
    now.checked_sub(by).unwrap_or(now)
}
