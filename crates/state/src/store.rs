//! The store handle: a connection pool plus the secret box.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use mixsync_pg::PgConfig;
use secrecy::SecretString;
use tokio::sync::OnceCell;

use crate::crypto::{SecretBox, SecretKeys};
use crate::error::StateError;

/// Connections kept open per process; every service does short transactions.
const POOL_SIZE: usize = 16;

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
        let (config, tls) = pg.for_pool().map_err(StateError::Tls)?;
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
