//! The one clock: monotonic time for intervals and caches, wall time (Unix) for timestamps
//! on the wire and in metrics. A [`ManualClock`] stands in for it in tests.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Monotonic now: for "how long since".
    fn now(&self) -> Instant;
    /// Wall-clock now as a duration since the Unix epoch (zero before 1970).
    fn since_epoch(&self) -> Duration;
}

/// The system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn since_epoch(&self) -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    i64::try_from(SystemClock.since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Unix milliseconds now.
pub fn unix_now_ms() -> u64 {
    u64::try_from(SystemClock.since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since `t` (saturating).
pub fn millis_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    epoch: Duration,
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// Starts at the real now, at Unix time `epoch`.
    pub fn new(epoch: Duration) -> ManualClock {
        ManualClock {
            base: Instant::now(),
            epoch,
            offset: Mutex::new(Duration::ZERO),
        }
    }

    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    fn offset(&self) -> Duration {
        *self.offset.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.offset()
    }

    fn since_epoch(&self) -> Duration {
        self.epoch + self.offset()
    }
}

/// A stable fraction (0 < f <= 1) of `period` for `key`: spreads periodic work of many keys
/// (polls, verifications) evenly instead of all at once.
pub fn phase(key: &str, period: Duration) -> Duration {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    let fraction = (h.finish() % 10_000 + 1) as f64 / 10_000.0;
    period.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_evenly_over_the_period_and_stay_put() {
        let period = Duration::from_secs(600);
        let phases: Vec<Duration> = (0..1000)
            .map(|i| phase(&format!("tg-{i}"), period))
            .collect();
        assert!(phases.iter().all(|p| !p.is_zero() && *p <= period));
        let early = phases.iter().filter(|p| **p < period / 2).count();
        assert!(
            (400..600).contains(&early),
            "{early} of 1000 in the first half"
        );
        assert_eq!(phase("tg-1", period), phases[1], "stable");
    }
}
