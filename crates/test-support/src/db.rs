//! A throwaway database on the local Postgres, dropped when its guard is.

use mixsync_state::StateStore;
use secrecy::SecretString;
use tokio_postgres::Client;

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
    /// The server, as a URL without a database (e.g. [`PG_SERVER`]).
    server: String,
    /// What the test's own connections add to the URL (e.g. `?sslmode=require`).
    params: String,
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
        Self::create_on(PG_SERVER, "", name).await
    }

    /// A new empty database `name` on `server` (a URL without a database); the test's own
    /// connections append `params` (e.g. `?sslmode=require`) to the URL.
    ///
    /// # Panics
    ///
    /// When the server refuses the `CREATE DATABASE`.
    pub async fn create_on(server: &str, params: &str, name: String) -> Self {
        // The guard exists before the database does, so a failure below still drops it.
        let db = Self {
            name,
            server: server.to_owned(),
            params: params.to_owned(),
        };
        admin(
            &db.server,
            &db.params,
            &format!("CREATE DATABASE {}", db.name),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot create the test database {}: {e}", db.name));
        db
    }

    /// The guard of database `name`, which the code under test creates itself (the demo does):
    /// the database is dropped with the guard, whether or not it was ever created.
    #[must_use]
    pub fn adopt(name: String) -> Self {
        Self {
            name,
            server: PG_SERVER.to_owned(),
            params: String::new(),
        }
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

    /// The database as a `postgres://` URL (without the test's own parameters).
    #[must_use]
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
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
        connect(&format!("{}{}", self.url(), self.params))
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
        let (server, params) = (self.server.clone(), self.params.clone());
        block_on_fresh_thread(&format!("database {}", self.name), move || async move {
            admin(&server, &params, &sql).await
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

/// Runs `sql` on the maintenance database of `server`.
async fn admin(server: &str, params: &str, sql: &str) -> Result<(), String> {
    connect(&format!("{server}/postgres{params}"))
        .await?
        .batch_execute(sql)
        .await
        .map_err(|e| e.to_string())
}

/// A connection as the services make them (`sslmode` and `sslrootcert` understood).
async fn connect(url: &str) -> Result<Client, String> {
    let (client, connection) = mixsync_pg::PgConfig::parse(url)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    Ok(client)
}
