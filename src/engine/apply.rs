//! Apply: target groups per cluster (register before deregister; if registering failed, the
//! old targets stay — an empty group would refuse every client), then every cluster's record
//! changes, one batch per hosted zone (the Route 53 adapter's batcher retries a failed batch
//! cluster by cluster).

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::assemble::{record_change, target_change};
use super::prepare::Prepared;
use crate::adapters::route53_batch::{self, ChangeSet};
use crate::adapters::{AwsError, ChangeAction, Elb, RecordChange, Route53};
use crate::domain::aws::Target;
use crate::domain::plan::TargetGroupPlan;
use crate::domain::report::{Action, ChangeReport, ChangeStatus};

fn outcome(r: &Result<(), AwsError>) -> (ChangeStatus, Option<String>) {
    match r {
        Ok(()) => (ChangeStatus::Applied, None),
        Err(e) => (ChangeStatus::Failed, Some(e.to_string())),
    }
}

/// Apply every target-group plan of one cluster.
pub(super) async fn target_groups(elb: &dyn Elb, p: &mut Prepared<'_>) {
    let plans = std::mem::take(&mut p.tg_plans);
    for plan in &plans {
        let (changes, errors) = target_group(elb, plan).await;
        p.changes.extend(changes);
        for e in errors {
            p.error(e.into());
        }
    }
    p.tg_plans = plans;
}

async fn target_group(elb: &dyn Elb, plan: &TargetGroupPlan) -> (Vec<ChangeReport>, Vec<AwsError>) {
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let report = |action, targets: &[Target], status, error: &Option<String>| {
        targets
            .iter()
            .map(|t| target_change(plan, action, t, status, error.clone()))
            .collect::<Vec<_>>()
    };
    if !plan.register.is_empty() {
        let r = elb.register(&plan.arn, &plan.register).await;
        log_apply("register", &plan.arn, &plan.register, &r);
        let (status, error) = outcome(&r);
        changes.extend(report(Action::Register, &plan.register, status, &error));
        if let Err(e) = r {
            errors.push(e);
            let why =
                Some("register failed; the old targets stay so the group is not emptied".into());
            changes.extend(report(
                Action::Deregister,
                &plan.deregister,
                ChangeStatus::Skipped,
                &why,
            ));
            return (changes, errors);
        }
    }
    if !plan.deregister.is_empty() {
        let r = elb.deregister(&plan.arn, &plan.deregister).await;
        log_apply("deregister", &plan.arn, &plan.deregister, &r);
        let (status, error) = outcome(&r);
        changes.extend(report(Action::Deregister, &plan.deregister, status, &error));
        if let Err(e) = r {
            errors.push(e);
        }
    }
    (changes, errors)
}

fn log_apply(what: &str, arn: &str, targets: &[Target], r: &Result<(), AwsError>) {
    let targets: Vec<String> = targets.iter().map(ToString::to_string).collect();
    match r {
        Ok(()) => info!(target_group = arn, ?targets, "{what} applied"),
        Err(e) => warn!(target_group = arn, ?targets, error = %e, "{what} failed"),
    }
}

/// A cluster's record changes in one zone: (index into `prepared`, its DNS plan indexes).
type ZoneMembers = Vec<(usize, Vec<usize>)>;

/// Every cluster's record changes, one batch (or as few as fit) per zone.
pub(super) async fn records(route53: &dyn Route53, prepared: &mut [Prepared<'_>]) {
    let mut by_zone: BTreeMap<String, ZoneMembers> = BTreeMap::new();
    for (i, p) in prepared.iter().enumerate() {
        let mut mine: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (j, d) in p.dns_plans.iter().enumerate() {
            if !d.is_noop() {
                mine.entry(d.zone_id.as_str()).or_default().push(j);
            }
        }
        for (zone, plans) in mine {
            by_zone
                .entry(zone.to_string())
                .or_default()
                .push((i, plans));
        }
    }
    for (zone, members) in by_zone {
        let sets: Vec<ChangeSet> = members
            .iter()
            .map(|(i, plans)| change_set(&prepared[*i], plans))
            .collect();
        let results = route53_batch::apply_zone(route53, &zone, &sets).await;
        for ((i, plans), result) in members.into_iter().zip(results) {
            record_outcome(&mut prepared[i], &plans, &result);
        }
    }
}

/// DELETEs first (a DELETE must match what the zone holds), then UPSERTs.
fn change_set(p: &Prepared<'_>, plans: &[usize]) -> ChangeSet {
    let changes = plans
        .iter()
        .map(|&j| &p.dns_plans[j])
        .flat_map(|d| {
            let deletes = d.deletes.iter().map(|r| (ChangeAction::Delete, r));
            deletes.chain(d.upserts.iter().map(|r| (ChangeAction::Upsert, r)))
        })
        .map(|(action, record)| RecordChange {
            action,
            record: record.clone(),
        })
        .collect();
    ChangeSet {
        owner: p.cluster.scope.clone(),
        changes,
    }
}

fn record_outcome(p: &mut Prepared<'_>, plans: &[usize], result: &Result<(), AwsError>) {
    let (status, error) = outcome(result);
    let mut changes = Vec::new();
    for &j in plans {
        let d = &p.dns_plans[j];
        let records = d
            .deletes
            .iter()
            .map(|r| (Action::Delete, r))
            .chain(d.upserts.iter().map(|r| (Action::Upsert, r)));
        for (action, r) in records {
            match result {
                Ok(()) => {
                    info!(scope = %p.cluster.scope, record = %r.describe(), ?action, "record change applied")
                }
                Err(e) => {
                    warn!(scope = %p.cluster.scope, record = %r.describe(), ?action, error = %e, "record change failed")
                }
            }
            changes.push(record_change(d, action, r, status, error.clone()));
        }
    }
    p.changes.extend(changes);
    if let Err(e) = result {
        p.error(e.clone().into());
    }
}
