//! The time the rate limiter's rolling windows are measured on. The emulator is given a clock so a
//! test can move time itself and assert exact window edges and `Retry-After` values; everything
//! else (event times, `$last_seen`) keeps the wall clock, which is what Mixpanel stamps them with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A source of monotonic time for the rate windows.
pub trait Clock: Send + Sync + 'static {
    /// Time since the clock's origin; never goes backwards.
    fn elapsed(&self) -> Duration;
}

/// The real monotonic clock ([`Instant`]): what [`crate::run`], [`crate::spawn`] and
/// [`crate::router`] use.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that stands still until [`ManualClock::advance`] moves it: for tests and benchmarks that
/// need the rate windows to move exactly when they say. Share it with `Arc` and hand a clone to
/// [`crate::spawn_with_clock`] or [`crate::router_with_clock`].
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Mutex<Duration>,
}

impl ManualClock {
    /// A clock at its origin, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualClock::default())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.now.lock() += by;
    }
}

impl Clock for ManualClock {
    fn elapsed(&self) -> Duration {
        *self.now.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::new();
        assert_eq!(clock.elapsed(), Duration::ZERO);
        clock.advance(Duration::from_millis(1_500));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn the_monotonic_clock_follows_instant() {
        let before = Instant::now();
        let clock = MonotonicClock::new();
        let first = clock.elapsed();
        std::thread::sleep(Duration::from_millis(2));
        // Real time moves the clock: at least the sleep, at most what `before` saw.
        assert!(clock.elapsed() >= first + Duration::from_millis(2));
        assert!(clock.elapsed() <= before.elapsed());
    }
}
