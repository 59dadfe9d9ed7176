//! A throwaway database on the local Postgres, dropped when its guard is.

use mixsync_state::StateStore;
use secrecy::SecretString;
use tokio_postgres::{Client, NoTls};

use crate::cleanup::block_on_fresh_thread;

/// The local Postgres server (trust authentication), without a database.
pub const PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";
/// The maintenance database the guards create and drop test databases from.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database `<prefix>_<random>`, dropped `WITH (FORCE)` (closing whatever is still connected)
/// when this guard is dropped, also when the test panics.
#[derive(Debug)]
pub struct TestDb {
    name: String,
}

impl TestDb {
    /// A new empty database `mixsync_t_<random>`.
    ///
    /// # Panics
    ///
    /// When Postgres refuses the `CREATE DATABASE`.
    pub async fn create() -> Self {
        Self::create_named("mixsync_t").await
    }

    /// A new empty database `<prefix>_<random>`.
    ///
    /// # Panics
    ///
    /// When Postgres refuses the `CREATE DATABASE`.
    pub async fn create_named(prefix: &str) -> Self {
        Self::create_exactly(format!("{prefix}_{}", crate::unique_suffix())).await
    }

    /// A new empty database `name`, which must be unique to the test (e.g. end in
    /// [`crate::unique_suffix`]) and a plain SQL identifier.
    ///
    /// # Panics
    ///
    /// When Postgres refuses the `CREATE DATABASE`.
    pub async fn create_exactly(name: String) -> Self {
        // The guard exists before the database does, so a failure below still drops it.
        let db = Self { name };
        admin(&format!("CREATE DATABASE {}", db.name))
            .await
            .unwrap_or_else(|e| panic!("cannot create the test database {}: {e}", db.name));
        db
    }

    /// The guard of database `name`, which the code under test creates itself (the demo does):
    /// the database is dropped with the guard, whether or not it was ever created.
    #[must_use]
    pub fn adopt(name: String) -> Self {
        Self { name }
    }

    /// A new database `mixsync_t_<random>` in which `setup` (SQL statements) has run.
    ///
    /// # Panics
    ///
    /// When the database cannot be created or `setup` fails.
    pub async fn with_setup(setup: &str) -> Self {
        let db = Self::create().await;
        db.client().await.batch_execute(setup).await.unwrap();
        db
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database as a `postgres://` URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("{PG_SERVER}/{}", self.name)
    }

    /// The database as a key=value DSN.
    #[must_use]
    pub fn dsn(&self) -> String {
        format!(
            "host=127.0.0.1 port=5432 user=postgres dbname={}",
            self.name
        )
    }

    /// A plain client on the database, to seed it or look at its tables directly.
    ///
    /// # Panics
    ///
    /// When Postgres cannot be reached.
    pub async fn client(&self) -> Client {
        connect(&self.url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }

    /// The state store on this database, migrated, with [`crate::SECRET_KEY`].
    ///
    /// # Panics
    ///
    /// When connecting or migrating fails.
    pub async fn state(&self) -> StateStore {
        let key = SecretString::from(crate::SECRET_KEY.to_owned());
        let store = StateStore::connect(&self.url(), &key).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        block_on_fresh_thread(&format!("database {}", self.name), move || async move {
            admin(&sql).await.map_err(|e| e.to_string())
        });
    }
}

/// True when a database `name` exists on the local Postgres.
///
/// # Panics
///
/// When Postgres cannot be reached.
pub async fn database_exists(name: &str) -> bool {
    let admin = connect(ADMIN_URL).await.unwrap();
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

async fn admin(sql: &str) -> Result<(), tokio_postgres::Error> {
    connect(ADMIN_URL).await?.batch_execute(sql).await
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}
