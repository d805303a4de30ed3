//! Which replicas follow the confirmed primary, and which of them stands by for a failover
//! record: the part of `decide` that runs once the primary is confirmed.

use super::super::Replica;
use super::Evidence;
use crate::domain::patroni::{PgState, Role};

/// The replicas that follow the confirmed primary: configured, trusted nodes that the leader's
/// view shows streaming and that themselves say they are running replicas; config order.
pub(super) fn fit_replicas(ev: &Evidence<'_>, primary: &str, stale: &[String]) -> Vec<Replica> {
    let Some(view) = ev
        .observation(primary)
        .and_then(|o| o.cluster.as_ref().ok())
        .or_else(|| {
            ev.trusted()
                .filter_map(|o| o.cluster.as_ref().ok())
                .find(|v| v.members.iter().any(|m| m.name == primary && m.is_leader()))
        })
    else {
        return Vec::new();
    };
    let runs_as_replica = |name: &str| {
        ev.observation(name).is_some_and(|o| {
            o.patroni
                .as_ref()
                .is_ok_and(|s| s.role == Role::Replica && s.state == PgState::Running)
        })
    };
    ev.cluster
        .nodes
        .iter()
        .filter(|n| n.name != primary)
        .filter(|n| !ev.misconfigured.contains_key(&n.name) && !stale.contains(&n.name))
        .filter(|n| runs_as_replica(&n.name))
        .filter_map(|n| {
            let m = view
                .members
                .iter()
                .find(|m| m.name == n.name && m.is_streaming_replica())?;
            Some(Replica {
                name: n.name.clone(),
                lag: m.lag.and_then(|l| l.bytes()),
                sync: m.is_sync_standby(),
                noloadbalance: m.tag_is_set("noloadbalance"),
            })
        })
        .collect()
}

/// The standby for a failover record's SECONDARY: sync standbys first, then the least lag
/// (unknown lag last), then config order.
pub(super) fn best_standby(replicas: &[Replica]) -> Option<String> {
    replicas
        .iter()
        .enumerate()
        .min_by_key(|(i, r)| (!r.sync, r.lag.unwrap_or(u64::MAX), *i))
        .map(|(_, r)| r.name.clone())
}
