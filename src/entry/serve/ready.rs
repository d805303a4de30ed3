//! Readiness: this process can take webhooks and reach its dependencies — it has finished a
//! first run, is not shutting down, and AWS has not been unreachable (transport or credential
//! failures, not AWS's answers) for longer than `max_age`. A cluster without a primary is not
//! a reason: that is every normal failover, exactly when webhooks must get through; cluster
//! health is in the metrics and alarms.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::domain::report::{ClusterError, ClusterReport};

#[derive(Debug, Default)]
struct State {
    ran: bool,
    shutting_down: bool,
    /// Since when every AWS call has failed to reach AWS (`None`: it answers).
    unreachable_since: Option<Instant>,
    last_unreachable: Option<String>,
}

/// Why the process is not ready, as `/readyz` says it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotReady {
    pub reason: String,
}

pub struct Health {
    max_age: Duration,
    state: Mutex<State>,
}

/// An AWS error that is the way to AWS failing (no answer from AWS at all).
fn unreachable(e: &ClusterError) -> Option<String> {
    match e {
        ClusterError::Aws(a) if a.code.is_none() => Some(a.to_string()),
        _ => None,
    }
}

impl Health {
    pub fn new(max_age: Duration) -> Health {
        Health {
            max_age,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// A cluster's run finished: it ran, and whether it reached AWS.
    pub fn ran(&self, report: &ClusterReport) {
        let failure = report.errors.iter().find_map(unreachable);
        let mut s = self.state();
        s.ran = true;
        match failure {
            Some(f) => {
                s.unreachable_since.get_or_insert_with(Instant::now);
                s.last_unreachable = Some(f);
            }
            None => s.unreachable_since = None,
        }
    }

    pub fn shutting_down(&self) {
        self.state().shutting_down = true;
    }

    /// `None`: ready.
    pub fn not_ready(&self, now: Instant) -> Option<NotReady> {
        let s = self.state();
        let reason = if s.shutting_down {
            "shutting down".to_string()
        } else if !s.ran {
            "starting: no run has finished yet".to_string()
        } else {
            let since = s.unreachable_since?;
            if now.saturating_duration_since(since) <= self.max_age {
                return None;
            }
            format!(
                "AWS unreachable for {}s: {}",
                now.saturating_duration_since(since).as_secs(),
                s.last_unreachable.as_deref().unwrap_or("?")
            )
        };
        Some(NotReady { reason })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::report::AwsError;

    fn report(errors: Vec<ClusterError>) -> ClusterReport {
        let mut r =
            crate::testkit::reports::cluster_report(crate::testkit::reports::confirmed("pg1"));
        r.errors = errors;
        r
    }

    #[test]
    fn ready_after_a_run_whatever_the_clusters_decided_until_aws_stays_unreachable() {
        let h = Health::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(
            h.not_ready(t0)
                .is_some_and(|n| n.reason.contains("starting"))
        );
        let mut no_primary = report(vec![]);
        no_primary.decision.verdict = crate::domain::decide::Verdict::NoPrimary;
        h.ran(&no_primary);
        assert_eq!(
            h.not_ready(t0),
            None,
            "a failover in progress is not unreadiness"
        );
        let down = AwsError::new(
            "DescribeTargetHealth",
            "tg",
            None,
            "dispatch failure".into(),
        );
        h.ran(&report(vec![ClusterError::Aws(down)]));
        assert_eq!(h.not_ready(Instant::now()), None, "within the grace");
        let later = Instant::now() + Duration::from_secs(11);
        assert!(
            h.not_ready(later)
                .is_some_and(|n| n.reason.contains("AWS unreachable"))
        );
        let throttled = AwsError::new("DescribeTargetHealth", "tg", Some("Throttling"), "x".into());
        h.ran(&report(vec![ClusterError::Aws(throttled)]));
        assert_eq!(
            h.not_ready(later),
            None,
            "AWS answered (even with an error)"
        );
        h.shutting_down();
        assert!(
            h.not_ready(later)
                .is_some_and(|n| n.reason.contains("shutting down"))
        );
    }
}
