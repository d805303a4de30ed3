//! Ownership and the fence for one prepared cluster (pure): who owns each of its resources,
//! whether the decision may route past the cluster's fence, and the marker writes that go
//! with its routing writes. A foreign owner blocks that resource; a fence the decision would
//! move backwards blocks every write of the cluster. Both are errors with a reason.

use std::collections::HashMap;

use super::prepare::Prepared;
use crate::adapters::{AwsError, Tags};
use crate::domain::aws::{DnsState, Endpoint};
use crate::domain::ownership::{Claim, Owner};
use crate::domain::plan::{self, Marking, TargetGroupPlan};
use crate::domain::report::ClusterError;

/// What marking needs besides the plans.
pub(super) struct Context<'c> {
    pub owner_id: Option<&'c str>,
    /// The cluster's database: the decision's, or the last one this process saw.
    pub database: Option<&'c str>,
    pub at_ms: u64,
    pub tags: &'c HashMap<String, Result<Tags, AwsError>>,
}

pub(super) fn wants_writes(p: &Prepared<'_>) -> bool {
    p.tg_plans
        .iter()
        .any(|t| !t.is_noop() || t.marking.writes())
        || p.dns_plans
            .iter()
            .any(|d| !d.is_noop() || d.marking.writes())
}

/// Does the cluster plan to move routing (not only to mark)? Such writes go first in the
/// AWS budget; adoption and fence markers alone wait their turn.
pub(super) fn moves_routing(p: &Prepared<'_>) -> bool {
    p.tg_plans.iter().any(|t| !t.is_noop()) || p.dns_plans.iter().any(|d| !d.is_noop())
}

/// Leave every resource of the cluster as it is.
fn hold_everything(p: &mut Prepared<'_>) {
    for t in &mut p.tg_plans {
        hold_target_group(t);
    }
    hold_records(p);
}

/// Leave a target group as it is.
pub(super) fn hold_target_group(t: &mut TargetGroupPlan) {
    t.register.clear();
    t.deregister.clear();
    t.marking = Marking::default();
}

/// Leave the cluster's records as they are (a newer fence found at write time).
pub(super) fn hold_records(p: &mut Prepared<'_>) {
    for d in &mut p.dns_plans {
        d.upserts.clear();
        d.deletes.clear();
        d.marking = Marking::default();
    }
}

/// Does the cluster plan record writes?
pub(super) fn writes_records(p: &Prepared<'_>) -> bool {
    p.dns_plans
        .iter()
        .any(|d| !d.is_noop() || d.marking.writes())
}

fn dns_state<'a>(p: &'a Prepared<'_>, endpoint: Endpoint) -> Option<&'a DnsState> {
    match endpoint {
        Endpoint::Writer => p.routing.dns.as_ref(),
        Endpoint::Reader => p.routing.read_dns.as_ref(),
    }
}

pub(super) fn mark(p: &mut Prepared<'_>, ctx: &Context<'_>) {
    if p.decision.all_misconfigured {
        p.error(ClusterError::Misconfigured(p.decision.reason.clone()));
    }
    let Some(owner) = Owner::of(ctx.owner_id, &p.cluster.scope, ctx.database) else {
        if wants_writes(p) {
            hold_everything(p);
            p.error(ClusterError::Blocked {
                resource: format!("cluster {}", p.cluster.scope),
                reason: "no owner to mark its records and target groups with: set `owner_id`, \
                         or let a node answer /patroni with its database_system_identifier"
                    .into(),
            });
        }
        return;
    };
    let claims = mark_resources(p, ctx, &owner);
    p.owner = Some(owner);
    let claims: Vec<&Claim> = claims.iter().collect();
    if let Err(refused) = plan::fence_step(&p.decision, &claims, p.cluster.standby_cluster)
        && wants_writes(p)
    {
        hold_everything(p);
        p.error(ClusterError::Fence(refused.0));
    }
}

/// Mark each resource's plan; return their claims.
fn mark_resources(p: &mut Prepared<'_>, ctx: &Context<'_>, owner: &Owner) -> Vec<Claim> {
    let mut claims = Vec::new();
    let mut errors = Vec::new();
    let strategies: HashMap<&str, _> = p
        .cluster
        .target_groups
        .iter()
        .map(|t| (t.arn.as_str(), t.strategy))
        .collect();
    for t in &mut p.tg_plans {
        let tags = match ctx.tags.get(&t.arn) {
            Some(Ok(tags)) => tags,
            other => {
                if let Some(Err(e)) = other {
                    errors.push(ClusterError::Aws(e.clone()));
                }
                t.register.clear();
                t.deregister.clear();
                continue;
            }
        };
        claims.push(plan::tag_claim(tags, owner));
        if let Some(strategy) = strategies.get(t.arn.as_str()) {
            plan::mark_target_group(t, *strategy, tags, owner, &p.decision);
        }
    }
    let states: Vec<Option<DnsState>> = p
        .dns_plans
        .iter()
        .map(|d| dns_state(p, d.endpoint).cloned())
        .collect();
    for (d, state) in p.dns_plans.iter_mut().zip(states) {
        let Some(state) = state else { continue };
        claims.push(plan::dns_claim(&state, &d.name, owner));
        plan::mark_dns(d, p.cluster, &state, owner, &p.decision, ctx.at_ms);
    }
    let conflicts = p
        .tg_plans
        .iter()
        .map(|t| &t.marking)
        .chain(p.dns_plans.iter().map(|d| &d.marking))
        .filter_map(|m| m.conflict.clone());
    errors.extend(conflicts.map(ClusterError::Conflict));
    for e in errors {
        p.error(e);
    }
    claims
}
