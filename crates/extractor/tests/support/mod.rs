//! A throwaway database on the local Postgres for each test.

#![allow(dead_code)]

pub mod stack;

use mixsync_extractor::warehouse::{self, Warehouse};
use secrecy::SecretString;
use tokio_postgres::NoTls;

const ADMIN_DSN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A database `mixsync_t_<random>`, dropped (with its connections) when this is dropped.
pub struct TestDb {
    pub name: String,
    pub client: tokio_postgres::Client,
}

impl TestDb {
    /// Creates the database and runs `setup` (SQL statements) in it.
    pub async fn create(setup: &str) -> Self {
        let name = format!("mixsync_t_{:016x}", rand::random::<u64>());
        let admin = connect(ADMIN_DSN).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let client = connect(&Self::dsn_for(&name)).await;
        client.batch_execute(setup).await.unwrap();
        Self { name, client }
    }

    /// The database as a `postgres://` URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    fn dsn_for(name: &str) -> String {
        format!("host=127.0.0.1 port=5432 user=postgres dbname={name}")
    }

    /// The DSN of this database.
    pub fn dsn(&self) -> SecretString {
        Self::dsn_for(&self.name).into()
    }

    /// A warehouse connection to this database.
    pub async fn warehouse(&self) -> Warehouse {
        warehouse::connect(&self.dsn()).await.unwrap()
    }

    /// `SELECT count(*) FROM <table>`.
    pub async fn count(&self, table: &str) -> i64 {
        self.client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop is synchronous: use a private runtime on another thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let admin = connect(ADMIN_DSN).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

async fn connect(dsn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}
