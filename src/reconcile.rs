//! The one reconcile path every entry point uses (CLI `plan`/`reconcile`/`watch`/`status`,
//! the Lambda's scheduled and direct events): poll Patroni, decide, read AWS, plan, apply,
//! report. Clusters are independent: one failing never blocks another.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream;
use tracing::{info, warn};

use crate::aws::{self, AwsClients, AwsError};
use crate::config::{ClusterConfig, Config, DnsConfig};
use crate::decide::{Decision, decide};
use crate::drift::{self, HealthCheck};
use crate::patroni::client::{ClientBuildError, PatroniClient};
use crate::patroni::{Member, NodeObservation};
use crate::plan::{
    self, DnsPlan, DnsState, RecordSet, TargetGroupPlan, TargetGroupState, TargetType, target_id,
};
use crate::report::{
    Action, ChangeReport, ChangeStatus, ClusterReport, DriftReport, Mode, NodeReport, Report,
    Routing, tg_name,
};

/// How many clusters are worked on at once (each polls all its nodes concurrently).
const CLUSTER_CONCURRENCY: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("unknown scope {0:?}: it is not in the config (configured: {1})")]
    UnknownScope(String, String),
}

pub struct Router {
    config: Config,
    patroni: PatroniClient,
    aws: AwsClients,
    /// A target group's type never changes: read once per process (per warm Lambda).
    target_types: Mutex<HashMap<String, TargetType>>,
    /// When each target group's settings were last found in order (or fixed).
    settings_checked: Mutex<HashMap<String, Instant>>,
}

/// Reads shared by all clusters of a run, done before the clusters are worked on.
struct SharedReads {
    target_types: HashMap<String, Result<TargetType, AwsError>>,
    /// Health checks of the target groups whose settings are due for a check.
    health_checks: HashMap<String, HealthCheck>,
    /// Zones holding several clusters' records, read whole once.
    zones: HashMap<String, Result<Vec<RecordSet>, AwsError>>,
}

/// From this many records in one zone on, one paginated read of the zone beats one read each.
const WHOLE_ZONE_READ_FROM: usize = 3;

/// One cluster after polling, deciding, reading AWS and planning; nothing applied yet.
struct Prepared<'a> {
    cluster: &'a ClusterConfig,
    started: Instant,
    decision: Decision,
    nodes: Vec<NodeReport>,
    routing: Routing,
    tg_plans: Vec<TargetGroupPlan>,
    /// The primary's record and the read endpoint's, each in its zone.
    dns_plans: Vec<DnsPlan>,
    drift: Vec<DriftReport>,
    errors: Vec<String>,
}

impl Router {
    pub fn new(config: Config, aws: AwsClients) -> Result<Router, ClientBuildError> {
        let patroni = PatroniClient::new(&config.patroni)?;
        Ok(Router {
            config,
            patroni,
            aws,
            target_types: Mutex::new(HashMap::new()),
            settings_checked: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn cluster(&self, scope: &str) -> Result<&ClusterConfig, ReconcileError> {
        self.config.cluster(scope).ok_or_else(|| {
            let known: Vec<&str> = self
                .config
                .clusters
                .iter()
                .map(|c| c.scope.as_str())
                .collect();
            ReconcileError::UnknownScope(scope.to_string(), known.join(", "))
        })
    }

    /// Run once over every cluster, or only `scope`.
    pub async fn run(&self, mode: Mode, scope: Option<&str>) -> Result<Report, ReconcileError> {
        let started = Instant::now();
        let clusters: Vec<&ClusterConfig> = match scope {
            None => self.config.clusters.iter().collect(),
            Some(s) => vec![self.cluster(s)?],
        };
        let shared = self.shared_reads(&clusters, mode).await;
        let shared = &shared;
        // Poll, decide, read and plan every cluster; apply target groups per cluster.
        let mut prepared: Vec<(Prepared, Vec<ChangeReport>)> = stream::iter(clusters)
            .map(|c| async move {
                let mut p = self.prepare(c, shared).await;
                let mut changes = self.apply_target_groups(&mut p, mode).await;
                changes.extend(self.check_settings(&mut p, mode, shared).await);
                (p, changes)
            })
            .buffer_unordered(CLUSTER_CONCURRENCY)
            .collect()
            .await;
        // Route 53: one change batch per hosted zone across clusters.
        let dns_changes = self.apply_dns(&mut prepared, mode).await;

        let mut reports: Vec<ClusterReport> = prepared
            .into_iter()
            .zip(dns_changes)
            .map(|((p, mut changes), dns)| {
                changes.extend(dns);
                finish(p, changes)
            })
            .collect();
        reports.sort_by(|a, b| a.scope.cmp(&b.scope));
        let ok = reports.iter().all(|r| r.errors.is_empty());
        Ok(Report {
            mode,
            ok,
            duration_ms: millis(started),
            clusters: reports,
        })
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
        let cluster = self.cluster(scope)?;
        let settings = &self.config.webhook;
        let started = Instant::now();
        let mut polls = 0u32;
        loop {
            polls += 1;
            let decision = decide(cluster, &self.patroni.poll(cluster).await);
            let settled = match (decision.primary(), claimed_leader) {
                (Some(p), Some(claimed)) => p == claimed,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if settled || started.elapsed() + settings.confirm_interval > settings.confirm_timeout {
                info!(
                    scope,
                    polls,
                    waited_ms = millis(started),
                    settled,
                    decision = decision.kind(),
                    "callback: done waiting for confirmation"
                );
                break;
            }
            tokio::time::sleep(settings.confirm_interval).await;
        }
        self.run(Mode::Reconcile, Some(scope)).await
    }

    /// Target types (cached, batched) and whole-zone reads, for all the clusters of a run.
    async fn shared_reads(&self, clusters: &[&ClusterConfig], mode: Mode) -> SharedReads {
        let arns: Vec<String> = clusters
            .iter()
            .flat_map(|c| c.all_target_groups().map(|tg| tg.arn.clone()))
            .collect();
        let mut target_types: HashMap<String, Result<TargetType, AwsError>> = HashMap::new();
        let unknown: Vec<String> = {
            let cache = self.target_types.lock().unwrap_or_else(|p| p.into_inner());
            for arn in &arns {
                if let Some(t) = cache.get(arn) {
                    target_types.insert(arn.clone(), Ok(t.clone()));
                }
            }
            let every = self.config.aws.settings_check_interval;
            let checked = self
                .settings_checked
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = |a: &String| {
                mode == Mode::Plan || checked.get(a).is_none_or(|t| t.elapsed() >= every)
            };
            arns.iter()
                .filter(|a| !cache.contains_key(*a) || due(a))
                .cloned()
                .collect()
        };
        let mut per_zone: HashMap<&str, usize> = HashMap::new();
        for d in clusters.iter().flat_map(|c| all_dns(c)) {
            *per_zone.entry(d.zone_id()).or_default() += 1;
        }
        let zones: Vec<&str> = per_zone
            .into_iter()
            .filter(|(_, n)| *n >= WHOLE_ZONE_READ_FROM)
            .map(|(z, _)| z)
            .collect();
        let (fresh, zone_reads) = tokio::join!(
            aws::elb::describe_groups(&self.aws, &unknown),
            futures_util::future::join_all(zones.iter().map(|z| async move {
                (z.to_string(), aws::route53::read_zone(&self.aws, z).await)
            }))
        );
        let mut health_checks = HashMap::new();
        {
            let mut cache = self.target_types.lock().unwrap_or_else(|p| p.into_inner());
            for (arn, info) in fresh {
                let t = info.map(|i| {
                    health_checks.insert(arn.clone(), i.health_check);
                    i.target_type
                });
                if let Ok(t) = &t {
                    cache.insert(arn.clone(), t.clone());
                }
                target_types.insert(arn, t);
            }
        }
        SharedReads {
            target_types,
            health_checks,
            zones: zone_reads.into_iter().collect(),
        }
    }

    async fn read_target_group(
        &self,
        arn: &str,
        shared: &SharedReads,
    ) -> Result<TargetGroupState, AwsError> {
        match shared.target_types.get(arn) {
            Some(Ok(t)) => aws::elb::read_targets(&self.aws, arn, t.clone()).await,
            Some(Err(e)) => Err(e.clone()),
            None => Err(AwsError::new(
                "DescribeTargetGroups",
                arn,
                None,
                "not read".into(),
            )),
        }
    }

    async fn read_dns(&self, d: &DnsConfig, shared: &SharedReads) -> Result<DnsState, AwsError> {
        let name = d.normalized_name();
        match shared.zones.get(d.zone_id()) {
            Some(Ok(all)) => Ok(DnsState {
                zone_id: d.zone_id().to_string(),
                records: all.iter().filter(|r| r.name == name).cloned().collect(),
            }),
            Some(Err(e)) => Err(e.clone()),
            None => aws::route53::read(&self.aws, d.zone_id(), &name).await,
        }
    }

    async fn prepare<'a>(&self, cluster: &'a ClusterConfig, shared: &SharedReads) -> Prepared<'a> {
        let started = Instant::now();
        let observations = self.patroni.poll(cluster).await;
        let decision = decide(cluster, &observations);
        log_decision(cluster, &decision, &observations);

        let mut errors = Vec::new();
        let mut routing = Routing::default();
        let mut tg_plans = Vec::new();
        let reads = futures_util::future::join_all(
            cluster
                .all_target_groups()
                .map(|tg| async move { (tg, self.read_target_group(&tg.arn, shared).await) }),
        );
        let read_replicas = cluster.replicas.as_ref();
        let dns_read = async {
            let primary = match &cluster.dns {
                Some(d) => Some((d, self.read_dns(d, shared).await)),
                None => None,
            };
            let read = match read_replicas.and_then(|r| r.dns.as_ref().map(|d| (r, d))) {
                Some((r, d)) => Some((r, d, self.read_dns(d, shared).await)),
                None => None,
            };
            (primary, read)
        };
        let (tg_states, (dns_state, read_dns_state)) = tokio::join!(reads, dns_read);
        for (tg, state) in tg_states {
            match state {
                Ok(state) => {
                    let p = plan::plan_target_group(cluster, tg, &decision, &state);
                    if let Some(b) = &p.blocked {
                        errors.push(format!("target group {}: {b}", tg_name(&tg.arn)));
                    }
                    tg_plans.push(p);
                    routing.target_groups.push(state);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let mut dns_plans = Vec::new();
        if let Some((d, state)) = dns_state {
            match state {
                Ok(state) => {
                    let p = plan::plan_dns(cluster, d, &decision, &state);
                    if let Some(b) = &p.blocked {
                        errors.push(format!("record {}: {b}", d.normalized_name()));
                    }
                    dns_plans.push(p);
                    routing.dns = Some(state);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if let Some((r, d, state)) = read_dns_state {
            match state {
                Ok(state) => {
                    let p = plan::plan_read_dns(cluster, r, d, &decision, &state);
                    if let Some(b) = &p.blocked {
                        errors.push(format!("read record {}: {b}", d.normalized_name()));
                    }
                    dns_plans.push(p);
                    routing.read_dns = Some(state);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let nodes = node_reports(cluster, &observations, &routing);
        Prepared {
            cluster,
            started,
            decision,
            nodes,
            routing,
            tg_plans,
            dns_plans,
            drift: Vec::new(),
            errors,
        }
    }

    /// Target-group hygiene: compare the settings the strategy needs with AWS (always in `plan`
    /// and `status`; in `reconcile` every `aws.settings_check_interval`, so that steady state
    /// stays cheap), report drift, and fix it where `manage_settings` is on.
    async fn check_settings(
        &self,
        p: &mut Prepared<'_>,
        mode: Mode,
        shared: &SharedReads,
    ) -> Vec<ChangeReport> {
        let mut changes = Vec::new();
        for tg in p.cluster.all_target_groups() {
            // Due ones had their health check read in the run's batch.
            let Some(hc) = shared.health_checks.get(&tg.arn) else {
                continue;
            };
            let current = match aws::elb::read_settings(&self.aws, &tg.arn, hc.clone()).await {
                Ok(c) => c,
                Err(e) => {
                    p.errors.push(e.to_string());
                    continue;
                }
            };
            let (drift, fix) = drift::check(tg, p.cluster.standby_cluster, &current);
            let mut fixed = false;
            if !fix.is_empty() && tg.manage_settings {
                let target = fix
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .chain(
                        drift
                            .iter()
                            .filter(|d| d.setting.starts_with("health_check."))
                            .map(|d| format!("{}={}", d.setting, d.desired)),
                    )
                    .collect::<Vec<_>>()
                    .join(", ");
                let (status, error) = if mode == Mode::Reconcile {
                    let r = aws::elb::apply_settings(&self.aws, &tg.arn, &fix).await;
                    fixed = r.is_ok();
                    if let Err(e) = &r {
                        p.errors.push(e.to_string());
                    }
                    outcome(&r)
                } else {
                    (ChangeStatus::Planned, None)
                };
                changes.push(ChangeReport {
                    resource: tg.arn.clone(),
                    action: Action::ModifySettings,
                    target,
                    node: None,
                    status,
                    error,
                });
            }
            if !drift.is_empty() {
                warn!(target_group = %tg.arn, drift = ?drift, fixed, "target group settings drift");
            }
            // Checked: not again before the interval, unless a fix is still to be applied.
            if !(tg.manage_settings && !fix.is_empty() && !fixed) {
                let mut checked = self
                    .settings_checked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                checked.insert(tg.arn.clone(), Instant::now());
            }
            p.drift.extend(drift.into_iter().map(|d| DriftReport {
                target_group: tg.arn.clone(),
                setting: d.setting,
                current: d.current,
                desired: d.desired,
                fixed,
            }));
        }
        changes
    }

    /// Register before deregister, so a target group is never left without the primary;
    /// if registering failed, the old targets stay (an empty group would refuse every client).
    async fn apply_target_groups(&self, p: &mut Prepared<'_>, mode: Mode) -> Vec<ChangeReport> {
        let mut changes = Vec::new();
        for (plan, state) in p.tg_plans.iter().zip(&p.routing.target_groups) {
            let node_of = |id: &str| node_for_target(p.cluster, id, state);
            let mk = |action, t: &plan::Target, status, error: Option<String>| ChangeReport {
                resource: plan.arn.clone(),
                action,
                target: t.to_string(),
                node: node_of(&t.id),
                status,
                error,
            };
            if mode == Mode::Plan {
                changes.extend(
                    plan.register
                        .iter()
                        .map(|t| mk(Action::Register, t, ChangeStatus::Planned, None)),
                );
                changes.extend(
                    plan.deregister
                        .iter()
                        .map(|t| mk(Action::Deregister, t, ChangeStatus::Planned, None)),
                );
                continue;
            }
            let mut register_failed = None;
            if !plan.register.is_empty() {
                let r = aws::elb::register(&self.aws, &plan.arn, &plan.register).await;
                let (status, error) = outcome(&r);
                log_apply("register", &plan.arn, &plan.register, &r);
                changes.extend(
                    plan.register
                        .iter()
                        .map(|t| mk(Action::Register, t, status, error.clone())),
                );
                if let Err(e) = r {
                    p.errors.push(e.to_string());
                    register_failed = Some(e);
                }
            }
            if plan.deregister.is_empty() {
                continue;
            }
            if register_failed.is_some() {
                let why = "register failed; the old targets stay so the group is not emptied";
                changes.extend(plan.deregister.iter().map(|t| {
                    mk(
                        Action::Deregister,
                        t,
                        ChangeStatus::Skipped,
                        Some(why.into()),
                    )
                }));
                continue;
            }
            let r = aws::elb::deregister(&self.aws, &plan.arn, &plan.deregister).await;
            log_apply("deregister", &plan.arn, &plan.deregister, &r);
            let (status, error) = outcome(&r);
            changes.extend(
                plan.deregister
                    .iter()
                    .map(|t| mk(Action::Deregister, t, status, error.clone())),
            );
            if let Err(e) = r {
                p.errors.push(e.to_string());
            }
        }
        changes
    }

    /// One atomic change batch for `members` (cluster index into `prepared`, plan index into
    /// its `dns_plans`) in `zone`; if it fails and holds several clusters, each is retried alone.
    async fn change_batch(
        &self,
        zone: &str,
        members: &[(usize, usize)],
        prepared: &[(Prepared<'_>, Vec<ChangeReport>)],
        outcomes: &mut HashMap<(usize, usize), Result<(), AwsError>>,
    ) {
        let clusters: BTreeSet<usize> = members.iter().map(|m| m.0).collect();
        let send = |members: Vec<(usize, usize)>| async move {
            let plans: Vec<&DnsPlan> = members
                .iter()
                .map(|&(i, j)| &prepared[i].0.dns_plans[j])
                .collect();
            let deletes: Vec<RecordSet> = plans.iter().flat_map(|d| d.deletes.clone()).collect();
            let upserts: Vec<RecordSet> = plans.iter().flat_map(|d| d.upserts.clone()).collect();
            let scopes: BTreeSet<&str> = members
                .iter()
                .map(|&(i, _)| prepared[i].0.cluster.scope.as_str())
                .collect();
            let comment = format!(
                "patroni-router: {}",
                scopes.into_iter().collect::<Vec<_>>().join(", ")
            );
            let comment: String = comment.chars().take(256).collect(); // Route 53's limit
            let r = aws::route53::change(&self.aws, zone, &deletes, &upserts, &comment).await;
            (members, r)
        };
        let (members, r) = send(members.to_vec()).await;
        if r.is_ok() || clusters.len() == 1 {
            for m in members {
                outcomes.insert(m, r.clone());
            }
            return;
        }
        warn!(zone = %zone, "batched Route 53 change failed; retrying cluster by cluster");
        for c in clusters {
            let mine: Vec<(usize, usize)> = members.iter().copied().filter(|m| m.0 == c).collect();
            let (mine, r) = send(mine).await;
            for m in mine {
                outcomes.insert(m, r.clone());
            }
        }
    }

    /// Batch every cluster's record changes into one call per hosted zone. Route 53 applies a
    /// batch atomically, so if a multi-cluster batch fails, each cluster is retried on its own:
    /// one bad cluster must not block the others. Returns the DNS changes per prepared cluster.
    async fn apply_dns(
        &self,
        prepared: &mut [(Prepared<'_>, Vec<ChangeReport>)],
        mode: Mode,
    ) -> Vec<Vec<ChangeReport>> {
        // zone -> cluster -> its plans in that zone
        let mut by_zone: BTreeMap<String, BTreeMap<usize, Vec<(usize, usize)>>> = BTreeMap::new();
        for (i, (p, _)) in prepared.iter().enumerate() {
            for (j, d) in p.dns_plans.iter().enumerate() {
                if !d.upserts.is_empty() || !d.deletes.is_empty() {
                    by_zone
                        .entry(d.zone_id.clone())
                        .or_default()
                        .entry(i)
                        .or_default()
                        .push((i, j));
                }
            }
        }
        let mut outcomes: HashMap<(usize, usize), Result<(), AwsError>> = HashMap::new();
        if mode == Mode::Reconcile {
            for (zone, clusters) in &by_zone {
                let ids: Vec<usize> = clusters.keys().copied().collect();
                let size = |i: usize| {
                    clusters[&i]
                        .iter()
                        .map(|&(i, j)| {
                            let d = &prepared[i].0.dns_plans[j];
                            d.upserts.len() + d.deletes.len()
                        })
                        .sum()
                };
                for chunk in batches(&ids, size, MAX_CHANGES_PER_BATCH) {
                    let members: Vec<(usize, usize)> = chunk
                        .iter()
                        .flat_map(|i| clusters[i].iter().copied())
                        .collect();
                    self.change_batch(zone, &members, prepared, &mut outcomes)
                        .await;
                }
            }
        }
        prepared
            .iter_mut()
            .enumerate()
            .map(|(i, (p, _))| {
                let mut changes = Vec::new();
                for (j, d) in p.dns_plans.iter().enumerate() {
                    let result = outcomes.get(&(i, j));
                    let (status, error) = match result {
                        None => (ChangeStatus::Planned, None),
                        Some(r) => outcome(r),
                    };
                    if let Some(Err(e)) = result {
                        let e = e.to_string();
                        if !p.errors.contains(&e) {
                            p.errors.push(e);
                        }
                    }
                    let records = d
                        .deletes
                        .iter()
                        .map(|r| (Action::Delete, r))
                        .chain(d.upserts.iter().map(|r| (Action::Upsert, r)));
                    for (action, r) in records {
                        if let Some(res) = result {
                            log_record(&p.cluster.scope, action, r, res);
                        }
                        changes.push(ChangeReport {
                            resource: format!("{}/{}", d.zone_id, r.name),
                            action,
                            target: describe_record(r),
                            node: (r.values.len() == 1)
                                .then(|| node_for_address(p.cluster, &r.values[0]))
                                .flatten(),
                            status,
                            error: error.clone(),
                        });
                    }
                }
                changes
            })
            .collect()
    }
}

/// The cluster's records: the primary's and the read endpoint's.
fn all_dns(c: &ClusterConfig) -> impl Iterator<Item = &DnsConfig> {
    c.dns
        .iter()
        .chain(c.replicas.iter().filter_map(|r| r.dns.as_ref()))
}

/// Route 53 takes at most 1,000 changes in one ChangeResourceRecordSets call.
const MAX_CHANGES_PER_BATCH: usize = 1000;

/// Group clusters into batches of at most `max` changes, never splitting a cluster's records
/// (a failover pair must land together).
fn batches(members: &[usize], size: impl Fn(usize) -> usize, max: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut count = 0;
    for &i in members {
        let n = size(i);
        if !current.is_empty() && count + n > max {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        current.push(i);
        count += n;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn finish(p: Prepared<'_>, changes: Vec<ChangeReport>) -> ClusterReport {
    let read_set = p
        .cluster
        .replicas
        .as_ref()
        .and_then(|r| plan::read_set(r, &p.decision))
        .map(|nodes| nodes.into_iter().map(str::to_string).collect());
    let read_resources: BTreeSet<String> = p
        .cluster
        .all_target_groups()
        .filter(|t| t.strategy == crate::config::Strategy::Replicas)
        .map(|t| t.arn.clone())
        .chain(
            p.cluster
                .replicas
                .iter()
                .filter_map(|r| r.dns.as_ref())
                .map(|d| format!("{}/{}", d.zone_id(), d.normalized_name())),
        )
        .collect();
    let primary_moved = p.decision.primary().is_some_and(|primary| {
        changes.iter().any(|c| {
            c.status == ChangeStatus::Applied
                && matches!(c.action, Action::Register | Action::Upsert)
                && c.node.as_deref() == Some(primary)
                && !read_resources.contains(&c.resource)
        })
    });
    ClusterReport {
        scope: p.cluster.scope.clone(),
        primary_moved,
        read_set,
        decision: p.decision,
        nodes: p.nodes,
        routing: p.routing,
        changes,
        drift: p.drift,
        errors: p.errors,
        duration_ms: millis(p.started),
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn outcome(r: &Result<(), AwsError>) -> (ChangeStatus, Option<String>) {
    match r {
        Ok(()) => (ChangeStatus::Applied, None),
        Err(e) => (ChangeStatus::Failed, Some(e.to_string())),
    }
}

fn describe_record(r: &RecordSet) -> String {
    let mut s = format!("{} {} {}", r.name, r.rtype, r.values.join(","));
    if let Some(id) = &r.set_identifier {
        let policy = match (&r.failover, r.multivalue) {
            (Some(f), _) => f.as_str(),
            (None, true) => "MULTIVALUE",
            (None, false) => "",
        };
        s.push_str(&format!(" [{policy} {id}]"));
    }
    s
}

fn node_for_target(cluster: &ClusterConfig, id: &str, state: &TargetGroupState) -> Option<String> {
    cluster
        .nodes
        .iter()
        .find(|n| target_id(cluster, &n.name, &state.target_type).is_ok_and(|t| t == id))
        .map(|n| n.name.clone())
}

fn node_for_address(cluster: &ClusterConfig, addr: &str) -> Option<String> {
    cluster
        .nodes
        .iter()
        .find(|n| n.address.to_string() == addr)
        .map(|n| n.name.clone())
}

/// Per node: what it answered, and where routing pointed at it.
fn node_reports(
    cluster: &ClusterConfig,
    observations: &[NodeObservation],
    routing: &Routing,
) -> Vec<NodeReport> {
    // Lag comes from the DCS view; take the first view that lists the member.
    let member = |name: &str| -> Option<&Member> {
        observations
            .iter()
            .filter_map(|o| o.cluster.as_ref().ok())
            .flat_map(|v| v.members.iter())
            .find(|m| m.name == name)
    };
    cluster
        .nodes
        .iter()
        .map(|n| {
            let obs = observations.iter().find(|o| o.name == n.name);
            let status = obs.and_then(|o| o.patroni.as_ref().ok());
            let mut routed_by = Vec::new();
            for tg in &routing.target_groups {
                if let Ok(id) = target_id(cluster, &n.name, &tg.target_type)
                    && tg
                        .targets
                        .iter()
                        .any(|t| t.target.id == id && t.is_active())
                {
                    routed_by.push(format!("tg:{}", tg_name(&tg.arn)));
                }
            }
            let records = [("dns", &routing.dns), ("dns-read", &routing.read_dns)];
            for (label, dns) in records {
                for r in dns.iter().flat_map(|d| &d.records) {
                    if r.values.contains(&n.address.to_string()) {
                        routed_by.push(match &r.set_identifier {
                            Some(id) => format!("{label}:{id}"),
                            None => label.to_string(),
                        });
                    }
                }
            }
            NodeReport {
                name: n.name.clone(),
                address: n.address.to_string(),
                reachable: status.is_some(),
                role: status.map(|s| s.role.clone()),
                state: status.map(|s| s.state.clone()),
                timeline: status.and_then(|s| s.timeline),
                lag: member(&n.name).and_then(|m| m.lag),
                routed_by,
                patroni_error: obs.and_then(|o| o.patroni.as_ref().err().map(|e| e.to_string())),
                cluster_error: obs.and_then(|o| o.cluster.as_ref().err().map(|e| e.to_string())),
            }
        })
        .collect()
}

/// One structured line per decision with the evidence, so an operator can replay it.
fn log_decision(cluster: &ClusterConfig, d: &Decision, observations: &[NodeObservation]) {
    let evidence: Vec<String> = observations
        .iter()
        .map(|o| {
            let own = match &o.patroni {
                Ok(s) => format!(
                    "{}/{} TL {}{}",
                    s.role,
                    s.state,
                    s.timeline.map_or("?".into(), |t| t.to_string()),
                    if s.cluster_unlocked { " unlocked" } else { "" }
                ),
                Err(e) => format!("error: {e}"),
            };
            // Every member as this node's DCS view has it: roles, states and lag are what
            // the leader choice and the read endpoint were decided on.
            let view = match &o.cluster {
                Ok(v) if v.members.is_empty() => "no members".to_string(),
                Ok(v) => v
                    .members
                    .iter()
                    .map(|m| {
                        let mut s = format!("{}={}", m.name, m.role);
                        if let Some(st) = &m.state {
                            s.push_str(&format!("/{st}"));
                        }
                        if let Some(l) = m.lag {
                            s.push_str(&format!(" lag {l}"));
                        }
                        if m.tag_is_set("noloadbalance") {
                            s.push_str(" noloadbalance");
                        }
                        s
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(e) => format!("error: {e}"),
            };
            format!("{}: patroni {own}; cluster {view}", o.name)
        })
        .collect();
    info!(
        scope = %cluster.scope,
        decision = d.kind(),
        primary = d.primary().unwrap_or(""),
        reason = %d.reason,
        stale_primaries = ?d.stale_primaries,
        following_replicas = ?d.replicas.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        evidence = ?evidence,
        "decision"
    );
}

fn log_apply(what: &str, arn: &str, targets: &[plan::Target], r: &Result<(), AwsError>) {
    let targets: Vec<String> = targets.iter().map(ToString::to_string).collect();
    match r {
        Ok(()) => info!(target_group = arn, ?targets, "{what} applied"),
        Err(e) => warn!(target_group = arn, ?targets, error = %e, "{what} failed"),
    }
}

fn log_record(scope: &str, action: Action, r: &RecordSet, res: &Result<(), AwsError>) {
    match res {
        Ok(()) => info!(scope, record = %describe_record(r), ?action, "record change applied"),
        Err(e) => {
            warn!(scope, record = %describe_record(r), ?action, error = %e, "record change failed")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::batches;

    #[test]
    fn batches_respect_the_limit_and_keep_clusters_whole() {
        let sizes = [2usize, 2, 1, 2, 2];
        let b = batches(&[0, 1, 2, 3, 4], |i| sizes[i], 4);
        assert_eq!(b, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(
            batches(&[0], |_| 7, 4),
            vec![vec![0]],
            "an oversized cluster still goes alone"
        );
        assert!(batches(&[], |_| 1, 4).is_empty());
    }
}
