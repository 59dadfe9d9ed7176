//! A faithful local Mixpanel ingestion API: `/import`, `/engage`, `/groups` and `/api/app/me`, with
//! Mixpanel's auth, limits, per-record validation, error bodies, dedup and profile semantics, plus a
//! rate limiter, fault injection and inspection endpoints. See `CONTRACT.md` for every rule.
//!
//! Where each rule comes from, and what is documented, observed or assumed about the real API, is
//! in docs/mixpanel-api.md; docs/mixpanel-api.md §7 lists what the emulator must reproduce.

// Handlers return `Result<_, Response>` so an early answer is one `?`; the size of `Response` is fine here.
#![allow(clippy::result_large_err)]

mod auth;
mod clock;
mod config;
mod faults;
mod import;
mod inspect;
mod me;
mod profiles;
mod rate_limit;
mod reply;
mod server;
mod state;
mod stats;
mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use config::{
    Config, ConfigError, Limits, ProjectConfig, RateLimitConfig, Role, ServiceAccountConfig,
};
pub use faults::Faults;
pub use stats::Endpoint;

/// Why the emulator could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source} (set MIXSYNC_EMULATOR_ADDR to a free address)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running emulator (see [`spawn`]).
pub struct Emulator {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Emulator {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, the base URL for clients.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets open requests finish, and waits.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// The HTTP service without a listener, for in-process use (benchmarks, tests), its rate windows
/// on the real monotonic clock.
pub fn router(config: &Config) -> axum::Router {
    router_with_clock(config, Arc::new(MonotonicClock::new()))
}

/// [`router`] with the rate windows measured on `clock` (a [`ManualClock`] in tests).
pub fn router_with_clock(config: &Config, clock: Arc<dyn Clock>) -> axum::Router {
    server::router(Arc::new(state::State::new(config, clock)))
}

async fn bind(config: &Config) -> Result<TcpListener, Error> {
    TcpListener::bind(config.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })
}

/// Binds `config.addr` and serves in the background, its rate windows on the real monotonic clock.
pub async fn spawn(config: Config) -> Result<Emulator, Error> {
    spawn_with_clock(config, Arc::new(MonotonicClock::new())).await
}

/// [`spawn`] with the rate windows measured on `clock` (a [`ManualClock`] in tests).
pub async fn spawn_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Emulator, Error> {
    let listener = bind(&config).await?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.addr,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server::serve(
        listener,
        router_with_clock(&config, clock),
        shutdown.clone(),
    ));
    Ok(Emulator {
        addr,
        shutdown,
        task,
    })
}

/// Serves until `shutdown` is cancelled: the `mixsync serve emulator` service.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = bind(&config).await?;
    let addr = listener.local_addr().unwrap_or(config.addr);
    tracing::info!(
        %addr,
        projects = config.projects.len(),
        rate_limit = config.rate_limit.enabled,
        "emulator listening"
    );
    server::serve(listener, router(&config), shutdown).await;
    tracing::info!("emulator stopped");
    Ok(())
}
