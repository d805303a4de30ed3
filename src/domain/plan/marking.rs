//! Ownership and the fence in the plan (pure): whose each resource is, whether the decision may
//! route past the cluster's fence, and the marker writes that go with the routing writes —
//! the TXT record in the same atomic batch as the records (a compare-and-set: DELETE the exact
//! old marker, CREATE the new one), the tags before the targets.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{DnsPlan, TargetGroupPlan};
use crate::config::{ClusterConfig, DnsRouting, Strategy};
use crate::domain::aws::{DnsState, RecordSet, RecordType};
use crate::domain::decide::Decision;
use crate::domain::fence::{self, Fence, Refused, Step};
use crate::domain::ownership::{Claim, Marker, Owner, prunable_timeline_tags};

/// What a plan does about a resource's owner marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Marking {
    /// Marked by another owner: nothing is changed (a conflict, an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<String>,
    /// Unmarked: this plan marks it (the config naming it is the claim).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// The TXT record set now at the name (exactly, for the DELETE) and the one to CREATE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txt: Option<(Option<RecordSet>, RecordSet)>,
    /// Tags to add, and tag keys to remove, on a target group.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_tags: Vec<(String, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub remove_tags: Vec<String>,
    /// Records at the name that are not the router's, left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub foreign: Vec<String>,
}

impl Marking {
    pub fn writes(&self) -> bool {
        self.txt.is_some() || !self.add_tags.is_empty()
    }
}

/// The TXT record set at `name` that holds a marker, and the marker.
pub fn txt_marker<'a>(state: &'a DnsState, name: &str) -> Option<(&'a RecordSet, Marker)> {
    state
        .records
        .iter()
        .filter(|r| r.name == name && r.rtype == RecordType::Txt && r.set_identifier.is_none())
        .find_map(|r| Some((r, r.values.iter().find_map(|v| Marker::from_txt(v))?)))
}

/// Whose a record name is.
pub fn dns_claim(state: &DnsState, name: &str, owner: &Owner) -> Claim {
    match txt_marker(state, name) {
        Some((_, m)) => Claim::of(m, owner),
        None => Claim::Unmarked,
    }
}

/// Whose a target group is, from its tags.
pub fn tag_claim(tags: &BTreeMap<String, String>, owner: &Owner) -> Claim {
    match Marker::from_tags(tags) {
        Some(m) => Claim::of(m, owner),
        None => Claim::Unmarked,
    }
}

/// The cluster's fence (the newest of its own markers) and what the decision does to it.
/// `Ok(None)`: nothing to check (no confirmed primary: only membership may change).
/// `standby`: the cluster is a standby cluster (its leader moves within a timeline).
pub fn fence_step(
    decision: &Decision,
    claims: &[&Claim],
    standby: bool,
) -> Result<Option<Step>, Refused> {
    let Some(leader) = decision.primary() else {
        return Ok(None);
    };
    let ours = claims.iter().filter_map(|c| match c {
        Claim::Ours(m) => Some(m),
        _ => None,
    });
    let fence = Fence::newest(ours);
    let check = if standby {
        fence::check_standby
    } else {
        fence::check
    };
    check(
        fence.as_ref(),
        leader,
        decision.timeline(),
        decision.database.as_deref(),
    )
    .map(Some)
}

fn conflict(resource: &str, claim: &Claim) -> Option<String> {
    match claim {
        Claim::Foreign { owner, scope } => Some(format!(
            "{resource} is owned by {owner:?} (cluster {scope:?}), not by this router: not \
             changed; fix the config (another record or target group) or the other router"
        )),
        _ => None,
    }
}

/// The marker this plan writes: the decision's timeline and leader, the router as owner.
fn marker_now(owner: &Owner, decision: &Decision, at_ms: u64) -> Marker {
    Marker::new(owner, decision.timeline(), decision.primary(), at_ms)
}

/// A marker never lowers the fence it replaces: a decision without a timeline (the fence's own
/// leader holding) carries the fence over.
fn keep_fence(next: &mut Marker, previous: Option<&Marker>) {
    if let Some(prev) = previous
        && (next.timeline.is_none() || next.timeline < prev.timeline)
    {
        next.timeline = prev.timeline;
        next.leader.clone_from(&prev.leader);
    }
}

/// Mark a record plan: a conflict blocks it; otherwise the TXT marker is (re)written when the
/// records change, when the name is adopted, or when the fence moves.
pub fn mark_dns(
    plan: &mut DnsPlan,
    cluster: &ClusterConfig,
    state: &DnsState,
    owner: &Owner,
    decision: &Decision,
    at_ms: u64,
) {
    let claim = dns_claim(state, &plan.name, owner);
    if let Some(c) = conflict(&format!("record {}", plan.name), &claim) {
        plan.upserts.clear();
        plan.deletes.clear();
        plan.marking.conflict = Some(c);
        return;
    }
    let previous = match &claim {
        Claim::Ours(m) => Some(m),
        _ => None,
    };
    let mine = |id: &str| match previous {
        Some(m) => m.sets.iter().any(|s| s == id),
        // Adopting: multivalue records named after configured nodes are the router's.
        None => cluster.node(id).is_some(),
    };
    if let Some(why) = keep_foreign_records(plan, state, &mine) {
        plan.blocked = Some(why);
        plan.upserts.clear();
        plan.deletes.clear();
        return;
    }
    if decision.primary().is_none() {
        // Nothing is routed without a confirmed primary: the marker (and its fence) stays.
        return;
    }
    let mut next = marker_now(owner, decision, at_ms);
    keep_fence(&mut next, previous);
    if plan.routing == DnsRouting::Multivalue {
        next.sets = plan.desired_sets.clone();
        next.sets.sort();
    }
    let moved = previous.is_none_or(|m| {
        m.timeline != next.timeline || m.leader != next.leader || m.sets != next.sets
    });
    if plan.is_noop() && !moved {
        return;
    }
    let old = txt_marker(state, &plan.name).map(|(r, _)| r.clone());
    plan.marking.adopt = previous.is_none();
    plan.marking.txt = Some((old.clone(), txt_record(old.as_ref(), &plan.name, &next)));
}

/// Multivalue records the router did not make are never deleted (or overwritten): drop their
/// deletes and report them; a desired record whose identifier another made blocks the plan.
fn keep_foreign_records(
    plan: &mut DnsPlan,
    state: &DnsState,
    mine: &dyn Fn(&str) -> bool,
) -> Option<String> {
    if plan.routing != DnsRouting::Multivalue {
        return None;
    }
    let (ours, foreign): (Vec<RecordSet>, Vec<RecordSet>) = plan
        .deletes
        .drain(..)
        .partition(|r| r.set_identifier.as_deref().is_some_and(mine));
    plan.deletes = ours;
    plan.marking.foreign = foreign.iter().map(RecordSet::describe).collect();
    let taken = plan.upserts.iter().find(|u| {
        let id = u.set_identifier.as_deref().unwrap_or_default();
        let exists = state
            .records
            .iter()
            .any(|r| r.name == plan.name && r.set_identifier.as_deref() == Some(id));
        exists && !mine(id)
    })?;
    Some(format!(
        "{} exists but was not made by this router: not overwritten; delete it or rename the node",
        taken.describe()
    ))
}

/// The new TXT record set: the other TXT values at the name kept, the marker replaced.
fn txt_record(old: Option<&RecordSet>, name: &str, marker: &Marker) -> RecordSet {
    let mut values: Vec<String> = old
        .map(|r| {
            r.values
                .iter()
                .filter(|v| Marker::from_txt(v).is_none())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    values.push(marker.to_txt());
    RecordSet {
        name: name.to_string(),
        rtype: RecordType::Txt,
        set_identifier: None,
        failover: None,
        ttl: Some(old.and_then(|r| r.ttl).unwrap_or(300)),
        values,
        health_check_id: None,
        multivalue: false,
        alias: false,
    }
}

/// Mark a target-group plan: a conflict blocks it; otherwise tags mark the owner (adoption)
/// and the routed timeline (when it moves), before any target changes.
pub fn mark_target_group(
    plan: &mut TargetGroupPlan,
    strategy: Strategy,
    tags: &BTreeMap<String, String>,
    owner: &Owner,
    decision: &Decision,
) {
    let claim = tag_claim(tags, owner);
    if let Some(c) = conflict(&format!("target group {}", plan.arn), &claim) {
        plan.register.clear();
        plan.deregister.clear();
        plan.marking.conflict = Some(c);
        return;
    }
    let previous = match &claim {
        Claim::Ours(m) => Some(m),
        _ => None,
    };
    // Membership does not follow the leader: only the owner is marked. Other strategies
    // route nothing without a confirmed primary, so there is nothing to mark then.
    let next = match strategy {
        Strategy::Members => Marker::new(owner, None, None, 0),
        _ if decision.primary().is_none() => return,
        _ => {
            let mut m = marker_now(owner, decision, 0);
            keep_fence(&mut m, previous);
            m
        }
    };
    let mut add: Vec<(String, String)> = next.to_tags();
    if previous.is_some() {
        add.retain(|(k, v)| tags.get(k) != Some(v));
        let behind = previous.is_some_and(|m| m.timeline < next.timeline);
        if plan.is_noop() && !behind {
            return;
        }
    }
    plan.marking.adopt = previous.is_none();
    let mut after = tags.clone();
    after.extend(add.iter().cloned());
    plan.marking.remove_tags = prunable_timeline_tags(&after);
    plan.marking.add_tags = add;
}
