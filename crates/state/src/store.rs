//! The store handle: a connection pool plus the secret box.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use mixsync_pg::PgConfig;
use secrecy::SecretString;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::crypto::{SecretBox, SecretKeys};
use crate::error::StateError;

/// Connections kept open per process; every service does short transactions.
const POOL_SIZE: usize = 16;

/// How long a caller waits for a pooled connection, and for a new one to open, before the
/// call fails as unavailable (and the caller retries it or gives up): a database that went
/// away must not hang a service. See `docs/operations.md`.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long one statement may run. Generous (emptying a large sync snapshot is one
/// statement), but bounded: a stuck lock must not stall a service for ever.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle time after which TCP keepalives probe a state connection, so a connection to a
/// server that vanished (a host that rebooted) is noticed in about a minute, not two hours.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// How [`StateStore::connect_patiently`] paces its attempts.
const FIRST_WAIT: Duration = Duration::from_millis(250);
const MAX_WAIT: Duration = Duration::from_secs(5);

/// The Postgres state store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct StateStore {
    pub(crate) pool: Pool,
    keys: SecretKeys,
    /// Derived on first use: the salt is in the database, and only after control's migrations.
    secrets: Arc<OnceCell<SecretBox>>,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

impl StateStore {
    /// Connects to the state database at `url` (a `postgres://` URL or a libpq key=value
    /// string, with libpq's `sslmode` and `sslrootcert`: see `docs/tls.md`) and checks that it
    /// answers. Secrets are encrypted under a key derived from
    /// `secret_key` (`MIXSYNC_SECRET_KEY`), which must not be empty.
    pub async fn connect(url: &str, secret_key: &SecretString) -> Result<Self, StateError> {
        Self::connect_with_keys(url, SecretKeys::new(secret_key)?).await
    }

    /// [`StateStore::connect`] with a previous key too (`MIXSYNC_SECRET_KEY_PREVIOUS`), whose
    /// secrets stay readable until control re-encrypts them ([`StateStore::rotate_secrets`]).
    pub async fn connect_with_keys(url: &str, keys: SecretKeys) -> Result<Self, StateError> {
        let pg = PgConfig::parse(url).map_err(StateError::InvalidUrl)?;
        // `allow` is decided once, by a first connection; the pool then uses what worked.
        let pg = pg.settle().await.map_err(StateError::Connect)?;
        let (mut config, tls) = pg.for_pool().map_err(StateError::Tls)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        config.keepalives_idle(KEEPALIVE_IDLE);
        let options = format!(
            "{} -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            STATEMENT_TIMEOUT.as_millis()
        );
        config.options(options.trim_start());
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()?;
        let store = Self {
            pool,
            keys,
            secrets: Arc::new(OnceCell::new()),
        };
        let client = match store.pool.get().await {
            Ok(client) => client,
            Err(deadpool_postgres::PoolError::Backend(e)) => {
                return Err(StateError::Connect(pg.explain(&e)));
            }
            Err(e) => return Err(e.into()),
        };
        client.simple_query("SELECT 1").await?;
        Ok(store)
    }

    /// [`StateStore::connect_with_keys`], waiting for a database that is not up yet (refused,
    /// unreachable, starting up) for as long as it takes: every service starts before its
    /// database in `docker compose up` or a Kubernetes rollout. Logs that it waits, and when
    /// the database answers. `None` when `shutdown` is cancelled first; other errors (bad
    /// URL, credentials, TLS) are returned at once.
    pub async fn connect_patiently(
        url: &str,
        keys: SecretKeys,
        shutdown: &CancellationToken,
    ) -> Result<Option<Self>, StateError> {
        let mut wait = FIRST_WAIT;
        let mut attempts = 0u32;
        loop {
            match Self::connect_with_keys(url, keys.clone()).await {
                Ok(store) => {
                    if attempts > 0 {
                        tracing::info!(attempts, "the state database is up");
                    }
                    return Ok(Some(store));
                }
                Err(error) if error.is_transient() => {
                    // Every attempt at first, then every tenth, so a long outage does not
                    // flood the log.
                    if attempts < 3 || attempts.is_multiple_of(10) {
                        tracing::warn!(%error, attempts, "waiting for the state database");
                    }
                    attempts += 1;
                    tokio::select! {
                        () = shutdown.cancelled() => return Ok(None),
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_WAIT);
                }
                Err(error) => return Err(error),
            }
        }
    }

    pub(crate) async fn client(&self) -> Result<Object, StateError> {
        Ok(self.pool.get().await?)
    }

    /// Whether a previous key was given.
    pub fn has_previous_key(&self) -> bool {
        self.keys.has_previous()
    }

    /// The keys, derived from the passphrases and the installation's salt on first use.
    pub(crate) async fn secrets(&self) -> Result<&SecretBox, StateError> {
        self.secrets
            .get_or_try_init(|| async {
                let salt = self.installation_salt().await?;
                let keys = self.keys.clone();
                // argon2id takes tens of milliseconds of CPU: off the async threads.
                tokio::task::spawn_blocking(move || SecretBox::derive(&keys, &salt))
                    .await
                    .map_err(|e| StateError::KeyDerivation(e.to_string()))?
            })
            .await
    }

    async fn installation_salt(&self) -> Result<Vec<u8>, StateError> {
        let client = self.client().await?;
        match client
            .query_opt("SELECT secret_salt FROM installation", &[])
            .await
        {
            Ok(Some(row)) => Ok(row.get(0)),
            Ok(None) => Err(StateError::NotSetUp),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
                Err(StateError::NotSetUp)
            }
            Err(e) => Err(e.into()),
        }
    }
}
