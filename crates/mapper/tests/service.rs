//! The mapper service over the real RabbitMQ and Postgres: row batches in, record batches and
//! MAP reports out. Each test has its own state database and queue prefix.

mod support;

use mixsync_bus::{DEAD_LETTER, LOAD_EVENTS, LOAD_USER_PROFILES, PROGRESS, ROWS};
use mixsync_domain::{InsertId, ObjectKind};
use mixsync_proto::v1::{MixpanelObject, Progress, RecordBatch, Stage};
use mixsync_test_support::TestDb;
use prost::Message as _;
use support::{
    TestQueues, events_mapping, next, records, report, row, row_batch, seed_run, start_mapper,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_batches_become_record_batches_and_map_reports() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let (run_id, activation_id, target_id) =
        seed_run(&store, ObjectKind::Events, events_mapping()).await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut records = bus.consume(LOAD_EVENTS, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());

    let rows = vec![
        row(1, "u1", 1_700_000_000),
        row(2, "anonymous", 1_700_000_001),
        row(3, "u3", 1_700_000_002_000),
    ];
    let batch = row_batch(&run_id, &activation_id, 0, rows);
    bus.publisher().publish(ROWS, &batch).await.unwrap();

    let delivery = next(&mut records).await;
    let loaded = RecordBatch::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(loaded.batch_id, format!("{run_id}-0"));
    assert_eq!(
        (loaded.activation_id.as_str(), loaded.target_id.as_str()),
        (activation_id.as_str(), target_id.as_str())
    );
    assert_eq!(loaded.object(), MixpanelObject::Events);
    assert_eq!(loaded.columns, batch.columns);
    let numbers: Vec<_> = loaded.records.iter().map(|r| r.row_number).collect();
    assert_eq!(numbers, [1, 3]);
    let record = &loaded.records[0];
    let id = InsertId::derive(&[b"1"]);
    assert_eq!(record.key, id.as_str());
    assert_eq!(
        String::from_utf8(record.json.clone()).unwrap(),
        format!(
            r#"{{"event":"Signed Up","properties":{{"time":1700000000000,"distinct_id":"u1","$insert_id":"{id}","ip":0}}}}"#
        )
    );
    assert_eq!(record.source.as_ref(), Some(&batch.rows[0]));

    let delivery = next(&mut progress).await;
    let report = Progress::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(report.stage(), Stage::Map);
    assert_eq!(
        (report.batch_id.as_str(), report.failed),
        (loaded.batch_id.as_str(), 1)
    );
    assert_eq!(report.columns, batch.columns);
    let failure = &report.failures[0];
    assert_eq!(
        (
            failure.row_number,
            failure.field.as_str(),
            failure.rule.as_str()
        ),
        (2, "distinct_id", "denied_value")
    );
    assert!(
        failure.message.starts_with("row 2, column `user_id`: "),
        "{}",
        failure.message
    );
    assert_eq!(failure.row.as_ref(), Some(&batch.rows[1]));

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_rows_go_to_their_object_queue() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let mapping = mixsync_domain::FieldMapping {
        distinct_id: Some(mixsync_domain::Source::Column("user_id".into())),
        ..Default::default()
    };
    let (run_id, activation_id, _) = seed_run(&store, ObjectKind::UserProfiles, mapping).await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut users = bus.consume(LOAD_USER_PROFILES, 10).await.unwrap();
    let mut progress = bus.consume(PROGRESS, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());

    let batch = row_batch(
        &run_id,
        &activation_id,
        2,
        vec![row(1, "u1", 1), row(2, "u2", 2)],
    );
    bus.publisher().publish(ROWS, &batch).await.unwrap();

    let loaded = records(&mut users).await;
    assert_eq!(loaded.object(), MixpanelObject::UserProfiles);
    let keys: Vec<_> = loaded.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["u1", "u2"]);
    assert_eq!(
        String::from_utf8(loaded.records[0].json.clone()).unwrap(),
        r#"[{"$distinct_id":"u1","$set":{},"$ip":"0"}]"#
    );
    let report = report(&mut progress).await;
    assert_eq!((report.failed, report.skipped), (0, 0));

    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_batches_and_unknown_runs_are_dead_lettered() {
    let db = TestDb::create().await;
    let _store = db.state().await;
    let queues = TestQueues::new();
    let bus = queues.bus().await;
    let mut dead = bus.consume(DEAD_LETTER, 10).await.unwrap();
    let service = start_mapper(&db, queues.config());

    // Field 3 is a number here but a string in RowBatch: it does not decode.
    let garbage = Progress {
        stage: Stage::Map.into(),
        ..Progress::default()
    };
    bus.publisher().publish(ROWS, &garbage).await.unwrap();
    let letter = next(&mut dead).await.decode_dead_letter().unwrap();
    assert_eq!(letter.stage(), Stage::Map);
    assert!(
        letter.reason.starts_with("cannot decode RowBatch"),
        "{}",
        letter.reason
    );

    let unknown = row_batch("no-such-run", "act", 0, vec![row(1, "u1", 1)]);
    bus.publisher().publish(ROWS, &unknown).await.unwrap();
    let letter = next(&mut dead).await.decode_dead_letter().unwrap();
    assert_eq!(letter.reason, "run `no-such-run` not found");
    assert_eq!(
        (letter.run_id.as_str(), letter.batch_id.as_str()),
        ("no-such-run", "no-such-run-0")
    );

    service.stop().await;
}
