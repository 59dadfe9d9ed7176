//! A state database with one events run, and the extractor service running in the test.

use std::time::Duration;

use mixsync_bus::Bus;
use mixsync_extractor::Config;
use mixsync_state::StateStore;
use mixsync_test_support::fixtures::{SeededRun, seed_run as seed};
use mixsync_test_support::{SECRET_KEY, TestDb};
use tokio_util::sync::CancellationToken;

/// A warehouse (the local database `warehouse`), a target and an events activation running
/// `query`; returns `(run_id, activation_id)` of a new run.
pub async fn seed_run(store: &StateStore, warehouse: &str, query: &str) -> (String, String) {
    let SeededRun {
        run_id,
        activation_id,
        ..
    } = seed(store, warehouse, |a| a.query = query.into()).await;
    (run_id, activation_id)
}

/// The extractor service, running in the test against `state_db` and `bus`'s prefix.
pub struct Running {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), mixsync_extractor::Error>>>,
}

impl Running {
    pub fn start(state_db: &TestDb, bus: &Bus, batch_rows: usize) -> Self {
        Self::start_bounded(state_db, bus, batch_rows, 100_000)
    }

    pub fn start_bounded(
        state_db: &TestDb,
        bus: &Bus,
        batch_rows: usize,
        max_in_flight_rows: u64,
    ) -> Self {
        let config = Config {
            database_url: state_db.url().into(),
            secret_key: SECRET_KEY.to_owned().into(),
            bus: mixsync_bus::BusConfig {
                url: mixsync_test_support::queues::amqp_url(),
                prefix: bus.prefix().to_owned(),
            },
            batch_rows,
            statement_timeout: Duration::from_secs(30),
            max_in_flight_rows,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mixsync_extractor::run(config, shutdown.clone()));
        Self {
            shutdown,
            task: Some(task),
        }
    }

    /// Shuts the service down and checks it ended cleanly.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().expect("stopped once");
        task.await.unwrap().unwrap();
    }
}

impl Drop for Running {
    /// A test that fails leaves the service running: stop it before the queue guard deletes
    /// the queues, or its consumers would declare them again.
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
