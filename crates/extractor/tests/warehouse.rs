//! The warehouse against the real Postgres: type conversions, read-only enforcement, prepare-only
//! describe, batching. Each test has its own database.

mod support;

use std::time::Duration;

use mixsync_domain::Value;
use mixsync_domain::civil::format_datetime;
use mixsync_extractor::warehouse::{
    self, Batch, Column, StreamError, StreamOptions, WarehouseError,
};
use mixsync_state::WarehouseConnection;
use mixsync_test_support::TestDb;
use serde_json::json;
use support::{count, warehouse_on};

const SETUP: &str = r#"
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN positive AS int4 CHECK (VALUE > 0);
CREATE TABLE every_type (
    id int4, small int2, big int8, amount numeric(12, 2), ratio float4, score float8, flag bool,
    note text, code varchar(8), padded char(4), nm name, uid uuid, day date, at timestamp,
    at_tz timestamptz, doc json, docb jsonb, tags text[], grid int4[][], ids uuid[],
    feeling mood, pos positive, span interval, addr inet, raw bytea, empty_arr int4[]
);
INSERT INTO every_type VALUES (
    1, -32768, 9223372036854775807, 1234567890.50, 1.1, -2.5e-300, true,
    E'héllo\nworld', 'abc', 'ab', 'pg_name', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29',
    '2023-11-14 22:13:20.123999', '2023-11-14 23:13:20.5+01', '{"b": 1, "a": [1, 2.5, "x"]}',
    '{"b": 1, "a": null}', ARRAY['a', NULL, 'c'], '{{1,2},{3,4}}',
    ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid], 'happy', 5, '1 day 02:00:00',
    '192.168.0.1/24', '\xdeadbeef', '{}'
);
INSERT INTO every_type (id) VALUES (2);
"#;

const UUID: [u8; 16] = [
    0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11,
];

fn options(batch_rows: usize) -> StreamOptions {
    StreamOptions {
        statement_timeout: Duration::from_secs(30),
        batch_rows,
    }
}

/// Streams `query`, collecting the batches.
async fn stream_all(
    db: &TestDb,
    query: &str,
    options: &StreamOptions,
) -> Result<Vec<Batch>, WarehouseError> {
    let warehouse = warehouse_on(db).await;
    let mut batches = Vec::new();
    let result = warehouse
        .stream(query, options, |batch| {
            batches.push(batch);
            async { Ok::<_, std::convert::Infallible>(()) }
        })
        .await;
    match result {
        Ok(summary) => {
            assert_eq!(summary.batches as usize, batches.len());
            Ok(batches)
        }
        Err(StreamError::Warehouse(e)) => Err(e),
        Err(StreamError::Sink(never)) => match never {},
    }
}

#[tokio::test]
async fn every_supported_type_converts() {
    let db = TestDb::with_setup(SETUP).await;
    let batches = stream_all(&db, "SELECT * FROM every_type ORDER BY id", &options(500))
        .await
        .unwrap();
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.columns.len(), 26);
    assert_eq!(&batch.columns[..3], ["id", "small", "big"]);
    let row = &batch.rows[0];
    let expected = [
        Value::Int(1),
        Value::Int(-32768),
        Value::Int(i64::MAX),
        Value::Numeric("1234567890.50".into()),
        Value::Float(1.1),
        Value::Float(-2.5e-300),
        Value::Bool(true),
        Value::Text("héllo\nworld".into()),
        Value::Text("abc".into()),
        Value::Text("ab  ".into()),
        Value::Text("pg_name".into()),
        Value::Uuid(UUID),
        Value::Date { days: 19_782 },
        Value::Timestamp {
            ms: 1_700_000_000_123,
        },
        Value::Timestamp {
            ms: 1_700_000_000_500,
        },
        Value::Json(json!({"b": 1, "a": [1, 2.5, "x"]})),
        Value::Json(json!({"a": null, "b": 1})),
        Value::Array(vec![
            Value::Text("a".into()),
            Value::Null,
            Value::Text("c".into()),
        ]),
        Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
            Value::Array(vec![Value::Int(3), Value::Int(4)]),
        ]),
        Value::Array(vec![Value::Uuid(UUID)]),
        Value::Text("happy".into()),
        Value::Int(5),
        Value::Text("1 day 02:00:00".into()),
        Value::Text("192.168.0.1/24".into()),
        Value::Text("\\xdeadbeef".into()),
        Value::Array(vec![]),
    ];
    for (i, (got, want)) in row.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "column {} ({i})", batch.columns[i]);
    }
    // JSON keeps its key order; jsonb has its own.
    let Value::Json(doc) = &row[15] else { panic!() };
    assert_eq!(doc.to_string(), r#"{"b":1,"a":[1,2.5,"x"]}"#);
    let nulls = &batch.rows[1];
    assert_eq!(nulls[0], Value::Int(2));
    assert!(nulls[1..].iter().all(Value::is_null), "{nulls:?}");
}

#[tokio::test]
async fn special_values_and_odd_columns() {
    let db = TestDb::create().await;
    let (columns, rows) = warehouse_on(&db)
        .await
        .preview(
            "SELECT 1 AS x, 2 AS x, 'lit', NULL::int, 'infinity'::timestamp, '-infinity'::date, \
             'NaN'::numeric, 'Infinity'::float8, ARRAY[interval '1 day'], \
             timestamp '1969-12-31 23:59:59.9995', '-0.000'::numeric;",
            10,
        )
        .await
        .unwrap();
    assert_eq!(columns[..3], ["x", "x", "?column?"]);
    let row = &rows[0];
    assert_eq!(row[0], Value::Int(1));
    assert_eq!(row[1], Value::Int(2));
    assert_eq!(row[2], Value::Text("lit".into()));
    assert_eq!(row[3], Value::Null);
    assert_eq!(row[4], Value::Text("infinity".into()));
    assert_eq!(row[5], Value::Text("-infinity".into()));
    assert_eq!(row[6], Value::Numeric("NaN".into()));
    assert_eq!(row[7], Value::Float(f64::INFINITY));
    assert_eq!(row[8], Value::Text("{\"1 day\"}".into()));
    assert_eq!(row[9], Value::Timestamp { ms: -1 });
    assert_eq!(row[10], Value::Numeric("0.000".into()));
}

#[tokio::test]
async fn numerics_are_exact() {
    let db = TestDb::create().await;
    let mut literals = vec![
        "0".to_owned(),
        "0.000".into(),
        "-0.5".into(),
        "0.00000000000000000001".into(),
        "10000".into(),
        "99999999999999999999999.9999".into(),
        "1e100".into(),
        "1.23e-50".into(),
        "123456789012345678901234567890".into(),
    ];
    for _ in 0..300 {
        let int_digits = rand::random_range(0..25);
        let frac_digits = rand::random_range(0..20);
        let digits = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(b'0' + rand::random_range(0..10u8)))
                .collect()
        };
        let sign = if rand::random() { "-" } else { "" };
        let int = if int_digits == 0 {
            "0".to_owned()
        } else {
            digits(int_digits)
        };
        literals.push(format!("{sign}{int}.{}", digits(frac_digits)));
    }
    let values = literals
        .iter()
        .map(|l| format!("('{l}'::numeric)"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!("SELECT v, v::text FROM (VALUES {values}) AS t(v)");
    let batches = stream_all(&db, &query, &options(1000)).await.unwrap();
    assert_eq!(batches[0].rows.len(), literals.len());
    for row in &batches[0].rows {
        let Value::Text(text) = &row[1] else {
            panic!("{row:?}")
        };
        assert_eq!(row[0], Value::Numeric(text.clone()));
    }
}

#[tokio::test]
async fn timestamps_round_toward_the_past() {
    let db = TestDb::create().await;
    let mut cases = Vec::new();
    for _ in 0..200 {
        // 1900 to 2100, with a random microsecond fraction.
        let secs = rand::random_range(-2_208_988_800i64..4_102_444_800);
        let micros = rand::random_range(0..1_000_000i64);
        let text = format!("{}.{micros:06}", format_datetime(secs * 1000));
        cases.push((text, secs * 1000 + micros / 1000));
    }
    let values = cases
        .iter()
        .map(|(t, _)| format!("('{t}'::timestamp)"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!("SELECT v, v AT TIME ZONE 'UTC', v::date FROM (VALUES {values}) AS t(v)");
    let batches = stream_all(&db, &query, &options(1000)).await.unwrap();
    for (row, (text, ms)) in batches[0].rows.iter().zip(&cases) {
        assert_eq!(row[0], Value::Timestamp { ms: *ms }, "{text}");
        assert_eq!(
            row[1],
            Value::Timestamp { ms: *ms },
            "{text} as timestamptz"
        );
        let days = i32::try_from(ms.div_euclid(86_400_000)).unwrap();
        assert_eq!(row[2], Value::Date { days }, "{text} as date");
    }
}

#[tokio::test]
async fn writes_are_refused_by_the_read_only_transaction() {
    let db = TestDb::with_setup(SETUP).await;
    for (query, verb) in [
        ("DELETE FROM every_type", "DELETE"),
        ("UPDATE every_type SET id = 3", "UPDATE"),
        ("DELETE FROM every_type RETURNING id", "DELETE"),
        ("INSERT INTO every_type (id) VALUES (9)", "INSERT"),
    ] {
        let err = stream_all(&db, query, &options(10)).await.unwrap_err();
        assert_eq!(err.sqlstate(), Some("25006"), "{query}: {err}");
        assert_eq!(
            err.to_string(),
            format!(
                "the warehouse refused the query: cannot execute {verb} in a read-only transaction (SQLSTATE 25006)"
            )
        );
    }
    let err = warehouse_on(&db)
        .await
        .preview("DELETE FROM every_type RETURNING id", 5)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only transaction"), "{err}");
    assert_eq!(count(&db, "every_type").await, 2);
}

#[tokio::test]
async fn describe_prepares_without_executing() {
    let db = TestDb::with_setup(SETUP).await;
    let warehouse = warehouse_on(&db).await;
    let columns = warehouse
        .describe("DELETE FROM every_type RETURNING id, at_tz, tags")
        .await
        .unwrap();
    let column = |name: &str, type_name: &str| Column {
        name: name.into(),
        type_name: type_name.into(),
    };
    assert_eq!(
        columns,
        [
            column("id", "int4"),
            column("at_tz", "timestamptz"),
            column("tags", "_text")
        ]
    );
    assert!(
        warehouse
            .describe("DELETE FROM every_type")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count(&db, "every_type").await, 2);
    let err = warehouse
        .describe("SELECT nope FROM every_type")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the warehouse refused the query: column \"nope\" does not exist; \
         hint: Perhaps you meant to reference the column \"every_type.note\". (SQLSTATE 42703)"
    );
}

#[tokio::test]
async fn describe_gives_up_on_a_locked_table() {
    let db = TestDb::with_setup(SETUP).await;
    // A migration holding an exclusive lock: preparing a query on the table waits for it.
    let mut locker = db.client().await;
    let lock = locker.transaction().await.unwrap();
    lock.batch_execute("LOCK TABLE every_type IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let warehouse = warehouse_on(&db).await;
    let err = warehouse
        .describe_within("SELECT id FROM every_type", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WarehouseError::DescribeTimeout(d) if d == Duration::from_millis(300)),
        "{err}"
    );
    assert!(
        err.is_transient(),
        "a lock is waited out by a later attempt"
    );
    assert!(err.to_string().contains("locked"), "{err}");
    lock.rollback().await.unwrap();
    // Once the lock is gone a fresh connection describes the query.
    let columns = warehouse_on(&db)
        .await
        .describe("SELECT id FROM every_type")
        .await
        .unwrap();
    assert_eq!(columns.len(), 1);
}

#[tokio::test]
async fn streams_large_results_in_flagged_batches() {
    let db = TestDb::create().await;
    let batches = stream_all(
        &db,
        "SELECT g AS n, 'row ' || g AS label FROM generate_series(1, 10000) AS g",
        &options(500),
    )
    .await
    .unwrap();
    assert_eq!(batches.len(), 20);
    let mut expected_n = 1;
    for (seq, batch) in batches.iter().enumerate() {
        assert_eq!(batch.seq, seq as u64);
        assert_eq!(batch.rows.len(), 500);
        assert_eq!(batch.first_row_number, expected_n);
        assert_eq!(batch.last, seq == 19);
        assert_eq!(batch.total_rows, if seq == 19 { 10_000 } else { 0 });
        for row in &batch.rows {
            assert_eq!(row[0], Value::Int(expected_n as i64));
            expected_n += 1;
        }
    }

    let batches = stream_all(&db, "SELECT generate_series(1, 1001)", &options(500))
        .await
        .unwrap();
    let sizes: Vec<_> = batches.iter().map(|b| b.rows.len()).collect();
    assert_eq!(sizes, [500, 500, 1]);
    assert_eq!(
        (batches[2].first_row_number, batches[2].total_rows),
        (1001, 1001)
    );

    let batches = stream_all(&db, "SELECT 1 WHERE false", &options(500))
        .await
        .unwrap();
    assert_eq!(batches.len(), 1);
    assert!(batches[0].last && batches[0].rows.is_empty());
    assert_eq!((batches[0].first_row_number, batches[0].total_rows), (1, 0));
}

#[tokio::test]
async fn a_failing_callback_stops_the_stream() {
    let db = TestDb::create().await;
    let warehouse = warehouse_on(&db).await;
    let mut calls = 0;
    let result = warehouse
        .stream(
            "SELECT generate_series(1, 100000)",
            &options(100),
            |_batch| {
                calls += 1;
                let fail = calls == 2;
                async move { if fail { Err("broker gone") } else { Ok(()) } }
            },
        )
        .await;
    assert!(matches!(result, Err(StreamError::Sink("broker gone"))));
    assert_eq!(calls, 2);
    // The connection is still usable afterwards.
    assert_eq!(
        warehouse.preview("SELECT 7", 1).await.unwrap().1,
        [[Value::Int(7)]]
    );
}

#[tokio::test]
async fn statement_timeout_and_runtime_errors_carry_the_database_message() {
    let db = TestDb::create().await;
    let short = StreamOptions {
        statement_timeout: Duration::from_millis(100),
        batch_rows: 10,
    };
    let err = stream_all(&db, "SELECT pg_sleep(5)", &short)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the warehouse refused the query: canceling statement due to statement timeout (SQLSTATE 57014)"
    );
    let err = stream_all(
        &db,
        "SELECT 1 / (5000 - g) FROM generate_series(1, 10000) AS g",
        &options(100),
    )
    .await
    .unwrap_err();
    assert_eq!(err.sqlstate(), Some("22012"), "{err}");
    let err = stream_all(&db, "SELECT $1::int", &options(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, WarehouseError::Parameters { count: 1 }),
        "{err}"
    );
}

#[tokio::test]
async fn preview_stops_after_the_limit() {
    let db = TestDb::create().await;
    let warehouse = warehouse_on(&db).await;
    let (columns, rows) = warehouse
        .preview("SELECT generate_series(1, 1000000000) AS n", 3)
        .await
        .unwrap();
    assert_eq!(columns, ["n"]);
    assert_eq!(rows, [[Value::Int(1)], [Value::Int(2)], [Value::Int(3)]]);
    let (columns, rows) = warehouse.preview("SELECT 1 AS one", 0).await.unwrap();
    assert_eq!((columns.len(), rows.len()), (1, 0));
}

#[tokio::test]
async fn test_reports_version_and_read_only() {
    let db = TestDb::create().await;
    let report = warehouse_on(&db).await.test().await.unwrap();
    assert!(report.read_only_ok);
    assert!(
        report
            .server_version
            .chars()
            .next()
            .unwrap()
            .is_ascii_digit(),
        "{report:?}"
    );
}

#[tokio::test]
async fn connection_errors_are_clear_and_keep_the_password_out() {
    let dsn = WarehouseConnection::from_dsn("postgres://postgres:hunter2@127.0.0.1:1/nowhere");
    let err = warehouse::connect(&dsn).await.unwrap_err();
    assert!(matches!(err, WarehouseError::Connect(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot connect to the warehouse: "),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the connection to `127.0.0.1` was refused"),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    let dsn = WarehouseConnection::from_dsn("postgres://postgres:hunter2@127.0.0.1:5432/db?port=x");
    let err = warehouse::connect(&dsn).await.unwrap_err();
    assert!(matches!(err, WarehouseError::InvalidDsn(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2"));

    let dsn = WarehouseConnection::from_dsn(
        "host=127.0.0.1 user=postgres dbname=mixsync_t_does_not_exist",
    );
    let err = warehouse::connect(&dsn).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot connect to the warehouse: database \"mixsync_t_does_not_exist\" does not exist"
    );
}
