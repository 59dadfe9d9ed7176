//! A state database with one events run, and the extractor service running in the test.

use std::time::Duration;

use mixsync_bus::Bus;
use mixsync_extractor::Config;
use mixsync_state::StateStore;
use mixsync_test_support::fixtures::{SeededRun, seed_run as seed};
use mixsync_test_support::{RunningService, SECRET_KEY, TestDb};

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
pub fn start_extractor(
    state_db: &TestDb,
    bus: &Bus,
    batch_rows: usize,
) -> RunningService<mixsync_extractor::Error> {
    start_extractor_bounded(state_db, bus, batch_rows, 100_000)
}

/// [`start_extractor`] with at most `max_in_flight_rows` rows published and not yet mapped.
pub fn start_extractor_bounded(
    state_db: &TestDb,
    bus: &Bus,
    batch_rows: usize,
    max_in_flight_rows: u64,
) -> RunningService<mixsync_extractor::Error> {
    let config = Config {
        database_url: state_db.url().into(),
        secret_key: SECRET_KEY.to_owned().into(),
        secret_key_previous: None,
        bus: mixsync_bus::BusConfig {
            url: mixsync_test_support::queues::amqp_url(),
            prefix: bus.prefix().to_owned(),
        },
        batch_rows,
        statement_timeout: Duration::from_secs(30),
        max_in_flight_rows,
    };
    RunningService::spawn(|shutdown| mixsync_extractor::run(config, shutdown))
}
