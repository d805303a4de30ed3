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
mod mark;
mod observe;
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
use tracing::info;

use crate::adapters::elb_sdk::SdkElb;
use crate::adapters::patroni_http::{ClientBuildError, HttpPatroni};
use crate::adapters::route53_sdk::SdkRoute53;
use crate::adapters::sdk::AwsClients;
use crate::adapters::{Elb, Patroni, Route53, Tags};
use crate::clock::{Clock, SystemClock, millis_since};
use crate::config::{ClusterConfig, Config};
use crate::domain::aws::TargetType;
use crate::domain::decide::decide;
use crate::domain::report::{Mode, Report};

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
}

pub struct Router {
    config: Config,
    ports: Ports,
    memory: Memory,
}

impl Router {
    /// The real router: Patroni over HTTP, AWS through the SDK.
    pub fn new(config: Config, aws: AwsClients) -> Result<Router, ClientBuildError> {
        let ports = Ports {
            patroni: Arc::new(HttpPatroni::new(&config.patroni)?),
            elb: Arc::new(SdkElb(aws.elb)),
            route53: Arc::new(SdkRoute53(aws.route53)),
            clock: Arc::new(SystemClock),
        };
        Ok(Router::with_ports(config, ports))
    }

    pub fn with_ports(config: Config, ports: Ports) -> Router {
        Router {
            config,
            ports,
            memory: Memory::default(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
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
        let started = Instant::now();
        let clusters = self.clusters(scope)?;
        let shared = observe::shared_reads(self, &clusters, mode).await;
        let shared = &shared;
        // Boxed as `Send` one by one: a closure-built stream of futures over borrowed clusters
        // trips the compiler's higher-ranked lifetime check and loses `Send` for the run.
        let work: Vec<BoxFuture<'_, prepare::Prepared<'_>>> = clusters
            .into_iter()
            .map(|c| Box::pin(self.work_on(c, mode, shared)) as BoxFuture<'_, _>)
            .collect();
        let mut prepared: Vec<prepare::Prepared> = stream::iter(work)
            .buffer_unordered(CLUSTER_CONCURRENCY)
            .collect()
            .await;
        if mode == Mode::Reconcile {
            records::apply(&*self.ports.route53, &mut prepared).await;
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
    ) -> prepare::Prepared<'a> {
        let mut p = self.prepare(cluster, shared).await;
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
        shared: &observe::SharedReads,
    ) -> prepare::Prepared<'a> {
        let started = Instant::now();
        let observations = observe::poll(self, cluster).await;
        let decision = decide(cluster, &observations);
        assemble::log_decision(cluster, &decision, &observations);
        let aws = observe::read_cluster(self, cluster, shared).await;
        let ctx = mark::Context {
            owner_id: self.config.owner_id.as_deref(),
            at_ms: u64::try_from(self.ports.clock.since_epoch().as_millis()).unwrap_or(u64::MAX),
            tags: &shared.tags,
        };
        prepare::prepare(cluster, started, &observations, decision, aws, &ctx)
    }

    /// After a Patroni callback: the DCS may still show the old state for a moment, so poll
    /// (every `confirm_interval`, at most `confirm_timeout`) until a primary is confirmed, and
    /// if the callback said a node became leader, until that node is the confirmed one. The
    /// callback only decides how long to look; routing always follows what Patroni confirms.
    /// Then reconcile the cluster.
    pub async fn run_after_callback(
        &self,
        scope: &str,
        claimed_leader: Option<&str>,
    ) -> Result<Report, ReconcileError> {
        let cluster = self.clusters(Some(scope))?[0];
        let settings = &self.config.webhook;
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            polls += 1;
            let decision = decide(cluster, &observe::poll(self, cluster).await);
            let settled = match (decision.primary(), claimed_leader) {
                (Some(p), Some(claimed)) => p == claimed,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if settled || started.elapsed() + settings.confirm_interval > settings.confirm_timeout {
                info!(
                    scope,
                    polls,
                    waited_ms = millis_since(started),
                    settled,
                    decision = %decision.kind(),
                    "callback: done waiting for confirmation"
                );
                break;
            }
            tokio::time::sleep(settings.confirm_interval).await;
        }
        self.run(Mode::Reconcile, Some(scope)).await
    }
}
