//! The AWS budget. AWS meters API calls per account and region, shared with the console and
//! every other tool: ELBv2's non-mutating `Describe*` calls are a token bucket of 40 refilled
//! at 10 a second (mutating calls have buckets of their own), Route 53 allows 5 requests a
//! second. The router takes a share of each (default 20 %), shared by every cluster of the
//! process, and waits for a token before each call — so it never spends more than its share,
//! whatever the number of clusters.
//!
//! Priorities, from a task-local set around the calls: `Urgent` (a failover's writes and the
//! reads it needs) may use the whole share and goes first; `Normal` and `Verify` (the rotating
//! checks for drift) together at most 80 % of it, `Verify` alone at most 50 %, and neither
//! takes a token while an urgent call waits — so a failover always finds tokens.
//!
//! The SDK adapters call [`Budget::sent`] around every request they send (each page of a
//! listing too), which also counts calls and throttles per operation.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use tokio::sync::Notify;

use super::AwsError;
use super::sdk::from_sdk;
use crate::config::{Bucket, BudgetSettings};

/// How urgent the calls of a task are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Urgent,
    Normal,
    Verify,
}

tokio::task_local! {
    static PRIORITY: Priority;
}

/// Run `f` with its AWS calls at `priority`.
pub async fn with_priority<F: std::future::Future>(priority: Priority, f: F) -> F::Output {
    PRIORITY.scope(priority, f).await
}

fn current() -> Priority {
    PRIORITY.try_with(|p| *p).unwrap_or(Priority::Normal)
}

/// The API family an operation is metered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    ElbDescribe,
    ElbModify,
    Route53,
}

impl Family {
    pub fn of(operation: &str) -> Family {
        match operation {
            "ListResourceRecordSets" | "ChangeResourceRecordSets" => Family::Route53,
            op if op.starts_with("Describe") => Family::ElbDescribe,
            _ => Family::ElbModify,
        }
    }
}

/// A family's limiters: the whole share, and the parts lower priorities may use.
struct Limiters {
    all: DefaultDirectRateLimiter,
    normal: DefaultDirectRateLimiter,
    verify: DefaultDirectRateLimiter,
    /// Urgent calls waiting for a token: the others wait until there are none.
    urgent_waiting: AtomicUsize,
    urgent_served: Notify,
}

/// An urgent call waiting; its drop (served or cancelled) lets the others on.
struct UrgentWaiting<'l>(&'l Limiters);

impl Drop for UrgentWaiting<'_> {
    fn drop(&mut self) {
        self.0.urgent_waiting.fetch_sub(1, Ordering::SeqCst);
        self.0.urgent_served.notify_waiters();
    }
}

/// `fraction` of `bucket`, as a quota (at least one token per minute, a burst of at least
/// `min_burst`).
fn quota(bucket: Bucket, fraction: f64, min_burst: f64) -> Quota {
    let rate = match bucket.per_second * fraction {
        r if r.is_nan() => 1.0 / 60.0,
        r => r.clamp(1.0 / 60.0, 1e9),
    };
    let period = Duration::from_secs_f64(1.0 / rate);
    let burst = (f64::from(bucket.burst) * fraction).floor().max(min_burst);
    let burst = NonZeroU32::new(burst as u32).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Limiters {
    fn new(bucket: Bucket, share: f64) -> Limiters {
        // Two at once at least for the whole share: a failover's record change finds a token
        // even just after a verification took one.
        Limiters {
            all: RateLimiter::direct(quota(bucket, share, 2.0)),
            normal: RateLimiter::direct(quota(bucket, share * 0.8, 1.0)),
            verify: RateLimiter::direct(quota(bucket, share * 0.5, 1.0)),
            urgent_waiting: AtomicUsize::new(0),
            urgent_served: Notify::new(),
        }
    }

    /// Verification passes its own part and then Normal's, so the two together stay within
    /// 80 % of the share; neither takes from the whole share while an urgent call waits.
    async fn acquire(&self, priority: Priority) {
        let jitter = Jitter::up_to(Duration::from_millis(20));
        if priority == Priority::Urgent {
            self.urgent_waiting.fetch_add(1, Ordering::SeqCst);
            let _waiting = UrgentWaiting(self);
            self.all.until_ready().await;
            return;
        }
        if priority == Priority::Verify {
            self.verify.until_ready_with_jitter(jitter).await;
        }
        self.normal.until_ready_with_jitter(jitter).await;
        self.after_urgent().await;
        self.all.until_ready_with_jitter(jitter).await;
    }

    async fn after_urgent(&self) {
        loop {
            // Created before the check: a wake-up between the two is not lost.
            let served = self.urgent_served.notified();
            if self.urgent_waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            served.await;
        }
    }
}

/// Calls made and throttled, per operation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    pub calls: u64,
    pub throttled: u64,
}

/// The budget of one process.
pub struct Budget {
    families: BTreeMap<Family, Limiters>,
    counts: Mutex<BTreeMap<&'static str, Count>>,
}

impl Budget {
    pub fn new(settings: &BudgetSettings) -> Budget {
        let share = settings.share;
        let families = [
            (Family::ElbDescribe, settings.elb_describe),
            (Family::ElbModify, settings.elb_modify),
            (Family::Route53, settings.route53),
        ]
        .into_iter()
        .map(|(f, b)| (f, Limiters::new(b, share)))
        .collect();
        Budget {
            families,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Wait for a token for `operation` at the task's priority.
    pub async fn acquire(&self, operation: &'static str) {
        if let Some(l) = self.families.get(&Family::of(operation)) {
            l.acquire(current()).await;
        }
    }

    /// Send one SDK request within the budget, count it, and shape its error.
    pub async fn sent<T, E, F>(
        &self,
        operation: &'static str,
        resource: &str,
        send: F,
    ) -> Result<T, AwsError>
    where
        F: std::future::Future<Output = Result<T, E>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.acquire(operation).await;
        let r = send.await;
        let throttled = r.as_ref().err().and_then(|e| e.code()).is_some_and(|c| {
            matches!(
                c,
                "Throttling"
                    | "ThrottlingException"
                    | "PriorRequestNotComplete"
                    | "TooManyRequestsException"
            )
        });
        self.counted(operation, throttled);
        r.map_err(|e| from_sdk(operation, resource, &e))
    }

    /// Count a call and whether AWS throttled it.
    pub fn counted(&self, operation: &'static str, throttled: bool) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts.entry(operation).or_default();
        c.calls += 1;
        c.throttled += u64::from(throttled);
    }

    /// Calls and throttles so far, per operation.
    pub fn counts(&self) -> BTreeMap<&'static str, Count> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn budget(burst: u32, per_second: f64) -> Budget {
        let bucket = Bucket { burst, per_second };
        Budget::new(&BudgetSettings {
            share: 1.0,
            elb_describe: bucket,
            elb_modify: bucket,
            route53: bucket,
        })
    }

    /// How long `n` calls of `op` take at `priority`.
    async fn spend(b: &Budget, priority: Priority, op: &'static str, n: usize) -> Duration {
        let start = Instant::now();
        with_priority(priority, async {
            for _ in 0..n {
                b.acquire(op).await;
            }
        })
        .await;
        start.elapsed()
    }

    #[test]
    fn operations_fall_in_their_family() {
        assert_eq!(Family::of("DescribeTargetHealth"), Family::ElbDescribe);
        assert_eq!(Family::of("DescribeTags"), Family::ElbDescribe);
        assert_eq!(Family::of("RegisterTargets"), Family::ElbModify);
        assert_eq!(Family::of("AddTags"), Family::ElbModify);
        assert_eq!(Family::of("ListResourceRecordSets"), Family::Route53);
        assert_eq!(Family::of("ChangeResourceRecordSets"), Family::Route53);
    }

    #[test]
    fn the_share_scales_the_bucket() {
        let elb = Bucket {
            burst: 40,
            per_second: 10.0,
        };
        let q = quota(elb, 0.2, 1.0);
        assert_eq!(q.burst_size().get(), 8);
        assert_eq!(q.replenish_interval(), Duration::from_millis(500));
        let r53 = Bucket {
            burst: 5,
            per_second: 5.0,
        };
        assert_eq!(
            quota(r53, 0.1, 1.0).burst_size().get(),
            1,
            "never less than one token"
        );
        assert_eq!(
            quota(r53, 0.2, 2.0).burst_size().get(),
            2,
            "the whole share holds two"
        );
    }

    #[tokio::test]
    async fn calls_wait_for_tokens_and_lower_priorities_get_less() {
        // 100 tokens a second, 10 at once. 40 urgent calls: 10 at once, 30 at 100/s.
        let b = budget(10, 100.0);
        let urgent = spend(&b, Priority::Urgent, "DescribeTags", 40).await;
        assert!(urgent >= Duration::from_millis(250), "paced: {urgent:?}");
        // Verification gets half: 5 at once, 35 at 50/s (about 0.7 s).
        let b = budget(10, 100.0);
        let verify = spend(&b, Priority::Verify, "DescribeTags", 40).await;
        assert!(
            verify >= Duration::from_millis(600),
            "half the rate: {verify:?}"
        );
        assert!(verify > urgent, "{verify:?} vs {urgent:?}");
    }

    #[tokio::test]
    async fn families_do_not_share_tokens() {
        let b = budget(5, 5.0);
        spend(&b, Priority::Urgent, "DescribeTags", 5).await;
        let other = spend(&b, Priority::Urgent, "ListResourceRecordSets", 5).await;
        assert!(
            other < Duration::from_millis(150),
            "Route 53's bucket is full: {other:?}"
        );
        b.counted("DescribeTags", false);
        b.counted("DescribeTags", true);
        assert_eq!(
            b.counts()["DescribeTags"],
            Count {
                calls: 2,
                throttled: 1
            }
        );
    }

    /// Found by review: `Normal` may take 80 % of the share and `Verify` 50 %, measured apart: together
    /// 130 %. When both are busy (a cold start or a config reload of many clusters while
    /// verification runs), tasks pile up at the whole share's limiter and an `Urgent` call is
    /// one waiter among them, served by chance: a failover does not "always find tokens".
    #[tokio::test]
    async fn a_failover_finds_tokens_while_normal_reads_and_verification_both_run() {
        // 50 tokens a second, 2 at once: Normal 40/s, Verify 25/s.
        let b = std::sync::Arc::new(budget(2, 50.0));
        let mut flood = Vec::new();
        for i in 0..24 {
            let b = std::sync::Arc::clone(&b);
            let p = if i < 3 {
                Priority::Verify
            } else {
                Priority::Normal
            };
            flood.push(tokio::spawn(with_priority(p, async move {
                loop {
                    b.acquire("DescribeTags").await;
                }
            })));
        }
        // Let the backlog at the whole share build (15 a second more than it serves).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        // A failover's ELB reads: the fence before and after registering, the re-read, ...
        let urgent = spend(&b, Priority::Urgent, "DescribeTags", 5).await;
        for f in flood {
            f.abort();
        }
        // With priority over the others, 5 tokens at 50/s take about 100 ms.
        assert!(
            urgent < Duration::from_millis(750),
            "an urgent call waited behind normal and verify calls: {urgent:?}"
        );
    }
}
