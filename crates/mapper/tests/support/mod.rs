//! The mapper tests' own helpers on top of `mixsync-test-support`: a seeded run, the mapper
//! service running in the test, and reading what it publishes.

#![allow(dead_code)]

use std::time::Duration;

use mixsync_bus::topology::prefixed;
use mixsync_bus::{BusConfig, Consumer, LOAD_EVENTS, ROWS};
use mixsync_domain::Value;
use mixsync_domain::{FieldMapping, ObjectKind, SyncBehaviour};
use mixsync_mapper::Config;
use mixsync_proto::convert::from_domain_values;
use mixsync_proto::v1::{Progress, RecordBatch, RowBatch};
use mixsync_state::StateStore;
use mixsync_test_support::fixtures::{SeededRun, seed_run as seed};
use mixsync_test_support::{PATIENCE, RunningService, SECRET_KEY, TestDb, queue_depths};
use prost::Message as _;
use secrecy::SecretString;

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
pub fn start_mapper(db: &TestDb, bus: BusConfig) -> RunningService<mixsync_mapper::Error> {
    let config = Config {
        database_url: db.url().into(),
        secret_key: SecretString::from(SECRET_KEY.to_owned()),
        bus,
        prefetch: 4,
    };
    RunningService::spawn(|shutdown| mixsync_mapper::run(config, shutdown))
}

/// Asserts that the mapper sent no record batch beyond those the test has taken and acked.
///
/// The mapper acks a row batch only after its records are confirmed by the broker, so once no
/// row batch is left, ready or unacked, every record batch it will send is already in the
/// events load queue: that queue must then be empty (its depth counts what was delivered to
/// the test's consumer and not yet acked, too).
pub async fn assert_no_more_records(queues: &TestQueues, why: &str) {
    let prefix = queues.prefix().to_owned();
    let depths = || {
        let prefix = prefix.clone();
        tokio::task::spawn_blocking(move || queue_depths(&prefix))
    };
    let rows = prefixed(queues.prefix(), ROWS);
    let loads = prefixed(queues.prefix(), LOAD_EVENTS);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let settled = loop {
        let now = depths().await.unwrap();
        if now.get(&rows) == Some(&0) {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "row batches still queued: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(settled.get(&loads), Some(&0), "{why}: {settled:?}");
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

/// A row of the `(id, user_id, ts)` batches the tests publish.
pub fn row(id: i64, user: &str, ts: i64) -> Vec<Value> {
    vec![Value::Int(id), Value::from(user), Value::Int(ts)]
}

/// Batch `seq` of a run: `(id, user_id, ts)` rows numbered from `seq * 100 + 1`.
pub fn row_batch(run_id: &str, activation_id: &str, seq: u64, rows: Vec<Vec<Value>>) -> RowBatch {
    RowBatch {
        run_id: run_id.into(),
        activation_id: activation_id.into(),
        batch_id: format!("{run_id}-{seq}"),
        seq,
        columns: vec!["id".into(), "user_id".into(), "ts".into()],
        first_row_number: seq * 100 + 1,
        rows: rows.into_iter().map(from_domain_values).collect(),
        last: false,
        total_rows: 0,
        attempt: 1,
    }
}
