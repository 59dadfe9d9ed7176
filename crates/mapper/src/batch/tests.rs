use mixsync_domain::{FieldMapping, ProfileOperation, PropertyMapping, Source, Value};
use mixsync_proto::convert::from_domain_values;
use mixsync_state::ActivationOptions;
use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn plan(object: ObjectKind) -> RunPlan {
    RunPlan {
        run_id: "run-1".into(),
        activation_id: "act-1".into(),
        warehouse_id: "wh-1".into(),
        target_id: "tg-1".into(),
        query: "SELECT …".into(),
        object,
        mapping: FieldMapping {
            event_name: Some(Source::Constant(json!("Signed Up"))),
            time: Some(Source::Column("ts".into())),
            distinct_id: Some(Source::Column("user_id".into())),
            insert_id: Some(Source::Column("id".into())),
            properties: vec![PropertyMapping {
                column: "plan".into(),
                property: "plan".into(),
                operation: ProfileOperation::Set,
                unset_when_null: false,
            }],
            ..FieldMapping::default()
        },
        options: ActivationOptions::default(),
        full_resync: false,
    }
}

fn batch() -> RowBatch {
    let row = |id: &str, ts: i64, user: &str| {
        from_domain_values(vec![
            Value::from(id),
            Value::Int(ts),
            Value::from(user),
            Value::from("pro"),
        ])
    };
    RowBatch {
        run_id: "run-1".into(),
        activation_id: "act-1".into(),
        batch_id: "run-1-3".into(),
        seq: 3,
        columns: vec!["id".into(), "ts".into(), "user_id".into(), "plan".into()],
        rows: vec![
            row("e-1", 1_699_000_000, "u1"),
            row("e-2", 5, "u2"),
            row("e-3", 1_699_000_001, "null"),
            row("e-4", 1_699_000_002, "u4"),
        ],
        first_row_number: 1501,
        last: false,
        total_rows: 0,
    }
}

#[test]
fn good_rows_become_records_and_bad_rows_failures() {
    let source = batch();
    let mapped = map_batch(&plan(ObjectKind::Events), source.clone(), NOW);

    let (queue, records) = mapped.records.unwrap();
    assert_eq!(queue, LOAD_EVENTS);
    assert_eq!(
        (records.run_id.as_str(), records.batch_id.as_str()),
        ("run-1", "run-1-3")
    );
    assert_eq!(records.target_id, "tg-1");
    assert_eq!(records.object(), MixpanelObject::Events);
    assert_eq!(records.columns, source.columns);
    let keys: Vec<_> = records
        .records
        .iter()
        .map(|r| (r.row_number, r.key.as_str()))
        .collect();
    assert_eq!(keys, [(1501, "e-1"), (1504, "e-4")]);
    assert_eq!(records.records[0].source.as_ref(), Some(&source.rows[0]));
    assert_eq!(
        String::from_utf8(records.records[0].json.clone()).unwrap(),
        r#"{"event":"Signed Up","properties":{"time":1699000000000,"distinct_id":"u1","$insert_id":"e-1","plan":"pro","ip":0}}"#
    );

    let p = mapped.progress;
    assert_eq!(p.stage(), Stage::Map);
    assert_eq!(
        (
            p.run_id.as_str(),
            p.batch_id.as_str(),
            p.activation_id.as_str()
        ),
        ("run-1", "run-1-3", "act-1")
    );
    assert_eq!((p.failed, p.extracted, p.loaded), (2, 0, 0));
    assert_eq!(p.columns, source.columns);
    let f = &p.failures[0];
    assert_eq!(
        (f.row_number, f.field.as_str(), f.rule.as_str()),
        (1502, "time", "min_time")
    );
    assert!(
        f.message
            .starts_with("row 1502, column `ts`: `time` is invalid"),
        "{}",
        f.message
    );
    assert_eq!(f.row.as_ref(), Some(&source.rows[1]));
    assert_eq!(
        (p.failures[1].row_number, p.failures[1].rule.as_str()),
        (1503, "denied_value")
    );
}

#[test]
fn a_batch_without_good_rows_has_no_records() {
    let mut source = batch();
    source.rows.truncate(0);
    let mapped = map_batch(&plan(ObjectKind::Events), source, NOW);
    assert!(mapped.records.is_none());
    assert_eq!(mapped.progress.failed, 0);
    assert!(mapped.progress.columns.is_empty());
}

#[test]
fn profiles_fail_every_row_for_now() {
    let mapped = map_batch(&plan(ObjectKind::UserProfiles), batch(), NOW);
    assert!(mapped.records.is_none());
    assert_eq!(mapped.progress.failed, 4);
    let f = &mapped.progress.failures[3];
    assert_eq!(
        (f.row_number, f.rule.as_str()),
        (1504, "unsupported_object")
    );
    assert_eq!(
        f.message,
        "row 1504: user_profiles activations are not supported yet; only events are"
    );
}

#[test]
fn several_reasons_are_joined_and_undecodable_rows_reported() {
    let mut source = batch();
    source.rows[0] = from_domain_values(vec![
        Value::from("bad_id"),
        Value::Null,
        Value::from("u1"),
        Value::Null,
    ]);
    source.rows[1].values[0] = v1::Value {
        kind: Some(v1::value::Kind::Uuid(vec![1, 2])),
    };
    let p = map_batch(&plan(ObjectKind::Events), source, NOW).progress;
    assert_eq!(
        p.failed, 3,
        "rows 1501 and 1502 here, 1503 as in every batch()"
    );
    assert_eq!(
        (p.failures[0].field.as_str(), p.failures[0].rule.as_str()),
        ("time", "required")
    );
    assert!(
        p.failures[0]
            .message
            .contains("; row 1501, column `id`: `$insert_id` is invalid"),
        "{}",
        p.failures[0].message
    );
    assert_eq!(p.failures[1].rule, "undecodable_value");
    assert_eq!(
        p.failures[1].message,
        "row 1502: the row cannot be read: column 0: a uuid value is 2 bytes long; expected 16"
    );
}
