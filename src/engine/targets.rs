//! Apply target groups, one cluster's at a time. The order is the safety:
//! 1. read the group's tags again (after its targets were read): a new owner or a newer fence
//!    found now stops the change;
//! 2. write the marker (owner, the routed timeline) before any target moves, so another
//!    router reads the new fence before it can see the new targets;
//! 3. register before deregister: a group never loses its primary; if registering failed,
//!    the old targets stay (an empty group would refuse every client);
//! 4. verify after registering: if a newer fence appeared meanwhile (a router with a newer
//!    view raced this one), undo what this run registered and deregister nothing; else read
//!    the targets again and deregister everything that is not to stay — what another router
//!    registered meanwhile included.
//!
//! Tags have no compare-and-set: this narrows the race to a few milliseconds rather than
//! closing it (the records' TXT marker closes it; README: the fence).

use std::collections::HashSet;

use tracing::{info, warn};

use super::Router;
use super::assemble::{marking_change, target_change};
use super::mark;
use super::observe;
use super::prepare::Prepared;
use crate::adapters::{AwsError, Elb, Tags};
use crate::config::Strategy;
use crate::domain::aws::{Target, tg_name};
use crate::domain::plan::{self, Marking, TargetGroupPlan};
use crate::domain::report::{Action, ChangeReport, ChangeStatus, ClusterError};

pub(super) fn outcome(r: &Result<(), AwsError>) -> (ChangeStatus, Option<String>) {
    match r {
        Ok(()) => (ChangeStatus::Applied, None),
        Err(e) => (ChangeStatus::Failed, Some(e.to_string())),
    }
}

/// Apply every target-group plan of one cluster; then hold its records unless the fence of
/// each of its routed groups, read again now, lets the decision route.
pub(super) async fn apply(router: &Router, p: &mut Prepared<'_>) {
    let plans = std::mem::take(&mut p.tg_plans);
    // Groups whose fence, read again in this apply, let the decision route.
    let mut confirmed = HashSet::new();
    // A newer fence found on one group holds the cluster's every later write, its records too.
    let mut fenced = false;
    for mut plan in plans {
        if fenced {
            mark::hold_target_group(&mut plan);
        }
        if !plan.is_noop() || plan.marking.writes() {
            let (allowed, errors) = apply_group(router, p, &mut plan).await;
            if allowed {
                confirmed.insert(plan.arn.clone());
            }
            fenced |= errors.iter().any(|e| matches!(e, ClusterError::Fence(_)));
            for e in errors {
                p.error(e);
            }
        }
        p.tg_plans.push(plan);
    }
    if !fenced && mark::writes_records(p) {
        fenced = !records_within_fence(router, p, &confirmed).await;
    }
    if fenced {
        mark::hold_records(p);
    }
}

/// One group: re-check, write, remember. Whether its fresh fence let the decision route, and
/// the errors.
async fn apply_group(
    router: &Router,
    p: &mut Prepared<'_>,
    plan: &mut TargetGroupPlan,
) -> (bool, Vec<ClusterError>) {
    let checked = recheck(router, p, plan).await;
    let allowed = checked.is_ok();
    let (changes, errors) = match checked {
        Ok(()) => {
            let plan = &*plan;
            Group {
                router,
                p: &*p,
                plan,
            }
            .apply()
            .await
        }
        Err(e) => (Vec::new(), vec![e]),
    };
    p.changes.extend(changes);
    // Written: remember what it holds now; a write failed: read it before anything is
    // planned for it.
    let known = &router.memory.known;
    let before = p.routing.target_groups.iter().find(|s| s.arn == plan.arn);
    match (errors.is_empty(), before) {
        (true, Some(before)) => {
            let now = router.ports.clock.now();
            known.written(before, &plan.register, &plan.deregister, now)
        }
        (true, None) => known.forget_group(&plan.arn),
        (false, _) => known.distrust_group(&plan.arn),
    }
    let fence_moved = errors.iter().any(|e| matches!(e, ClusterError::Fence(_)));
    (allowed && !fence_moved, errors)
}

/// Before the records move: every routed (not `members`) group of the cluster whose fence was
/// not read again in this apply has its tags read now, and must let the decision route. A
/// record's TXT compare-and-set guards the TXT only, so a fence newer on a group (another
/// router's record write failed after its groups were written) would otherwise let the record
/// move back (found by review). A fence that cannot be read holds the records; a group that no
/// longer exists holds no fence. `false`: hold them (the reason reported).
async fn records_within_fence(
    router: &Router,
    p: &mut Prepared<'_>,
    confirmed: &HashSet<String>,
) -> bool {
    let unconfirmed: Vec<String> = p
        .cluster
        .target_groups
        .iter()
        .filter(|t| t.strategy != Strategy::Members && !confirmed.contains(&t.arn))
        .map(|t| t.arn.clone())
        .collect();
    for arn in unconfirmed {
        let refused = match fresh_tags(router, &arn).await {
            Ok(tags) => fence_allows(p, &arn, &tags).err(),
            Err(ClusterError::Aws(e)) if e.code.as_deref() == Some("TargetGroupNotFound") => None,
            Err(e) => Some(ClusterError::Blocked {
                resource: format!("records of {}", p.cluster.scope),
                reason: format!(
                    "held: the fence on target group {} could not be read again ({e}); the next \
                     run retries",
                    tg_name(&arn)
                ),
            }),
        };
        if let Some(e) = refused {
            p.error(e);
            return false;
        }
    }
    true
}

fn strategy(p: &Prepared<'_>, arn: &str) -> Strategy {
    p.cluster
        .target_groups
        .iter()
        .find(|t| t.arn == arn)
        .map_or(Strategy::PrimaryOnly, |t| t.strategy)
}

/// The group's tags now, remembered.
async fn fresh_tags(router: &Router, arn: &str) -> Result<Tags, ClusterError> {
    let read = router
        .ports
        .elb
        .tags(std::slice::from_ref(&arn.to_string()))
        .await?;
    let tags = read.into_iter().next().map(|(_, t)| t).unwrap_or_default();
    observe::remember_tags(router, &[(arn.to_string(), Ok(tags.clone()))].into());
    Ok(tags)
}

/// Does the fence in `tags` let the decision route this group?
fn fence_allows(p: &Prepared<'_>, arn: &str, tags: &Tags) -> Result<(), ClusterError> {
    let Some(owner) = &p.owner else {
        return Ok(());
    };
    if strategy(p, arn) == Strategy::Members {
        return Ok(());
    }
    let claim = plan::tag_claim(tags, owner);
    plan::fence_step(&p.decision, &[&claim], p.cluster.standby_cluster)
        .map(|_| ())
        .map_err(|r| ClusterError::Fence(r.0))
}

/// Step 1: mark the plan against the tags as they are now.
async fn recheck(
    router: &Router,
    p: &Prepared<'_>,
    plan: &mut TargetGroupPlan,
) -> Result<(), ClusterError> {
    let tags = fresh_tags(router, &plan.arn).await?;
    let Some(owner) = &p.owner else {
        return Err(ClusterError::Blocked {
            resource: plan.arn.clone(),
            reason: "no owner to mark it with".into(),
        });
    };
    plan.marking = Marking::default();
    plan::mark_target_group(plan, strategy(p, &plan.arn), &tags, owner, &p.decision);
    if let Some(c) = &plan.marking.conflict {
        return Err(ClusterError::Conflict(c.clone()));
    }
    fence_allows(p, &plan.arn, &tags)
}

/// Steps 2 to 4 on one group.
struct Group<'r, 'p, 'a> {
    router: &'r Router,
    p: &'p Prepared<'a>,
    plan: &'p TargetGroupPlan,
}

type Outcome = (Vec<ChangeReport>, Vec<ClusterError>);

impl Group<'_, '_, '_> {
    fn elb(&self) -> &dyn Elb {
        &*self.router.ports.elb
    }

    fn report(
        &self,
        action: Action,
        targets: &[Target],
        status: ChangeStatus,
        why: &str,
    ) -> Vec<ChangeReport> {
        let error = (!why.is_empty()).then(|| why.to_string());
        targets
            .iter()
            .map(|t| target_change(self.plan, action, t, status, error.clone()))
            .collect()
    }

    async fn apply(self) -> Outcome {
        let (plan, mut out): (_, Outcome) = (self.plan, (Vec::new(), Vec::new()));
        if let Err(e) = self.mark(&mut out).await {
            out.1.push(e.into());
            let why = "marking the target group failed; its targets are not changed";
            out.0
                .extend(self.report(Action::Register, &plan.register, ChangeStatus::Skipped, why));
            out.0.extend(self.report(
                Action::Deregister,
                &plan.deregister,
                ChangeStatus::Skipped,
                why,
            ));
            return out;
        }
        if let Err(why) = self.register(&mut out).await {
            out.0.extend(self.report(
                Action::Deregister,
                &plan.deregister,
                ChangeStatus::Skipped,
                &why,
            ));
            return out;
        }
        let leaving = self.leaving().await;
        self.deregister(&leaving, Action::Deregister, &mut out)
            .await;
        if !plan.marking.remove_tags.is_empty()
            && let Err(e) = self
                .elb()
                .remove_tags(&plan.arn, &plan.marking.remove_tags)
                .await
        {
            warn!(target_group = %plan.arn, error = %e, "pruning old timeline tags failed");
            out.1.push(e.into());
        }
        out
    }

    /// Step 2: the marker before the targets.
    async fn mark(&self, out: &mut Outcome) -> Result<(), AwsError> {
        let m = &self.plan.marking;
        if m.add_tags.is_empty() {
            return Ok(());
        }
        let r = self.elb().add_tags(&self.plan.arn, &m.add_tags).await;
        let (status, error) = outcome(&r);
        out.0.push(marking_change(self.plan, status, error));
        if r.is_ok() {
            let mut cache = self
                .router
                .memory
                .tags
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            cache
                .entry(self.plan.arn.clone())
                .or_default()
                .extend(m.add_tags.iter().cloned());
        }
        r
    }

    /// Steps 3 and 4: register, then verify the fence; `Err(why)` skips the deregistration.
    async fn register(&self, out: &mut Outcome) -> Result<(), String> {
        let plan = self.plan;
        if plan.register.is_empty() {
            return Ok(());
        }
        let r = self.elb().register(&plan.arn, &plan.register).await;
        log_apply("register", &plan.arn, &plan.register, &r);
        let (status, error) = outcome(&r);
        out.0.extend(self.report(
            Action::Register,
            &plan.register,
            status,
            error.as_deref().unwrap_or(""),
        ));
        if let Err(e) = r {
            out.1.push(e.into());
            return Err("register failed; the old targets stay so the group is not emptied".into());
        }
        let verified = match fresh_tags(self.router, &plan.arn).await {
            Ok(tags) => fence_allows(self.p, &plan.arn, &tags),
            Err(e) => Err(e),
        };
        if let Err(e) = verified {
            warn!(target_group = %plan.arn, error = %e, "the fence moved while routing: undoing this run's registrations");
            out.1.push(e);
            self.deregister(&plan.register, Action::Undo, out).await;
            return Err("a newer fence appeared while routing: nothing deregistered".into());
        }
        Ok(())
    }

    /// What to deregister: after a registration, everything registered now that is not to be
    /// kept (a target another router registered meanwhile included); else the plan's.
    async fn leaving(&self) -> Vec<Target> {
        let plan = self.plan;
        if plan.register.is_empty() {
            return plan.deregister.clone();
        }
        match self.elb().target_health(&plan.arn).await {
            Ok(now) => now
                .into_iter()
                .filter(|t| t.is_active() && !plan.keep.contains(&t.target))
                .map(|t| t.target)
                .collect(),
            Err(e) => {
                warn!(target_group = %plan.arn, error = %e, "re-reading the targets failed: deregistering as planned");
                plan.deregister.clone()
            }
        }
    }

    async fn deregister(&self, targets: &[Target], action: Action, out: &mut Outcome) {
        if targets.is_empty() {
            return;
        }
        let r = self.elb().deregister(&self.plan.arn, targets).await;
        log_apply("deregister", &self.plan.arn, targets, &r);
        let (status, error) = outcome(&r);
        out.0
            .extend(self.report(action, targets, status, error.as_deref().unwrap_or("")));
        if let Err(e) = r {
            out.1.push(e.into());
        }
    }
}

fn log_apply(what: &str, arn: &str, targets: &[Target], r: &Result<(), AwsError>) {
    let targets: Vec<String> = targets.iter().map(ToString::to_string).collect();
    match r {
        Ok(()) => info!(target_group = arn, ?targets, "{what} applied"),
        Err(e) => warn!(target_group = arn, ?targets, error = %e, "{what} failed"),
    }
}
