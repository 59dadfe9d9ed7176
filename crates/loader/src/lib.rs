//! mixsync's loaders: RecordBatch messages from RabbitMQ to Mixpanel's ingestion API.
//!
//! The shared machinery is written once: [`batcher`] (by count and bytes, with linger),
//! [`encoder`] (gzip), [`rate_limit`] (per project, shared by every loader process), [`retry`] (the one
//! classification function and backoff), [`http`], the [`sender`] pipeline (records and a target in,
//! one outcome per record out) and the RabbitMQ [`service`]. Each Mixpanel object is a small folder
//! under [`objects`]: events, user profiles and group profiles, one loader service each.
//!
//! What Mixpanel expects of each request and what each answer means: docs/mixpanel-api.md §1 to §3,
//! and docs/mixpanel-api.md §6 for retries. The loader's place in the pipeline, and when it acks:
//! docs/architecture.md ("Message flow").

pub mod batcher;
pub mod config;
pub mod encoder;
pub mod http;
mod internal_events;
pub mod objects;
pub mod rate_limit;
pub mod retry;
pub mod sender;
pub mod service;
mod split;
pub mod target;
mod tracker;

use mixsync_bus::{Bus, BusError, LOAD_EVENTS, LOAD_GROUP_PROFILES, LOAD_USER_PROFILES};
use mixsync_proto::v1::MixpanelObject;
use mixsync_state::{StateError, StateStore};
use secrecy::ExposeSecret as _;
use tokio_util::sync::CancellationToken;

pub use config::{Config, ConfigError, ProfilesConfig, SendSettings};
pub use objects::Object;
pub use objects::Profiles;
pub use objects::events::{Events, EventsConfig};
pub use sender::{RecordOutcome, Sender};
pub use service::{Service, ServiceSettings};
pub use target::{Target, TargetCache, TargetError, TargetSource};

/// Why a loader stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// RabbitMQ.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The state database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The HTTP client.
    #[error(transparent)]
    Http(#[from] http::ClientError),
}

/// `mixsync serve loader-events`: consumes `mixsync.load.events` until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    run_service(&config, shutdown, events_service).await
}

/// `mixsync serve loader-users`: consumes `mixsync.load.user_profiles` until `shutdown`.
pub async fn run_user_profiles(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    run_service(&config, shutdown, user_profiles_service).await
}

/// `mixsync serve loader-groups`: consumes `mixsync.load.group_profiles` until `shutdown`.
pub async fn run_group_profiles(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    run_service(&config, shutdown, group_profiles_service).await
}

/// The events loader over any target source (the state store in production, a map in tests).
pub fn events_service<S: TargetSource>(
    config: &Config,
    targets: S,
    shutdown: CancellationToken,
) -> Result<Service<Events, S>, Error> {
    let object = Events::new(config.events);
    service(
        object,
        LOAD_EVENTS,
        MixpanelObject::Events,
        config,
        targets,
        shutdown,
    )
}

/// The user profiles loader over any target source.
pub fn user_profiles_service<S: TargetSource>(
    config: &Config,
    targets: S,
    shutdown: CancellationToken,
) -> Result<Service<Profiles, S>, Error> {
    let object = Profiles::users(config.user_profiles);
    let kind = MixpanelObject::UserProfiles;
    service(object, LOAD_USER_PROFILES, kind, config, targets, shutdown)
}

/// The group profiles loader over any target source.
pub fn group_profiles_service<S: TargetSource>(
    config: &Config,
    targets: S,
    shutdown: CancellationToken,
) -> Result<Service<Profiles, S>, Error> {
    let object = Profiles::groups(config.group_profiles);
    let kind = MixpanelObject::GroupProfiles;
    service(object, LOAD_GROUP_PROFILES, kind, config, targets, shutdown)
}

/// One loader: `object` records from `queue`, on the shared machinery.
fn service<O: Object, S: TargetSource>(
    object: O,
    queue: &'static str,
    kind: MixpanelObject,
    config: &Config,
    targets: S,
    shutdown: CancellationToken,
) -> Result<Service<O, S>, Error> {
    let mut sender = Sender::new(object, &config.send, shutdown)?;
    if let Some(store) = targets.shared_rate_limit() {
        sender = sender.share_rate_limit(store);
    }
    Ok(Service {
        queue,
        kind,
        sender: std::sync::Arc::new(sender),
        targets: std::sync::Arc::new(TargetCache::new(targets, config.target_cache_ttl)),
        settings: ServiceSettings {
            prefetch: config.prefetch,
            concurrency: config.concurrency,
            linger: config.linger,
        },
    })
}

/// Connects, builds the loader with `build` and runs it until `shutdown`.
async fn run_service<O: Object>(
    config: &Config,
    shutdown: CancellationToken,
    build: impl FnOnce(&Config, StateStore, CancellationToken) -> Result<Service<O, StateStore>, Error>,
) -> Result<(), Error> {
    let Some(state) = connect_state(config, &shutdown).await? else {
        return Ok(());
    };
    let Some(bus) = Bus::connect_patiently(config.bus.clone(), &shutdown).await? else {
        return Ok(());
    };
    let service = build(config, state, shutdown.clone())?;
    let result = service.run(&bus, shutdown).await;
    bus.close().await;
    Ok(result?)
}

/// The state store, waiting for a database that is not up yet for as long as it takes.
/// `None` when `shutdown` came first.
async fn connect_state(
    config: &Config,
    shutdown: &CancellationToken,
) -> Result<Option<StateStore>, Error> {
    let keys = mixsync_state::SecretKeys::new(&config.secret_key)?
        .with_previous(config.secret_key_previous.as_ref());
    let url = config.database_url.expose_secret();
    let Some(store) = StateStore::connect_patiently(url, keys, shutdown).await? else {
        return Ok(None);
    };
    // A wrong key stops the loader now, not the first batch that needs a token.
    store.check_secret_key().await?;
    Ok(Some(store))
}
