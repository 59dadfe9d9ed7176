//! What every request handler shares.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::Clock;
use crate::config::{Config, Limits, ProjectConfig, ServiceAccountConfig};
use crate::faults::{FaultInjector, Verdict};
use crate::rate_limit::RateLimiter;
use crate::reply;
use crate::stats::{Endpoint, Stats};
use crate::store::Store;
use axum::response::Response;

/// The emulator's state: configuration, stored data, counters, limiter and faults.
pub(crate) struct State {
    pub(crate) projects: Vec<ProjectConfig>,
    pub(crate) service_accounts: Vec<ServiceAccountConfig>,
    pub(crate) limits: Limits,
    pub(crate) store: Store,
    pub(crate) stats: Stats,
    pub(crate) limiter: RateLimiter,
    pub(crate) faults: FaultInjector,
    /// Service accounts whose secrets were revoked (`PUT /_emulator/revoked`): their
    /// credentials are invalid until the list changes or the emulator is reset.
    pub(crate) revoked: parking_lot::Mutex<std::collections::BTreeSet<String>>,
}

impl State {
    /// The state for `config`, its rate windows measured on `clock`.
    pub(crate) fn new(config: &Config, clock: Arc<dyn Clock>) -> State {
        State {
            projects: config.projects.clone(),
            service_accounts: config.service_accounts.clone(),
            limits: config.limits.clone(),
            store: Store::new(config.projects.iter().map(|p| p.id)),
            stats: Stats::default(),
            limiter: RateLimiter::new(config.rate_limit.clone(), clock),
            faults: FaultInjector::new(config.faults.clone()),
            revoked: parking_lot::Mutex::default(),
        }
    }

    pub(crate) fn project_by_token(&self, token: &str) -> Option<&ProjectConfig> {
        self.projects.iter().find(|p| p.token == token)
    }

    /// Applies the fault settings to a request: waits the latency, then says whether to go on.
    pub(crate) async fn suffer_faults(&self, endpoint: Endpoint) -> Result<(), FaultOutcome> {
        let (latency, verdict) = self.faults.decide(endpoint);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match verdict {
            Verdict::Pass => Ok(()),
            Verdict::Reset => Err(FaultOutcome::Reset),
            Verdict::Fail(status) => {
                self.stats.request(endpoint, status);
                Err(FaultOutcome::Answer(reply::injected(status)))
            }
        }
    }

    /// Runs the rate limiter for a project; a refusal is the 429 to send.
    pub(crate) fn admit(&self, project: u64, records: u64, bytes: u64) -> Result<(), Response> {
        self.limiter.admit(project, records, bytes).map_err(|wait| {
            self.stats.throttled(records);
            let retry_after = self.limiter.retry_after_header().then(|| ceil_secs(wait));
            reply::rate_limited(retry_after)
        })
    }

    /// Clears data, counters and windows; restores the start fault settings.
    pub(crate) fn reset(&self) {
        self.store.reset();
        self.stats.reset();
        self.limiter.reset();
        self.faults.restore();
        self.revoked.lock().clear();
    }
}

/// How a request ends when a fault hits it.
pub(crate) enum FaultOutcome {
    /// Answer this.
    Answer(Response),
    /// Reset the connection.
    Reset,
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// The wall clock in milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
