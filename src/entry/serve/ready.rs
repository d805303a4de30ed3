//! Readiness: every cluster's last successful reconcile (a confirmed primary, no error) is at
//! most `ready_after` intervals old. A cluster never reconciled successfully is not ready.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A cluster that makes the service not ready.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stale {
    pub cluster: String,
    /// Seconds since its last successful reconcile; `None`: none yet.
    pub last_success_age_seconds: Option<f64>,
}

/// Pure: the clusters whose last success is older than `max_age` (or missing), in `scopes`
/// order. Empty: ready.
pub fn stale(
    scopes: &[String],
    last_success: &HashMap<String, Instant>,
    now: Instant,
    max_age: Duration,
) -> Vec<Stale> {
    scopes
        .iter()
        .filter_map(|scope| {
            let age = last_success
                .get(scope)
                .map(|t| now.saturating_duration_since(*t));
            match age {
                Some(a) if a <= max_age => None,
                _ => Some(Stale {
                    cluster: scope.clone(),
                    last_success_age_seconds: age
                        .map(|a| (a.as_secs_f64() * 1000.0).round() / 1000.0),
                }),
            }
        })
        .collect()
}

/// When each cluster last reconciled successfully.
pub struct Health {
    scopes: Vec<String>,
    max_age: Duration,
    last_success: Mutex<HashMap<String, Instant>>,
}

impl Health {
    pub fn new(scopes: Vec<String>, max_age: Duration) -> Health {
        Health {
            scopes,
            max_age,
            last_success: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    pub fn succeeded(&self, scope: &str) {
        self.last_success
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(scope.to_string(), Instant::now());
    }

    pub fn stale(&self) -> Vec<Stale> {
        let last = self.last_success.lock().unwrap_or_else(|e| e.into_inner());
        stale(&self.scopes, &last, Instant::now(), self.max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_cluster_succeeded_recently() {
        let scopes = vec!["a".to_string(), "b".to_string()];
        let t0 = Instant::now();
        let max = Duration::from_secs(15);
        let mut last = HashMap::new();
        let never = stale(&scopes, &last, t0, max);
        assert_eq!(never.len(), 2);
        assert_eq!(never[0].last_success_age_seconds, None);

        last.insert("a".to_string(), t0);
        last.insert("b".to_string(), t0);
        assert!(stale(&scopes, &last, t0 + Duration::from_secs(15), max).is_empty());

        last.insert("b".to_string(), t0 + Duration::from_secs(10));
        let s = stale(&scopes, &last, t0 + Duration::from_secs(20), max);
        assert_eq!(
            s,
            vec![Stale {
                cluster: "a".into(),
                last_success_age_seconds: Some(20.0)
            }]
        );
    }
}
