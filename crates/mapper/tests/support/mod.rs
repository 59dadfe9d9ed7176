//! The mapper tests' own helpers on top of `mixsync-test-support`: a seeded run, the mapper
//! service running in the test, and reading what it publishes.

#![allow(dead_code)]

use std::time::Duration;

use mixsync_bus::{BusConfig, Consumer, Delivery};
use mixsync_domain::{FieldMapping, ObjectKind, SyncBehaviour};
use mixsync_mapper::Config;
use mixsync_proto::v1::{Progress, RecordBatch};
use mixsync_state::StateStore;
use mixsync_test_support::fixtures::{SeededRun, seed_run as seed};
use mixsync_test_support::{SECRET_KEY, TestDb};
use prost::Message as _;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

pub use mixsync_test_support::fixtures::events_mapping;
pub use mixsync_test_support::{TestQueues, next};

/// A warehouse, a target, an activation of `object` with `mapping`, and a run;
/// returns `(run_id, activation_id, target_id)`.
pub async fn seed_run(
    store: &StateStore,
    object: ObjectKind,
    mapping: FieldMapping,
) -> (String, String, String) {
    // The mapper never reads the warehouse: the test publishes the rows itself.
    let SeededRun {
        run_id,
        activation_id,
        target_id,
    } = seed(store, "unused", |a| {
        a.query = "SELECT 1".into();
        a.object = object;
        a.sync_behaviour = if object == ObjectKind::Events {
            SyncBehaviour::Insert
        } else {
            SyncBehaviour::Upsert
        };
        a.mapping = mapping;
    })
    .await;
    (run_id, activation_id, target_id)
}

/// The mapper service, running in the test against `db` and `bus`.
pub struct Running {
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), mixsync_mapper::Error>>>,
}

impl Running {
    pub fn start(db: &TestDb, bus: BusConfig) -> Self {
        let config = Config {
            database_url: db.url().into(),
            secret_key: SecretString::from(SECRET_KEY.to_owned()),
            bus,
            prefetch: 4,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mixsync_mapper::run(config, shutdown.clone()));
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

/// The next delivery within `wait`, if any.
pub async fn try_next(consumer: &mut Consumer, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, consumer.next())
        .await
        .ok()
        .flatten()
}

/// The next RecordBatch, acked.
pub async fn records(consumer: &mut Consumer) -> RecordBatch {
    let delivery = next(consumer).await;
    delivery.ack().await.unwrap();
    RecordBatch::decode(delivery.body.as_slice()).unwrap()
}

/// The next Progress report, acked.
pub async fn report(consumer: &mut Consumer) -> Progress {
    let delivery = next(consumer).await;
    delivery.ack().await.unwrap();
    Progress::decode(delivery.body.as_slice()).unwrap()
}
