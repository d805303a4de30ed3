//! What a change-driven run reads (see [`super::Reads`]): the cluster as the process remembers
//! it, when it can plan from that; at a cold start, what the process never read, in as few
//! calls as the APIs allow (tags and types by twenties, busy zones whole); a target group's
//! type when it is first needed.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::future::join_all;

use super::Router;
use super::observe::{
    AwsView, SharedReads, TagReads, busy_zones, cached_tags, read_dns, remember_tags,
    remember_zones,
};
use crate::adapters::{AwsError, GroupInfo, Tags, elb_batch};
use crate::config::ClusterConfig;
use crate::domain::aws::TargetType;
use crate::domain::decide::Decision;
use crate::domain::ownership::{Marker, Owner};

/// Change-driven reads: only what this process never read — the run's target groups' tags
/// (each batch of 20 filled with other never-read groups of the config) and the whole zones
/// holding the run's never-read names (zones with several configured names: one read serves
/// them all). Types are read when a group is, settings by `verify`. One cold read at a time:
/// the others then find it done.
pub(super) async fn cold_reads(
    router: &Router,
    clusters: &[&ClusterConfig],
    arns: &[String],
) -> SharedReads {
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

/// A target group's type: remembered, else read (and remembered: it never changes).
pub(super) async fn target_type(router: &Router, arn: &str) -> Result<TargetType, AwsError> {
    if let Some(t) = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(arn)
    {
        return Ok(t.clone());
    }
    // One call describes 20: take 19 other never-described groups of the config along.
    let batch = fill_batch(router, arn);
    let mut read = elb_batch::describe_groups(&*router.ports.elb, &batch).await;
    remember_types(router, &read);
    let no_answer = || AwsError::new("DescribeTargetGroups", arn, None, "no answer".into());
    Ok(read
        .remove(arn)
        .unwrap_or_else(|| Err(no_answer()))?
        .target_type)
}

/// `arn` and up to 19 other target groups of the config whose type was never read.
fn fill_batch(router: &Router, arn: &str) -> Vec<String> {
    let known = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let others = router
        .config
        .clusters
        .iter()
        .flat_map(|c| c.target_groups.iter().map(|tg| &tg.arn))
        .filter(|a| a.as_str() != arn && !known.contains_key(*a))
        .take(19)
        .cloned();
    std::iter::once(arn.to_string()).chain(others).collect()
}

/// Keep the types described (they never change).
fn remember_types(router: &Router, read: &HashMap<String, Result<GroupInfo, AwsError>>) {
    let mut known = router
        .memory
        .target_types
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for (arn, info) in read {
        if let Ok(info) = info {
            known.insert(arn.clone(), info.target_type.clone());
        }
    }
}
