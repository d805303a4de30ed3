//! Target-group hygiene: compare the settings each strategy needs with AWS (always in `plan`
//! and `status`; in `reconcile` every `aws.settings_check_interval`, so that steady state
//! stays cheap; with change-driven reads, in [`super::verify`]), report drift, and fix it
//! where `manage_settings` is on (never in plan mode).

use tracing::warn;

use super::Router;
use super::observe::SharedReads;
use super::prepare::Prepared;
use crate::adapters::Tags;
use crate::config::TargetGroupConfig;
use crate::domain::drift::{self, Drift, HealthCheck, SettingsFix, TgSettings};
use crate::domain::ownership::{Claim, Owner};
use crate::domain::plan;
use crate::domain::report::{Action, ChangeReport, ChangeStatus, ClusterError, DriftReport, Mode};

pub(super) async fn check(router: &Router, p: &mut Prepared<'_>, mode: Mode, shared: &SharedReads) {
    let cluster = p.cluster;
    for tg in &cluster.target_groups {
        // Due ones had their health check read in the run's batch.
        let Some(hc) = shared.health_checks.get(&tg.arn) else {
            continue;
        };
        let tags = match shared.tags.get(&tg.arn) {
            Some(Ok(tags)) => Some(tags),
            _ => None,
        };
        let owned = owned(router, &cluster.scope, tags);
        let found = check_group(router, tg, cluster.standby_cluster, hc, mode, owned).await;
        p.changes.extend(found.changes);
        p.drift.extend(found.drift);
        for e in found.errors {
            p.error(e);
        }
    }
}

/// Settings belong to the group's owner: they are fixed only on a group whose tags were read
/// and carry no other owner's marker (an unmarked group is adopted like its targets).
pub(super) fn owned(router: &Router, scope: &str, tags: Option<&Tags>) -> bool {
    let Some(tags) = tags else {
        return false;
    };
    let database = router.remember_database(scope, None);
    let owner = Owner::of(
        router.config.owner_id.as_deref(),
        scope,
        database.as_deref(),
    );
    owner.is_some_and(|o| !matches!(plan::tag_claim(tags, &o), Claim::Foreign { .. }))
}

/// What checking one target group's settings found and did.
#[derive(Default)]
pub(super) struct Found {
    pub changes: Vec<ChangeReport>,
    pub drift: Vec<DriftReport>,
    pub errors: Vec<ClusterError>,
}

/// Read one target group's attributes, compare them and `hc` (its health check as read) with
/// what its strategy needs, and fix the difference where allowed (`owned`: see [`owned`]).
pub(super) async fn check_group(
    router: &Router,
    tg: &TargetGroupConfig,
    standby: bool,
    hc: &HealthCheck,
    mode: Mode,
    owned: bool,
) -> Found {
    let mut found = Found::default();
    let attributes = match router.ports.elb.attributes(&tg.arn).await {
        Ok(a) => a,
        Err(e) => {
            found.errors.push(e.into());
            return found;
        }
    };
    let current = TgSettings {
        attributes,
        health_check: hc.clone(),
    };
    let (drift, fix) = drift::check(tg, standby, &current);
    let fixed = owned && fix_settings(router, &mut found, tg, &drift, &fix, mode).await;
    if !drift.is_empty() {
        warn!(target_group = %tg.arn, drift = ?drift, fixed, "target group settings drift");
    }
    // Checked: not again before the interval, unless a fix is still to be applied.
    let fix_pending = tg.manage_settings && owned && !fix.is_empty() && !fixed;
    if !fix_pending {
        router
            .memory
            .settings_checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tg.arn.clone(), router.ports.clock.now());
    }
    found.drift.extend(drift.into_iter().map(|d| DriftReport {
        target_group: tg.arn.clone(),
        setting: d.setting,
        current: d.current,
        desired: d.desired,
        fixed,
    }));
    found
}

/// With `manage_settings`: apply the fix (planned only in plan mode). True when fixed.
async fn fix_settings(
    router: &Router,
    found: &mut Found,
    tg: &TargetGroupConfig,
    drift: &[Drift],
    fix: &SettingsFix,
    mode: Mode,
) -> bool {
    if fix.is_empty() || !tg.manage_settings {
        return false;
    }
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
    let mut change = ChangeReport {
        resource: tg.arn.clone(),
        endpoint: tg.endpoint(),
        action: Action::ModifySettings,
        target,
        node: None,
        status: ChangeStatus::Planned,
        error: None,
    };
    let mut fixed = false;
    if mode == Mode::Reconcile {
        match router.ports.elb.modify_settings(&tg.arn, fix).await {
            Ok(()) => {
                change.status = ChangeStatus::Applied;
                fixed = true;
            }
            Err(e) => {
                change.status = ChangeStatus::Failed;
                change.error = Some(e.to_string());
                found.errors.push(e.into());
            }
        }
    }
    found.changes.push(change);
    fixed
}
