//! The fence: routing never goes back in time. Every marker records the timeline and leader it
//! was written for; a cluster's fence is the newest of its markers. A decision may route only
//! on a timeline at least as new as the fence — forward (a failover), or the same leader on
//! the same timeline (steady state). Anything else changes nothing and says why.

use serde::Serialize;

use crate::domain::ownership::Marker;

/// What a cluster last routed, as its newest marker says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fence {
    pub timeline: u64,
    pub leader: String,
    pub database: Option<String>,
}

impl Fence {
    /// The newest fence among markers (those without a timeline fence nothing).
    pub fn newest<'a>(markers: impl IntoIterator<Item = &'a Marker>) -> Option<Fence> {
        markers
            .into_iter()
            .filter_map(|m| {
                Some(Fence {
                    timeline: m.timeline?,
                    leader: m.leader.clone()?,
                    database: m.database.clone(),
                })
            })
            .max_by_key(|f| f.timeline)
    }
}

/// What routing to the decision does to the fence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// No fence yet: this routing sets it.
    Establish,
    /// The fence's own leader and timeline: routing holds.
    Hold,
    /// A newer timeline: the fence moves forward.
    Forward,
}

/// Why a decision may not route: it would move the fence backwards (or cannot be compared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Check a decision (its leader, timeline, database) against the fence.
pub fn check(
    fence: Option<&Fence>,
    leader: &str,
    timeline: Option<u64>,
    database: Option<&str>,
) -> Result<Step, Refused> {
    let Some(f) = fence else {
        return match timeline {
            Some(_) => Ok(Step::Establish),
            None => Err(Refused(format!(
                "{leader} reports no timeline: the fence cannot be set; routing unchanged"
            ))),
        };
    };
    if let (Some(theirs), Some(ours)) = (f.database.as_deref(), database)
        && theirs != ours
    {
        return Err(Refused(format!(
            "the fence was written for database {theirs}, but {leader} is database {ours} (a \
             cluster initialised anew?): routing unchanged; if this is intended, delete the \
             router's markers (README: the fence) and run again"
        )));
    }
    let Some(tl) = timeline else {
        if leader == f.leader {
            return Ok(Step::Hold);
        }
        return Err(Refused(format!(
            "{leader} reports no timeline and the fence holds {} on timeline {}: it cannot be \
             shown newer; routing unchanged",
            f.leader, f.timeline
        )));
    };
    match tl.cmp(&f.timeline) {
        std::cmp::Ordering::Greater => Ok(Step::Forward),
        std::cmp::Ordering::Equal if leader == f.leader => Ok(Step::Hold),
        std::cmp::Ordering::Equal => Err(Refused(format!(
            "{leader} leads timeline {tl}, but the fence says {} led timeline {tl}: two leaders \
             on one timeline; routing unchanged",
            f.leader
        ))),
        std::cmp::Ordering::Less => Err(Refused(format!(
            "routing {leader} on timeline {tl} would go back from the fence (timeline {}, \
             leader {}): a stale or thawed old primary; routing unchanged",
            f.timeline, f.leader
        ))),
    }
}

/// The same for a standby cluster. Its leader replicates from another cluster, so a change of
/// standby leader stays on the upstream's timeline, and it is read-only: a new standby leader
/// on the fence's own timeline moves the fence forward (an older timeline is still refused,
/// and so is another database).
pub fn check_standby(
    fence: Option<&Fence>,
    leader: &str,
    timeline: Option<u64>,
    database: Option<&str>,
) -> Result<Step, Refused> {
    match (fence, timeline) {
        (Some(f), Some(tl)) if tl == f.timeline && leader != f.leader => {
            let moved = Fence {
                leader: leader.to_string(),
                ..f.clone()
            };
            check(Some(&moved), leader, timeline, database).map(|_| Step::Forward)
        }
        _ => check(fence, leader, timeline, database),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fence(tl: u64, leader: &str) -> Fence {
        Fence {
            timeline: tl,
            leader: leader.into(),
            database: Some("7".into()),
        }
    }

    #[test]
    fn forward_hold_and_refusals() {
        let f = fence(2, "pg2");
        assert_eq!(check(None, "pg1", Some(1), None), Ok(Step::Establish));
        assert_eq!(
            check(Some(&f), "pg3", Some(3), Some("7")),
            Ok(Step::Forward)
        );
        assert_eq!(check(Some(&f), "pg2", Some(2), Some("7")), Ok(Step::Hold));
        let back = check(Some(&f), "pg1", Some(1), Some("7")).unwrap_err().0;
        assert!(
            back.contains("timeline 1") && back.contains("timeline 2"),
            "{back}"
        );
        let twin = check(Some(&f), "pg1", Some(2), Some("7")).unwrap_err().0;
        assert!(twin.contains("two leaders"), "{twin}");
        let other = check(Some(&f), "pg3", Some(9), Some("8")).unwrap_err().0;
        assert!(
            other.contains("database 7") && other.contains("database 8"),
            "{other}"
        );
        assert_eq!(check(Some(&f), "pg2", None, Some("7")), Ok(Step::Hold));
        assert!(check(Some(&f), "pg3", None, Some("7")).is_err());
        assert!(check(None, "pg3", None, None).is_err());
    }

    proptest! {
        /// Whatever sequence of decisions is applied through the fence (each accepted one
        /// moving it), the fence's timeline never decreases and every accepted decision is
        /// at least as new as everything accepted before it.
        #[test]
        fn the_fence_only_moves_forward(
            decisions in proptest::collection::vec((0u64..6, 0usize..3), 1..40)
        ) {
            let leaders = ["pg1", "pg2", "pg3"];
            let mut current: Option<Fence> = None;
            let mut highest = 0u64;
            for (tl, l) in decisions {
                let leader = leaders[l];
                if check(current.as_ref(), leader, Some(tl), Some("7")).is_ok() {
                    prop_assert!(tl >= highest);
                    if let Some(f) = &current {
                        prop_assert!(tl > f.timeline || f.leader == leader);
                    }
                    highest = tl;
                    current = Some(fence(tl, leader));
                }
            }
        }
    }

    /// Found by the standby-cluster test: a standby leader fails over inside the DR cluster on
    /// the upstream's timeline; a normal cluster would call that two leaders on one timeline.
    #[test]
    fn a_standby_leader_moves_within_its_timeline_but_never_back() {
        let f = fence(2, "pg1");
        assert_eq!(
            check_standby(Some(&f), "pg2", Some(2), Some("7")),
            Ok(Step::Forward)
        );
        assert_eq!(
            check_standby(Some(&f), "pg1", Some(2), Some("7")),
            Ok(Step::Hold)
        );
        assert_eq!(
            check_standby(Some(&f), "pg3", Some(3), Some("7")),
            Ok(Step::Forward)
        );
        assert!(check_standby(Some(&f), "pg2", Some(1), Some("7")).is_err());
        assert!(check_standby(Some(&f), "pg2", Some(2), Some("8")).is_err());
        assert!(check(Some(&f), "pg2", Some(2), Some("7")).is_err());
    }
}
