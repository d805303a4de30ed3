//! Who is the primary? A pure function from what the nodes answered to a decision.
//!
//! The rules (also in the README):
//! 1. A node whose `/patroni` names another scope or member, or whose `/cluster` names another
//!    scope, is misconfigured: its answers are ignored and it is never routed to.
//! 2. The candidate is the member the trusted `/cluster` views name `leader` (`standby_leader`
//!    for a standby cluster). Views naming different leaders, or one view naming two: ambiguous.
//! 3. The candidate must be a configured node, and its own `/patroni` must say role `primary`
//!    (or legacy `master`; `standby_leader` for a standby cluster), state `running`, and not
//!    `cluster_unlocked`. Then it is confirmed.
//! 4. Another node that also claims to be primary is reported as stale and never routed to;
//!    if it is on a newer timeline than the candidate, the DCS view is suspect: ambiguous.
//! 5. Anything else (nothing reachable, DCS down, mid-failover): no primary.
//!    No primary and ambiguous both mean fail-static: routing is left exactly as it is.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::patroni::{ClusterView, Lag, Member, NodeObservation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Route to this node.
    Confirmed {
        primary: String,
        timeline: Option<u64>,
    },
    /// No node can be confirmed as primary: change nothing.
    NoPrimary,
    /// The evidence contradicts itself: change nothing.
    Ambiguous,
}

/// A replica fit to follow the primary, with what the read endpoint needs to judge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    pub name: String,
    /// Bytes behind the primary as the DCS reports it; `None` when Patroni cannot tell.
    pub lag: Option<u64>,
    pub sync: bool,
    /// Tagged `noloadbalance` in Patroni: never in the read endpoint.
    pub noloadbalance: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    #[serde(flatten)]
    pub verdict: Verdict,
    /// One sentence an operator can act on.
    pub reason: String,
    /// Configured nodes that claim to be primary although the DCS names another leader.
    pub stale_primaries: Vec<String>,
    /// Configured nodes that answered as another scope or member (name -> what they said).
    pub misconfigured: BTreeMap<String, String>,
    /// For failover DNS: the best standby (sync first, then least lag), if any.
    pub standby: Option<String>,
    /// With a confirmed primary: the configured replicas that stream from it (per its view)
    /// and confirm themselves as running replicas, in config order. The read endpoint picks
    /// from these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
    /// Other things worth an operator's look (unconfigured members in the DCS, ...).
    pub warnings: Vec<String>,
}

impl Decision {
    pub fn primary(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Confirmed { primary, .. } => Some(primary),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.verdict {
            Verdict::Confirmed { .. } => "confirmed",
            Verdict::NoPrimary => "no_primary",
            Verdict::Ambiguous => "ambiguous",
        }
    }
}

struct Evidence<'a> {
    cluster: &'a ClusterConfig,
    obs: Vec<&'a NodeObservation>,
    misconfigured: BTreeMap<String, String>,
    warnings: Vec<String>,
}

impl Evidence<'_> {
    fn finish(self, verdict: Verdict, reason: String, stale: Vec<String>) -> Decision {
        Decision {
            verdict,
            reason,
            stale_primaries: stale,
            misconfigured: self.misconfigured,
            standby: None,
            replicas: Vec::new(),
            warnings: self.warnings,
        }
    }

    fn trusted(&self) -> impl Iterator<Item = &&NodeObservation> {
        self.obs
            .iter()
            .filter(|o| !self.misconfigured.contains_key(&o.name))
    }

    fn observation(&self, name: &str) -> Option<&NodeObservation> {
        self.obs.iter().copied().find(|o| o.name == name)
    }
}

/// Decide who the primary of `cluster` is from one poll of its nodes.
pub fn decide(cluster: &ClusterConfig, observations: &[NodeObservation]) -> Decision {
    let mut ev = Evidence {
        cluster,
        // Only configured nodes count, whatever else was handed in.
        obs: observations
            .iter()
            .filter(|o| cluster.node(&o.name).is_some())
            .collect(),
        misconfigured: BTreeMap::new(),
        warnings: Vec::new(),
    };
    find_misconfigured(&mut ev);

    let leader_role = if cluster.standby_cluster {
        "standby_leader"
    } else {
        "leader"
    };

    // Rule 2: what each trusted view names as leader.
    let mut views = 0usize;
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new(); // leader -> nodes naming it
    let mut split = None;
    for o in ev.trusted() {
        let Ok(view) = &o.cluster else { continue };
        views += 1;
        let leaders: Vec<&Member> = view.members.iter().filter(|m| m.is_leader()).collect();
        if leaders.len() > 1 {
            let names: Vec<&str> = leaders.iter().map(|m| m.name.as_str()).collect();
            split = Some(format!(
                "{}'s /cluster names {} leaders ({}): split brain in the DCS view; routing unchanged",
                o.name,
                leaders.len(),
                names.join(", ")
            ));
            break;
        }
        if let Some(l) = leaders.first() {
            named
                .entry(l.name.clone())
                .or_default()
                .push(o.name.clone());
        }
    }
    if let Some(reason) = split {
        return ev.finish(Verdict::Ambiguous, reason, vec![]);
    }
    collect_unknown_members(&mut ev);

    let candidate = match named.len() {
        0 if views == 0 => {
            let reason = "no node answered /cluster (Patroni unreachable or its DCS down): \
                          routing unchanged"
                .to_string();
            return ev.finish(Verdict::NoPrimary, reason, vec![]);
        }
        0 => {
            let reason = format!(
                "{views} /cluster view(s) name no leader (failover in progress or no leader lock): \
                 routing unchanged"
            );
            return ev.finish(Verdict::NoPrimary, reason, vec![]);
        }
        1 => named.keys().next().cloned().unwrap_or_default(),
        _ => {
            let claims: Vec<String> = named
                .iter()
                .map(|(leader, by)| format!("{} says {leader}", by.join("+")))
                .collect();
            let reason = format!(
                "/cluster views disagree on the leader ({}): routing unchanged",
                claims.join("; ")
            );
            return ev.finish(Verdict::Ambiguous, reason, vec![]);
        }
    };

    // Rule 3: the candidate must be ours and confirm itself.
    if cluster.node(&candidate).is_none() {
        let reason = format!(
            "the DCS leader {candidate:?} is not a configured node of {:?}: refusing to route \
             to it (add it to `nodes` if it belongs); routing unchanged",
            cluster.scope
        );
        return ev.finish(Verdict::NoPrimary, reason, vec![]);
    }
    if let Some(why) = ev.misconfigured.get(&candidate) {
        let reason =
            format!("the DCS leader {candidate} is misconfigured ({why}); routing unchanged");
        return ev.finish(Verdict::NoPrimary, reason, vec![]);
    }
    let leader_member_role = ev
        .trusted()
        .filter_map(|o| o.cluster.as_ref().ok())
        .flat_map(|v| v.members.iter())
        .find(|m| m.name == candidate && m.is_leader())
        .map(|m| m.role.clone())
        .unwrap_or_default();
    let role_ok = if cluster.standby_cluster {
        leader_member_role == "standby_leader"
    } else {
        leader_member_role != "standby_leader"
    };
    if !role_ok {
        let reason = format!(
            "the DCS leader {candidate} has role {leader_member_role}, but the cluster is \
             configured with standby_cluster={}: fix `standby_cluster`; routing unchanged",
            cluster.standby_cluster
        );
        return ev.finish(Verdict::NoPrimary, reason, vec![]);
    }

    let own = ev.observation(&candidate).map(|o| o.patroni.clone());
    let status = match own {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            let reason = format!(
                "the DCS leader {candidate} does not answer /patroni ({e}): it may be failing \
                 over; routing unchanged"
            );
            return ev.finish(Verdict::NoPrimary, reason, vec![]);
        }
        None => {
            let reason = format!("no observation of the DCS leader {candidate}; routing unchanged");
            return ev.finish(Verdict::NoPrimary, reason, vec![]);
        }
    };
    let claims_leadership = |role: &str| {
        if cluster.standby_cluster {
            role == "standby_leader"
        } else {
            matches!(role, "primary" | "master")
        }
    };
    if !claims_leadership(&status.role) || status.state != "running" {
        let reason = format!(
            "the DCS leader {candidate} reports role {} state {}, not a running {}: not \
             confirmed; routing unchanged",
            status.role,
            status.state,
            if cluster.standby_cluster {
                "standby_leader"
            } else {
                "primary"
            }
        );
        return ev.finish(Verdict::NoPrimary, reason, vec![]);
    }
    if status.cluster_unlocked {
        let reason = format!(
            "{candidate} is primary but reports the cluster unlocked (DCS unreachable{}): \
             leadership cannot be confirmed; routing unchanged",
            if status.failsafe_mode_is_active {
                ", failsafe mode active"
            } else {
                ""
            }
        );
        return ev.finish(Verdict::NoPrimary, reason, vec![]);
    }

    // Rule 4: other self-declared primaries.
    let mut stale = Vec::new();
    let mut newer = None;
    for o in ev.trusted() {
        if o.name == candidate {
            continue;
        }
        if let Ok(s) = &o.patroni
            && claims_leadership(&s.role)
        {
            if let (Some(theirs), Some(ours)) = (s.timeline, status.timeline)
                && theirs > ours
            {
                newer = Some(format!(
                    "{} claims {} on timeline {theirs}, newer than the DCS leader {candidate}'s \
                     timeline {ours}: the DCS view may be stale; routing unchanged",
                    o.name, s.role
                ));
            }
            stale.push(o.name.clone());
        }
    }
    if let Some(reason) = newer {
        return ev.finish(Verdict::Ambiguous, reason, stale);
    }

    let replicas = fit_replicas(&ev, &candidate, &stale);
    let standby = best_standby(&replicas);
    let by = named
        .get(&candidate)
        .map(|v| v.join(", "))
        .unwrap_or_default();
    let mut reason = format!(
        "{candidate} is the {leader_role} in /cluster (per {by}) and confirms {} {} on timeline {}",
        status.role,
        status.state,
        status
            .timeline
            .map_or_else(|| "?".to_string(), |t| t.to_string())
    );
    if !stale.is_empty() {
        reason.push_str(&format!(
            "; {} also claim(s) primary without the leader lock: stale, not routed to",
            stale.join(", ")
        ));
    }
    let mut d = ev.finish(
        Verdict::Confirmed {
            primary: candidate,
            timeline: status.timeline,
        },
        reason,
        stale,
    );
    d.standby = standby;
    d.replicas = replicas;
    d
}

/// Rule 1: a node answering as another scope or member is not one of ours.
fn find_misconfigured(ev: &mut Evidence<'_>) {
    let scope = &ev.cluster.scope;
    for o in &ev.obs {
        if let Ok(s) = &o.patroni
            && (s.patroni.scope != *scope || s.patroni.name != o.name)
        {
            ev.misconfigured.insert(
                o.name.clone(),
                format!(
                    "its /patroni answers as member {:?} of scope {:?}, configured as {:?} of {:?}",
                    s.patroni.name, s.patroni.scope, o.name, scope
                ),
            );
            continue;
        }
        if let Ok(ClusterView {
            scope: Some(theirs),
            ..
        }) = &o.cluster
            && theirs != scope
        {
            ev.misconfigured.insert(
                o.name.clone(),
                format!("its /cluster is of scope {theirs:?}, configured in {scope:?}"),
            );
        }
    }
}

fn collect_unknown_members(ev: &mut Evidence<'_>) {
    let unknown: BTreeSet<String> = ev
        .trusted()
        .filter_map(|o| o.cluster.as_ref().ok())
        .flat_map(|v| v.members.iter())
        .filter(|m| ev.cluster.node(&m.name).is_none())
        .map(|m| m.name.clone())
        .collect();
    if !unknown.is_empty() {
        let names: Vec<String> = unknown.into_iter().collect();
        ev.warnings.push(format!(
            "the DCS lists member(s) not in the config, never routed to: {}",
            names.join(", ")
        ));
    }
}

/// The replicas that follow the confirmed primary: configured, trusted nodes that the leader's
/// view shows streaming and that themselves say they are running replicas; config order.
fn fit_replicas(ev: &Evidence<'_>, primary: &str, stale: &[String]) -> Vec<Replica> {
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
    ev.cluster
        .nodes
        .iter()
        .filter(|n| n.name != primary)
        .filter(|n| !ev.misconfigured.contains_key(&n.name) && !stale.contains(&n.name))
        .filter(|n| {
            ev.observation(&n.name).is_some_and(|o| {
                o.patroni
                    .as_ref()
                    .is_ok_and(|s| s.role == "replica" && s.state == "running")
            })
        })
        .filter_map(|n| {
            let m = view
                .members
                .iter()
                .find(|m| m.name == n.name && m.is_streaming_replica())?;
            Some(Replica {
                name: n.name.clone(),
                lag: match m.lag {
                    Some(Lag::Bytes(b)) => Some(b),
                    _ => None,
                },
                sync: m.is_sync_standby(),
                noloadbalance: m.tag_is_set("noloadbalance"),
            })
        })
        .collect()
}

/// The standby for a failover record's SECONDARY: sync standbys first, then the least lag
/// (unknown lag last), then config order.
fn best_standby(replicas: &[Replica]) -> Option<String> {
    replicas
        .iter()
        .enumerate()
        .min_by_key(|(i, r)| (!r.sync, r.lag.unwrap_or(u64::MAX), *i))
        .map(|(_, r)| r.name.clone())
}

#[cfg(test)]
mod tests;
