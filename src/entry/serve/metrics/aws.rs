//! `serve`'s AWS metrics: calls and throttles per operation (from the process's budget, at
//! each scrape) and how far behind verification is (after each verification).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::adapters::budget::{Budget, Count};
use crate::engine::Verified;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    item: String,
}

/// The families, registered in `serve`'s registry.
#[derive(Default)]
pub(super) struct AwsMetrics {
    calls: Family<OperationLabels, Counter>,
    throttled: Family<OperationLabels, Counter>,
    unread: Gauge,
    oldest: Gauge,
    cycle: Family<ItemLabels, Gauge>,
    budget: Mutex<Option<Arc<Budget>>>,
    /// The budget's counts at the last scrape (counters move by the difference).
    seen: Mutex<HashMap<&'static str, Count>>,
}

impl AwsMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "aws_calls",
            "AWS API requests sent, by operation (each page of a listing counts)",
            self.calls.clone(),
        );
        registry.register(
            "aws_throttled",
            "AWS API requests that failed as throttled after the SDK's retries, by operation",
            self.throttled.clone(),
        );
        registry.register(
            "verify_unread",
            "Target groups and record names this process has not read yet",
            self.unread.clone(),
        );
        registry.register(
            "verify_oldest_seconds",
            "Age of the oldest remembered AWS state (drift is found within about this)",
            self.oldest.clone(),
        );
        registry.register(
            "verify_cycle_seconds",
            "How often each item is verified, by item (target_groups, names)",
            self.cycle.clone(),
        );
    }

    pub fn set_budget(&self, budget: Arc<Budget>) {
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = Some(budget);
    }

    /// Bring the call counters up to the budget's counts.
    pub fn sync(&self) {
        let Some(budget) = self
            .budget
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return;
        };
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        for (op, now) in budget.counts() {
            let before = seen.insert(op, now).unwrap_or_default();
            let labels = OperationLabels {
                operation: op.to_string(),
            };
            self.calls
                .get_or_create(&labels)
                .inc_by(now.calls.saturating_sub(before.calls));
            self.throttled
                .get_or_create(&labels)
                .inc_by(now.throttled.saturating_sub(before.throttled));
        }
    }

    pub fn verified(&self, v: &Verified) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.unread.set(gauge(v.unread as u64));
        self.oldest.set(gauge(v.oldest_s));
        for (item, s) in [
            ("target_groups", v.cycle_target_groups_s),
            ("names", v.cycle_names_s),
        ] {
            self.cycle
                .get_or_create(&ItemLabels { item: item.into() })
                .set(gauge(s));
        }
    }
}
