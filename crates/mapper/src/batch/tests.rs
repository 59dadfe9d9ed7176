use mixsync_domain::{FieldMapping, ProfileOperation, PropertyMapping, Source, Value};
use mixsync_proto::convert::from_domain_values;
use mixsync_state::ActivationOptions;
use serde_json::json;

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn plan(object: ObjectKind) -> RunPlan {
    RunPlan {
        attempt: 1,
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
        fingerprint: "f".into(),
    }
}

/// Maps `batch` and applies no claims (every record is sent).
fn mapped(plan: &RunPlan, batch: RowBatch) -> BatchOutput {
    map_batch(plan, batch, NOW).finish(&HashMap::new())
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
        attempt: 1,
    }
}

#[test]
fn good_rows_become_records_and_bad_rows_failures() {
    let source = batch();
    let mapped = mapped(&plan(ObjectKind::Events), source.clone());

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
    let mapped = mapped(&plan(ObjectKind::Events), source);
    assert!(mapped.records.is_none());
    assert_eq!(mapped.progress.failed, 0);
    assert!(mapped.progress.columns.is_empty());
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
    let p = mapped(&plan(ObjectKind::Events), source).progress;
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

#[test]
fn records_carry_the_hash_of_their_json() {
    let (_, records) = mapped(&plan(ObjectKind::Events), batch()).records.unwrap();
    for record in &records.records {
        assert_eq!(record.row_hash, crate::snapshot::row_hash(&record.json));
        assert_eq!(record.row_hash.len(), 32);
    }
}

#[test]
fn user_profiles_go_to_the_users_loader() {
    let mut plan = plan(ObjectKind::UserProfiles);
    plan.mapping = FieldMapping {
        distinct_id: Some(Source::Column("user_id".into())),
        properties: plan.mapping.properties.clone(),
        ..FieldMapping::default()
    };
    let out = mapped(&plan, batch());
    let (queue, records) = out.records.unwrap();
    assert_eq!(queue, LOAD_USER_PROFILES);
    assert_eq!(records.object(), MixpanelObject::UserProfiles);
    let keys: Vec<_> = records.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["u1", "u2", "u4"]);
    assert_eq!(
        String::from_utf8(records.records[0].json.clone()).unwrap(),
        r#"[{"$distinct_id":"u1","$set":{"plan":"pro"},"$ip":"0"}]"#
    );
    // `null` is a placeholder id Mixpanel rejects.
    assert_eq!(out.progress.failed, 1);
    assert_eq!(out.progress.failures[0].row_number, 1503);
}

#[test]
fn group_profiles_go_to_the_groups_loader_keyed_by_group() {
    let mut plan = plan(ObjectKind::GroupProfiles);
    plan.mapping = FieldMapping {
        group_key: Some(Source::Constant(json!("company_id"))),
        group_id: Some(Source::Column("id".into())),
        properties: plan.mapping.properties.clone(),
        ..FieldMapping::default()
    };
    let (queue, records) = mapped(&plan, batch()).records.unwrap();
    assert_eq!(queue, LOAD_GROUP_PROFILES);
    assert_eq!(records.object(), MixpanelObject::GroupProfiles);
    let keys: Vec<_> = records.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "company_id/e-1",
            "company_id/e-2",
            "company_id/e-3",
            "company_id/e-4"
        ]
    );
}

#[test]
fn repeated_keys_fail_and_claims_skip_or_reject_records() {
    let mut source = batch();
    // Row 1502 repeats row 1501's `$insert_id` (and has a valid time this time).
    source.rows[1] = source.rows[0].clone();
    let mapped = map_batch(&plan(ObjectKind::Events), source, NOW);
    let keys: Vec<_> = mapped.keys().iter().map(|k| k.key.to_owned()).collect();
    assert_eq!(keys, ["e-1", "e-4"]);
    let claim = |batch: &str, row_number, send| KeyClaim {
        batch_id: batch.into(),
        row_number,
        send,
    };
    let claims = HashMap::from([
        ("e-1".to_owned(), claim("run-1-3", 1501, false)),
        ("e-4".to_owned(), claim("run-1-0", 7, true)),
    ]);
    let out = mapped.finish(&claims);
    assert!(out.records.is_none());
    let p = out.progress;
    assert_eq!((p.skipped, p.failed), (1, 3));
    let failures: Vec<_> = p
        .failures
        .iter()
        .map(|f| (f.row_number, f.rule.as_str(), f.key.as_str()))
        .collect();
    assert_eq!(
        failures,
        [
            (1502, "duplicate_key", "e-1"),
            (1503, "denied_value", ""),
            (1504, "duplicate_key", "e-4")
        ]
    );
    assert_eq!(
        p.failures[0].message,
        "row 1502: $insert_id `e-1` appears again in this run (first at row 1501); only the first row is sent"
    );
    assert_eq!(p.failures[2].field, "$insert_id");
    assert!(p.failures[2].message.contains("(first at row 7)"));
    assert!(!p.failures[2].record_json.is_empty());
    assert_eq!(p.columns.len(), 4);
}
