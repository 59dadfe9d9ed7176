use mixsync_domain::{EventRecord, ProfileOperation, PropertyMapping, Source};
use proptest::prelude::*;
use serde_json::{Map, Value as Json, json};

use super::*;

const NOW: i64 = 1_700_000_000_000;

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| (*c).to_owned()).collect()
}

fn property(column: &str, property: &str) -> PropertyMapping {
    PropertyMapping {
        column: column.into(),
        property: property.into(),
        operation: ProfileOperation::Set,
        unset_when_null: false,
    }
}

fn col(name: &str) -> Option<Source> {
    Some(Source::Column(name.into()))
}

/// Columns: id, name, signup_ts, user_id, plan, tags.
fn mapping() -> FieldMapping {
    FieldMapping {
        event_name: col("name"),
        time: col("signup_ts"),
        distinct_id: col("user_id"),
        insert_id: Some(Source::Derive {
            columns: vec!["id".into()],
        }),
        properties: vec![property("plan", "Plan"), property("tags", "tags")],
        ..FieldMapping::default()
    }
}

const COLUMNS: &[&str] = &["id", "name", "signup_ts", "user_id", "plan", "tags"];

fn row() -> Vec<Value> {
    vec![
        Value::Int(7),
        Value::from("Signed Up"),
        Value::Int(1_699_999_000),
        Value::from("u-1"),
        Value::Numeric("12.50".into()),
        Value::Array(vec![Value::from("a"), Value::Null]),
    ]
}

fn map(mapping: &FieldMapping, row: &[Value]) -> Result<MappedRecord, Vec<RowFailure>> {
    map_event(
        mapping,
        &EventOptions::default(),
        &columns(COLUMNS),
        row,
        1234,
        NOW,
    )
}

fn failures(mapping: &FieldMapping, row: &[Value]) -> Vec<RowFailure> {
    map(mapping, row).unwrap_err()
}

#[test]
fn maps_a_row_to_the_exact_event_json() {
    let record = map(&mapping(), &row()).unwrap();
    let id = InsertId::derive(&[b"7"]);
    assert_eq!(record.key, id.as_str());
    assert_eq!(
        String::from_utf8(record.json).unwrap(),
        format!(
            r#"{{"event":"Signed Up","properties":{{"time":1699999000000,"distinct_id":"u-1","$insert_id":"{id}","Plan":12.5,"tags":["a",null],"ip":0}}}}"#
        )
    );
}

#[test]
fn json_matches_the_domain_event_record() {
    let record = map(&mapping(), &row()).unwrap();
    let mut properties = Map::new();
    properties.insert("Plan".into(), json!(12.5));
    properties.insert("tags".into(), json!(["a", null]));
    properties.insert("ip".into(), json!(0));
    let domain = EventRecord {
        event: EventName::parse("Signed Up").unwrap(),
        time: EventTime::from_millis(1_699_999_000_000),
        distinct_id: DistinctId::parse("u-1").unwrap(),
        insert_id: InsertId::parse(record.key.clone()).unwrap(),
        properties,
    };
    assert_eq!(record.json, serde_json::to_vec(&domain).unwrap());
    assert_eq!(domain.check_limits(), Ok(record.json.len()));
}

#[test]
fn constants_mapped_ids_and_ip_options() {
    let mut m = mapping();
    m.event_name = Some(Source::Constant(json!("Purchase")));
    m.insert_id = col("user_id");
    m.properties.push(property("name", "ip"));
    let record = map(&m, &row()).unwrap();
    let json: Json = serde_json::from_slice(&record.json).unwrap();
    assert_eq!(json["event"], "Purchase");
    assert_eq!(record.key, "u-1");
    assert_eq!(json["properties"]["$insert_id"], "u-1");
    assert_eq!(json["properties"]["ip"], "Signed Up", "a mapped ip wins");

    let no_ip = map_event(
        &mapping(),
        &EventOptions { ip_zero: false },
        &columns(COLUMNS),
        &row(),
        1,
        NOW,
    )
    .unwrap();
    let json: Json = serde_json::from_slice(&no_ip.json).unwrap();
    assert!(json["properties"].get("ip").is_none());
}

#[test]
fn properties_keep_mapping_order() {
    let mut m = mapping();
    m.properties = vec![
        property("user_id", "z"),
        property("plan", "a"),
        property("id", "m"),
    ];
    let json = String::from_utf8(map(&m, &row()).unwrap().json).unwrap();
    let z = json.find("\"z\"").unwrap();
    let a = json.find("\"a\"").unwrap();
    let m = json.find("\"m\"").unwrap();
    assert!(z < a && a < m, "{json}");
}

#[test]
fn times_from_every_kind_of_column() {
    let ms = 1_699_999_000_123;
    for value in [
        Value::Int(ms),
        Value::Float(1_699_999_000.123),
        Value::Numeric("1699999000.123".into()),
        Value::Text("2023-11-14T21:56:40.123Z".into()),
        Value::Timestamp { ms },
        Value::Json(json!(ms)),
    ] {
        let mut r = row();
        r[2] = value.clone();
        let json: Json = serde_json::from_slice(&map(&mapping(), &r).unwrap().json).unwrap();
        assert_eq!(json["properties"]["time"], ms, "{value:?}");
    }
    let mut r = row();
    r[2] = Value::Date { days: 19_675 };
    let json: Json = serde_json::from_slice(&map(&mapping(), &r).unwrap().json).unwrap();
    assert_eq!(json["properties"]["time"], 19_675i64 * 86_400_000);
}

#[test]
fn a_bad_time_names_row_column_and_rule() {
    let mut r = row();
    r[2] = Value::Float(1e20);
    assert_eq!(
        failures(&mapping(), &r),
        [RowFailure {
            field: "time".into(),
            column: "signup_ts".into(),
            rule: "epoch_number",
            message: "row 1234, column `signup_ts`: `time` is invalid: 100000000000000000000 is out of range; expected seconds or milliseconds since the epoch".into(),
        }]
    );
    r[2] = Value::Int(1_000);
    let f = failures(&mapping(), &r);
    assert_eq!((f[0].rule, f[0].column.as_str()), ("min_time", "signup_ts"));
    assert!(
        f[0].message.contains("before 1971-01-01"),
        "{}",
        f[0].message
    );
    r[2] = Value::Int(NOW + 2 * 3_600_000);
    assert_eq!(failures(&mapping(), &r)[0].rule, "max_future");
    r[2] = Value::Text("yesterday".into());
    assert_eq!(failures(&mapping(), &r)[0].rule, "time_type");
    r[2] = Value::Null;
    assert_eq!(failures(&mapping(), &r)[0].rule, "required");
}

#[test]
fn bad_ids_and_names_fail_with_their_rules() {
    let check = |index: usize, value: Value, field: &str, rule: &str| {
        let mut r = row();
        r[index] = value;
        let f = failures(&mapping(), &r);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!((f[0].field.as_str(), f[0].rule), (field, rule), "{f:?}");
        assert!(
            f[0].message.starts_with("row 1234, column `"),
            "{}",
            f[0].message
        );
    };
    check(3, Value::from("null"), "distinct_id", "denied_value");
    check(3, Value::Null, "distinct_id", "required");
    check(3, Value::Float(1.5), "distinct_id", "id_type");
    check(3, Value::from("x".repeat(256)), "distinct_id", "max_bytes");
    check(1, Value::from("  "), "event", "required");
    check(1, Value::Null, "event", "required");
    check(1, Value::from("e".repeat(256)), "event", "max_bytes");

    let mut m = mapping();
    m.insert_id = col("user_id");
    let mut r = row();
    r[3] = Value::from("has_underscore");
    let f = failures(&m, &r);
    assert_eq!(
        (f[0].field.as_str(), f[0].rule),
        ("$insert_id", "allowed_characters")
    );
}

#[test]
fn every_failure_of_a_row_is_reported() {
    let mut r = row();
    r[2] = Value::Text("soon".into());
    r[3] = Value::from("undefined");
    r[5] = Value::Json(json!({"a": {"b": {"c": [1]}}}));
    let f = failures(&mapping(), &r);
    let rules: Vec<_> = f.iter().map(|f| (f.field.as_str(), f.rule)).collect();
    assert_eq!(
        rules,
        [
            ("time", "time_type"),
            ("distinct_id", "denied_value"),
            ("properties.tags", "max_nesting_depth")
        ]
    );
    assert_eq!(f[2].column, "tags");
    assert!(
        f[2].message
            .starts_with("row 1234, column `tags`: `properties.tags` is invalid")
    );
}

#[test]
fn oversized_events_fail() {
    let mut m = mapping();
    m.properties = (0..5).map(|i| property("plan", &format!("p{i}"))).collect();
    let mut r = row();
    r[4] = Value::from("x".repeat(300_000));
    let f = failures(&m, &r);
    assert_eq!(
        (f[0].field.as_str(), f[0].rule),
        ("properties", "max_event_bytes")
    );
    assert!(
        f[0].message.starts_with("row 1234: the event is invalid"),
        "{}",
        f[0].message
    );
}

#[test]
fn mapping_problems_fail_every_row() {
    let mut m = mapping();
    m.time = col("signup");
    m.distinct_id = None;
    m.properties.push(property("plan", "Plan"));
    let f = failures(&m, &row());
    let rules: Vec<_> = f.iter().map(|f| (f.field.as_str(), f.rule)).collect();
    assert_eq!(
        rules,
        [
            ("time", "unknown_column"),
            ("distinct_id", "required"),
            ("properties.Plan", "duplicate_property"),
        ]
    );
    assert_eq!(
        f[0].message,
        "row 1234, column `signup`: the query returns no such column (it returns `id`, `name`, `signup_ts`, `user_id`, `plan`, `tags`)"
    );
    assert_eq!(
        f[1].message,
        "row 1234: `distinct_id` is not mapped; every event needs one"
    );

    let mut m = mapping();
    m.insert_id = Some(Source::Constant(json!("x")));
    m.event_name = Some(Source::Constant(json!("")));
    let rules: Vec<_> = failures(&m, &row()).iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["required", "constant_insert_id"]);

    let mapper = EventMapper::new(&mapping(), &EventOptions::default(), &columns(COLUMNS));
    assert_eq!(
        mapper.map(&row()[..2], 9, NOW).unwrap_err()[0].rule,
        "malformed_row"
    );
}

#[test]
fn too_many_properties_is_a_mapping_problem() {
    let mut m = mapping();
    // 3 required fields + 250 + `ip` = 254 properties, the most Mixpanel takes.
    m.properties = (0..250)
        .map(|i| property("plan", &format!("p{i}")))
        .collect();
    assert!(map(&m, &row()).is_ok());
    m.properties.push(property("plan", "one_too_many"));
    let f = failures(&m, &row());
    assert_eq!(
        (f[0].field.as_str(), f[0].rule),
        ("properties", "max_properties")
    );
}

proptest! {
    #[test]
    fn seconds_milliseconds_and_timestamps_agree(secs in 31_536_000i64..1_700_003_600) {
        let ms = secs * 1000;
        let time_of = |v: Value| {
            let mut r = row();
            r[2] = v;
            let json: Json = serde_json::from_slice(&map(&mapping(), &r).unwrap().json).unwrap();
            json["properties"]["time"].as_i64().unwrap()
        };
        prop_assert_eq!(time_of(Value::Int(secs)), ms);
        prop_assert_eq!(time_of(Value::Int(ms)), ms);
        prop_assert_eq!(time_of(Value::Timestamp { ms }), ms);
        prop_assert_eq!(time_of(Value::Numeric(secs.to_string())), ms);
        prop_assert_eq!(time_of(Value::Text(format!("{secs}.0"))), ms);
    }

    #[test]
    fn derived_ids_are_stable_and_follow_the_key_columns(
        id in any::<i64>(),
        user in "u[a-z0-9]{0,12}",
        other in any::<i64>(),
    ) {
        let mut m = mapping();
        m.insert_id = Some(Source::Derive { columns: vec!["id".into(), "user_id".into()] });
        let mut r = row();
        r[0] = Value::Int(id);
        r[3] = Value::from(user.as_str());
        let first = map(&m, &r).unwrap().key;
        let expected = InsertId::derive(&[id.to_string().as_bytes(), user.as_bytes()]);
        prop_assert_eq!(&first, expected.as_str());
        // The same key values give the same id whatever else changes, and whatever SQL type
        // the key column has.
        r[4] = Value::Int(other);
        r[0] = Value::Text(id.to_string());
        prop_assert_eq!(&map(&m, &r).unwrap().key, &first);
        r[0] = Value::Int(id.wrapping_add(1));
        prop_assert_ne!(&map(&m, &r).unwrap().key, &first);
    }

    #[test]
    fn mapped_events_always_pass_the_domain_rules(
        name in "[ -~]{1,40}",
        user in "[a-zA-Z0-9@.]{1,40}",
        plan in prop_oneof![
            any::<i64>().prop_map(Value::Int),
            ".{0,300}".prop_map(Value::Text),
            any::<f64>().prop_map(Value::Float),
        ],
    ) {
        let mut r = row();
        r[1] = Value::Text(name);
        r[3] = Value::Text(user);
        r[4] = plan;
        if let Ok(record) = map(&mapping(), &r) {
            let json: Json = serde_json::from_slice(&record.json).unwrap();
            let props = json["properties"].as_object().unwrap();
            prop_assert!(EventName::parse(json["event"].as_str().unwrap()).is_ok());
            prop_assert!(DistinctId::parse(props["distinct_id"].as_str().unwrap()).is_ok());
            prop_assert!(InsertId::parse(props["$insert_id"].as_str().unwrap()).is_ok());
            prop_assert!(mixsync_domain::rules::check_event_properties(props).is_ok());
        }
    }
}
