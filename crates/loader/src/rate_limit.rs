//! Mixpanel's per-project limit (30k events/s and 2 GB/min by default; a target's
//! `rate_limit_per_second` for projects with raised limits), kept by every loader process
//! together. See `docs/operations.md` ("One cap per project").
//!
//! [`Limiter`] is what a sender asks before each request. With a state store it takes its grant
//! from the state database (`StateStore::rate_grant`): one sliding log per project, serialised
//! and timed by the database, so the loaders of every object and every replica share one
//! budget. Without one (tests, or while the database cannot answer) it falls back to
//! [`RateLimiter`], the same algorithm in this process.
//!
//! Mixpanel measures over *rolling* windows, so a classic refill-rate token bucket (which allows its
//! full capacity plus a window's refill within one window, i.e. twice the limit) would overshoot.
//! Here each project has two token budgets whose tokens come back exactly one window after they were
//! spent: a request for `n` tokens is granted at the earliest time when the tokens granted in the
//! window before it plus `n` stay within the limit. Grants are first come, first served.
//!
//! Mixpanel counts a request when it arrives, which is some time after the loader let it go, and
//! that delay varies: requests sent a window apart may arrive less than a window apart. Tokens
//! therefore come back a latency margin later than one window (`MIXSYNC_LOADER_RATE_MARGIN_MS`,
//! [`DEFAULT_LATENCY_MARGIN`]), trading a little throughput (2% at 20 ms) for not provoking 429s.
//! A 429 holds every grant of the project for its `Retry-After` (when Mixpanel sends one, less
//! the last second it cannot be sure of: [`project_hold`]), and
//! takes a fifth off the share of the cap in force, which comes back to whole over [`RAMP`]: a
//! stray 429 costs little, while a limit lower than configured (another tool sending to the
//! same project) is met with fewer requests at each 429 rather than a storm of retries.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use mixsync_state::{RateRequest, StateStore};
use parking_lot::Mutex;

use crate::target::Target;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

/// How much longer than its window a grant holds its tokens by default (see the module docs).
pub const DEFAULT_LATENCY_MARGIN: Duration = Duration::from_millis(20);

/// How long the cap takes to come back to whole after a 429.
pub const RAMP: Duration = Duration::from_secs(5);

/// How often a limiter that fell back to this process's own log says so.
const FALLBACK_WARNING_EVERY: Duration = Duration::from_secs(60);

/// The limits a process keeps, but the records cap, which is each target's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateSettings {
    /// Uncompressed bytes per rolling minute (`MIXSYNC_LOADER_BYTES_PER_MIN`).
    pub bytes_per_min: u64,
    /// How much longer than its window a grant holds its tokens (`MIXSYNC_LOADER_RATE_MARGIN_MS`).
    pub margin: Duration,
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            bytes_per_min: 2_000_000_000,
            margin: DEFAULT_LATENCY_MARGIN,
        }
    }
}

/// One project's limits for a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimits {
    /// Events (or profile updates) per rolling second.
    pub events_per_sec: u64,
    /// Uncompressed bytes per rolling minute.
    pub bytes_per_min: u64,
}

/// The key of a project in both logs: the API it is reached at and its id, so the same id on
/// two hosts (the emulator and Mixpanel) are two budgets.
pub fn project_key(target: &Target) -> String {
    format!("{}#{}", target.base_url, target.project_id)
}

/// What a sender asks before each request. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Limiter {
    settings: RateSettings,
    local: Arc<RateLimiter>,
    shared: Option<StateStore>,
    last_warning: Arc<Mutex<Option<Instant>>>,
}

impl Limiter {
    /// A limiter kept in this process only, shared by every sender of the process with the
    /// same settings.
    pub fn local(settings: RateSettings) -> Self {
        Limiter {
            settings,
            local: shared(settings),
            shared: None,
            last_warning: Arc::default(),
        }
    }

    /// Grants come from `store`, shared with every other loader process.
    pub fn shared_through(mut self, store: StateStore) -> Self {
        self.shared = Some(store);
        self
    }

    /// This process's own log (what it grants when it falls back, or always when local).
    pub fn local_log(&self) -> &Arc<RateLimiter> {
        &self.local
    }

    /// Waits until a request of `records` records and `bytes` uncompressed bytes may be sent to
    /// `target`'s project, and takes its tokens.
    pub async fn acquire(&self, target: &Target, records: u64, bytes: u64) {
        let key = project_key(target);
        let limits = RateLimits {
            events_per_sec: u64::from(target.rate_limit_per_second.max(1)),
            bytes_per_min: self.settings.bytes_per_min,
        };
        if let Some(store) = &self.shared {
            let request = RateRequest {
                records,
                bytes,
                per_second: limits.events_per_sec,
                bytes_per_minute: limits.bytes_per_min,
                second: SECOND + self.settings.margin,
                minute: MINUTE + self.settings.margin,
                ramp: RAMP,
            };
            match store.rate_grant(&key, &request).await {
                Ok(grant) => {
                    tokio::time::sleep(grant.wait).await;
                    return;
                }
                Err(error) => self.warn_fallback(&error),
            }
        }
        self.local.acquire(&key, limits, records, bytes).await;
    }

    /// Mixpanel answered 429 for `target`'s project: hold every grant of the project for
    /// `retry_after` and lower its cap for a while, in every process when shared. (This
    /// process's own log, the fallback, only holds.)
    pub async fn throttled(&self, target: &Target, retry_after: Option<Duration>) {
        let key = project_key(target);
        let hold = project_hold(retry_after);
        if let Some(store) = &self.shared {
            match store.rate_throttled(&key, hold, RAMP).await {
                Ok(()) => return,
                Err(error) => self.warn_fallback(&error),
            }
        }
        self.local.hold(&key, hold, Instant::now());
    }

    fn warn_fallback(&self, error: &mixsync_state::StateError) {
        let mut last = self.last_warning.lock();
        if last.is_none_or(|at| at.elapsed() >= FALLBACK_WARNING_EVERY) {
            *last = Some(Instant::now());
            tracing::warn!(
                error = %error,
                "the shared rate limit cannot be reached: this process keeps the cap on its own \
                 until it can (replicas may then exceed it together, and 429s are retried)"
            );
        }
    }
}

/// How long a 429's `Retry-After` holds the whole project. The header counts whole seconds, so
/// `N` says the window has room within (N-1, N] seconds: the project waits the part that is
/// certain, and the refused request itself (retried with backoff) waits all of it. A `Retry-After:
/// 1`, what a request that arrived a little early gets, holds nothing but that request; a
/// `Retry-After: 60` holds every sender for 59 seconds.
pub fn project_hold(retry_after: Option<Duration>) -> Duration {
    retry_after.map_or(Duration::ZERO, |after| after.saturating_sub(SECOND))
}

/// The log every sender of this process with these settings shares (each loader object in a
/// `mixsync serve all` process, every concurrent request), so together they stay under the limit.
pub fn shared(settings: RateSettings) -> Arc<RateLimiter> {
    static SHARED: OnceLock<Mutex<HashMap<RateSettings, Weak<RateLimiter>>>> = OnceLock::new();
    let mut shared = SHARED.get_or_init(Default::default).lock();
    shared.retain(|_, limiter| limiter.strong_count() > 0);
    if let Some(limiter) = shared.get(&settings).and_then(Weak::upgrade) {
        return limiter;
    }
    let limiter = Arc::new(RateLimiter::new(settings.margin));
    shared.insert(settings, Arc::downgrade(&limiter));
    limiter
}

/// A per-project limiter kept in this process (share it with `Arc`).
#[derive(Debug)]
pub struct RateLimiter {
    margin: Duration,
    projects: Mutex<HashMap<String, Project>>,
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
    /// No grant before this (a 429's `Retry-After`).
    hold_until: Option<Instant>,
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
    /// The most events granted within one events window (a second plus the margin) of any
    /// project; above the limit only for a single request larger than the limit.
    pub peak_events_in_window: u64,
    /// The same for bytes within a minute plus the margin.
    pub peak_bytes_in_window: u64,
}

impl RateLimiter {
    /// A limiter whose grants hold their tokens a window plus `margin`.
    pub fn new(margin: Duration) -> Self {
        RateLimiter {
            margin,
            projects: Mutex::new(HashMap::new()),
            counters: Mutex::new(Counters::default()),
        }
    }

    /// Waits until a request of `events` records and `bytes` uncompressed bytes may be sent to
    /// `project` under `limits`, and takes its tokens.
    pub async fn acquire(&self, project: &str, limits: RateLimits, events: u64, bytes: u64) {
        // Tokio's clock, which is the real one except in tests that pause and advance it.
        let now = tokio::time::Instant::now();
        let at = self.reserve(project, limits, events, bytes, now.into_std());
        tokio::time::sleep_until(at.into()).await;
    }

    /// What this limiter has granted so far.
    pub fn stats(&self) -> RateLimiterStats {
        self.counters.lock().stats
    }

    /// No grant for `project` before `now + hold`.
    pub fn hold(&self, project: &str, hold: Duration, now: Instant) {
        let mut projects = self.projects.lock();
        let p = self.project(&mut projects, project, None);
        let until = now + hold;
        p.hold_until = Some(p.hold_until.map_or(until, |h| h.max(until)));
    }

    fn project<'a>(
        &self,
        projects: &'a mut HashMap<String, Project>,
        key: &str,
        limits: Option<RateLimits>,
    ) -> &'a mut Project {
        let p = projects.entry(key.to_owned()).or_insert_with(|| Project {
            events: Window::new(SECOND + self.margin, 1),
            bytes: Window::new(MINUTE + self.margin, 1),
            hold_until: None,
        });
        if let Some(limits) = limits {
            // A target's cap may change between requests: the log stays, the limit follows.
            p.events.limit = limits.events_per_sec.max(1);
            p.bytes.limit = limits.bytes_per_min.max(1);
        }
        p
    }

    /// Takes the tokens and returns when the request may be sent (`now` or later).
    pub fn reserve(
        &self,
        project: &str,
        limits: RateLimits,
        events: u64,
        bytes: u64,
        now: Instant,
    ) -> Instant {
        let mut projects = self.projects.lock();
        // Forget idle projects so the map stays as small as the set of active targets.
        projects.retain(|_, p| {
            p.events.is_active(now)
                || p.bytes.is_active(now)
                || p.hold_until.is_some_and(|h| h > now)
        });
        let p = self.project(&mut projects, project, Some(limits));
        p.events.prune(now);
        p.bytes.prune(now);
        let from = p.hold_until.map_or(now, |h| h.max(now));
        let at = p
            .events
            .earliest(from, events)
            .max(p.bytes.earliest(from, bytes));
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
    const LATENCY_MARGIN: Duration = DEFAULT_LATENCY_MARGIN;

    /// A limiter with the same limits for every project, named by number.
    #[derive(Debug)]
    struct Fixed {
        limiter: RateLimiter,
        limits: RateLimits,
    }

    impl Fixed {
        fn new(limits: RateLimits) -> Self {
            Fixed {
                limiter: RateLimiter::new(LATENCY_MARGIN),
                limits,
            }
        }

        fn reserve(&self, project: u64, events: u64, bytes: u64, now: Instant) -> Instant {
            self.limiter
                .reserve(&project.to_string(), self.limits, events, bytes, now)
        }

        async fn acquire(&self, project: u64, events: u64, bytes: u64) {
            self.limiter
                .acquire(&project.to_string(), self.limits, events, bytes)
                .await;
        }

        fn stats(&self) -> RateLimiterStats {
            self.limiter.stats()
        }
    }

    #[test]
    fn a_retry_after_holds_the_project_for_its_certain_part() {
        assert_eq!(project_hold(None), Duration::ZERO);
        assert_eq!(project_hold(Some(SECOND)), Duration::ZERO);
        assert_eq!(project_hold(Some(60 * SECOND)), 59 * SECOND);
        assert_eq!(project_hold(Some(MS * 1500)), MS * 500);
    }

    #[test]
    fn a_hold_delays_every_grant_of_its_project_and_the_cap_follows_the_target() {
        let limiter = RateLimiter::new(LATENCY_MARGIN);
        let limits = |events_per_sec| RateLimits {
            events_per_sec,
            bytes_per_min: u64::MAX,
        };
        let t0 = Instant::now();
        limiter.hold("a", 2 * SECOND, t0);
        // A shorter hold does not shorten it.
        limiter.hold("a", SECOND, t0);
        assert_eq!(limiter.reserve("a", limits(10), 5, 0, t0), t0 + 2 * SECOND);
        assert_eq!(limiter.reserve("b", limits(10), 5, 0, t0), t0);
        // The cap is each call's: 5 granted, 10 more fit under a raised cap of 15.
        assert_eq!(limiter.reserve("b", limits(15), 10, 0, t0), t0);
        assert_eq!(
            limiter.reserve("b", limits(15), 1, 0, t0),
            t0 + SECOND + LATENCY_MARGIN
        );
    }

    #[test]
    fn grants_immediately_under_the_limit() {
        let limiter = Fixed::new(RateLimits {
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
        let limiter = Fixed::new(RateLimits {
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
        let limiter = Fixed::new(RateLimits {
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
        let limiter = Fixed::new(RateLimits {
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
        let limiter = Arc::new(Fixed::new(RateLimits {
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
        let limiter = Fixed::new(RateLimits {
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
            let limiter = Fixed::new(RateLimits { events_per_sec: limit, bytes_per_min: u64::MAX });
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
