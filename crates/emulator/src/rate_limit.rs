//! Mixpanel's per-project ingestion limit: records per second and bytes per minute, each over a
//! rolling window made of fixed-size buckets.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::RateLimitConfig;

/// A rolling window: the sum of the buckets younger than `window_ms`.
struct Window {
    window_ms: u64,
    bucket_ms: u64,
    limit: u64,
    buckets: VecDeque<(u64, u64)>, // (bucket start ms, amount)
    total: u64,
}

impl Window {
    fn new(window_ms: u64, buckets: u64, limit: u64) -> Self {
        Window {
            window_ms,
            bucket_ms: window_ms / buckets,
            limit,
            buckets: VecDeque::new(),
            total: 0,
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some(&(start, amount)) = self.buckets.front() {
            if start + self.window_ms > now_ms {
                break;
            }
            self.total -= amount;
            self.buckets.pop_front();
        }
    }

    /// `None` if `amount` fits now, else how long until it would.
    fn check(&self, now_ms: u64, amount: u64) -> Option<Duration> {
        if self.total == 0 || self.total + amount <= self.limit {
            return None;
        }
        // Walk the buckets oldest first until enough of them have expired.
        let mut remaining = self.total;
        for &(start, n) in &self.buckets {
            remaining -= n;
            if remaining == 0 || remaining + amount <= self.limit {
                return Some(Duration::from_millis(start + self.window_ms - now_ms));
            }
        }
        Some(Duration::from_millis(self.window_ms))
    }

    fn add(&mut self, now_ms: u64, amount: u64) {
        let start = now_ms - now_ms % self.bucket_ms;
        match self.buckets.back_mut() {
            Some((s, n)) if *s == start => *n += amount,
            _ => self.buckets.push_back((start, amount)),
        }
        self.total += amount;
    }
}

struct ProjectWindows {
    records: Window,
    bytes: Window,
}

/// The limiter for every project.
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    projects: Mutex<HashMap<u64, ProjectWindows>>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig) -> Self {
        RateLimiter {
            config,
            projects: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn retry_after_header(&self) -> bool {
        self.config.retry_after
    }

    /// Admits a request of `records` records and `bytes` bytes for `project` at `now_ms`, or says how long
    /// to wait. A refused request does not count.
    pub(crate) fn admit(
        &self,
        project: u64,
        now_ms: u64,
        records: u64,
        bytes: u64,
    ) -> Result<(), Duration> {
        if !self.config.enabled {
            return Ok(());
        }
        let mut projects = self.projects.lock();
        let windows = projects.entry(project).or_insert_with(|| ProjectWindows {
            records: Window::new(1_000, 10, self.config.events_per_sec),
            bytes: Window::new(60_000, 60, self.config.bytes_per_min),
        });
        windows.records.expire(now_ms);
        windows.bytes.expire(now_ms);
        let wait = [
            windows.records.check(now_ms, records),
            windows.bytes.check(now_ms, bytes),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        windows.records.add(now_ms, records);
        windows.bytes.add(now_ms, bytes);
        Ok(())
    }

    pub(crate) fn reset(&self) {
        self.projects.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(events_per_sec: u64, bytes_per_min: u64) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            enabled: true,
            events_per_sec,
            bytes_per_min,
            retry_after: true,
        })
    }

    #[test]
    fn admits_up_to_the_limit_then_refuses_until_the_window_moves() {
        let l = limiter(100, u64::MAX);
        let t0 = 1_000_000;
        assert!(l.admit(1, t0, 60, 10).is_ok());
        assert!(l.admit(1, t0 + 10, 40, 10).is_ok());
        let wait = l.admit(1, t0 + 20, 1, 10).unwrap_err();
        assert_eq!(wait, Duration::from_millis(980));
        // Other projects have their own window.
        assert!(l.admit(2, t0 + 20, 100, 10).is_ok());
        assert!(l.admit(1, t0 + 1_000, 100, 10).is_ok());
    }

    #[test]
    fn refused_requests_do_not_count() {
        let l = limiter(10, u64::MAX);
        assert!(l.admit(1, 5_000, 10, 1).is_ok());
        for i in 0..5 {
            assert!(l.admit(1, 5_100 + i, 5, 1).is_err());
        }
        assert!(l.admit(1, 6_000, 10, 1).is_ok());
    }

    #[test]
    fn an_oversized_request_is_admitted_into_an_empty_window() {
        let l = limiter(10, u64::MAX);
        assert!(l.admit(1, 0, 50, 1).is_ok());
        assert!(l.admit(1, 500, 1, 1).is_err());
    }

    #[test]
    fn bytes_are_limited_per_minute() {
        let l = limiter(u64::MAX, 1_000);
        assert!(l.admit(1, 0, 1, 900).is_ok());
        assert!(l.admit(1, 30_000, 1, 200).is_err());
        assert!(l.admit(1, 60_000, 1, 200).is_ok());
    }

    #[test]
    fn disabled_admits_everything() {
        let l = RateLimiter::new(RateLimitConfig {
            enabled: false,
            events_per_sec: 1,
            bytes_per_min: 1,
            retry_after: false,
        });
        for _ in 0..10 {
            assert!(l.admit(1, 0, 1_000, 1_000).is_ok());
        }
    }
}
