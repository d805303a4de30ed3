//! Who is the primary? A pure function from what the nodes answered to a decision.
//!
//! The rules (also in the README), one function each in [`rules`]:
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

mod rules;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::ClusterConfig;
use crate::domain::patroni::NodeObservation;

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

/// The kind of a verdict, for metrics and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    Confirmed,
    NoPrimary,
    Ambiguous,
}

impl DecisionKind {
    pub const ALL: [DecisionKind; 3] = [
        DecisionKind::Confirmed,
        DecisionKind::NoPrimary,
        DecisionKind::Ambiguous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Confirmed => "confirmed",
            DecisionKind::NoPrimary => "no_primary",
            DecisionKind::Ambiguous => "ambiguous",
        }
    }
}

impl std::fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for DecisionKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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
    /// The database's PostgreSQL system identifier: the confirmed primary's, else the one
    /// every trusted node that answered reports (the owner marker derives from it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Every node that answered answered as another scope or member: the config (or the
    /// nodes' `api_url`s) is wrong, not the cluster. An error, not a fail-static decision.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_misconfigured: bool,
}

impl Decision {
    pub fn primary(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Confirmed { primary, .. } => Some(primary),
            _ => None,
        }
    }

    /// The confirmed primary's timeline, when it reported one.
    pub fn timeline(&self) -> Option<u64> {
        match &self.verdict {
            Verdict::Confirmed { timeline, .. } => *timeline,
            _ => None,
        }
    }

    pub fn kind(&self) -> DecisionKind {
        match self.verdict {
            Verdict::Confirmed { .. } => DecisionKind::Confirmed,
            Verdict::NoPrimary => DecisionKind::NoPrimary,
            Verdict::Ambiguous => DecisionKind::Ambiguous,
        }
    }
}

/// Decide who the primary of `cluster` is from one poll of its nodes.
pub fn decide(cluster: &ClusterConfig, observations: &[NodeObservation]) -> Decision {
    let mut ev = rules::Evidence::new(cluster, observations);
    rules::find_misconfigured(&mut ev);
    if let Some(refusal) = rules::every_answer_misconfigured(&ev) {
        let mut d = ev.refused(refusal);
        d.all_misconfigured = true;
        return d;
    }
    match rules::confirm(&mut ev) {
        Ok(confirmed) => ev.confirmed(confirmed),
        Err(refusal) => ev.refused(refusal),
    }
}

#[cfg(test)]
mod tests;
