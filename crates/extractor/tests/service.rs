//! The extractor service over the real RabbitMQ and Postgres: requests in, batches and reports
//! out. Each test has its own databases and queue prefix.

mod support;

use std::time::Duration;

use mixsync_bus::{DEAD_LETTER, EXTRACT, PROGRESS, ROWS};
use mixsync_domain::Value;
use mixsync_proto::convert::to_domain_values;
use mixsync_proto::v1::{ExtractRequest, Progress, RowBatch, Stage, progress::Terminal};
use mixsync_test_support::{TestDb, TestQueues, next};
use prost::Message as _;
use support::count;
use support::stack::{seed_run, start_extractor, start_extractor_bounded};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_becomes_row_batches_and_progress_reports() {
    let warehouse = TestDb::with_setup(
        "CREATE TABLE signups AS
         SELECT g AS id, 'u' || g AS user_id, 1700000000 + g AS ts FROM generate_series(1, 250) AS g",
    )
    .await;
    let state_db = TestDb::create().await;
    let store = state_db.state().await;
    let (run_id, activation_id) = seed_run(
        &store,
        warehouse.name(),
        "SELECT id, user_id, ts FROM signups ORDER BY id",
    )
    .await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut rows = bus.consume(ROWS, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_extractor(&state_db, &bus, 100);

    let request = ExtractRequest {
        run_id: run_id.clone(),
        activation_id: activation_id.clone(),
        full_resync: false,
    };
    bus.publisher().publish(EXTRACT, &request).await.unwrap();

    // Batches are published with a window of unconfirmed publishes, so they may arrive in any
    // order: collect them, then check them in sequence.
    let mut batches = Vec::new();
    let mut reports = Vec::new();
    for _ in 0..3 {
        let delivery = next(&mut rows).await;
        batches.push(RowBatch::decode(delivery.body.as_slice()).unwrap());
        delivery.ack().await.unwrap();
        let delivery = next(&mut progress).await;
        reports.push(Progress::decode(delivery.body.as_slice()).unwrap());
        delivery.ack().await.unwrap();
    }
    batches.sort_by_key(|b| b.seq);
    reports.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));

    let mut row_number = 1;
    for ((seq, size), (batch, report)) in [(0u64, 100usize), (1, 100), (2, 50)]
        .into_iter()
        .zip(batches.iter().zip(&reports))
    {
        assert_eq!(batch.batch_id, format!("{run_id}-{seq}"));
        assert_eq!(
            (batch.run_id.as_str(), batch.activation_id.as_str()),
            (run_id.as_str(), activation_id.as_str())
        );
        assert_eq!((batch.seq, batch.rows.len()), (seq, size));
        assert_eq!(batch.columns, ["id", "user_id", "ts"]);
        assert_eq!(batch.first_row_number, row_number);
        assert_eq!(batch.last, seq == 2);
        assert_eq!(batch.total_rows, if seq == 2 { 250 } else { 0 });
        let first = to_domain_values(&batch.rows[0]).unwrap();
        let n = row_number as i64;
        assert_eq!(
            first,
            [
                Value::Int(n),
                Value::Text(format!("u{n}")),
                Value::Int(1_700_000_000 + n)
            ]
        );
        row_number += size as u64;

        assert_eq!(report.stage(), Stage::Extract);
        assert_eq!(report.batch_id, batch.batch_id);
        assert_eq!(report.activation_id, activation_id);
        assert_eq!(report.extracted, size as u64);
        let finished = match &report.terminal {
            Some(Terminal::ExtractionFinished(f)) => Some((f.total_rows, f.batches)),
            None => None,
            Some(other) => panic!("{other:?}"),
        };
        assert_eq!(finished, (seq == 2).then_some((250, 3)));
    }

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_query_fails_the_run_with_the_database_message() {
    let warehouse = TestDb::with_setup("CREATE TABLE signups AS SELECT 1 AS id").await;
    let state_db = TestDb::create().await;
    let store = state_db.state().await;
    let (run_id, activation_id) = seed_run(&store, warehouse.name(), "DELETE FROM signups").await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_extractor(&state_db, &bus, 100);

    let request = ExtractRequest {
        run_id: run_id.clone(),
        activation_id,
        full_resync: false,
    };
    bus.publisher().publish(EXTRACT, &request).await.unwrap();

    let delivery = next(&mut progress).await;
    let report = Progress::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(report.batch_id, format!("{run_id}-fatal"));
    assert_eq!(report.stage(), Stage::Extract);
    let Some(Terminal::Fatal(fatal)) = report.terminal else {
        panic!("{report:?}")
    };
    assert_eq!(
        fatal.message,
        "the warehouse refused the query: cannot execute DELETE in a read-only transaction (SQLSTATE 25006)"
    );
    assert_eq!(count(&warehouse, "signups").await, 1);

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_requests_and_unknown_runs_are_dead_lettered() {
    let state_db = TestDb::create().await;
    let _store = state_db.state().await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut dead = bus.consume(DEAD_LETTER, 10).await.unwrap();
    let service = start_extractor(&state_db, &bus, 100);

    // Field 3 is a string here but a bool in ExtractRequest: it does not decode.
    let garbage = RowBatch {
        batch_id: "not an extract request".into(),
        ..RowBatch::default()
    };
    bus.publisher().publish(EXTRACT, &garbage).await.unwrap();
    let letter = next(&mut dead).await.decode_dead_letter().unwrap();
    assert_eq!(letter.stage(), Stage::Extract);
    assert!(
        letter.reason.starts_with("cannot decode ExtractRequest"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.original, garbage.encode_to_vec());

    let unknown = ExtractRequest {
        run_id: "no-such-run".into(),
        ..ExtractRequest::default()
    };
    bus.publisher().publish(EXTRACT, &unknown).await.unwrap();
    let letter = next(&mut dead).await.decode_dead_letter().unwrap();
    assert_eq!(letter.reason, "run `no-such-run` not found");

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_waits_while_too_many_rows_are_in_flight_and_a_cancel_ends_it() {
    let warehouse = TestDb::with_setup(
        "CREATE TABLE signups AS
         SELECT g AS id, 'u' || g AS user_id, 1700000000 + g AS ts FROM generate_series(1, 5000) AS g",
    )
    .await;
    let state_db = TestDb::create().await;
    let store = state_db.state().await;
    let (run_id, activation_id) = seed_run(
        &store,
        warehouse.name(),
        "SELECT id, user_id, ts FROM signups ORDER BY id",
    )
    .await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut progress = bus.consume(PROGRESS, 100).await.unwrap();
    // Nothing downstream accounts for the rows, so the extractor must stop near the bound.
    let service = start_extractor_bounded(&state_db, &bus, 50, 200);
    bus.publisher()
        .publish(
            EXTRACT,
            &ExtractRequest {
                run_id: run_id.clone(),
                activation_id,
                full_resync: false,
            },
        )
        .await
        .unwrap();

    let mut extracted = 0;
    while let Ok(Some(delivery)) =
        tokio::time::timeout(Duration::from_secs(3), progress.next()).await
    {
        let report = Progress::decode(delivery.body.as_slice()).unwrap();
        delivery.ack().await.unwrap();
        assert!(report.terminal.is_none(), "{report:?}");
        extracted += report.extracted;
    }
    // The bound (200) plus what was read before the next check and the publish window.
    assert!(
        (200..=1000).contains(&extracted),
        "extraction should wait near 200 rows in flight, read {extracted} of 5000"
    );

    store.request_cancel(&run_id).await.unwrap();
    let delivery = next(&mut progress).await;
    let report = Progress::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(report.batch_id, format!("{run_id}-cancelled"));
    let Some(Terminal::ExtractionFinished(done)) = report.terminal else {
        panic!("{report:?}")
    };
    assert_eq!(done.total_rows, extracted, "the rows actually sent");

    service.stop().await;
}

/// A cancelled run whose extractor died mid-extraction (its lease expired; control queued the
/// request again): the new extractor reads nothing and reports that extraction ended with an
/// unknown total, so the run closes on the rows the dead extractor reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_run_whose_extractor_died_is_closed_with_an_unknown_total() {
    let warehouse =
        TestDb::with_setup("CREATE TABLE signups AS SELECT 1 AS id, 'u' AS user_id, 1 AS ts").await;
    let state_db = TestDb::create().await;
    let store = state_db.state().await;
    let (run_id, activation_id) = seed_run(
        &store,
        warehouse.name(),
        "SELECT id, user_id, ts FROM signups",
    )
    .await;
    // The dead extractor's lease, already expired, and then the cancel.
    assert_eq!(
        store
            .begin_extraction(&run_id, "dead", Duration::ZERO)
            .await
            .unwrap(),
        mixsync_state::Begin::Started
    );
    store.request_cancel(&run_id).await.unwrap();
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let mut rows = bus.consume(ROWS, 10).await.unwrap();
    let service = start_extractor(&state_db, &bus, 100);
    bus.publisher()
        .publish(
            EXTRACT,
            &ExtractRequest {
                run_id: run_id.clone(),
                activation_id,
                full_resync: false,
            },
        )
        .await
        .unwrap();
    let delivery = next(&mut progress).await;
    let report = Progress::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(report.batch_id, format!("{run_id}-cancelled"));
    let Some(Terminal::ExtractionFinished(done)) = report.terminal else {
        panic!("{report:?}")
    };
    assert!(done.total_unknown, "{done:?}");
    // Nothing was read, and the extraction is done: never queued again.
    assert!(
        tokio::time::timeout(Duration::from_millis(500), rows.next())
            .await
            .is_err()
    );
    assert!(
        store
            .expired_extractions(Duration::ZERO, 10)
            .await
            .unwrap()
            .is_empty()
    );
    service.stop().await;
}
