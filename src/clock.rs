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
