//! Apply records: every cluster's record changes, one batch (or as few as fit) per hosted
//! zone; the Route 53 adapter's batcher retries a failed batch cluster by cluster. Each
//! cluster's changes carry its marker as a compare-and-set.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::Router;
use super::assemble::{record_change, record_marking_change};
use super::prepare::Prepared;
use super::targets::outcome;
use crate::adapters::route53_batch::{self, ChangeSet};
use crate::adapters::{AwsError, ChangeAction, RecordChange, Route53};
use crate::domain::plan::DnsPlan;
use crate::domain::report::Action;

/// A cluster's record changes in one zone: (index into `prepared`, its DNS plan indexes).
type ZoneMembers = Vec<(usize, Vec<usize>)>;

/// Every cluster's record changes, one batch (or as few as fit) per zone.
pub(super) async fn apply(router: &Router, prepared: &mut [Prepared<'_>]) {
    let route53: &dyn Route53 = &*router.ports.route53;
    let mut by_zone: BTreeMap<String, ZoneMembers> = BTreeMap::new();
    for (i, p) in prepared.iter().enumerate() {
        let mut mine: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (j, d) in p.dns_plans.iter().enumerate() {
            if !d.is_noop() || d.marking.writes() {
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
            remember(router, &prepared[i], &plans, result.is_ok());
            record_outcome(&mut prepared[i], &plans, &result);
        }
    }
}

/// What the names hold now: what was written, or (the batch failed) unknown.
fn remember(router: &Router, p: &Prepared<'_>, plans: &[usize], written: bool) {
    let known = &router.memory.known;
    for &j in plans {
        let d = &p.dns_plans[j];
        if written {
            known.applied(&d.zone_id, &d.name, &plan_changes(d));
        } else {
            known.forget_name(&d.zone_id, &d.name);
        }
    }
}

/// The marker first — DELETE the exact old TXT, CREATE the new one: the compare-and-set that
/// fails the whole batch if another router changed it since this run read it — then DELETEs
/// (each must match what the zone holds), then UPSERTs.
fn change_set(p: &Prepared<'_>, plans: &[usize]) -> ChangeSet {
    let changes = plans
        .iter()
        .flat_map(|&j| plan_changes(&p.dns_plans[j]))
        .collect();
    ChangeSet {
        owner: p.cluster.scope.clone(),
        changes,
    }
}

/// One plan's changes, in the order of [`change_set`].
pub(super) fn plan_changes(d: &DnsPlan) -> Vec<RecordChange> {
    let (old, new) = match &d.marking.txt {
        Some((old, new)) => (old.as_ref(), Some(new)),
        None => (None, None),
    };
    let marker = old
        .map(|r| (ChangeAction::Delete, r))
        .into_iter()
        .chain(new.map(|r| (ChangeAction::Create, r)));
    let deletes = d.deletes.iter().map(|r| (ChangeAction::Delete, r));
    marker
        .chain(deletes)
        .chain(d.upserts.iter().map(|r| (ChangeAction::Upsert, r)))
        .map(|(action, record)| RecordChange {
            action,
            record: record.clone(),
        })
        .collect()
}

/// A batch carrying a marker that Route 53 refused as invalid: the marker it DELETEs is not
/// what the zone holds — another router changed it since this run read it (real Route 53 says
/// `InvalidChangeBatch`, moto `InvalidInput`). Nothing of the batch was applied.
fn lost_race(p: &Prepared<'_>, plans: &[usize], e: &AwsError) -> Option<AwsError> {
    let marked = plans.iter().any(|&j| p.dns_plans[j].marking.txt.is_some());
    let invalid = matches!(
        e.code.as_deref(),
        Some("InvalidChangeBatch" | "InvalidInput")
    );
    (marked && invalid).then(|| {
        AwsError::new(
            e.operation,
            &e.resource,
            e.code.as_deref(),
            format!(
                "the router's marker changed since this run read it (another router routed \
                 meanwhile): nothing applied; the next run reads it again ({})",
                e.message
            ),
        )
    })
}

fn record_outcome(p: &mut Prepared<'_>, plans: &[usize], result: &Result<(), AwsError>) {
    let result = &match result {
        Err(e) => Err(lost_race(p, plans, e).unwrap_or_else(|| e.clone())),
        Ok(()) => Ok(()),
    };
    let (status, error) = outcome(result);
    let mut changes = Vec::new();
    for &j in plans {
        let d = &p.dns_plans[j];
        changes.extend(record_marking_change(d, status, error.clone()));
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
