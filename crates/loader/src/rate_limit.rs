//! Per-project rate limit shared by every in-flight request of this process, so the loader stays
//! under Mixpanel's limit (30k events/s and 2 GB/min per project) instead of provoking 429 storms.
//!
//! Mixpanel measures over *rolling* windows, so a classic refill-rate token bucket (which allows its
//! full capacity plus a window's refill within one window, i.e. twice the limit) would overshoot.
//! Here each project has two token budgets whose tokens come back exactly one window after they were
//! spent: a request for `n` tokens is granted at the earliest time when the tokens granted in the
//! window before it plus `n` stay within the limit. Grants are first come, first served.
//!
//! Mixpanel counts a request when it arrives, which is some time after the loader let it go, and
//! that delay varies: requests sent a window apart may arrive less than a window apart. Tokens
//! therefore come back [`LATENCY_MARGIN`] later than one window, trading a little throughput
//! (30k/s becomes about 27k/s) for not provoking 429s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// How much longer than its window a grant holds its tokens (see the module docs).
pub const LATENCY_MARGIN: Duration = Duration::from_millis(100);

/// Mixpanel's documented per-project limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimits {
    /// Events (or profile updates) per rolling second.
    pub events_per_sec: u64,
    /// Uncompressed bytes per rolling minute.
    pub bytes_per_min: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            events_per_sec: 30_000,
            bytes_per_min: 2_000_000_000,
        }
    }
}

/// The limiter every sender of this process with these limits shares (each loader object in a
/// `mixsync serve all` process, every concurrent request), so together they stay under the limit.
pub fn shared(limits: RateLimits) -> Arc<RateLimiter> {
    static SHARED: OnceLock<Mutex<HashMap<RateLimits, Weak<RateLimiter>>>> = OnceLock::new();
    let mut shared = SHARED.get_or_init(Default::default).lock();
    shared.retain(|_, limiter| limiter.strong_count() > 0);
    if let Some(limiter) = shared.get(&limits).and_then(Weak::upgrade) {
        return limiter;
    }
    let limiter = Arc::new(RateLimiter::new(limits));
    shared.insert(limits, Arc::downgrade(&limiter));
    limiter
}

/// A per-project limiter (share it with `Arc`).
#[derive(Debug)]
pub struct RateLimiter {
    limits: RateLimits,
    projects: Mutex<HashMap<u64, Project>>,
    counters: Mutex<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    stats: RateLimiterStats,
    first_grant: Option<Instant>,
}

#[derive(Debug)]
struct Project {
    events: Window,
    bytes: Window,
}

/// What a limiter has granted since it was made, over every project: what it let through and how
/// it spread it, so a test of the whole sending path can check the schedule the limit imposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimiterStats {
    /// Requests granted.
    pub requests: u64,
    /// Requests granted later than they asked.
    pub delayed: u64,
    /// Events (or profile updates) granted.
    pub events: u64,
    /// Uncompressed bytes granted.
    pub bytes: u64,
    /// The time from the first grant to the last one.
    pub span: Duration,
    /// The most events granted within one events window (a second plus [`LATENCY_MARGIN`]) of any
    /// project; above the limit only for a single request larger than the limit.
    pub peak_events_in_window: u64,
    /// The same for bytes within a minute plus [`LATENCY_MARGIN`].
    pub peak_bytes_in_window: u64,
}

impl RateLimiter {
    /// A limiter with `limits` for every project.
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits,
            projects: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
        }
    }

    /// Waits until a request of `events` records and `bytes` uncompressed bytes may be sent to
    /// `project`, and takes its tokens.
    pub async fn acquire(&self, project: u64, events: u64, bytes: u64) {
        // Tokio's clock, which is the real one except in tests that pause and advance it.
        let now = tokio::time::Instant::now();
        let at = self.reserve(project, events, bytes, now.into_std());
        tokio::time::sleep_until(at.into()).await;
    }

    /// What this limiter has granted so far.
    pub fn stats(&self) -> RateLimiterStats {
        self.counters.lock().stats
    }

    /// Takes the tokens and returns when the request may be sent (`now` or later).
    pub fn reserve(&self, project: u64, events: u64, bytes: u64, now: Instant) -> Instant {
        let mut projects = self.projects.lock();
        // Forget idle projects so the map stays as small as the set of active targets.
        projects.retain(|_, p| p.events.is_active(now) || p.bytes.is_active(now));
        let p = projects.entry(project).or_insert_with(|| Project {
            events: Window::new(SECOND + LATENCY_MARGIN, self.limits.events_per_sec),
            bytes: Window::new(MINUTE + LATENCY_MARGIN, self.limits.bytes_per_min),
        });
        p.events.prune(now);
        p.bytes.prune(now);
        let at = p
            .events
            .earliest(now, events)
            .max(p.bytes.earliest(now, bytes));
        let events_in_window = p.events.grant(at, events);
        let bytes_in_window = p.bytes.grant(at, bytes);
        drop(projects);
        self.count(now, at, events, bytes, events_in_window, bytes_in_window);
        at
    }

    fn count(
        &self,
        now: Instant,
        at: Instant,
        events: u64,
        bytes: u64,
        events_in_window: u64,
        bytes_in_window: u64,
    ) {
        let mut counters = self.counters.lock();
        let first = *counters.first_grant.get_or_insert(at);
        let stats = &mut counters.stats;
        stats.span = at.saturating_duration_since(first);
        stats.requests += 1;
        stats.delayed += u64::from(at > now);
        stats.events += events;
        stats.bytes += bytes;
        stats.peak_events_in_window = stats.peak_events_in_window.max(events_in_window);
        stats.peak_bytes_in_window = stats.peak_bytes_in_window.max(bytes_in_window);
    }
}

/// Tokens granted within the last `span`; each grant comes back `span` after its time.
#[derive(Debug)]
struct Window {
    span: Duration,
    limit: u64,
    grants: VecDeque<(Instant, u64)>,
    total: u64,
}

impl Window {
    fn new(span: Duration, limit: u64) -> Self {
        Window {
            span,
            limit: limit.max(1),
            grants: VecDeque::new(),
            total: 0,
        }
    }

    fn is_active(&self, now: Instant) -> bool {
        self.grants
            .back()
            .is_some_and(|(at, _)| *at + self.span > now)
    }

    fn prune(&mut self, now: Instant) {
        while let Some(&(at, n)) = self.grants.front() {
            if at + self.span > now {
                break;
            }
            self.total -= n;
            self.grants.pop_front();
        }
    }

    /// The earliest time, not before `now` nor before the last grant, at which `n` more tokens fit.
    /// A request larger than the whole limit is granted once the window is empty.
    fn earliest(&self, now: Instant, n: u64) -> Instant {
        let mut at = self.grants.back().map_or(now, |(last, _)| (*last).max(now));
        let mut in_window = self.total;
        for &(granted, tokens) in &self.grants {
            if granted + self.span <= at {
                in_window -= tokens;
                continue;
            }
            if in_window.saturating_add(n) <= self.limit {
                break;
            }
            at = granted + self.span;
            in_window -= tokens;
        }
        at
    }

    /// Takes `n` tokens at `at`; returns the tokens granted in the window ending at `at`, this one
    /// included. Grants are in time order, so the busiest window always ends at some grant.
    fn grant(&mut self, at: Instant, n: u64) -> u64 {
        self.grants.push_back((at, n));
        self.total += n;
        self.grants
            .iter()
            .rev()
            .take_while(|(granted, _)| *granted + self.span > at)
            .map(|(_, tokens)| tokens)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grants_immediately_under_the_limit() {
        let limiter = RateLimiter::new(RateLimits {
            events_per_sec: 10,
            bytes_per_min: 1_000,
        });
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(1, 5, 10, t0), t0);
        assert_eq!(limiter.reserve(1, 5, 10, t0), t0);
        // The window is full: the next grant waits until the first one leaves it.
        assert_eq!(limiter.reserve(1, 1, 10, t0), t0 + SECOND + LATENCY_MARGIN);
        // Another project has its own budget.
        assert_eq!(limiter.reserve(2, 10, 10, t0), t0);
    }

    #[test]
    fn bytes_per_minute_limit_waits_a_minute() {
        let limiter = RateLimiter::new(RateLimits {
            events_per_sec: 1_000,
            bytes_per_min: 100,
        });
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(1, 1, 80, t0), t0);
        assert_eq!(
            limiter.reserve(1, 1, 30, t0 + MS),
            t0 + MINUTE + LATENCY_MARGIN
        );
    }

    #[test]
    fn a_request_larger_than_the_limit_waits_for_an_empty_window() {
        let limiter = RateLimiter::new(RateLimits {
            events_per_sec: 10,
            bytes_per_min: 1_000_000,
        });
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(1, 3, 1, t0), t0);
        assert_eq!(limiter.reserve(1, 50, 1, t0), t0 + SECOND + LATENCY_MARGIN);
        assert_eq!(
            limiter.reserve(1, 1, 1, t0),
            t0 + 2 * (SECOND + LATENCY_MARGIN)
        );
    }

    /// `acquire` on tokio's paused clock, which moves only when every task waits: the times below are
    /// exactly the schedule the limiter imposes, whatever the machine's load.
    #[tokio::test(start_paused = true)]
    async fn acquire_waits_exactly_until_the_window_has_room() {
        let limiter = RateLimiter::new(RateLimits {
            events_per_sec: 10,
            bytes_per_min: 1_000,
        });
        let t0 = tokio::time::Instant::now();
        limiter.acquire(1, 10, 10).await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        limiter.acquire(1, 1, 10).await;
        assert_eq!(t0.elapsed(), SECOND + LATENCY_MARGIN);
        // Another project does not wait for this one.
        limiter.acquire(2, 10, 10).await;
        assert_eq!(t0.elapsed(), SECOND + LATENCY_MARGIN);
        // The minute's bytes: project 1 has 20 granted, so 981 more wait for the first 10 to leave.
        limiter.acquire(1, 1, 981).await;
        assert_eq!(t0.elapsed(), MINUTE + LATENCY_MARGIN);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_requests_are_spread_one_window_apart() {
        let limiter = Arc::new(RateLimiter::new(RateLimits {
            events_per_sec: 1_000,
            bytes_per_min: u64::MAX,
        }));
        let t0 = tokio::time::Instant::now();
        // Eight requests of 500 at once, as eight concurrent sends of one loader would.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    limiter.acquire(1, 500, 100).await;
                    t0.elapsed()
                })
            })
            .collect();
        let mut sent = Vec::new();
        for task in tasks {
            sent.push(task.await.unwrap());
        }
        sent.sort();
        let window = SECOND + LATENCY_MARGIN;
        let expected: Vec<Duration> = (0..8).map(|i| window * (i / 2)).collect();
        assert_eq!(sent, expected);
        assert_eq!(
            limiter.stats(),
            RateLimiterStats {
                requests: 8,
                delayed: 6,
                events: 4_000,
                bytes: 800,
                span: window * 3,
                peak_events_in_window: 1_000,
                peak_bytes_in_window: 800,
            }
        );
    }

    #[test]
    fn stats_show_a_request_larger_than_the_limit_alone_in_its_window() {
        let limiter = RateLimiter::new(RateLimits {
            events_per_sec: 10,
            bytes_per_min: 1_000_000,
        });
        let t0 = Instant::now();
        limiter.reserve(1, 4, 1, t0);
        limiter.reserve(1, 50, 1, t0);
        limiter.reserve(1, 6, 1, t0);
        let stats = limiter.stats();
        assert_eq!(stats.peak_events_in_window, 50);
        assert_eq!(stats.span, 2 * (SECOND + LATENCY_MARGIN));
        assert_eq!((stats.requests, stats.delayed, stats.events), (3, 2, 60));
    }

    proptest! {
        /// Whatever arrives, no rolling window ever holds more than the limit (except a single
        /// request larger than the limit, alone in its window), and grants are in arrival order.
        #[test]
        fn no_window_ever_exceeds_the_limit(
            limit in 1u64..100,
            requests in proptest::collection::vec((0u64..50, 1u64..120), 1..200),
        ) {
            let limiter = RateLimiter::new(RateLimits { events_per_sec: limit, bytes_per_min: u64::MAX });
            let t0 = Instant::now();
            let mut now = t0;
            let mut grants = Vec::new();
            for (gap_ms, n) in requests {
                now += MS * gap_ms as u32;
                let at = limiter.reserve(7, n, 0, now);
                prop_assert!(at >= now);
                if let Some((last, _)) = grants.last() {
                    prop_assert!(at >= *last);
                }
                grants.push((at, n));
            }
            for (i, (start, _)) in grants.iter().enumerate() {
                let in_window: Vec<u64> = grants[i..]
                    .iter()
                    .take_while(|(at, _)| *at < *start + SECOND + LATENCY_MARGIN)
                    .map(|(_, n)| *n)
                    .collect();
                let sum: u64 = in_window.iter().sum();
                prop_assert!(sum <= limit || in_window.len() == 1, "{} in one window", sum);
            }
        }
    }
}
