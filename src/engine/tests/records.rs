//! Records: every cluster's changes to a zone in one batch; a failed batch retried cluster by
//! cluster, so one bad cluster blocks only itself.

use super::*;

#[tokio::test]
async fn every_clusters_records_go_in_one_batch_per_zone() {
    let w = World::new(&["a", "b", "c"], |_| {});
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.aws.calls("ChangeResourceRecordSets"), 1);
    for (scope, ip) in [("a", "10.0.1.11"), ("b", "10.0.2.11"), ("c", "10.0.3.11")] {
        assert_eq!(w.record(scope).await, vec![ip]);
    }
}

#[tokio::test]
async fn a_failed_batch_is_retried_per_cluster_and_only_the_failing_one_reports_it() {
    let w = World::new(&["a", "b"], |_| {});
    // The batch fails, then a's retry fails; b's retry goes through.
    w.aws
        .fail("ChangeResourceRecordSets", Fault::Error("boom".into()), 2);
    let r = w.reconcile().await;
    assert_eq!(
        w.aws.calls("ChangeResourceRecordSets"),
        3,
        "1 batch + 1 per cluster"
    );
    let (a, b) = (&r.clusters[0], &r.clusters[1]);
    assert!(
        a.errors.iter().any(|e| e.to_string().contains("boom")),
        "{:?}",
        a.errors
    );
    let upsert = a
        .changes
        .iter()
        .find(|c| c.action == Action::Upsert)
        .expect("upsert");
    assert_eq!(upsert.status, ChangeStatus::Failed);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    assert!(w.record("a").await.is_empty());
    assert_eq!(w.record("b").await, vec!["10.0.2.11"]);
    assert_eq!(
        w.targets("a"),
        vec!["i-11:5432"],
        "a's target group is independent of DNS"
    );
    let r = w.reconcile().await;
    assert!(r.ok, "{}", r.to_text());
    assert_eq!(w.record("a").await, vec!["10.0.1.11"]);
}

#[tokio::test]
async fn three_records_in_a_zone_are_read_with_one_whole_zone_listing() {
    let w = World::new(&["a", "b", "c"], |_| {});
    w.reconcile().await;
    let before = w.aws.calls("ListResourceRecordSets");
    w.reconcile().await;
    assert_eq!(w.aws.calls("ListResourceRecordSets") - before, 1);
}
