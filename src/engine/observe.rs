//! Observe AWS: first the reads shared by all clusters of a run (target-group types and tags,
//! cached per process; whole zones holding several records), then each cluster's own. With
//! change-driven reads, [`super::recall`] decides what is read at all. (What Patroni says is
//! gathered by [`super::evidence`].)

use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;

use super::{Router, recall};
use crate::adapters::{AwsError, Tags, elb_batch};
use crate::config::{ClusterConfig, DnsConfig, TargetGroupConfig};
use crate::domain::aws::{DnsState, Endpoint, RecordSet, TargetGroupState, TargetType};

use crate::domain::drift::HealthCheck;

use crate::domain::report::Mode;

/// From this many records in one zone on, one paginated read of the zone beats one read each.
const WHOLE_ZONE_READ_FROM: usize = 3;

/// Reads shared by all clusters of a run, done before the clusters are worked on.
pub(super) struct SharedReads {
    /// The types read this run (change-driven runs read them when a group is read).
    pub(super) target_types: HashMap<String, Result<TargetType, AwsError>>,
    /// Health checks of the target groups read this run (their settings are due a check).
    pub(super) health_checks: HashMap<String, HealthCheck>,
    /// Zones holding several clusters' records, read whole once.
    pub(super) zones: HashMap<String, Result<Vec<RecordSet>, AwsError>>,
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
        return recall::cold_reads(router, clusters, &arns).await;
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
pub(super) fn cached_tags(router: &Router, arns: &[String]) -> (TagReads, Vec<String>) {
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
pub(super) fn busy_zones(clusters: &[&ClusterConfig]) -> Vec<String> {
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

/// Remember what whole-zone reads found at every configured name in them.
pub(super) fn remember_zones(
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
    pub(super) fn read<'a>(
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
        None => recall::target_type(router, arn).await?,
    };
    let targets = router.ports.elb.target_health(arn).await?;
    Ok(TargetGroupState {
        arn: arn.to_string(),
        target_type,
        targets,
    })
}

pub(super) async fn read_dns(
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
