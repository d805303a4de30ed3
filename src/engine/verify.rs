//! Verification, the other half of change-driven reads: what the process remembers of AWS is
//! read again on a rotating schedule, so that a change made outside the router (a target
//! deregistered by hand, a record edited, a marker rewritten by another router) is found
//! within a bounded time. Never-read items come first, then the oldest due; every call waits
//! for the budget at `Verify` priority (at most half the router's share), and the work stops
//! at a deadline, to go on at the next call. A target group's settings are checked here too.
//!
//! The cycle: every item at most once per `aws.verify_every`, or less often when the budget
//! cannot afford that many reads ([`Cycles`]); [`Verified`] reports both and the oldest item.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;
use tokio::time::{Instant as Deadline, timeout_at};

use super::known::NameKey;
use super::observe::{TagReads, dns_state, remember_tags};
use super::{Router, settings};
use crate::adapters::budget::{Priority, with_priority};
use crate::adapters::elb_batch;
use crate::clock::phase;
use crate::config::{ClusterConfig, TargetGroupConfig};
use crate::domain::aws::{RecordSet, TargetGroupState};
use crate::domain::ownership::Marker;
use crate::domain::plan;
use crate::domain::report::{ChangeReport, ClusterError, DriftReport, Mode};

/// The share of the budget verification may use (the budget's `Verify` priority).
const VERIFY_SHARE: f64 = 0.5;
/// Zones with this many configured names are read whole (pages of 300 record sets).
const WHOLE_ZONE_FROM: usize = 3;
const PAGE: usize = 300;
/// The longest verification cycle computed (a tiny budget over many groups).
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);
/// ELB calls per target group per cycle: DescribeTargetHealth, a twentieth of the batched
/// DescribeTags and DescribeTargetGroups, and (every fourth cycle at most) the attributes.
const CALLS_PER_GROUP: f64 = 1.0 + 2.0 / 20.0 + 0.25;

/// How often each target group and record name is verified.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cycles {
    pub groups: Duration,
    pub names: Duration,
}

impl Cycles {
    pub fn of(clusters: &[ClusterConfig], aws: &crate::config::AwsSettings) -> Cycles {
        let b = &aws.budget;
        let groups: usize = clusters.iter().map(|c| c.target_groups.len()).sum();
        let elb_rate = b.elb_describe.per_second * b.share * VERIFY_SHARE;
        let r53_rate = b.route53.per_second * b.share * VERIFY_SHARE;
        // The budget's quotas never go below one call a minute; a cycle is at most a year.
        let calls = |rate: f64, n: f64| {
            Duration::try_from_secs_f64(n / rate.max(1.0 / 60.0))
                .map_or(LONGEST, |d| d.min(LONGEST))
        };
        Cycles {
            groups: aws
                .verify_every
                .max(calls(elb_rate, groups as f64 * CALLS_PER_GROUP)),
            names: aws
                .verify_every
                .max(calls(r53_rate, route53_calls(clusters) as f64)),
        }
    }
}

/// Route 53 calls to read every configured name once: whole zones by pages (a TXT marker
/// beside each record), the others one by one.
fn route53_calls(clusters: &[ClusterConfig]) -> usize {
    let mut per_zone: HashMap<&str, usize> = HashMap::new();
    for (_, d) in clusters.iter().flat_map(|c| c.records()) {
        *per_zone.entry(d.zone_id.as_str()).or_default() += 1;
    }
    per_zone
        .values()
        .map(|&n| {
            if n >= WHOLE_ZONE_FROM {
                (2 * n).div_ceil(PAGE)
            } else {
                n
            }
        })
        .sum()
}

/// What one verification did and how far behind it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verified {
    pub target_groups_read: usize,
    pub names_read: usize,
    /// Clusters with an item found different from what the process remembered: their next
    /// run plans from it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// Clusters with an item read for the first time that a run planned without (trusted by
    /// its marker after a cold start): their next run plans from it too.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub first_read: Vec<String>,
    /// Items never read yet (a cold start at scale takes several verifications).
    pub unread: usize,
    /// Each item is verified about this often (s): `aws.verify_every`, or longer when the
    /// budget cannot afford it.
    pub cycle_target_groups_s: u64,
    pub cycle_names_s: u64,
    /// The oldest remembered item's age (s).
    pub oldest_s: u64,
    /// The deadline came with due items left.
    pub cut_short: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<DriftReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeReport>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ClusterError>,
}

impl Router {
    /// Verify what is due, until `until` at the latest (see the module).
    pub async fn verify(&self, until: Deadline) -> Verified {
        with_priority(Priority::Verify, self.verify_due(until)).await
    }

    async fn verify_due(&self, until: Deadline) -> Verified {
        let groups = self.due_groups();
        let names = self.due_names();
        let mut v = Verified {
            cycle_target_groups_s: self.cycles.groups.as_secs(),
            cycle_names_s: self.cycles.names.as_secs(),
            ..Verified::default()
        };
        let (g, n) = tokio::join!(
            self.verify_groups(&groups, until),
            self.verify_names(&names, until)
        );
        for part in [g, n] {
            v.target_groups_read += part.target_groups_read;
            v.names_read += part.names_read;
            v.changed.extend(part.changed);
            v.first_read.extend(part.first_read);
            v.cut_short |= part.cut_short;
            v.drift.extend(part.drift);
            v.changes.extend(part.changes);
            v.errors.extend(part.errors);
        }
        v.changed.sort();
        v.changed.dedup();
        v.first_read.sort();
        v.first_read.dedup();
        self.measure_backlog(&mut v);
        v
    }

    /// Unread and oldest age, after the work.
    fn measure_backlog(&self, v: &mut Verified) {
        let now = self.ports.clock.now();
        let known = &self.memory.known;
        let (groups, names) = (known.group_times(), known.name_times());
        let all = self.config.clusters.iter();
        let g = all.clone().flat_map(|c| {
            c.target_groups
                .iter()
                .map(|tg| groups.get(&tg.arn).copied())
        });
        let n = all.flat_map(|c| {
            c.records()
                .map(|(_, d)| names.get(&(d.zone_id.clone(), d.name.clone())).copied())
                .collect::<Vec<_>>()
        });
        for at in g.chain(n) {
            match at {
                None => v.unread += 1,
                Some(at) => {
                    v.oldest_s = v.oldest_s.max(now.saturating_duration_since(at).as_secs())
                }
            }
        }
    }

    /// Target groups to read: never read first (config order), then due ones, oldest first.
    fn due_groups(&self) -> Vec<(&ClusterConfig, &TargetGroupConfig)> {
        let now = self.ports.clock.now();
        let times = self.memory.known.group_times();
        let all = self
            .config
            .clusters
            .iter()
            .flat_map(|c| c.target_groups.iter().map(move |tg| (c, tg)));
        let mut due: Vec<_> = all
            .filter_map(|(c, tg)| match times.get(&tg.arn) {
                None => Some((None, c, tg)),
                Some(at) if now.saturating_duration_since(*at) >= self.cycles.groups => {
                    Some((Some(*at), c, tg))
                }
                Some(_) => None,
            })
            .collect();
        due.sort_by_key(|(at, _, _)| *at);
        due.into_iter().map(|(_, c, tg)| (c, tg)).collect()
    }

    /// Record names to read, ordered like target groups.
    fn due_names(&self) -> Vec<(String, NameKey)> {
        let now = self.ports.clock.now();
        let times = self.memory.known.name_times();
        let mut due: Vec<_> = self
            .config
            .clusters
            .iter()
            .flat_map(|c| c.records().map(move |(_, d)| (c, d)))
            .filter_map(|(c, d)| {
                let key = (d.zone_id.clone(), d.name.clone());
                match times.get(&key) {
                    None => Some((None, c.scope.clone(), key)),
                    Some(at) if now.saturating_duration_since(*at) >= self.cycles.names => {
                        Some((Some(*at), c.scope.clone(), key))
                    }
                    Some(_) => None,
                }
            })
            .collect();
        due.sort_by_key(|(at, _, _)| *at);
        due.into_iter().map(|(_, s, k)| (s, k)).collect()
    }

    /// Read due target groups by twenties: their tags and descriptions in one call each, then
    /// each one's targets; settings where their check is due.
    async fn verify_groups(
        &self,
        due: &[(&ClusterConfig, &TargetGroupConfig)],
        until: Deadline,
    ) -> Verified {
        let mut v = Verified::default();
        for chunk in due.chunks(20) {
            let arns: Vec<String> = chunk.iter().map(|(_, tg)| tg.arn.clone()).collect();
            let elb = &*self.ports.elb;
            let batch = async {
                tokio::join!(
                    elb_batch::describe_tags(elb, &arns),
                    elb_batch::describe_groups(elb, &arns)
                )
            };
            let Ok((tags, described)) = timeout_at(until, batch).await else {
                v.cut_short = true;
                return v;
            };
            self.note_tags(chunk, &tags, &mut v);
            for (cluster, tg) in chunk {
                let Some(Ok(info)) = described.get(&tg.arn) else {
                    if let Some(Err(e)) = described.get(&tg.arn) {
                        v.errors.push(e.clone().into());
                    }
                    continue;
                };
                let Ok(health) = timeout_at(until, elb.target_health(&tg.arn)).await else {
                    v.cut_short = true;
                    return v;
                };
                match health {
                    Ok(targets) => {
                        let state = TargetGroupState {
                            arn: tg.arn.clone(),
                            target_type: info.target_type.clone(),
                            targets,
                        };
                        self.note_group(cluster, state, &mut v);
                    }
                    Err(e) => v.errors.push(e.into()),
                }
                if self.settings_due(&tg.arn) {
                    // Owned per the tags read in this chunk only: a failed read is no
                    // licence from an older one (found by review).
                    let read = tags.get(&tg.arn).and_then(|t| t.as_ref().ok());
                    let owned = settings::owned(self, &cluster.scope, read);
                    let found = settings::check_group(
                        self,
                        tg,
                        cluster.standby_cluster,
                        &info.health_check,
                        Mode::Reconcile,
                        owned,
                    )
                    .await;
                    v.drift.extend(found.drift);
                    v.changes.extend(found.changes);
                    v.errors.extend(found.errors);
                }
            }
        }
        v
    }

    /// Remember tags as read; a cluster whose tags changed meanwhile is `changed`.
    fn note_tags(
        &self,
        chunk: &[(&ClusterConfig, &TargetGroupConfig)],
        tags: &TagReads,
        v: &mut Verified,
    ) {
        {
            let cache = self.memory.tags.lock().unwrap_or_else(|p| p.into_inner());
            for (c, tg) in chunk {
                match tags.get(&tg.arn) {
                    Some(Ok(t)) if cache.get(&tg.arn) != Some(t) => v.changed.push(c.scope.clone()),
                    Some(Err(e)) => v.errors.push(e.clone().into()),
                    _ => {}
                }
            }
        }
        remember_tags(self, tags);
    }

    /// Remember a group as read; a change from what was remembered marks its cluster.
    fn note_group(&self, cluster: &ClusterConfig, state: TargetGroupState, v: &mut Verified) {
        let before = self.memory.known.group(&state.arn);
        // Not what was planned from, or planned without: the cluster's next run should see it.
        let awaited = self.memory.known.take_awaited(&state.arn);
        match before {
            Some(b) if !same_targets(&b.value, &state) => v.changed.push(cluster.scope.clone()),
            Some(_) if awaited => v.changed.push(cluster.scope.clone()),
            None if awaited && self.holds_its_marker(cluster, &state) => {
                v.first_read.push(cluster.scope.clone())
            }
            None if awaited => v.changed.push(cluster.scope.clone()),
            _ => {}
        }
        self.remember_group(state, self.ports.clock.now());
        v.target_groups_read += 1;
    }

    /// Does a group trusted by its marker (unread after a cold start) hold the marker's leader?
    fn holds_its_marker(&self, cluster: &ClusterConfig, state: &TargetGroupState) -> bool {
        let tags = self.memory.tags.lock().unwrap_or_else(|p| p.into_inner());
        let Some(leader) = tags
            .get(&state.arn)
            .and_then(Marker::from_tags)
            .and_then(|m| m.leader)
        else {
            return false;
        };
        let Ok(id) = plan::target_id(cluster, &leader, &state.target_type) else {
            return false;
        };
        state
            .targets
            .iter()
            .any(|t| t.is_active() && t.target.id == id)
    }

    /// A group's settings are checked at most every `settings_check_interval`, and at most
    /// every fourth cycle; first checks spread over that period from the process's start.
    fn settings_due(&self, arn: &str) -> bool {
        let every = self
            .config
            .aws
            .settings_check_interval
            .max(self.cycles.groups.saturating_mul(4));
        let now = self.ports.clock.now();
        let checked = self
            .memory
            .settings_checked
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match checked.get(arn) {
            Some(t) => now.saturating_duration_since(*t) >= every,
            None => now.saturating_duration_since(self.memory.started) >= phase(arn, every),
        }
    }

    /// Read due names: a zone holding several configured names whole (once for all of them),
    /// the others one by one.
    async fn verify_names(&self, due: &[(String, NameKey)], until: Deadline) -> Verified {
        let mut v = Verified::default();
        let busy = self.busy_zones();
        let mut zones_read = BTreeSet::new();
        for (scope, (zone, name)) in due {
            let read = if busy.contains(zone.as_str()) {
                if !zones_read.insert(zone.clone()) {
                    continue;
                }
                timeout_at(until, self.ports.route53.list(zone, None)).await
            } else {
                timeout_at(until, self.ports.route53.list(zone, Some(name))).await
            };
            let Ok(read) = read else {
                v.cut_short = true;
                return v;
            };
            let all = match read {
                Ok(all) => all,
                Err(e) => {
                    v.errors.push(e.into());
                    continue;
                }
            };
            let names: Vec<(String, String)> = if busy.contains(zone.as_str()) {
                self.names_in(zone)
            } else {
                vec![(scope.clone(), name.clone())]
            };
            for (scope, name) in names {
                self.note_name(&scope, zone, &name, &all, &mut v);
            }
        }
        v
    }

    fn note_name(&self, scope: &str, zone: &str, name: &str, all: &[RecordSet], v: &mut Verified) {
        let state = dns_state(zone, name, all);
        let before = self.memory.known.name(zone, name);
        if before.is_some_and(|b| !same_records(&b.value.records, &state.records)) {
            v.changed.push(scope.to_string());
        }
        self.remember_name(name, state, self.ports.clock.now());
        v.names_read += 1;
    }

    /// Zones holding at least [`WHOLE_ZONE_FROM`] configured names.
    fn busy_zones(&self) -> BTreeSet<&str> {
        let mut per_zone: HashMap<&str, usize> = HashMap::new();
        for (_, d) in self.config.clusters.iter().flat_map(|c| c.records()) {
            *per_zone.entry(d.zone_id.as_str()).or_default() += 1;
        }
        per_zone
            .into_iter()
            .filter(|(_, n)| *n >= WHOLE_ZONE_FROM)
            .map(|(z, _)| z)
            .collect()
    }

    /// (scope, name) of every configured name in `zone`.
    fn names_in(&self, zone: &str) -> Vec<(String, String)> {
        self.config
            .clusters
            .iter()
            .flat_map(|c| c.records().map(move |(_, d)| (c, d)))
            .filter(|(_, d)| d.zone_id == zone)
            .map(|(c, d)| (c.scope.clone(), d.name.clone()))
            .collect()
    }
}

fn same_targets(a: &TargetGroupState, b: &TargetGroupState) -> bool {
    let ids = |s: &TargetGroupState| {
        let mut t: Vec<_> = s
            .targets
            .iter()
            .map(|t| (t.target.clone(), t.is_active()))
            .collect();
        t.sort();
        t
    };
    ids(a) == ids(b)
}

fn same_records(a: &[RecordSet], b: &[RecordSet]) -> bool {
    let key = |r: &RecordSet| format!("{r:?}");
    let mut a: Vec<String> = a.iter().map(key).collect();
    let mut b: Vec<String> = b.iter().map(key).collect();
    a.sort();
    b.sort();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AwsSettings;
    use crate::testkit::cluster;

    #[test]
    fn the_cycle_stretches_to_what_the_budget_affords() {
        let aws = AwsSettings::default();
        let c = Cycles::of(&vec![cluster(3); 10], &aws);
        assert_eq!(c.groups, aws.verify_every, "10 groups fit in 5 minutes");
        let c = Cycles::of(&vec![cluster(3); 10_000], &aws);
        // 10,000 groups at 1.35 calls each, at 1 call/s (half of 20 % of 10/s).
        assert_eq!(c.groups.as_secs(), 13_500);
        // 10,000 records and their markers in one zone: 67 pages at 0.5 call/s (134 s) fit
        // in 5 minutes.
        assert_eq!(c.names, aws.verify_every);
    }

    /// A budget below what the validation accepts (a shard divides the share further) gives
    /// long, finite cycles, never a panic (found by review: `Duration::from_secs_f64` of an
    /// overflowing quotient).
    #[test]
    fn a_tiny_budget_gives_finite_cycles() {
        let mut aws = AwsSettings::default();
        aws.budget.share = 1e-12;
        aws.budget.elb_describe.per_second = 1e-12;
        aws.budget.route53.per_second = 1e-300;
        let c = Cycles::of(&vec![cluster(3); 10_000], &aws);
        // The quotas' floor is one call a minute: 13,500 calls take 810,000 s.
        assert_eq!(c.groups.as_secs(), 810_000);
        assert!(c.names <= LONGEST && c.names >= aws.verify_every, "{c:?}");
        assert!(c.groups.checked_mul(4).is_some());
    }
}
