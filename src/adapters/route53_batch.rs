//! Route 53 change batching over any [`Route53`]: every cluster's changes to one hosted zone
//! in as few ChangeResourceRecordSets calls as fit (1,000 changes a call; a cluster's changes
//! are never split, so a failover pair lands together). Route 53 applies a batch atomically,
//! so when a batch of several clusters fails, each cluster is retried alone: one bad cluster
//! never blocks another.

use std::collections::BTreeSet;

use tracing::warn;

use super::{AwsError, RecordChange, Route53};

/// Route 53 takes at most 1,000 changes in one ChangeResourceRecordSets call.
pub const MAX_CHANGES_PER_BATCH: usize = 1000;

/// One owner's (a cluster's) changes to one zone: applied together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The cluster's scope: named in the batch comment and the logs.
    pub owner: String,
    pub changes: Vec<RecordChange>,
}

/// Apply `sets` to `zone`. One result per set, in order.
pub async fn apply_zone(
    api: &dyn Route53,
    zone: &str,
    sets: &[ChangeSet],
) -> Vec<Result<(), AwsError>> {
    let mut results: Vec<Option<Result<(), AwsError>>> = vec![None; sets.len()];
    let sizes: Vec<usize> = sets.iter().map(|s| s.changes.len()).collect();
    for batch in batches(&sizes, MAX_CHANGES_PER_BATCH) {
        let r = send(api, zone, sets, &batch).await;
        if r.is_ok() || batch.len() == 1 {
            for &i in &batch {
                results[i] = Some(r.clone());
            }
            continue;
        }
        warn!(
            zone,
            "batched Route 53 change failed; retrying cluster by cluster"
        );
        for &i in &batch {
            results[i] = Some(send(api, zone, sets, &[i]).await);
        }
    }
    results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
}

/// One atomic call holding the changes of `members` (indexes into `sets`).
async fn send(
    api: &dyn Route53,
    zone: &str,
    sets: &[ChangeSet],
    members: &[usize],
) -> Result<(), AwsError> {
    let changes: Vec<RecordChange> = members
        .iter()
        .flat_map(|&i| sets[i].changes.iter().cloned())
        .collect();
    let owners: BTreeSet<&str> = members.iter().map(|&i| sets[i].owner.as_str()).collect();
    let comment = format!(
        "patroni-router: {}",
        owners.into_iter().collect::<Vec<_>>().join(", ")
    );
    let comment: String = comment.chars().take(256).collect(); // Route 53's limit
    api.change(zone, &changes, &comment).await
}

/// Group sets (by index) into batches of at most `max` changes, never splitting a set; a set
/// larger than `max` goes alone. Empty sets are left out.
fn batches(sizes: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut count = 0;
    for (i, &n) in sizes.iter().enumerate() {
        if n == 0 {
            continue;
        }
        if !current.is_empty() && count + n > max {
            out.push(std::mem::take(&mut current));
            count = 0;
        }
        current.push(i);
        count += n;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::ChangeAction;
    use crate::adapters::memory::{Fault, MemoryAws};
    use crate::domain::aws::{RecordSet, RecordType};

    #[test]
    fn batches_respect_the_limit_and_keep_sets_whole() {
        assert_eq!(
            batches(&[2, 2, 1, 2, 2], 4),
            vec![vec![0, 1], vec![2, 3], vec![4]]
        );
        assert_eq!(
            batches(&[7], 4),
            vec![vec![0]],
            "an oversized set still goes alone"
        );
        assert!(batches(&[], 4).is_empty());
        assert_eq!(
            batches(&[0, 1, 0], 4),
            vec![vec![1]],
            "empty sets are skipped"
        );
    }

    fn upsert(name: &str, value: &str) -> RecordChange {
        RecordChange {
            action: ChangeAction::Upsert,
            record: RecordSet {
                name: name.into(),
                rtype: RecordType::A,
                set_identifier: None,
                failover: None,
                ttl: Some(10),
                values: vec![value.into()],
                health_check_id: None,
                multivalue: false,
                alias: false,
            },
        }
    }

    fn set(owner: &str, changes: Vec<RecordChange>) -> ChangeSet {
        ChangeSet {
            owner: owner.into(),
            changes,
        }
    }

    #[tokio::test]
    async fn one_call_per_zone_when_every_set_is_fine() {
        let aws = MemoryAws::new();
        aws.add_zone("Z1");
        let sets = vec![
            set("a", vec![upsert("a.x.", "10.0.0.1")]),
            set("b", vec![upsert("b.x.", "10.0.0.2")]),
        ];
        let r = apply_zone(&aws, "Z1", &sets).await;
        assert!(r.iter().all(Result::is_ok), "{r:?}");
        assert_eq!(aws.calls("ChangeResourceRecordSets"), 1);
        assert_eq!(aws.list("Z1", None).await.map(|v| v.len()), Ok(2));
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_per_cluster_so_one_bad_cluster_blocks_only_itself() {
        let aws = MemoryAws::new();
        aws.add_zone("Z1");
        // A DELETE that matches nothing fails the whole batch, as Route 53 does.
        let mut bad = upsert("b.x.", "10.0.0.9");
        bad.action = ChangeAction::Delete;
        let sets = vec![
            set("a", vec![upsert("a.x.", "10.0.0.1")]),
            set("b", vec![bad]),
            set("c", vec![upsert("c.x.", "10.0.0.3")]),
        ];
        let r = apply_zone(&aws, "Z1", &sets).await;
        assert!(r[0].is_ok() && r[2].is_ok(), "{r:?}");
        assert!(r[1].is_err(), "{r:?}");
        assert_eq!(
            aws.calls("ChangeResourceRecordSets"),
            4,
            "1 batch + 3 alone"
        );
        let names: Vec<String> = aws
            .list("Z1", None)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, vec!["a.x.".to_string(), "c.x.".to_string()]);
    }

    #[tokio::test]
    async fn throttling_is_reported_per_set() {
        let aws = MemoryAws::new();
        aws.add_zone("Z1");
        aws.fail("ChangeResourceRecordSets", Fault::Throttle, 1);
        let r = apply_zone(&aws, "Z1", &[set("a", vec![upsert("a.x.", "10.0.0.1")])]).await;
        let e = r[0].clone().expect_err("throttled");
        assert!(e.is_throttling(), "{e}");
        assert!(e.to_string().contains("throttled"), "{e}");
    }
}
