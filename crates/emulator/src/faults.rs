//! Fault injection: latency, error answers, connection resets and "fail the next N requests".

use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::stats::Endpoint;

/// Fault settings, as sent to `PUT /_emulator/faults`. Every key is optional.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability (0..=1) that a request fails with one of `error_statuses`.
    pub error_rate: f64,
    /// Statuses drawn from for `error_rate` failures (429 or 5xx).
    pub error_statuses: Vec<u16>,
    /// Latency added to every affected request.
    pub latency_ms: u64,
    /// Up to this much extra latency, uniformly drawn.
    pub latency_jitter_ms: u64,
    /// Probability (0..=1) that the connection is reset without an answer.
    pub reset_rate: f64,
    /// The next N affected requests fail with `fail_next_status`.
    pub fail_next: u64,
    /// Status for `fail_next`.
    pub fail_next_status: u16,
    /// Which endpoints the faults apply to: `import`, `engage`, `groups`, `me`.
    pub endpoints: Vec<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503],
            latency_ms: 0,
            latency_jitter_ms: 0,
            reset_rate: 0.0,
            fail_next: 0,
            fail_next_status: 503,
            endpoints: vec!["import".into(), "engage".into(), "groups".into()],
        }
    }
}

impl Faults {
    /// Checks the settings, saying which key is wrong.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("reset_rate", self.reset_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        if self.error_rate > 0.0 && self.error_statuses.is_empty() {
            return Err("error_statuses must not be empty when error_rate is above 0".into());
        }
        for status in self.error_statuses.iter().chain([&self.fail_next_status]) {
            if *status != 429 && !(500..=599).contains(status) {
                return Err(format!(
                    "status {status} cannot be injected: use 429 or a 5xx"
                ));
            }
        }
        for e in &self.endpoints {
            if Endpoint::parse(e).is_none() {
                return Err(format!(
                    "unknown endpoint `{e}`: use import, engage, groups or me"
                ));
            }
        }
        if self.latency_ms > 600_000 || self.latency_jitter_ms > 600_000 {
            return Err("latency_ms and latency_jitter_ms must be at most 600000".into());
        }
        Ok(())
    }

    fn applies_to(&self, endpoint: Endpoint) -> bool {
        self.endpoints.iter().any(|e| e == endpoint.as_str())
    }
}

/// What a request suffers before it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Handle it normally.
    Pass,
    /// Answer with this status.
    Fail(u16),
    /// Reset the connection without answering.
    Reset,
}

/// The live fault settings, shared by every request.
pub(crate) struct FaultInjector {
    initial: Faults,
    current: Mutex<Faults>,
}

impl FaultInjector {
    pub(crate) fn new(initial: Faults) -> Self {
        FaultInjector {
            current: Mutex::new(initial.clone()),
            initial,
        }
    }

    pub(crate) fn get(&self) -> Faults {
        self.current.lock().clone()
    }

    pub(crate) fn set(&self, faults: Faults) {
        *self.current.lock() = faults;
    }

    pub(crate) fn restore(&self) {
        self.set(self.initial.clone());
    }

    /// Decides a request's fate; returns the latency to wait first.
    pub(crate) fn decide(&self, endpoint: Endpoint) -> (Duration, Verdict) {
        let mut faults = self.current.lock();
        if !faults.applies_to(endpoint) {
            return (Duration::ZERO, Verdict::Pass);
        }
        let mut rng = rand::rng();
        let jitter = if faults.latency_jitter_ms > 0 {
            rng.random_range(0..=faults.latency_jitter_ms)
        } else {
            0
        };
        let latency = Duration::from_millis(faults.latency_ms + jitter);
        let verdict = if faults.fail_next > 0 {
            faults.fail_next -= 1;
            Verdict::Fail(faults.fail_next_status)
        } else if faults.reset_rate > 0.0 && rng.random_bool(faults.reset_rate) {
            Verdict::Reset
        } else if faults.error_rate > 0.0 && rng.random_bool(faults.error_rate) {
            let i = rng.random_range(0..faults.error_statuses.len());
            Verdict::Fail(faults.error_statuses[i])
        } else {
            Verdict::Pass
        };
        (latency, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_counts_down_then_passes() {
        let injector = FaultInjector::new(Faults {
            fail_next: 2,
            fail_next_status: 502,
            ..Faults::default()
        });
        assert_eq!(injector.decide(Endpoint::Import).1, Verdict::Fail(502));
        assert_eq!(injector.decide(Endpoint::Engage).1, Verdict::Fail(502));
        assert_eq!(injector.decide(Endpoint::Import).1, Verdict::Pass);
    }

    #[test]
    fn endpoints_not_listed_are_untouched() {
        let injector = FaultInjector::new(Faults {
            error_rate: 1.0,
            endpoints: vec!["groups".into()],
            ..Faults::default()
        });
        assert_eq!(injector.decide(Endpoint::Import).1, Verdict::Pass);
        assert!(matches!(
            injector.decide(Endpoint::Groups).1,
            Verdict::Fail(500 | 502 | 503)
        ));
    }

    #[test]
    fn validation_names_the_key() {
        let bad = Faults {
            reset_rate: 1.5,
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("reset_rate"));
        let bad = Faults {
            error_statuses: vec![404],
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("404"));
        let bad = Faults {
            endpoints: vec!["track".into()],
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("track"));
    }
}
