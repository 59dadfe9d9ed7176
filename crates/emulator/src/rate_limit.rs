//! Mixpanel's per-project ingestion limit: records per second and bytes per minute, each over a
//! rolling window made of fixed-size buckets (100 ms for the second, 1 s for the minute), measured on
//! the emulator's [`Clock`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::Clock;
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

/// The records that arrived for one project (admitted or refused), and the most that arrived
/// within any one second, measured exactly (not in buckets): what a client's own limiter is
/// judged by, so tests and `mixsync bench` can check that a cap was kept and how fully it was
/// used. Served in `GET /_emulator/stats` under `projects`.
#[derive(Default)]
struct Traffic {
    /// Arrivals of the last second: (ms, records).
    recent: VecDeque<(u64, u64)>,
    in_last_second: u64,
    peak_per_second: u64,
    records: u64,
    requests: u64,
    first_ms: Option<u64>,
    last_ms: u64,
}

impl Traffic {
    fn arrive(&mut self, now_ms: u64, records: u64) {
        while let Some(&(at, n)) = self.recent.front() {
            if at + 1_000 > now_ms {
                break;
            }
            self.in_last_second -= n;
            self.recent.pop_front();
        }
        self.recent.push_back((now_ms, records));
        self.in_last_second += records;
        self.peak_per_second = self.peak_per_second.max(self.in_last_second);
        self.records += records;
        self.requests += 1;
        self.first_ms.get_or_insert(now_ms);
        self.last_ms = now_ms;
    }

    fn to_json(&self) -> serde_json::Value {
        let first = self.first_ms.unwrap_or_default();
        serde_json::json!({
            "requests": self.requests,
            "records": self.records,
            "peak_records_per_second": self.peak_per_second,
            "first_arrival_ms": first,
            "last_arrival_ms": self.last_ms,
        })
    }
}

/// The limiter for every project.
pub(crate) struct RateLimiter {
    config: RateLimitConfig,
    clock: Arc<dyn Clock>,
    projects: Mutex<HashMap<u64, ProjectWindows>>,
    traffic: Mutex<HashMap<u64, Traffic>>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimitConfig, clock: Arc<dyn Clock>) -> Self {
        RateLimiter {
            config,
            clock,
            projects: Mutex::new(HashMap::new()),
            traffic: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn retry_after_header(&self) -> bool {
        self.config.retry_after
    }

    /// Admits a request of `records` records and `bytes` bytes for `project` now, or says how long to
    /// wait. A refused request does not count.
    pub(crate) fn admit(&self, project: u64, records: u64, bytes: u64) -> Result<(), Duration> {
        {
            let mut traffic = self.traffic.lock();
            let now_ms = self.clock.elapsed().as_millis() as u64;
            traffic.entry(project).or_default().arrive(now_ms, records);
        }
        if !self.config.enabled {
            return Ok(());
        }
        let mut projects = self.projects.lock();
        // Read under the lock so concurrent requests see the clock in the order they are counted.
        let now_ms = self.clock.elapsed().as_millis() as u64;
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
        self.traffic.lock().clear();
    }

    /// Per project: requests and records that arrived, the most records within any one second,
    /// and the first and last arrival (ms on the emulator's clock).
    pub(crate) fn traffic_json(&self) -> serde_json::Value {
        let traffic = self.traffic.lock();
        let mut ids: Vec<&u64> = traffic.keys().collect();
        ids.sort();
        serde_json::Value::Object(
            ids.into_iter()
                .map(|id| (id.to_string(), traffic[id].to_json()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const MS: Duration = Duration::from_millis(1);

    fn limiter(events_per_sec: u64, bytes_per_min: u64) -> (RateLimiter, Arc<ManualClock>) {
        let clock = ManualClock::new();
        let config = RateLimitConfig {
            enabled: true,
            events_per_sec,
            bytes_per_min,
            retry_after: true,
        };
        (RateLimiter::new(config, clock.clone()), clock)
    }

    #[test]
    fn traffic_keeps_the_busiest_second_measured_exactly() {
        let (l, clock) = limiter(1_000_000, u64::MAX);
        l.admit(1, 10, 1).unwrap();
        clock.advance(999 * MS);
        l.admit(1, 20, 1).unwrap();
        // 1000 ms after the first: the first has left the second.
        clock.advance(MS);
        l.admit(1, 5, 1).unwrap();
        l.admit(2, 7, 1).unwrap();
        let json = l.traffic_json();
        assert_eq!(json["1"]["peak_records_per_second"], 30);
        assert_eq!(json["1"]["records"], 35);
        assert_eq!(json["1"]["requests"], 3);
        assert_eq!(json["1"]["first_arrival_ms"], 0);
        assert_eq!(json["1"]["last_arrival_ms"], 1000);
        assert_eq!(json["2"]["peak_records_per_second"], 7);
        l.reset();
        assert_eq!(l.traffic_json(), serde_json::json!({}));
    }

    #[test]
    fn admits_up_to_the_limit_then_refuses_until_the_window_moves() {
        let (l, clock) = limiter(100, u64::MAX);
        clock.advance(1_000_000 * MS);
        assert_eq!(l.admit(1, 60, 10), Ok(()));
        clock.advance(10 * MS);
        assert_eq!(l.admit(1, 40, 10), Ok(()));
        clock.advance(10 * MS);
        assert_eq!(l.admit(1, 1, 10), Err(980 * MS));
        // Other projects have their own window.
        assert_eq!(l.admit(2, 100, 10), Ok(()));
        clock.advance(979 * MS);
        assert_eq!(l.admit(1, 1, 10), Err(MS));
        clock.advance(MS);
        assert_eq!(l.admit(1, 100, 10), Ok(()));
    }

    #[test]
    fn refused_requests_do_not_count() {
        let (l, clock) = limiter(10, u64::MAX);
        clock.advance(5_000 * MS);
        assert_eq!(l.admit(1, 10, 1), Ok(()));
        clock.advance(100 * MS);
        for _ in 0..5 {
            assert_eq!(l.admit(1, 5, 1), Err(900 * MS));
        }
        clock.advance(900 * MS);
        assert_eq!(l.admit(1, 10, 1), Ok(()));
    }

    #[test]
    fn buckets_leave_the_window_whole() {
        let (l, clock) = limiter(10, u64::MAX);
        // 250 ms and 350 ms fall in the buckets starting at 200 ms and 300 ms.
        clock.advance(250 * MS);
        assert_eq!(l.admit(1, 4, 1), Ok(()));
        clock.advance(100 * MS);
        assert_eq!(l.admit(1, 6, 1), Ok(()));
        // 8 more need both buckets gone: the second leaves at 1300 ms.
        assert_eq!(l.admit(1, 8, 1), Err(950 * MS));
        // 4 more need only the first gone, at 1200 ms.
        assert_eq!(l.admit(1, 4, 1), Err(850 * MS));
        clock.advance(849 * MS);
        assert_eq!(l.admit(1, 4, 1), Err(MS));
        clock.advance(MS);
        assert_eq!(l.admit(1, 5, 1), Err(100 * MS), "6 + 5 is still over 10");
        assert_eq!(l.admit(1, 4, 1), Ok(()));
    }

    #[test]
    fn an_oversized_request_is_admitted_into_an_empty_window() {
        let (l, clock) = limiter(10, u64::MAX);
        assert_eq!(l.admit(1, 50, 1), Ok(()));
        clock.advance(500 * MS);
        assert_eq!(l.admit(1, 1, 1), Err(500 * MS));
    }

    #[test]
    fn bytes_are_limited_per_minute() {
        let (l, clock) = limiter(u64::MAX, 1_000);
        assert_eq!(l.admit(1, 1, 900), Ok(()));
        clock.advance(30_000 * MS);
        assert_eq!(l.admit(1, 1, 200), Err(30_000 * MS));
        clock.advance(30_000 * MS);
        assert_eq!(l.admit(1, 1, 200), Ok(()));
    }

    #[test]
    fn the_longer_wait_of_the_two_windows_is_given() {
        let (l, clock) = limiter(10, 1_000);
        assert_eq!(l.admit(1, 10, 900), Ok(()));
        clock.advance(100 * MS);
        // Both windows are full: the minute decides.
        assert_eq!(l.admit(1, 1, 200), Err(59_900 * MS));
    }

    #[test]
    fn disabled_admits_everything() {
        let config = RateLimitConfig {
            enabled: false,
            events_per_sec: 1,
            bytes_per_min: 1,
            retry_after: false,
        };
        let l = RateLimiter::new(config, ManualClock::new());
        for _ in 0..10 {
            assert_eq!(l.admit(1, 1_000, 1_000), Ok(()));
        }
    }
}
