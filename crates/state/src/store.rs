//! The store handle: a connection pool plus the secret box.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use secrecy::SecretString;
use tokio_postgres::NoTls;

use crate::crypto::SecretBox;
use crate::error::StateError;

/// Connections kept open per process; every service does short transactions.
const POOL_SIZE: usize = 16;

/// The Postgres state store. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct StateStore {
    pub(crate) pool: Pool,
    pub(crate) secrets: SecretBox,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore").finish_non_exhaustive()
    }
}

impl StateStore {
    /// Connects to the state database at `url` (a `postgres://` URL or a libpq key=value
    /// string) and checks that it answers. Secrets are encrypted under a key derived from
    /// `secret_key` (`MIXSYNC_SECRET_KEY`), which must not be empty.
    pub async fn connect(url: &str, secret_key: &SecretString) -> Result<Self, StateError> {
        let secrets = SecretBox::new(secret_key)?;
        let config = tokio_postgres::Config::from_str(url).map_err(StateError::InvalidUrl)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        let store = Self { pool, secrets };
        store.client().await?.simple_query("SELECT 1").await?;
        Ok(store)
    }

    pub(crate) async fn client(&self) -> Result<Object, StateError> {
        Ok(self.pool.get().await?)
    }
}
