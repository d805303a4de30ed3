//! Two routers racing on one AWS: one with a stale view, one current. The stale one is paused
//! before each of its AWS calls in turn while the current one runs whole; whatever the
//! interleaving, routing ends on the newest timeline and never goes back to an older one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::*;
use crate::adapters::{AwsError, Elb, GroupInfo, Patroni, RecordChange, Route53, Tags};
use crate::domain::aws::{RecordSet, RegisteredTarget, Target};
use crate::domain::drift::SettingsFix;
use crate::domain::ownership::Marker;

/// The in-memory AWS, stopping before the `nth` call of `op` until released.
struct Gate {
    inner: Arc<MemoryAws>,
    op: &'static str,
    nth: usize,
    seen: AtomicUsize,
    reached: Notify,
    release: Notify,
}

impl Gate {
    async fn pass(&self, op: &str) {
        if op == self.op && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

#[async_trait]
impl Elb for Gate {
    async fn describe_target_groups(
        &self,
        a: &[String],
    ) -> Result<Vec<(String, GroupInfo)>, AwsError> {
        self.pass("DescribeTargetGroups").await;
        self.inner.describe_target_groups(a).await
    }
    async fn target_health(&self, arn: &str) -> Result<Vec<RegisteredTarget>, AwsError> {
        self.pass("DescribeTargetHealth").await;
        self.inner.target_health(arn).await
    }
    async fn register(&self, arn: &str, t: &[Target]) -> Result<(), AwsError> {
        self.pass("RegisterTargets").await;
        self.inner.register(arn, t).await
    }
    async fn deregister(&self, arn: &str, t: &[Target]) -> Result<(), AwsError> {
        self.pass("DeregisterTargets").await;
        self.inner.deregister(arn, t).await
    }
    async fn attributes(&self, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
        self.inner.attributes(arn).await
    }
    async fn modify_settings(&self, arn: &str, fix: &SettingsFix) -> Result<(), AwsError> {
        self.inner.modify_settings(arn, fix).await
    }
    async fn tags(&self, arns: &[String]) -> Result<Vec<(String, Tags)>, AwsError> {
        self.pass("DescribeTags").await;
        self.inner.tags(arns).await
    }
    async fn add_tags(&self, arn: &str, tags: &[(String, String)]) -> Result<(), AwsError> {
        self.pass("AddTags").await;
        self.inner.add_tags(arn, tags).await
    }
    async fn remove_tags(&self, arn: &str, keys: &[String]) -> Result<(), AwsError> {
        self.inner.remove_tags(arn, keys).await
    }
}

#[async_trait]
impl Route53 for Gate {
    async fn list(&self, zone: &str, name: Option<&str>) -> Result<Vec<RecordSet>, AwsError> {
        self.pass("ListResourceRecordSets").await;
        self.inner.list(zone, name).await
    }
    async fn change(&self, zone: &str, c: &[RecordChange], comment: &str) -> Result<(), AwsError> {
        self.pass("ChangeResourceRecordSets").await;
        self.inner.change(zone, c, comment).await
    }
}

/// Routing as the world holds it: (targets, record values, fence timeline).
async fn routing(w: &World) -> (Vec<String>, Vec<String>, Option<u64>) {
    let fence = Marker::from_txt(&w.txt("a").await).and_then(|m| m.timeline);
    (w.targets("a"), w.record("a").await, fence)
}

type Routing = (Vec<String>, Vec<String>, Option<u64>);

/// `a` routed to pg1 on timeline 1, then pg3 leads on 3; a stale router believes pg2 leads on
/// timeline 2. One of them (the stale one if `stale_waits`) is paused at the `nth` call of
/// `op` while the other runs whole. Routing right after both runs, and after the current
/// router's next run.
async fn race(op: &'static str, nth: usize, stale_waits: bool) -> (Routing, Routing) {
    let w = routed().await;
    w.fake(0).set_leader("a-pg3", 3);
    let stale_view = FakeCluster::in_memory("a", &w.fake(0).names());
    stale_view.set_leader("a-pg2", 2);
    let gate = Arc::new(Gate {
        inner: w.aws.clone(),
        op,
        nth,
        seen: AtomicUsize::new(0),
        reached: Notify::new(),
        release: Notify::new(),
    });
    let view: Arc<dyn Patroni> = if stale_waits {
        Arc::new(stale_view)
    } else {
        w.router.ports.patroni.clone()
    };
    let gated = Router::with_ports(
        w.router.config.clone(),
        Ports {
            patroni: view,
            elb: gate.clone(),
            route53: gate.clone(),
            clock: w.clock.clone(),
        },
    );
    let other = if stale_waits {
        w.another_router()
    } else {
        let mut ports = w.router.ports.clone();
        let stale = FakeCluster::in_memory("a", &w.fake(0).names());
        stale.set_leader("a-pg2", 2);
        ports.patroni = Arc::new(stale);
        Router::with_ports(w.router.config.clone(), ports)
    };
    let paused = tokio::spawn(async move { gated.run(Mode::Reconcile, None).await });
    let reached = tokio::time::timeout(Duration::from_secs(2), gate.reached.notified()).await;
    let ran_whole = other.run(Mode::Reconcile, None).await.expect("run");
    gate.release.notify_one();
    let _ = paused.await;
    assert!(reached.is_ok() || ran_whole.ok, "{op}#{nth}");
    let raced = routing(&w).await;
    // The current router's next run settles whatever the race left.
    w.reconcile().await;
    (raced, routing(&w).await)
}

#[tokio::test]
async fn a_stale_router_paused_anywhere_never_leaves_routing_on_an_older_timeline() {
    let newest = (
        vec!["i-13:5432".to_string()],
        vec!["10.0.1.13".to_string()],
        Some(3),
    );
    for (op, nth) in [
        ("DescribeTargetHealth", 1),
        ("DescribeTags", 1),
        ("AddTags", 1),
        ("RegisterTargets", 1),
        ("DescribeTags", 2),
        ("DeregisterTargets", 1),
        ("ListResourceRecordSets", 1),
        ("ChangeResourceRecordSets", 1),
    ] {
        // The stale router, resumed after the current one routed timeline 3, changes nothing.
        let (raced, settled) = race(op, nth, true).await;
        assert_eq!(raced, newest, "stale router paused at {op}#{nth}");
        assert_eq!(settled, newest);
        // The current router paused: the stale one may move timeline 1 to 2 meanwhile (the
        // fence allows it then), never back to 1; the current one's next run reaches 3.
        let (raced, settled) = race(op, nth, false).await;
        let old = (vec!["i-11:5432".to_string()], vec!["10.0.1.11".to_string()]);
        assert!(
            !raced.0.contains(&old.0[0]) && raced.1 != old.1,
            "{op}#{nth}: {raced:?}"
        );
        assert!(raced.2 >= Some(2), "{op}#{nth}: {raced:?}");
        assert_eq!(
            raced.0.len(),
            1,
            "{op}#{nth}: one target, never the stale one beside the new: {raced:?}"
        );
        assert_eq!(settled, newest, "current router paused at {op}#{nth}");
    }
}
