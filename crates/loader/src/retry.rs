//! What to do after one attempt (the retry table of docs/mixpanel-api.md §6.1), and how long to
//! wait before the next one. Every object goes through [`classify`]; none has its own retry loop.

use std::time::Duration;

use rand::Rng;

/// What one attempt produced, reduced to what retrying depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// No HTTP answer: connection refused or reset, DNS failure, timeout, body cut short.
    Transport,
    /// An HTTP answer.
    Http {
        /// The status code.
        status: u16,
        /// `Retry-After`, when the server sent one we understand.
        retry_after: Option<Duration>,
        /// What the body says about refused records.
        refusals: Refusals,
    },
}

/// What an answer's body says about records Mixpanel refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusals {
    /// Nothing about single records (all accepted, or a failure of the whole request).
    None,
    /// It lists the refused records by index (a strict `/import` 400's `failed_records`).
    Listed,
    /// At least one record was refused, and it does not say which (`/engage` and `/groups` answer
    /// `{"status":0,"error":…}` for the whole request).
    Unlisted,
}

/// The decision for a request after one attempt (Vector's `RetryLogic` outcomes, plus what Mixpanel
/// needs: split on 413, bisect a partial refusal that names no record, stop the run on 401/403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAction {
    /// Every record was accepted.
    Successful,
    /// A transient failure (429, 408, 5xx, transport): send the same request again after a backoff,
    /// at least `after` when the server said so.
    Retry {
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
    /// Some records were accepted and the body says which were not: map the failures back by index.
    /// Nothing is resent as is (a strict 400 would fail the same way again).
    RetryPartial,
    /// Some records may have been accepted and some were refused, but the answer does not say which
    /// (`/engage`'s `status: 0`): send each half again, down to single records, so each refusal is
    /// attributed to its record. The valid updates of a refused request are applied all the same,
    /// so they are sent more than once: harmless for `$set`, `$set_once`, `$union`, `$unset`, not
    /// for `$add`.
    Bisect,
    /// 413: the body is too large; split the request in half and send each half.
    Split,
    /// A permanent failure of the whole request (other 4xx): every record in it failed.
    DontRetry,
    /// 401/403: the credentials are refused; the run cannot go on.
    Fatal,
}

/// Classifies one attempt. The one place that knows which answers are retried.
pub fn classify(answer: &Answer) -> RetryAction {
    let (status, retry_after, refusals) = match *answer {
        Answer::Transport => return RetryAction::Retry { after: None },
        Answer::Http {
            status,
            retry_after,
            refusals,
        } => (status, retry_after, refusals),
    };
    match status {
        200..=299 | 400 if refusals == Refusals::Listed => RetryAction::RetryPartial,
        200..=299 | 400 if refusals == Refusals::Unlisted => RetryAction::Bisect,
        200..=299 => RetryAction::Successful,
        401 | 403 => RetryAction::Fatal,
        413 => RetryAction::Split,
        408 | 429 | 500..=599 => RetryAction::Retry { after: retry_after },
        _ => RetryAction::DontRetry,
    }
}

/// A server's `Retry-After` is honoured up to this long; beyond it the value is treated as a mistake.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Exponential backoff with full jitter: attempt `n` waits a uniformly random time in
/// `[0, min(max, initial * 2^n)]`, and never less than the server's `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait (Mixpanel suggests 2 s).
    pub initial: Duration,
    /// The largest ceiling (Mixpanel suggests 60 s).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The longest wait before retry `attempt` (0-based): `min(max, initial * 2^attempt)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// How long to wait before retry `attempt`: full jitter under [`Backoff::ceiling`], at least
    /// `retry_after` (capped at [`MAX_RETRY_AFTER`]). Jitter spreads out requests that were refused
    /// together, so they do not come back together.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jittered = Duration::from_nanos(rng.random_range(0..=nanos(ceiling)));
        match retry_after {
            Some(after) => jittered.max(after.min(MAX_RETRY_AFTER)),
            None => jittered,
        }
    }
}

impl Backoff {
    /// The deterministic schedule `min(max, initial * 2^n)` for n = 0, 1, …, without jitter: for
    /// waiting out one dependency (the state database starting, a target that cannot be read
    /// now), where there is no crowd of requests to spread out.
    pub fn steps(self) -> Steps {
        Steps {
            backoff: self,
            attempt: 0,
            budget: None,
            waited: Duration::ZERO,
        }
    }

    /// [`Backoff::steps`] that ends once the waits handed out add up to `total` or more.
    pub fn steps_within(self, total: Duration) -> Steps {
        Steps {
            budget: Some(total),
            ..self.steps()
        }
    }
}

/// The waits of [`Backoff::steps`], one per retry.
#[derive(Debug, Clone)]
pub struct Steps {
    backoff: Backoff,
    attempt: u32,
    budget: Option<Duration>,
    waited: Duration,
}

impl Iterator for Steps {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.budget.is_some_and(|budget| self.waited >= budget) {
            return None;
        }
        let wait = self.backoff.ceiling(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        self.waited = self.waited.saturating_add(wait);
        Some(wait)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Parses a `Retry-After` value in seconds (`"3"`, `"1.5"`); HTTP dates are not used by Mixpanel and
/// are ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e6)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn http(status: u16) -> Answer {
        Answer::Http {
            status,
            retry_after: None,
            refusals: Refusals::None,
        }
    }

    #[test]
    fn every_status_is_classified() {
        use RetryAction::*;
        let retry = Retry { after: None };
        for status in 100..=199 {
            assert_eq!(classify(&http(status)), DontRetry, "{status}");
        }
        for status in 200..=299 {
            assert_eq!(classify(&http(status)), Successful, "{status}");
        }
        for status in 300..=399 {
            assert_eq!(classify(&http(status)), DontRetry, "{status}");
        }
        for status in 400..=499 {
            let expected = match status {
                401 | 403 => Fatal,
                413 => Split,
                408 | 429 => retry,
                _ => DontRetry,
            };
            assert_eq!(classify(&http(status)), expected, "{status}");
        }
        for status in 500..=599 {
            assert_eq!(classify(&http(status)), retry, "{status}");
        }
    }

    #[test]
    fn the_table_of_mixpanel_api_6_1() {
        use Refusals::{Listed, Unlisted};
        use RetryAction::*;
        let cases = [
            (200, Refusals::None, Successful),
            (400, Listed, RetryPartial),
            (400, Refusals::None, DontRetry),
            (401, Refusals::None, Fatal),
            (403, Refusals::None, Fatal),
            (413, Refusals::None, Split),
            (415, Refusals::None, DontRetry),
            (404, Refusals::None, DontRetry),
            (408, Refusals::None, Retry { after: None }),
            (429, Refusals::None, Retry { after: None }),
            (500, Refusals::None, Retry { after: None }),
            (502, Refusals::None, Retry { after: None }),
            (503, Refusals::None, Retry { after: None }),
            (504, Refusals::None, Retry { after: None }),
            (524, Refusals::None, Retry { after: None }),
            // A 200 that still lists failures is a partial success, never "all loaded".
            (200, Listed, RetryPartial),
            // `/engage`'s `{"status":0}` on a 200, or its 400: find the refused records by halves.
            (200, Unlisted, Bisect),
            (400, Unlisted, Bisect),
            // Refusals on a status that is not 2xx/400 do not change its meaning.
            (401, Listed, Fatal),
            (403, Unlisted, Fatal),
            (413, Unlisted, Split),
            (503, Listed, Retry { after: None }),
            (503, Unlisted, Retry { after: None }),
            (429, Unlisted, Retry { after: None }),
            (404, Unlisted, DontRetry),
        ];
        for (status, refusals, expected) in cases {
            let answer = Answer::Http {
                status,
                retry_after: None,
                refusals,
            };
            assert_eq!(classify(&answer), expected, "{status} {refusals:?}");
        }
    }

    #[test]
    fn transport_errors_and_retry_after_are_retried() {
        assert_eq!(
            classify(&Answer::Transport),
            RetryAction::Retry { after: None }
        );
        let after = Some(Duration::from_secs(3));
        let answer = Answer::Http {
            status: 429,
            retry_after: after,
            refusals: Refusals::None,
        };
        assert_eq!(classify(&answer), RetryAction::Retry { after });
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after(" 1.5 "),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("NaN"), None);
    }

    #[test]
    fn ceiling_doubles_from_initial_to_max() {
        let b = Backoff::default();
        let secs: Vec<u64> = (0..8).map(|a| b.ceiling(a).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.ceiling(u32::MAX), b.max);
    }

    #[test]
    fn steps_double_to_the_cap_without_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        };
        let ms: Vec<u128> = b.steps().take(9).map(|d| d.as_millis()).collect();
        assert_eq!(
            ms,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn steps_within_a_budget_end_once_it_is_spent() {
        let b = Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
        };
        let ms: Vec<u128> = b
            .steps_within(Duration::from_secs(30))
            .map(|d| d.as_millis())
            .collect();
        // The last wait starts below the budget (27.75 s waited) and may end past it.
        assert_eq!(
            ms,
            [250, 500, 1000, 2000, 4000, 5000, 5000, 5000, 5000, 5000]
        );
        assert_eq!(b.steps_within(Duration::ZERO).next(), None);
    }

    proptest! {
        #[test]
        fn delay_is_bounded_grows_and_jitters_in_range(
            initial_ms in 1u64..5_000,
            max_factor in 1u64..100,
            attempt in 0u32..80,
            seed: u64,
            retry_after_ms in proptest::option::of(0u64..2_000_000),
        ) {
            let backoff = Backoff {
                initial: Duration::from_millis(initial_ms),
                max: Duration::from_millis(initial_ms * max_factor),
            };
            let ceiling = backoff.ceiling(attempt);
            // Bounded by max, never below the first ceiling, and non-decreasing in the attempt.
            prop_assert!(ceiling <= backoff.max);
            prop_assert!(ceiling >= backoff.initial.min(backoff.max));
            prop_assert!(backoff.ceiling(attempt + 1) >= ceiling);
            // Strictly grows until it reaches max.
            if ceiling < backoff.max {
                prop_assert!(backoff.ceiling(attempt + 1) > ceiling);
            }
            let mut rng = StdRng::seed_from_u64(seed);
            let retry_after = retry_after_ms.map(Duration::from_millis);
            let delay = backoff.delay(attempt, retry_after, &mut rng);
            match retry_after {
                None => prop_assert!(delay <= ceiling),
                Some(after) => {
                    let floor = after.min(MAX_RETRY_AFTER);
                    prop_assert!(delay >= floor);
                    prop_assert!(delay <= ceiling.max(floor));
                }
            }
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_range() {
        let backoff = Backoff {
            initial: Duration::from_millis(1000),
            max: Duration::from_millis(1000),
        };
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..2000)
            .map(|_| backoff.delay(0, None, &mut rng))
            .collect();
        let low = delays
            .iter()
            .filter(|d| **d < Duration::from_millis(250))
            .count();
        let high = delays
            .iter()
            .filter(|d| **d > Duration::from_millis(750))
            .count();
        assert!(low > 300 && high > 300, "low {low}, high {high}");
    }
}
