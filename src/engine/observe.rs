//! Observe AWS: first the reads shared by all clusters of a run (target-group types and tags,
//! cached per process; whole zones holding several records), then each cluster's own. (What
//! Patroni says is gathered by [`super::evidence`].)

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures_util::future::join_all;

use super::Router;
use crate::adapters::{AwsError, Tags, elb_batch};
use crate::config::{ClusterConfig, DnsConfig, TargetGroupConfig};
use crate::domain::aws::{DnsState, Endpoint, RecordSet, TargetGroupState, TargetType};
use crate::domain::decide::Decision;
use crate::domain::drift::HealthCheck;
use crate::domain::ownership::{Marker, Owner};
use crate::domain::report::Mode;

/// From this many records in one zone on, one paginated read of the zone beats one read each.
const WHOLE_ZONE_READ_FROM: usize = 3;

/// Reads shared by all clusters of a run, done before the clusters are worked on.
pub(super) struct SharedReads {
    target_types: HashMap<String, Result<TargetType, AwsError>>,
    /// Health checks of the target groups read this run (their settings are due a check).
    pub(super) health_checks: HashMap<String, HealthCheck>,
    /// Zones holding several clusters' records, read whole once.
    zones: HashMap<String, Result<Vec<RecordSet>, AwsError>>,
    /// Every target group's tags (cached per process).
    pub(super) tags: HashMap<String, Result<Tags, AwsError>>,
}

/// Target types (cached, batched) and whole-zone reads, for all the clusters of a run.
pub(super) async fn shared_reads(
    router: &Router,
    clusters: &[&ClusterConfig],
    mode: Mode,
) -> SharedReads {
    let arns: Vec<String> = clusters
        .iter()
        .flat_map(|c| c.target_groups.iter().map(|tg| tg.arn.clone()))
        .collect();
    if router.change_driven(mode) {
        return cold_reads(router, clusters, &arns).await;
    }
    let (mut target_types, unknown) = cached_types(router, &arns, mode);
    let (mut tags, untagged) = cached_tags(router, &arns);
    let zones = busy_zones(clusters);
    let route53 = &*router.ports.route53;
    let (fresh, fresh_tags, zone_reads) = tokio::join!(
        elb_batch::describe_groups(&*router.ports.elb, &unknown),
        elb_batch::describe_tags(&*router.ports.elb, &untagged),
        join_all(
            zones
                .iter()
                .map(|z| async move { (z.to_string(), route53.list(z, None).await) })
        )
    );
    remember_tags(router, &fresh_tags);
    tags.extend(fresh_tags);
    remember_zones(router, clusters, &zone_reads);
    let mut health_checks = HashMap::new();
    let mut cache = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner());
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
    SharedReads {
        target_types,
        health_checks,
        zones: zone_reads.into_iter().collect(),
        tags,
    }
}

pub(super) type TagReads = HashMap<String, Result<Tags, AwsError>>;

/// The cached tags, and the ARNs whose tags were never read.
fn cached_tags(router: &Router, arns: &[String]) -> (TagReads, Vec<String>) {
    let cache = router.memory.tags.lock().unwrap_or_else(|p| p.into_inner());
    let known = arns
        .iter()
        .filter_map(|a| Some((a.clone(), Ok(cache.get(a)?.clone()))))
        .collect();
    let unknown = arns
        .iter()
        .filter(|a| !cache.contains_key(*a))
        .cloned()
        .collect();
    (known, unknown)
}

/// Keep what was read (or written) of a target group's tags.
pub(super) fn remember_tags(router: &Router, read: &TagReads) {
    let mut cache = router.memory.tags.lock().unwrap_or_else(|p| p.into_inner());
    for (arn, tags) in read {
        if let Ok(t) = tags {
            cache.insert(arn.clone(), t.clone());
        }
    }
}

type TypeReads = HashMap<String, Result<TargetType, AwsError>>;

/// The cached types, and the ARNs to describe: unknown ones, and those whose settings are due
/// a check (the describe call brings the health check along).
fn cached_types(router: &Router, arns: &[String], mode: Mode) -> (TypeReads, Vec<String>) {
    let cache = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let checked = router
        .memory
        .settings_checked
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let every = router.config.aws.settings_check_interval;
    let now = router.ports.clock.now();
    let due = |a: &String| {
        mode == Mode::Plan
            || checked
                .get(a)
                .is_none_or(|t| now.saturating_duration_since(*t) >= every)
    };
    let known = arns
        .iter()
        .filter_map(|a| Some((a.clone(), Ok(cache.get(a)?.clone()))))
        .collect();
    let to_read = arns
        .iter()
        .filter(|a| !cache.contains_key(*a) || due(a))
        .cloned()
        .collect();
    (known, to_read)
}

/// Zones holding at least [`WHOLE_ZONE_READ_FROM`] of this run's records.
fn busy_zones(clusters: &[&ClusterConfig]) -> Vec<String> {
    let mut per_zone: HashMap<&str, usize> = HashMap::new();
    for (_, d) in clusters.iter().flat_map(|c| c.records()) {
        *per_zone.entry(d.zone_id.as_str()).or_default() += 1;
    }
    let busy: HashSet<&str> = per_zone
        .into_iter()
        .filter(|(_, n)| *n >= WHOLE_ZONE_READ_FROM)
        .map(|(z, _)| z)
        .collect();
    busy.into_iter().map(str::to_string).collect()
}

/// Change-driven reads: only what this process never read — the run's target groups' tags
/// (each batch of 20 filled with other never-read groups of the config) and the whole zones
/// holding the run's never-read names (zones with several configured names: one read serves
/// them all). Types are read when a group is, settings by `verify`. One cold read at a time:
/// the others then find it done.
async fn cold_reads(router: &Router, clusters: &[&ClusterConfig], arns: &[String]) -> SharedReads {
    let unread = |router: &Router| {
        let untagged = cached_tags(router, arns).1;
        let zones: Vec<String> = busy_zones(&router.config.clusters.iter().collect::<Vec<_>>())
            .into_iter()
            .filter(|z| {
                clusters
                    .iter()
                    .flat_map(|c| c.records())
                    .any(|(_, d)| d.zone_id == *z && router.memory.known.name(z, &d.name).is_none())
            })
            .collect();
        (untagged, zones)
    };
    let (untagged, zones) = unread(router);
    let mut zone_reads = Vec::new();
    let mut failed: TagReads = HashMap::new();
    if !untagged.is_empty() || !zones.is_empty() {
        let _one = router.memory.cold.lock().await;
        let (untagged, zones) = unread(router);
        let batch = fill_batches(router, untagged);
        let route53 = &*router.ports.route53;
        let (fresh_tags, reads) = tokio::join!(
            elb_batch::describe_tags(&*router.ports.elb, &batch),
            join_all(
                zones
                    .iter()
                    .map(|z| async move { (z.to_string(), route53.list(z, None).await) })
            )
        );
        remember_tags(router, &fresh_tags);
        failed = fresh_tags
            .into_iter()
            .filter(|(a, t)| t.is_err() && arns.contains(a))
            .collect();
        let all: Vec<&ClusterConfig> = router.config.clusters.iter().collect();
        remember_zones(router, &all, &reads);
        zone_reads = reads;
    }
    SharedReads {
        target_types: HashMap::new(),
        health_checks: HashMap::new(),
        zones: zone_reads.into_iter().collect(),
        tags: cached_tags(router, arns)
            .0
            .into_iter()
            .chain(failed)
            .collect(),
    }
}

/// `arns`, then other never-tagged groups of the config up to the next multiple of 20 (the
/// DescribeTags batch).
fn fill_batches(router: &Router, mut arns: Vec<String>) -> Vec<String> {
    let room = arns.len().next_multiple_of(20) - arns.len();
    if room == 0 {
        return arns;
    }
    let cache = router.memory.tags.lock().unwrap_or_else(|p| p.into_inner());
    let others: Vec<String> = router
        .config
        .clusters
        .iter()
        .flat_map(|c| c.target_groups.iter().map(|tg| &tg.arn))
        .filter(|a| !cache.contains_key(*a) && !arns.contains(a))
        .take(room)
        .cloned()
        .collect();
    arns.extend(others);
    arns
}

/// Remember what whole-zone reads found at every configured name in them.
fn remember_zones(
    router: &Router,
    clusters: &[&ClusterConfig],
    reads: &[(String, Result<Vec<RecordSet>, AwsError>)],
) {
    let now = router.ports.clock.now();
    for (zone, read) in reads {
        let Ok(all) = read else { continue };
        for (_, d) in clusters.iter().flat_map(|c| c.records()) {
            if d.zone_id == *zone {
                router.remember_name(&d.name, dns_state(zone, &d.name, all), now);
            }
        }
    }
}

/// What a zone's record sets hold at `name`.
pub(super) fn dns_state(zone: &str, name: &str, all: &[RecordSet]) -> DnsState {
    DnsState {
        zone_id: zone.to_string(),
        records: all.iter().filter(|r| r.name == name).cloned().collect(),
    }
}

/// What AWS holds for one cluster.
pub(super) struct AwsView<'a> {
    pub target_groups: Vec<(&'a TargetGroupConfig, Result<TargetGroupState, AwsError>)>,
    pub records: Vec<(Endpoint, &'a DnsConfig, Result<DnsState, AwsError>)>,
    /// Target groups not read yet whose marker says they route the decision (change-driven
    /// reads at a cold start): not planned; [`super::verify`] reads them.
    pub unread: Vec<String>,
    /// How old the oldest remembered state used is, ms (`None`: all read in this run).
    pub age_ms: Option<u64>,
}

impl AwsView<'_> {
    fn read<'a>(
        target_groups: Vec<(&'a TargetGroupConfig, Result<TargetGroupState, AwsError>)>,
        records: Vec<(Endpoint, &'a DnsConfig, Result<DnsState, AwsError>)>,
    ) -> AwsView<'a> {
        AwsView {
            target_groups,
            records,
            unread: Vec::new(),
            age_ms: None,
        }
    }
}

/// The cluster as this process remembers AWS, if it can plan from that: every target group
/// read before or marked as routing the decision's leader on its timeline for this owner;
/// record names read before (the others are read now: a zone of few names is not read whole
/// at a cold start). `None`: read AWS.
pub(super) async fn remembered<'a>(
    router: &Router,
    cluster: &'a ClusterConfig,
    decision: &Decision,
    owner: Option<&Owner>,
    shared: &SharedReads,
) -> Option<AwsView<'a>> {
    let tags = &shared.tags;
    let known = &router.memory.known;
    let mut view = AwsView::read(Vec::new(), Vec::new());
    let mut oldest: Option<Instant> = None;
    for tg in &cluster.target_groups {
        if let Some(seen) = known.group(&tg.arn) {
            oldest = Some(oldest.map_or(seen.at, |o| o.min(seen.at)));
            view.target_groups.push((tg, Ok(seen.value)));
        } else if !known.distrusted(&tg.arn) && marker_routes(tags.get(&tg.arn), owner, decision) {
            known.await_group(&tg.arn);
            view.unread.push(tg.arn.clone());
        } else {
            return None;
        }
    }
    for (endpoint, d) in cluster.records() {
        match known.name(&d.zone_id, &d.name) {
            Some(seen) => {
                oldest = Some(oldest.map_or(seen.at, |o| o.min(seen.at)));
                view.records.push((endpoint, d, Ok(seen.value)));
            }
            None => {
                let read = read_dns(router, d, shared).await;
                if let Ok(state) = &read {
                    router.remember_name(&d.name, state.clone(), router.ports.clock.now());
                }
                view.records.push((endpoint, d, read));
            }
        }
    }
    let now = router.ports.clock.now();
    view.age_ms = oldest
        .map(|o| u64::try_from(now.saturating_duration_since(o).as_millis()).unwrap_or(u64::MAX));
    Some(view)
}

/// Do a target group's tags say this owner routed the decision's leader on its timeline?
fn marker_routes(
    tags: Option<&Result<Tags, AwsError>>,
    owner: Option<&Owner>,
    decision: &Decision,
) -> bool {
    let (Some(Ok(tags)), Some(owner), Some(leader)) = (tags, owner, decision.primary()) else {
        return false;
    };
    Marker::from_tags(tags).is_some_and(|m| {
        m.owner == owner.id
            && m.leader.as_deref() == Some(leader)
            && m.timeline.is_some()
            && m.timeline == decision.timeline()
    })
}

pub(super) async fn read_cluster<'a>(
    router: &Router,
    cluster: &'a ClusterConfig,
    shared: &SharedReads,
) -> AwsView<'a> {
    let groups = join_all(
        cluster
            .target_groups
            .iter()
            .map(|tg| async move { (tg, read_target_group(router, &tg.arn, shared).await) }),
    );
    let records = join_all(
        cluster
            .records()
            .map(|(endpoint, d)| async move { (endpoint, d, read_dns(router, d, shared).await) }),
    );
    let (target_groups, records) = tokio::join!(groups, records);
    let now = router.ports.clock.now();
    for (_, state) in &target_groups {
        if let Ok(state) = state {
            router.remember_group(state.clone(), now);
        }
    }
    for (_, d, state) in &records {
        if let Ok(state) = state {
            router.remember_name(&d.name, state.clone(), now);
        }
    }
    AwsView::read(target_groups, records)
}

async fn read_target_group(
    router: &Router,
    arn: &str,
    shared: &SharedReads,
) -> Result<TargetGroupState, AwsError> {
    let target_type = match shared.target_types.get(arn) {
        Some(Ok(t)) => t.clone(),
        Some(Err(e)) => return Err(e.clone()),
        None => target_type(router, arn).await?,
    };
    let targets = router.ports.elb.target_health(arn).await?;
    Ok(TargetGroupState {
        arn: arn.to_string(),
        target_type,
        targets,
    })
}

/// A target group's type: remembered, else read (and remembered: it never changes).
async fn target_type(router: &Router, arn: &str) -> Result<TargetType, AwsError> {
    if let Some(t) = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(arn)
    {
        return Ok(t.clone());
    }
    let read = elb_batch::describe_groups(&*router.ports.elb, &[arn.to_string()]).await;
    let info = read.into_iter().next().map(|(_, info)| info);
    let t = info
        .unwrap_or_else(|| {
            Err(AwsError::new(
                "DescribeTargetGroups",
                arn,
                None,
                "no answer".into(),
            ))
        })?
        .target_type;
    router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(arn.to_string(), t.clone());
    Ok(t)
}

async fn read_dns(
    router: &Router,
    d: &DnsConfig,
    shared: &SharedReads,
) -> Result<DnsState, AwsError> {
    let all = match shared.zones.get(&d.zone_id) {
        Some(Ok(all)) => return Ok(dns_state(&d.zone_id, &d.name, all)),
        Some(Err(e)) => return Err(e.clone()),
        None => router.ports.route53.list(&d.zone_id, Some(&d.name)).await?,
    };
    Ok(dns_state(&d.zone_id, &d.name, &all))
}
