//! What this process knows of AWS: each target group's targets and each record name's record
//! sets, as last read (or written), and when. With change-driven reads (`watch`, `serve`, the
//! Lambda) a run plans from it and reads AWS only when that plan would change something (or
//! the decision moved); [`super::verify`] refreshes it on a rotating schedule. A write forgets
//! or updates what it touched.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::adapters::{ChangeAction, RecordChange};
use crate::domain::aws::{
    DnsState, RecordSet, RegisteredTarget, Target, TargetGroupState, TargetHealth,
};

/// A value and when it was read. `at` may be set back (see [`spread`]).
#[derive(Debug, Clone)]
pub(super) struct Seen<T> {
    pub value: T,
    pub at: Instant,
}

/// A record name in its zone.
pub(super) type NameKey = (String, String);

#[derive(Default)]
pub(super) struct Known {
    groups: Mutex<HashMap<String, Seen<TargetGroupState>>>,
    names: Mutex<HashMap<NameKey, Seen<DnsState>>>,
    /// Each cluster's leader at its last decision in this process (`None`: no primary).
    leaders: Mutex<HashMap<String, Option<String>>>,
    /// Target groups whose last write here failed: read before anything is planned for them
    /// (their marker may already name a leader their targets do not have).
    distrusted: Mutex<std::collections::HashSet<String>>,
    /// Target groups a run planned without (unread, their marker trusted): once read, their
    /// clusters should run again.
    awaited: Mutex<std::collections::HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Known {
    pub fn group(&self, arn: &str) -> Option<Seen<TargetGroupState>> {
        lock(&self.groups).get(arn).cloned()
    }

    pub fn name(&self, zone: &str, name: &str) -> Option<Seen<DnsState>> {
        lock(&self.names)
            .get(&(zone.to_string(), name.to_string()))
            .cloned()
    }

    pub fn put_group(&self, state: TargetGroupState, at: Instant) {
        lock(&self.distrusted).remove(&state.arn);
        lock(&self.groups).insert(state.arn.clone(), Seen { value: state, at });
    }

    /// A write to the group failed: forget it, and do not take its marker's word for it.
    pub fn distrust_group(&self, arn: &str) {
        lock(&self.groups).remove(arn);
        lock(&self.distrusted).insert(arn.to_string());
    }

    pub fn distrusted(&self, arn: &str) -> bool {
        lock(&self.distrusted).contains(arn)
    }

    /// A run planned without this group (see `awaited`).
    pub fn await_group(&self, arn: &str) {
        lock(&self.awaited).insert(arn.to_string());
    }

    /// Was this group awaited? (Forgets it.)
    pub fn take_awaited(&self, arn: &str) -> bool {
        lock(&self.awaited).remove(arn)
    }

    /// Writes to a group succeeded: it holds what it held, less the deregistered targets,
    /// plus the registered ones (verification will tell if anything else changed).
    pub fn written(
        &self,
        before: &TargetGroupState,
        register: &[Target],
        deregister: &[Target],
        at: Instant,
    ) {
        let mut state = before.clone();
        state
            .targets
            .retain(|t| !deregister.contains(&t.target) && !register.contains(&t.target));
        state
            .targets
            .extend(register.iter().map(|t| RegisteredTarget {
                target: t.clone(),
                state: TargetHealth::Initial,
            }));
        self.put_group(state, at);
    }

    pub fn put_name(&self, name: &str, state: DnsState, at: Instant) {
        let key = (state.zone_id.clone(), name.to_string());
        lock(&self.names).insert(key, Seen { value: state, at });
    }

    pub fn forget_group(&self, arn: &str) {
        lock(&self.groups).remove(arn);
    }

    pub fn forget_name(&self, zone: &str, name: &str) {
        lock(&self.names).remove(&(zone.to_string(), name.to_string()));
    }

    /// A change batch Route 53 accepted: the name now holds what it wrote.
    pub fn applied(&self, zone: &str, name: &str, changes: &[RecordChange]) {
        let mut names = lock(&self.names);
        if let Some(seen) = names.get_mut(&(zone.to_string(), name.to_string())) {
            seen.value.records = after(&seen.value.records, changes);
        }
    }

    /// Record the cluster's leader now; true when it differs from the one decided last in
    /// this process (a failover, or a primary lost or found), false on the first decision.
    pub fn leader_moved(&self, scope: &str, leader: Option<&str>) -> bool {
        let now = leader.map(str::to_string);
        match lock(&self.leaders).insert(scope.to_string(), now.clone()) {
            Some(before) => before != now,
            None => false,
        }
    }

    /// Every remembered target group's read time.
    pub fn group_times(&self) -> HashMap<String, Instant> {
        lock(&self.groups)
            .iter()
            .map(|(k, v)| (k.clone(), v.at))
            .collect()
    }

    /// Every remembered record name's read time.
    pub fn name_times(&self) -> HashMap<NameKey, Instant> {
        lock(&self.names)
            .iter()
            .map(|(k, v)| (k.clone(), v.at))
            .collect()
    }
}

/// The record sets at a name after a change batch: DELETEs remove the exact set, CREATEs and
/// UPSERTs put theirs in place of the set with the same type and identifier.
fn after(records: &[RecordSet], changes: &[RecordChange]) -> Vec<RecordSet> {
    let same = |a: &RecordSet, b: &RecordSet| {
        a.name == b.name && a.rtype == b.rtype && a.set_identifier == b.set_identifier
    };
    let mut out = records.to_vec();
    for c in changes {
        out.retain(|r| !same(r, &c.record));
        if c.action != ChangeAction::Delete {
            out.push(c.record.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::aws::RecordType;

    fn rec(rtype: RecordType, value: &str) -> RecordSet {
        RecordSet {
            name: "db.example.com.".into(),
            rtype,
            set_identifier: None,
            failover: None,
            ttl: Some(5),
            values: vec![value.into()],
            health_check_id: None,
            multivalue: false,
            alias: false,
        }
    }

    #[test]
    fn a_change_batch_leaves_the_name_as_route53_would() {
        let old_a = rec(RecordType::A, "10.0.0.1");
        let old_txt = rec(RecordType::Txt, "\"old\"");
        let changes = vec![
            RecordChange {
                action: ChangeAction::Delete,
                record: old_txt.clone(),
            },
            RecordChange {
                action: ChangeAction::Create,
                record: rec(RecordType::Txt, "\"new\""),
            },
            RecordChange {
                action: ChangeAction::Upsert,
                record: rec(RecordType::A, "10.0.0.2"),
            },
        ];
        let mut now = after(&[old_a, old_txt], &changes);
        now.sort_by_key(|r| r.rtype.to_string());
        assert_eq!(
            now,
            vec![
                rec(RecordType::A, "10.0.0.2"),
                rec(RecordType::Txt, "\"new\"")
            ]
        );
    }

    #[test]
    fn a_leader_moves_only_against_an_earlier_decision() {
        let k = Known::default();
        assert!(!k.leader_moved("a", Some("n1")), "first decision");
        assert!(!k.leader_moved("a", Some("n1")));
        assert!(k.leader_moved("a", Some("n2")), "failover");
        assert!(k.leader_moved("a", None), "primary lost");
        assert!(k.leader_moved("a", Some("n2")), "primary found");
    }
}
