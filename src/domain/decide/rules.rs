//! The rules of `decide`, one function each. A rule either passes what the next one needs or
//! refuses with a verdict and a reason; [`confirm`] chains them in the order the README gives.

use std::collections::{BTreeMap, BTreeSet};

mod misconfigured;
mod replicas;

use super::{Decision, Verdict};
use crate::config::ClusterConfig;
use crate::domain::patroni::{Member, MemberRole, NodeObservation, PatroniStatus, PgState, Role};
pub(super) use misconfigured::{every_answer_misconfigured, find_misconfigured};
use replicas::{best_standby, fit_replicas};

/// What the rules work on: the configured nodes' observations and what was learnt so far.
pub(super) struct Evidence<'a> {
    cluster: &'a ClusterConfig,
    obs: Vec<&'a NodeObservation>,
    misconfigured: BTreeMap<String, String>,
    warnings: Vec<String>,
}

/// Why no primary is confirmed.
pub(super) struct Refusal {
    verdict: Verdict,
    reason: String,
    stale: Vec<String>,
}

fn no_primary(reason: String) -> Refusal {
    Refusal {
        verdict: Verdict::NoPrimary,
        reason,
        stale: Vec::new(),
    }
}

fn ambiguous(reason: String, stale: Vec<String>) -> Refusal {
    Refusal {
        verdict: Verdict::Ambiguous,
        reason,
        stale,
    }
}

/// A candidate that passed every rule.
pub(super) struct Confirmed {
    primary: String,
    status: PatroniStatus,
    /// The trusted nodes whose view names it leader.
    named_by: Vec<String>,
    stale: Vec<String>,
}

impl<'a> Evidence<'a> {
    pub(super) fn new(cluster: &'a ClusterConfig, observations: &'a [NodeObservation]) -> Self {
        Evidence {
            cluster,
            // Only configured nodes count, whatever else was handed in.
            obs: observations
                .iter()
                .filter(|o| cluster.node(&o.name).is_some())
                .collect(),
            misconfigured: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn trusted(&self) -> impl Iterator<Item = &&'a NodeObservation> {
        self.obs
            .iter()
            .filter(|o| !self.misconfigured.contains_key(&o.name))
    }

    fn observation(&self, name: &str) -> Option<&'a NodeObservation> {
        self.obs.iter().copied().find(|o| o.name == name)
    }

    /// Each trusted node's /cluster error, in short: `pg1: timed out (…); pg2: …`.
    fn why_no_view(&self) -> String {
        let parts: Vec<String> = self
            .trusted()
            .filter_map(|o| {
                let e = o.cluster.as_ref().err()?.to_string();
                let short: String = e.chars().take(80).collect();
                Some(format!("{}: {short}", o.name))
            })
            .collect();
        if parts.is_empty() {
            "no configured node was asked".to_string()
        } else {
            parts.join("; ")
        }
    }

    /// The role that leads this cluster: a standby cluster's leader is `standby_leader`.
    fn leader_role(&self) -> &'static str {
        if self.cluster.standby_cluster {
            "standby_leader"
        } else {
            "leader"
        }
    }

    /// Does a node's own role claim this cluster's leadership?
    fn claims_leadership(&self, role: &Role) -> bool {
        if self.cluster.standby_cluster {
            *role == Role::StandbyLeader
        } else {
            role.is_primary()
        }
    }

    pub(super) fn refused(self, r: Refusal) -> Decision {
        self.finish(r.verdict, r.reason, r.stale)
    }

    pub(super) fn confirmed(self, c: Confirmed) -> Decision {
        let replicas = fit_replicas(&self, &c.primary, &c.stale);
        let standby = best_standby(&replicas);
        let timeline = c
            .status
            .timeline
            .map_or_else(|| "?".to_string(), |t| t.to_string());
        let mut reason = format!(
            "{} is the {} in /cluster (per {}) and confirms {} {} on timeline {timeline}",
            c.primary,
            self.leader_role(),
            c.named_by.join(", "),
            c.status.role,
            c.status.state,
        );
        if !c.stale.is_empty() {
            reason.push_str(&format!(
                "; {} also claim(s) primary without the leader lock: stale, not routed to",
                c.stale.join(", ")
            ));
        }
        let verdict = Verdict::Confirmed {
            primary: c.primary,
            timeline: c.status.timeline,
        };
        let mut d = self.finish(verdict, reason, c.stale);
        d.standby = standby;
        d.replicas = replicas;
        if c.status.database_system_identifier.is_some() {
            d.database = c.status.database_system_identifier;
        }
        d
    }

    /// The database the trusted nodes that answered are, when they all say the same.
    fn database(&self) -> Option<String> {
        let mut ids = self
            .trusted()
            .filter_map(|o| o.patroni.as_ref().ok()?.database_system_identifier.clone());
        let first = ids.next()?;
        ids.all(|id| id == first).then_some(first)
    }

    fn finish(self, verdict: Verdict, reason: String, stale: Vec<String>) -> Decision {
        let database = self.database();
        Decision {
            verdict,
            reason,
            stale_primaries: stale,
            misconfigured: self.misconfigured,
            standby: None,
            replicas: Vec::new(),
            warnings: self.warnings,
            database,
            all_misconfigured: false,
        }
    }
}

/// Rules 2 to 4, in order.
pub(super) fn confirm(ev: &mut Evidence<'_>) -> Result<Confirmed, Refusal> {
    let (named, views) = leader_votes(ev)?;
    collect_unknown_members(ev);
    let candidate = single_candidate(&named, views, &ev.why_no_view())?;
    candidate_is_ours(ev, &candidate)?;
    candidate_role_fits_cluster(ev, &candidate)?;
    let status = candidate_confirms_itself(ev, &candidate)?;
    let stale = other_claimants(ev, &candidate, &status)?;
    Ok(Confirmed {
        named_by: named.get(&candidate).cloned().unwrap_or_default(),
        primary: candidate,
        status,
        stale,
    })
}

/// Who named whom leader (leader -> the trusted nodes whose view names it).
type Votes = BTreeMap<String, Vec<String>>;

/// Rule 2, the votes: which leader each trusted view names, and how many views answered.
/// One view naming two leaders is a split brain: ambiguous.
fn leader_votes(ev: &Evidence<'_>) -> Result<(Votes, usize), Refusal> {
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut views = 0usize;
    for o in ev.trusted() {
        let Ok(view) = &o.cluster else { continue };
        views += 1;
        let leaders: Vec<&Member> = view.members.iter().filter(|m| m.is_leader()).collect();
        if leaders.len() > 1 {
            let names: Vec<&str> = leaders.iter().map(|m| m.name.as_str()).collect();
            return Err(ambiguous(
                format!(
                    "{}'s /cluster names {} leaders ({}): split brain in the DCS view; routing unchanged",
                    o.name,
                    leaders.len(),
                    names.join(", ")
                ),
                Vec::new(),
            ));
        }
        if let Some(l) = leaders.first() {
            named
                .entry(l.name.clone())
                .or_default()
                .push(o.name.clone());
        }
    }
    Ok((named, views))
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

/// Rule 2, the count: exactly one leader named; none is no primary, several disagree.
/// `why_no_view`: what the nodes said instead of a view, for when none answered.
fn single_candidate(named: &Votes, views: usize, why_no_view: &str) -> Result<String, Refusal> {
    let mut leaders = named.keys();
    match (leaders.next(), leaders.next()) {
        (Some(one), None) => Ok(one.clone()),
        (None, _) if views == 0 => Err(no_primary(format!(
            "no node answered /cluster (Patroni unreachable or its DCS down: {why_no_view}): \
             routing unchanged"
        ))),
        (None, _) => Err(no_primary(format!(
            "{views} /cluster view(s) name no leader (failover in progress or no leader lock): \
             routing unchanged"
        ))),
        (Some(_), Some(_)) => {
            let claims: Vec<String> = named
                .iter()
                .map(|(leader, by)| format!("{} says {leader}", by.join("+")))
                .collect();
            Err(ambiguous(
                format!(
                    "/cluster views disagree on the leader ({}): routing unchanged",
                    claims.join("; ")
                ),
                Vec::new(),
            ))
        }
    }
}

/// Rule 3a: only configured, trusted nodes are routed to.
fn candidate_is_ours(ev: &Evidence<'_>, candidate: &str) -> Result<(), Refusal> {
    if ev.cluster.node(candidate).is_none() {
        return Err(no_primary(format!(
            "the DCS leader {candidate:?} is not a configured node of {:?}: refusing to route \
             to it (add it to `nodes` if it belongs); routing unchanged",
            ev.cluster.scope
        )));
    }
    if let Some(why) = ev.misconfigured.get(candidate) {
        return Err(no_primary(format!(
            "the DCS leader {candidate} is misconfigured ({why}); routing unchanged"
        )));
    }
    Ok(())
}

/// Rule 3b: a standby cluster's leader is a `standby_leader` in the DCS, a normal cluster's
/// is not.
fn candidate_role_fits_cluster(ev: &Evidence<'_>, candidate: &str) -> Result<(), Refusal> {
    let role = ev
        .trusted()
        .filter_map(|o| o.cluster.as_ref().ok())
        .flat_map(|v| v.members.iter())
        .find(|m| m.name == candidate && m.is_leader())
        .map(|m| m.role.clone());
    let is_standby_leader = role == Some(MemberRole::StandbyLeader);
    if is_standby_leader == ev.cluster.standby_cluster {
        return Ok(());
    }
    Err(no_primary(format!(
        "the DCS leader {candidate} has role {}, but the cluster is configured with \
         standby_cluster={}: fix `standby_cluster`; routing unchanged",
        role.map(|r| r.to_string()).unwrap_or_default(),
        ev.cluster.standby_cluster
    )))
}

/// Rule 3c: the candidate's own `/patroni` says it leads, runs, and holds the DCS lock.
fn candidate_confirms_itself(ev: &Evidence<'_>, candidate: &str) -> Result<PatroniStatus, Refusal> {
    let status = match ev.observation(candidate).map(|o| &o.patroni) {
        Some(Ok(s)) => s.clone(),
        Some(Err(e)) => {
            return Err(no_primary(format!(
                "the DCS leader {candidate} does not answer /patroni ({e}): it may be failing \
                 over; routing unchanged"
            )));
        }
        None => {
            return Err(no_primary(format!(
                "no observation of the DCS leader {candidate}; routing unchanged"
            )));
        }
    };
    if !ev.claims_leadership(&status.role) || status.state != PgState::Running {
        return Err(no_primary(format!(
            "the DCS leader {candidate} reports role {} state {}, not a running {}: not \
             confirmed; routing unchanged",
            status.role,
            status.state,
            if ev.cluster.standby_cluster {
                "standby_leader"
            } else {
                "primary"
            }
        )));
    }
    if status.cluster_unlocked {
        return Err(no_primary(format!(
            "{candidate} is primary but reports the cluster unlocked (DCS unreachable{}): \
             leadership cannot be confirmed; routing unchanged",
            if status.failsafe_mode_is_active {
                ", failsafe mode active"
            } else {
                ""
            }
        )));
    }
    Ok(status)
}

/// Rule 4: other self-declared leaders are stale, never routed to. Timelines only move
/// forward, so any trusted node — a claimant or a replica — on a newer timeline than the
/// candidate makes the DCS view suspect; so does a candidate that reports no timeline while
/// another node claims to lead (nothing says which is newer). Both: ambiguous.
fn other_claimants(
    ev: &Evidence<'_>,
    candidate: &str,
    status: &PatroniStatus,
) -> Result<Vec<String>, Refusal> {
    let mut stale = Vec::new();
    let mut suspect = None;
    for o in ev.trusted() {
        let Ok(s) = &o.patroni else { continue };
        if o.name == candidate {
            continue;
        }
        let claims = ev.claims_leadership(&s.role);
        if claims {
            stale.push(o.name.clone());
        }
        if suspect.is_some() {
            continue;
        }
        suspect = match (s.timeline, status.timeline) {
            (Some(theirs), Some(ours)) if theirs > ours => {
                let who = if claims {
                    format!("{} claims {} on timeline {theirs}", o.name, s.role)
                } else {
                    format!("{} ({}) reports timeline {theirs}", o.name, s.role)
                };
                Some(format!(
                    "{who}, newer than the DCS leader {candidate}'s timeline {ours}: the DCS \
                     view may be stale; routing unchanged"
                ))
            }
            (_, None) if claims => Some(format!(
                "the DCS leader {candidate} reports no timeline while {} claims {}: which one \
                 is newer cannot be told; routing unchanged",
                o.name, s.role
            )),
            _ => None,
        };
    }
    match suspect {
        Some(reason) => Err(ambiguous(reason, stale)),
        None => Ok(stale),
    }
}
