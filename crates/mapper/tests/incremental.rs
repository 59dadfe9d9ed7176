//! Incremental syncs through the mapper service: unchanged rows are skipped, changed rows
//! sent, repeated keys reported, a full resync sends everything, and a redelivered batch is
//! decided as it was the first time. The loaders are played by the test: it applies LOAD
//! reports to the state store.

mod support;

use mixsync_bus::{LOAD_EVENTS, PROGRESS, ROWS};
use mixsync_domain::{ObjectKind, Value};
use mixsync_proto::v1::{Progress, RecordBatch, Stage};
use mixsync_state::StateStore;
use mixsync_test_support::TestDb;
use support::{
    TestQueues, assert_no_more_records, events_mapping, records, report, row, row_batch, seed_run,
    start_mapper,
};

fn rows(ids: std::ops::Range<i64>) -> Vec<Vec<Value>> {
    ids.map(|id| row(id, &format!("u{id}"), 1_700_000_000 + id))
        .collect()
}

/// Plays the events loader: every record of `batch` accepted.
async fn load(store: &StateStore, batch: &RecordBatch) {
    let progress = Progress {
        run_id: batch.run_id.clone(),
        activation_id: batch.activation_id.clone(),
        batch_id: batch.batch_id.clone(),
        stage: Stage::Load.into(),
        loaded: batch.records.len() as u64,
        ..Progress::default()
    };
    store.apply_progress(&progress).await.unwrap();
}

fn row_numbers(batch: &RecordBatch) -> Vec<u64> {
    let mut numbers: Vec<_> = batch.records.iter().map(|r| r.row_number).collect();
    numbers.sort_unstable();
    numbers
}

/// Ends `run_id` and queues the activation's next run.
async fn next_run(store: &StateStore, run_id: &str, activation_id: &str, full: bool) -> String {
    store.cancel_run(run_id).await.unwrap();
    store
        .create_run(activation_id, full, None)
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_sends_only_changed_rows_and_a_full_resync_sends_all() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let (run_id, activation_id, _) = seed_run(&store, ObjectKind::Events, events_mapping()).await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut loads = bus.consume(LOAD_EVENTS, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());
    let publisher = bus.publisher();

    // Run 1: everything is new.
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 0, rows(1..6)))
        .await
        .unwrap();
    let first = records(&mut loads).await;
    assert_eq!(row_numbers(&first), [1, 2, 3, 4, 5]);
    assert_eq!(report(&mut progress).await.skipped, 0);
    load(&store, &first).await;

    // Run 2: batch 0 unchanged, batch 1 with one changed row (another user for id 3).
    let run_id = next_run(&store, &run_id, &activation_id, false).await;
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 0, rows(1..3)))
        .await
        .unwrap();
    let mut changed = rows(3..6);
    changed[0] = row(3, "someone-else", 1_700_000_003);
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 1, changed))
        .await
        .unwrap();
    let mut reports = [report(&mut progress).await, report(&mut progress).await];
    reports.sort_by_key(|r| r.batch_id.clone());
    let counts: Vec<_> = reports.iter().map(|r| (r.skipped, r.failed)).collect();
    assert_eq!(counts, [(2, 0), (2, 0)]);
    let sent = records(&mut loads).await;
    assert_eq!(sent.batch_id, format!("{run_id}-1"));
    assert_eq!(row_numbers(&sent), [101]);
    assert_no_more_records(&queues, "an unchanged batch sent records").await;
    load(&store, &sent).await;

    // Run 3 is a full resync: every row is sent, none skipped.
    let run_id = next_run(&store, &run_id, &activation_id, true).await;
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 0, rows(1..6)))
        .await
        .unwrap();
    let all = records(&mut loads).await;
    assert_eq!(row_numbers(&all), [1, 2, 3, 4, 5]);
    assert_eq!(report(&mut progress).await.skipped, 0);
    load(&store, &all).await;

    // Run 4 is incremental again: the snapshot kept up during the full resync.
    let run_id = next_run(&store, &run_id, &activation_id, false).await;
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 0, rows(1..6)))
        .await
        .unwrap();
    assert_eq!(report(&mut progress).await.skipped, 5);
    assert_no_more_records(&queues, "unchanged rows were sent").await;

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_are_reported_once_per_later_row() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let (run_id, activation_id, _) = seed_run(&store, ObjectKind::Events, events_mapping()).await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut loads = bus.consume(LOAD_EVENTS, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());
    let publisher = bus.publisher();

    // Rows 1 and 2 share id 1 (so `$insert_id`); row 101 of the next batch repeats it too.
    let first = vec![row(1, "u1", 1_700_000_000), row(1, "u1", 1_700_000_000)];
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 0, first))
        .await
        .unwrap();
    let sent = records(&mut loads).await;
    assert_eq!(row_numbers(&sent), [1]);
    let map = report(&mut progress).await;
    assert_eq!((map.failed, map.skipped), (1, 0));
    assert_eq!(
        (
            map.failures[0].row_number,
            map.failures[0].rule.as_str(),
            map.failures[0].field.as_str()
        ),
        (2, "duplicate_key", "$insert_id")
    );
    assert!(
        map.failures[0].message.contains("(first at row 1)"),
        "{}",
        map.failures[0].message
    );

    let second = vec![row(1, "u1", 1_700_000_000), row(2, "u2", 1_700_000_000)];
    publisher
        .publish(ROWS, &row_batch(&run_id, &activation_id, 1, second))
        .await
        .unwrap();
    let sent = records(&mut loads).await;
    assert_eq!(row_numbers(&sent), [102]);
    let map = report(&mut progress).await;
    assert_eq!(map.failed, 1);
    let failure = &map.failures[0];
    assert_eq!(
        (failure.row_number, failure.rule.as_str()),
        (101, "duplicate_key")
    );
    assert!(
        failure.message.contains("(first at row 1)"),
        "{}",
        failure.message
    );
    assert_eq!(map.columns.len(), 3);
    assert!(failure.row.is_some() && !failure.record_json.is_empty());

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_batch_is_decided_as_the_first_time() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let (run_id, activation_id, _) = seed_run(&store, ObjectKind::Events, events_mapping()).await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut loads = bus.consume(LOAD_EVENTS, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());

    let batch = row_batch(&run_id, &activation_id, 0, rows(1..4));
    bus.publisher().publish(ROWS, &batch).await.unwrap();
    let first = records(&mut loads).await;
    let first_report = report(&mut progress).await;
    // Its records are loaded (the snapshot now has them), then the batch comes again, as
    // after a mapper crash before its ack: the same records, nothing skipped, no duplicates,
    // so the run's counts still add up.
    load(&store, &first).await;
    bus.publisher().publish(ROWS, &batch).await.unwrap();
    let again = records(&mut loads).await;
    assert_eq!(again, first);
    let again_report = report(&mut progress).await;
    assert_eq!(again_report, first_report);
    assert_eq!((again_report.skipped, again_report.failed), (0, 0));

    service.stop().await;
}
