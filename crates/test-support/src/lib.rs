//! What mixsync's tests share: a throwaway Postgres database and a throwaway queue prefix per
//! test, each a guard that removes what it made when dropped — also when the test panics — and
//! the warehouse, target and activation fixtures the state, extractor and mapper tests seed,
//! and a service running in the test that stops when dropped.
//!
//! A dev-dependency only (and the end-to-end harness's dependency): never used by a service.

mod cleanup;
pub mod db;
pub mod fault_servers;
pub mod fixtures;
pub mod pki;
pub mod queues;
mod service;
pub mod tls_pg;

use std::time::Duration;

pub use db::{ADMIN_URL, PG_SERVER, TestDb, database_exists};
pub use fault_servers::FaultServers;
pub use pki::TestPki;
pub use queues::{QueueMessages, TestQueues, queue_depths, queue_messages};
pub use service::RunningService;
pub use tls_pg::TlsPostgres;

/// How long a test waits for something that should happen; only reached when a test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The key the fixtures' state stores encrypt secrets with.
pub const SECRET_KEY: &str = "test-secret-key";

/// 16 random hex digits: makes database names and queue prefixes unique per test.
#[must_use]
pub fn unique_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The next delivery of `consumer`, failing the test when none comes within [`PATIENCE`].
///
/// # Panics
///
/// When no delivery comes in time, or the consumer ends.
pub async fn next(consumer: &mut mixsync_bus::Consumer) -> mixsync_bus::Delivery {
    tokio::time::timeout(PATIENCE, consumer.next())
        .await
        .unwrap_or_else(|_| panic!("no delivery within {PATIENCE:?}"))
        .expect("the consumer is open")
}
