//! mixsync's control plane (`mixsync serve control`): the `mixsync.v1.Control` gRPC API over
//! the state store, with health checking and server reflection, plus the consumer that
//! accounts every stage's progress reports and so moves runs through their states.
//!
//! The run lifecycle and the accounting invariants control keeps: docs/architecture.md ("Run
//! lifecycle"); the API itself is `proto/mixsync/v1/control.proto`.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = mixsync_control::Config::read(&mixsync_config::Env::process())?;
//! mixsync_control::run(config, tokio_util::sync::CancellationToken::new()).await?;
//! # Ok(()) }
//! ```

mod auth;
mod checks;
mod config;
mod convert;
mod dead_letters;
mod errors;
mod preview;
mod profile_mapping;
mod progress;
mod scheduler;
mod server;
mod services;
mod tls;
mod validate;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    ApiAccess, Config, ConfigError, DEFAULT_DATABASE_URL, DEFAULT_GRPC_ADDR, SchedulerConfig,
};
pub use errors::ApiError;
pub use tls::{GrpcTls, Transport};

/// Why control stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The gRPC address cannot be bound.
    #[error("cannot listen on {addr}: {source} (set MIXSYNC_GRPC_ADDR to a free address)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state database is unusable.
    #[error("state store: {0}")]
    State(#[from] mixsync_state::StateError),
    /// RabbitMQ is unusable.
    #[error("message bus: {0}")]
    Bus(#[from] mixsync_bus::BusError),
    /// The HTTP client for Mixpanel could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The reflection service could not be built.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    /// A setting cannot be used: the API would be open to the network, its token is too short,
    /// or a TLS file cannot be read.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The gRPC server failed.
    #[error("gRPC server: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// Brings every stored secret under the current key (docs/security.md, "Rotating the key"), or
/// stops control when some cannot be read with the keys it was given.
async fn secrets_at_rest(state: &mixsync_state::StateStore) -> Result<(), Error> {
    let rotation = state.rotate_secrets().await?;
    if rotation.reencrypted() > 0 {
        tracing::info!(
            reencrypted = rotation.reencrypted(),
            from_previous_key = rotation.from_previous,
            from_old_format = rotation.from_legacy,
            already_current = rotation.current,
            key_id = %rotation.key_id,
            "re-encrypted stored secrets under MIXSYNC_SECRET_KEY"
        );
    } else {
        tracing::info!(
            secrets = rotation.current,
            key_id = %rotation.key_id,
            "every stored secret is under MIXSYNC_SECRET_KEY"
        );
    }
    if state.has_previous_key() {
        tracing::info!(
            "no stored secret needs MIXSYNC_SECRET_KEY_PREVIOUS any more: it can be unset"
        );
    }
    Ok(())
}

/// Binds `config.grpc_addr` and runs control until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.grpc_addr,
            source,
        })?;
    run_with_listener(config, listener, shutdown).await
}

/// Runs control on an already bound listener (tests bind port 0 and read the address):
/// connects the state store and applies migrations, connects RabbitMQ, starts the progress
/// consumer and serves gRPC until `shutdown` is cancelled or either part fails.
pub async fn run_with_listener(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let schedule: scheduler::Settings = config.scheduler;
    let keys = mixsync_state::SecretKeys::new(&config.secret_key)?
        .with_previous(config.secret_key_previous.as_ref());
    // Waits for PostgreSQL and RabbitMQ, which may start after control.
    let Some(state) =
        mixsync_state::StateStore::connect_patiently(config.database_url(), keys, &shutdown)
            .await?
    else {
        return Ok(());
    };
    state.migrate().await?;
    secrets_at_rest(&state).await?;
    let Some(bus) = mixsync_bus::Bus::connect_patiently(config.bus.clone(), &shutdown).await?
    else {
        return Ok(());
    };
    // No redirects: TestTarget sends Basic credentials, which must not follow a redirect to
    // another host (and its answer must not reveal where that was).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mixsync/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let stop = shutdown.child_token();
    let ctx = services::Context {
        state: state.clone(),
        publisher: bus.publisher(),
        http,
        shutdown: stop.clone(),
    };
    let addr = listener.local_addr().ok();
    // Checked again on the address actually bound (a Config can be built without `read`).
    let access = match addr {
        Some(bound) => ApiAccess::decide(bound, config.api_token.as_ref())?,
        None => ApiAccess::decide(config.grpc_addr, config.api_token.as_ref())?,
    };
    let tls = config
        .grpc_tls
        .as_ref()
        .map(GrpcTls::server_config)
        .transpose()?;
    let transport = GrpcTls::transport(config.grpc_tls.as_ref());
    tracing::info!(
        addr = ?addr,
        auth = access == ApiAccess::Token,
        transport = transport.as_str(),
        "control listening"
    );
    if access == ApiAccess::LocalOnly {
        tracing::warn!(
            addr = ?addr,
            "the gRPC API has no token (MIXSYNC_API_TOKEN): it is open to local callers only"
        );
    }
    let dead_letters = tokio::spawn({
        let (state, bus, stop) = (state.clone(), bus.clone(), stop.clone());
        async move {
            if let Err(e) = dead_letters::consume(state, bus, stop).await {
                tracing::error!(error = %e, "the dead-letter consumer stopped");
            }
        }
    });
    let scheduler = tokio::spawn(scheduler::run(ctx.clone(), schedule));
    let consumer = tokio::spawn({
        let stop = stop.clone();
        async move {
            let result = progress::consume(state, bus, stop.clone()).await;
            // Without accounting no run would ever end: stop serving too.
            stop.cancel();
            result
        }
    });
    let served = server::serve(ctx, listener, config.api_token.as_ref(), tls, stop.clone()).await;
    stop.cancel();
    let consumed = match consumer.await {
        Ok(result) => result.map_err(Error::from),
        Err(join) => {
            tracing::error!(error = %join, "progress consumer panicked");
            Ok(())
        }
    };
    let _ = dead_letters.await;
    let _ = scheduler.await;
    served.and(consumed)
}
