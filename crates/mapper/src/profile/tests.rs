use mixsync_domain::{
    DistinctId, GroupId, GroupKey, Modifiers, ProfileTarget, ProfileUpdate, PropertyMapping, Source,
};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::*;

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|c| (*c).to_owned()).collect()
}

fn col(name: &str) -> Option<Source> {
    Some(Source::Column(name.into()))
}

fn prop(column: &str, property: &str, operation: ProfileOperation) -> PropertyMapping {
    PropertyMapping {
        column: column.into(),
        property: property.into(),
        operation,
        unset_when_null: false,
    }
}

fn unset_when_null(p: PropertyMapping) -> PropertyMapping {
    PropertyMapping {
        unset_when_null: true,
        ..p
    }
}

const USER_COLUMNS: &[&str] = &[
    "user_id",
    "email",
    "name",
    "first_seen",
    "logins",
    "tags",
    "phone",
    "legacy",
];

/// Every operation once, mapped in an order unlike the output order.
fn user_mapping() -> FieldMapping {
    use ProfileOperation::*;
    FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![
            unset_when_null(prop("phone", "$phone", Set)),
            prop("tags", "tags", Union),
            prop("logins", "logins", Add),
            prop("first_seen", "first_seen", SetOnce),
            prop("email", "$email", Set),
            prop("name", "$name", Set),
            prop("legacy", "legacy_plan", Unset),
        ],
        ..FieldMapping::default()
    }
}

fn user_row() -> Vec<Value> {
    vec![
        Value::from("u-1"),
        Value::from("ada@example.com"),
        Value::from("Ada"),
        Value::Date { days: 19_675 },
        Value::Int(3),
        Value::Array(vec![Value::from("beta"), Value::Int(7)]),
        Value::Null,
        Value::from("ignored"),
    ]
}

fn users(mapping: &FieldMapping, options: &ProfileOptions, row: &[Value]) -> MappedRecordResult {
    map_profile(
        ObjectKind::UserProfiles,
        mapping,
        options,
        &columns(USER_COLUMNS),
        row,
        42,
    )
}

type MappedRecordResult = Result<MappedRecord, Vec<RowFailure>>;

fn user_json(mapping: &FieldMapping, row: &[Value]) -> String {
    String::from_utf8(
        users(mapping, &ProfileOptions::default(), row)
            .unwrap()
            .json,
    )
    .unwrap()
}

fn user_failures(mapping: &FieldMapping, row: &[Value]) -> Vec<RowFailure> {
    users(mapping, &ProfileOptions::default(), row).unwrap_err()
}

const GROUP_COLUMNS: &[&str] = &["company_id", "name", "seats", "domains"];

fn group_mapping() -> FieldMapping {
    FieldMapping {
        group_key: Some(Source::Constant(json!("company_id"))),
        group_id: col("company_id"),
        properties: vec![
            prop("name", "$name", ProfileOperation::Set),
            prop("seats", "seats", ProfileOperation::Add),
            prop("domains", "domains", ProfileOperation::Union),
        ],
        ..FieldMapping::default()
    }
}

fn group_row() -> Vec<Value> {
    vec![
        Value::Int(1001),
        Value::from("Acme"),
        Value::Numeric("12".into()),
        Value::Json(json!(["acme.com"])),
    ]
}

fn groups(mapping: &FieldMapping, options: &ProfileOptions, row: &[Value]) -> MappedRecordResult {
    map_profile(
        ObjectKind::GroupProfiles,
        mapping,
        options,
        &columns(GROUP_COLUMNS),
        row,
        7,
    )
}

#[test]
fn maps_a_user_row_to_the_exact_update_objects() {
    let record = users(&user_mapping(), &ProfileOptions::default(), &user_row()).unwrap();
    assert_eq!(record.key, "u-1");
    assert_eq!(
        String::from_utf8(record.json).unwrap(),
        concat!(
            r#"[{"$distinct_id":"u-1","$set":{"$email":"ada@example.com","$name":"Ada"},"$ip":"0"},"#,
            r#"{"$distinct_id":"u-1","$set_once":{"first_seen":"2023-11-14"},"$ip":"0"},"#,
            r#"{"$distinct_id":"u-1","$add":{"logins":3},"$ip":"0"},"#,
            r#"{"$distinct_id":"u-1","$union":{"tags":["beta",7]},"$ip":"0"},"#,
            r#"{"$distinct_id":"u-1","$unset":["$phone","legacy_plan"],"$ip":"0"}]"#,
        )
    );
}

#[test]
fn maps_a_group_row_to_the_exact_update_objects() {
    let options = ProfileOptions {
        ip_zero: true,
        ignore_time: true,
    };
    let record = groups(&group_mapping(), &options, &group_row()).unwrap();
    assert_eq!(record.key, "company_id/1001");
    assert_eq!(
        String::from_utf8(record.json).unwrap(),
        concat!(
            r#"[{"$group_key":"company_id","$group_id":"1001","$set":{"$name":"Acme"},"$ignore_time":true},"#,
            r#"{"$group_key":"company_id","$group_id":"1001","$add":{"seats":12},"$ignore_time":true},"#,
            r#"{"$group_key":"company_id","$group_id":"1001","$union":{"domains":["acme.com"]},"$ignore_time":true}]"#,
        ),
        "groups never carry `$ip`"
    );

    let mut m = group_mapping();
    m.group_key = col("name");
    let record = groups(&m, &ProfileOptions::default(), &group_row()).unwrap();
    assert_eq!(record.key, "Acme/1001");
}

#[test]
fn options_switch_ip_and_ignore_time() {
    let options = ProfileOptions {
        ip_zero: false,
        ignore_time: true,
    };
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![prop("email", "$email", ProfileOperation::Set)],
        ..FieldMapping::default()
    };
    let json = users(&m, &options, &user_row()).unwrap().json;
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"[{"$distinct_id":"u-1","$set":{"$email":"ada@example.com"},"$ignore_time":true}]"#
    );
}

#[test]
fn nulls_are_left_out_or_unset() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![
            prop("email", "$email", ProfileOperation::Set),
            unset_when_null(prop("name", "$name", ProfileOperation::SetOnce)),
            prop("logins", "logins", ProfileOperation::Add),
            unset_when_null(prop("tags", "tags", ProfileOperation::Union)),
        ],
        ..FieldMapping::default()
    };
    let mut row = user_row();
    row[1] = Value::Null;
    row[2] = Value::Json(Json::Null);
    row[4] = Value::Float(f64::NAN);
    row[5] = Value::Null;
    assert_eq!(
        user_json(&m, &row),
        r#"[{"$distinct_id":"u-1","$unset":["$name","tags"],"$ip":"0"}]"#
    );
    // Nothing to send but the identifier: an empty `$set`.
    let mut m2 = m.clone();
    for p in &mut m2.properties {
        p.unset_when_null = false;
    }
    assert_eq!(
        user_json(&m2, &row),
        r#"[{"$distinct_id":"u-1","$set":{},"$ip":"0"}]"#
    );
    let bare = FieldMapping {
        distinct_id: col("user_id"),
        ..FieldMapping::default()
    };
    assert_eq!(
        user_json(&bare, &user_row()),
        r#"[{"$distinct_id":"u-1","$set":{},"$ip":"0"}]"#
    );
    // A value that is not null is sent with its operation even with unset_when_null.
    row[2] = Value::from("Ada");
    assert_eq!(
        user_json(&m, &row),
        r#"[{"$distinct_id":"u-1","$set_once":{"$name":"Ada"},"$ip":"0"},{"$distinct_id":"u-1","$unset":["tags"],"$ip":"0"}]"#
    );
}

#[test]
fn append_and_remove_take_any_value() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![
            prop("name", "removed", ProfileOperation::Remove),
            prop("logins", "history", ProfileOperation::Append),
        ],
        ..FieldMapping::default()
    };
    assert_eq!(
        user_json(&m, &user_row()),
        concat!(
            r#"[{"$distinct_id":"u-1","$append":{"history":3},"$ip":"0"},"#,
            r#"{"$distinct_id":"u-1","$remove":{"removed":"Ada"},"$ip":"0"}]"#
        )
    );
    let mut groups_append = group_mapping();
    groups_append.properties[0].operation = ProfileOperation::Append;
    let f = groups(&groups_append, &ProfileOptions::default(), &group_row()).unwrap_err();
    assert_eq!(f[0].rule, "unsupported_operation");
    assert_eq!(f[0].field, "$append.$name");
    assert_eq!(f[0].column, "name");
}

#[test]
fn add_takes_numbers_only() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![prop("logins", "logins", ProfileOperation::Add)],
        ..FieldMapping::default()
    };
    for (value, sent) in [
        (Value::Int(-2), "-2"),
        (Value::Float(1.5), "1.5"),
        (Value::Numeric("12.50".into()), "12.5"),
        (Value::Json(json!(4)), "4"),
    ] {
        let mut row = user_row();
        row[4] = value;
        assert_eq!(
            user_json(&m, &row),
            format!(r#"[{{"$distinct_id":"u-1","$add":{{"logins":{sent}}},"$ip":"0"}}]"#)
        );
    }
    for value in [
        Value::from("3"),
        Value::Bool(true),
        Value::Numeric("NaN".into()),
        Value::Json(json!("3")),
        Value::Array(vec![Value::Int(1)]),
    ] {
        let mut row = user_row();
        row[4] = value.clone();
        let f = user_failures(&m, &row);
        assert_eq!(f.len(), 1, "{value:?}");
        assert_eq!(f[0].field, "$add.logins");
        assert_eq!(f[0].column, "logins");
        assert_eq!(f[0].rule, "operation_value");
    }
    let mut row = user_row();
    row[4] = Value::from("three");
    assert_eq!(
        user_failures(&m, &row)[0].message,
        r#"row 42, column `logins`: `$add.logins` is invalid: expected a number, got `"three"`"#
    );
}

#[test]
fn union_takes_lists_of_strings_or_numbers() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![prop("tags", "tags", ProfileOperation::Union)],
        ..FieldMapping::default()
    };
    let mut row = user_row();
    row[5] = Value::Array(vec![Value::Uuid([1; 16]), Value::Numeric("2.0".into())]);
    assert_eq!(
        user_json(&m, &row),
        r#"[{"$distinct_id":"u-1","$union":{"tags":["01010101-0101-0101-0101-010101010101",2.0]},"$ip":"0"}]"#
    );
    // An empty list adds nothing.
    for empty in [Value::Array(vec![]), Value::Json(json!([]))] {
        row[5] = empty;
        assert_eq!(
            user_json(&m, &row),
            r#"[{"$distinct_id":"u-1","$set":{},"$ip":"0"}]"#
        );
    }
    for bad in [
        Value::from("a,b"),
        Value::Json(json!({"a": 1})),
        Value::Json(json!([true])),
        Value::Array(vec![Value::Null]),
        Value::Array(vec![Value::Array(vec![Value::Int(1)])]),
    ] {
        row[5] = bad.clone();
        let f = user_failures(&m, &row);
        assert_eq!(
            (f[0].field.as_str(), f[0].column.as_str(), f[0].rule),
            ("$union.tags", "tags", "operation_value"),
            "{bad:?}"
        );
        assert!(
            f[0].message
                .contains("expected a list of strings or numbers"),
            "{}",
            f[0].message
        );
    }
}

#[test]
fn bad_identifiers_name_column_and_rule() {
    let check = |value: Value, rule: &str| {
        let mut row = user_row();
        row[0] = value.clone();
        let f = user_failures(&user_mapping(), &row);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            (f[0].field.as_str(), f[0].column.as_str(), f[0].rule),
            ("$distinct_id", "user_id", rule),
            "{value:?}"
        );
        assert!(
            f[0].message.starts_with("row 42, column `user_id`: "),
            "{f:?}"
        );
    };
    check(Value::Null, "required");
    check(Value::from(""), "required");
    check(Value::from("   "), "required");
    check(Value::from("undefined"), "denied_value");
    check(Value::Int(0), "denied_value");
    check(Value::Float(2.5), "id_type");
    check(Value::from("x".repeat(256)), "max_bytes");

    let mut row = group_row();
    row[0] = Value::Null;
    let f = groups(&group_mapping(), &ProfileOptions::default(), &row).unwrap_err();
    assert_eq!(
        f,
        [RowFailure {
            field: "$group_id".into(),
            column: "company_id".into(),
            rule: "required",
            message: "row 7, column `company_id`: `$group_id` is invalid: it is null; every group profile update needs one".into(),
        }]
    );
    let mut m = group_mapping();
    m.group_key = col("name");
    let mut row = group_row();
    row[1] = Value::from("");
    let f = groups(&m, &ProfileOptions::default(), &row).unwrap_err();
    assert_eq!((f[0].field.as_str(), f[0].rule), ("$group_key", "required"));
}

#[test]
fn every_failure_of_a_row_is_reported() {
    let mut row = user_row();
    row[0] = Value::Null;
    row[4] = Value::from("x");
    row[5] = Value::from("y");
    let f = user_failures(&user_mapping(), &row);
    let rules: Vec<(&str, &str)> = f.iter().map(|f| (f.field.as_str(), f.rule)).collect();
    assert_eq!(
        rules,
        [
            ("$distinct_id", "required"),
            ("$union.tags", "operation_value"),
            ("$add.logins", "operation_value"),
        ]
    );
}

#[test]
fn mapping_problems_fail_every_row() {
    let fail = |kind: ObjectKind, m: &FieldMapping| {
        map_profile(
            kind,
            m,
            &ProfileOptions::default(),
            &columns(USER_COLUMNS),
            &user_row(),
            3,
        )
        .unwrap_err()
    };
    let f = fail(ObjectKind::UserProfiles, &FieldMapping::default());
    assert_eq!(
        f,
        [RowFailure {
            field: "$distinct_id".into(),
            column: String::new(),
            rule: "required",
            message: "row 3: `distinct_id` is not mapped; map a column to it".into(),
        }]
    );
    let f = fail(ObjectKind::GroupProfiles, &FieldMapping::default());
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].field.as_str(), f[1].field.as_str()),
        ("$group_key", "$group_id")
    );

    let mut m = FieldMapping {
        group_key: Some(Source::Constant(json!("company_id"))),
        group_id: Some(Source::Constant(json!("acme"))),
        ..FieldMapping::default()
    };
    let f = fail(ObjectKind::GroupProfiles, &m);
    assert_eq!(
        (f[0].field.as_str(), f[0].rule),
        ("$group_id", "unsupported_source")
    );
    m.group_id = Some(Source::Derive {
        columns: vec!["name".into()],
    });
    assert_eq!(fail(ObjectKind::GroupProfiles, &m)[0].column, "name");
    m.group_id = col("nope");
    let f = fail(ObjectKind::GroupProfiles, &m);
    assert_eq!(
        (f[0].column.as_str(), f[0].rule),
        ("nope", "unknown_column")
    );
    m.group_id = col("user_id");
    m.group_key = Some(Source::Constant(json!("")));
    assert_eq!(fail(ObjectKind::GroupProfiles, &m)[0].rule, "required");

    let mut m = user_mapping();
    m.distinct_id = Some(Source::Constant(json!("null")));
    assert_eq!(fail(ObjectKind::UserProfiles, &m)[0].rule, "denied_value");

    let mut m = user_mapping();
    m.properties = vec![
        prop("email", "$email", ProfileOperation::Set),
        prop("name", "$email", ProfileOperation::Set),
        prop("name", "x", ProfileOperation::Delete),
        prop("name", "$distinct_id", ProfileOperation::Set),
        prop("gone", "gone", ProfileOperation::Set),
        prop("name", "", ProfileOperation::Set),
    ];
    let f = fail(ObjectKind::UserProfiles, &m);
    let got: Vec<(&str, &str, &str)> = f
        .iter()
        .map(|f| (f.field.as_str(), f.column.as_str(), f.rule))
        .collect();
    assert_eq!(
        got,
        [
            ("$set.$email", "name", "duplicate_property"),
            ("$delete.x", "name", "delete_property"),
            ("$set.$distinct_id", "name", "reserved_property"),
            ("$set.gone", "gone", "unknown_column"),
            ("$set.", "name", "required"),
        ]
    );
    assert_eq!(
        fail(ObjectKind::Events, &user_mapping())[0].rule,
        "unsupported_object"
    );
}

#[test]
fn special_properties_are_just_names() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: [
            "$email",
            "$name",
            "$phone",
            "$first_name",
            "$last_name",
            "$avatar",
            "$created",
        ]
        .iter()
        .map(|name| prop("name", name, ProfileOperation::Set))
        .collect(),
        ..FieldMapping::default()
    };
    let json: Json = serde_json::from_str(&user_json(&m, &user_row())).unwrap();
    let set = json[0]["$set"].as_object().unwrap();
    assert_eq!(set.len(), 7);
    assert!(set.values().all(|v| v == "Ada"));
}

#[test]
fn a_row_with_the_wrong_number_of_values_fails() {
    let f = user_failures(&user_mapping(), &user_row()[..3]);
    assert_eq!(f[0].rule, "malformed_row");
}

fn huge(bytes: usize) -> Value {
    Value::from("x".repeat(bytes))
}

#[test]
fn updates_of_a_megabyte_or_more_fail_naming_the_largest_column() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![
            prop("email", "$email", ProfileOperation::Set),
            prop("name", "bio", ProfileOperation::Set),
            prop("phone", "notes", ProfileOperation::SetOnce),
        ],
        ..FieldMapping::default()
    };
    // {"$distinct_id":"u-1","$set":{"$email":"ada@example.com","bio":"…"},"$ip":"0"}
    let overhead =
        r#"{"$distinct_id":"u-1","$set":{"$email":"ada@example.com","bio":""},"$ip":"0"}"#.len();
    let largest_ok = MAX_PROFILE_UPDATE_BYTES - TOKEN_ALLOWANCE - overhead - 1;
    let mut row = user_row();
    row[2] = huge(largest_ok);
    row[6] = huge(10);
    let record = users(&m, &ProfileOptions::default(), &row).unwrap();
    assert_eq!(
        record.json.len(),
        1 + (largest_ok + overhead)
            + 1
            + r#"{"$distinct_id":"u-1","$set_once":{"notes":"xxxxxxxxxx"},"$ip":"0"}"#.len()
            + 1
    );
    row[2] = huge(largest_ok + 1);
    let f = users(&m, &ProfileOptions::default(), &row).unwrap_err();
    assert_eq!(
        f,
        [RowFailure {
            field: "$set".into(),
            column: "name".into(),
            rule: "update_too_large",
            message: format!(
                "row 42, column `name`: the `$set` update is {MAX_PROFILE_UPDATE_BYTES} bytes of JSON with the project token; Mixpanel takes updates under {MAX_PROFILE_UPDATE_BYTES} bytes"
            ),
        }]
    );
    // Each update object is measured alone: two large ones of different operations fit.
    row[2] = huge(600_000);
    row[6] = huge(600_000);
    assert!(users(&m, &ProfileOptions::default(), &row).is_ok());
}

#[test]
fn list_properties_are_capped_at_256_kb() {
    let m = FieldMapping {
        distinct_id: col("user_id"),
        properties: vec![prop("tags", "tags", ProfileOperation::Set)],
        ..FieldMapping::default()
    };
    let mut row = user_row();
    row[5] = Value::Json(json!(["x".repeat(MAX_PROFILE_COLLECTION_BYTES)]));
    let f = user_failures(&m, &row);
    assert_eq!(
        (f[0].field.as_str(), f[0].column.as_str(), f[0].rule),
        ("$set.tags", "tags", "max_collection_bytes")
    );
    row[5] = Value::Json(json!(["x".repeat(MAX_PROFILE_COLLECTION_BYTES - 4)]));
    assert!(users(&m, &ProfileOptions::default(), &row).is_ok());
}

// ---- properties ----

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        "-?[0-9]{1,20}(\\.[0-9]{0,6})?|NaN|1e400".prop_map(Value::Numeric),
        "[a-z ]{0,8}|null|0".prop_map(Value::Text),
        any::<[u8; 16]>().prop_map(Value::Uuid),
        any::<i32>().prop_map(|days| Value::Date { days }),
        prop_oneof![
            Just(json!(null)),
            Just(json!(3)),
            Just(json!("s")),
            Just(json!(["a", 1])),
            Just(json!([])),
            Just(json!({"k": [1, null]})),
        ]
        .prop_map(Value::Json),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
}

fn operation() -> impl Strategy<Value = ProfileOperation> {
    prop::sample::select(OPERATION_ORDER.to_vec())
}

/// A user mapping over columns c0..cN, one property per column, and a row for it.
fn case() -> impl Strategy<Value = (FieldMapping, Vec<String>, Vec<Value>, ProfileOptions)> {
    (
        prop::collection::vec((operation(), any::<bool>(), value()), 0..8),
        "[a-z0-9]{1,12}",
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(props, id, ip_zero, ignore_time)| {
            let mut columns = vec!["id".to_owned()];
            let mut row = vec![Value::Text(format!("user-{id}"))];
            let mut properties = Vec::new();
            for (i, (operation, unset, value)) in props.into_iter().enumerate() {
                columns.push(format!("c{i}"));
                row.push(value);
                properties.push(PropertyMapping {
                    column: format!("c{i}"),
                    property: format!("p{i}"),
                    operation,
                    unset_when_null: unset,
                });
            }
            let mapping = FieldMapping {
                distinct_id: col("id"),
                properties,
                ..FieldMapping::default()
            };
            (
                mapping,
                columns,
                row,
                ProfileOptions {
                    ip_zero,
                    ignore_time,
                },
            )
        })
}

/// What the mapper should send, built independently as domain `ProfileUpdate`s, or `None`
/// when some value does not fit its operation.
fn reference(mapping: &FieldMapping, row: &[Value], options: &ProfileOptions) -> Option<Json> {
    let id = row[0].to_text().unwrap().into_owned();
    let mut updates = Vec::new();
    for op in OPERATION_ORDER {
        let mut value = if op == ProfileOperation::Unset {
            json!([])
        } else {
            json!({})
        };
        for (p, v) in mapping.properties.iter().zip(&row[1..]) {
            let null = matches!(v, Value::Null | Value::Json(Json::Null))
                || matches!(v, Value::Float(f) if !f.is_finite());
            let target = if p.operation == ProfileOperation::Unset || (null && p.unset_when_null) {
                ProfileOperation::Unset
            } else if null {
                continue;
            } else {
                p.operation
            };
            if target != op {
                continue;
            }
            if op == ProfileOperation::Unset {
                value.as_array_mut()?.push(json!(p.property));
            } else {
                let v = v.to_json();
                if op == ProfileOperation::Union && v.as_array().is_some_and(Vec::is_empty) {
                    continue;
                }
                value.as_object_mut()?.insert(p.property.clone(), v);
            }
        }
        let empty = value.as_array().is_some_and(Vec::is_empty)
            || value.as_object().is_some_and(serde_json::Map::is_empty);
        if empty {
            continue;
        }
        let mut update = ProfileUpdate::new(
            ProfileTarget::User(DistinctId::parse_profile(id.clone()).ok()?),
            op,
            value,
        )
        .ok()?;
        update.modifiers = Modifiers {
            ip: options.ip_zero.then(|| "0".to_owned()),
            ignore_time: options.ignore_time,
        };
        let mut json = update.to_json("");
        json.as_object_mut()?.shift_remove("$token");
        updates.push(json);
    }
    if updates.is_empty() {
        let target = ProfileTarget::User(DistinctId::parse_profile(id).ok()?);
        let mut update = ProfileUpdate::new(target, ProfileOperation::Set, json!({})).ok()?;
        update.modifiers = Modifiers {
            ip: options.ip_zero.then(|| "0".to_owned()),
            ignore_time: options.ignore_time,
        };
        let mut json = update.to_json("");
        json.as_object_mut()?.shift_remove("$token");
        updates.push(json);
    }
    Some(Json::Array(updates))
}

proptest! {
    #[test]
    fn updates_match_the_domain_model((mapping, columns, row, options) in case()) {
        let mapped = map_profile(ObjectKind::UserProfiles, &mapping, &options, &columns, &row, 1);
        match (mapped, reference(&mapping, &row, &options)) {
            (Ok(record), Some(expected)) => {
                let got: Json = serde_json::from_slice(&record.json).unwrap();
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(record.key, row[0].to_text().unwrap().into_owned());
                // One operation per object, in the fixed order, each starting with the id.
                let ops: Vec<usize> = got.as_array().unwrap().iter().map(|u| {
                    let keys: Vec<&String> = u.as_object().unwrap().keys().collect();
                    assert_eq!(keys[0], "$distinct_id");
                    OPERATION_ORDER.iter().position(|op| op.key() == keys[1]).unwrap()
                }).collect();
                prop_assert!(ops.windows(2).all(|w| w[0] < w[1]), "{:?}", ops);
                for update in got.as_array().unwrap() {
                    let text = serde_json::to_string(update).unwrap();
                    prop_assert!(text.starts_with(r#"{"$distinct_id":"#), "{}", text);
                }
            }
            (Err(failures), None) => {
                prop_assert!(!failures.is_empty());
                for f in &failures {
                    prop_assert_eq!(f.rule, "operation_value");
                    prop_assert!(f.message.starts_with("row 1, column `c"), "{}", f.message);
                }
            }
            (got, expected) => prop_assert!(false, "mapper {:?} vs reference {:?}", got, expected),
        }
    }

    #[test]
    fn group_keys_join_key_and_id(key in "[a-z_]{1,20}", id in "[A-Za-z0-9 ]{1,20}") {
        let mapping = FieldMapping {
            group_key: Some(Source::Constant(json!(key.clone()))),
            group_id: col("id"),
            ..FieldMapping::default()
        };
        let record = map_profile(
            ObjectKind::GroupProfiles,
            &mapping,
            &ProfileOptions::default(),
            &columns(&["id"]),
            &[Value::from(id.as_str())],
            1,
        );
        let record = record.unwrap();
        prop_assert_eq!(&record.key, &format!("{key}/{id}"));
        let target = ProfileTarget::Group {
            key: GroupKey::parse(key).unwrap(),
            id: GroupId::parse(id).unwrap(),
        };
        let mut expected = ProfileUpdate::new(target, ProfileOperation::Set, json!({}))
            .unwrap()
            .to_json("");
        expected.as_object_mut().unwrap().shift_remove("$token");
        let got: Json = serde_json::from_slice(&record.json).unwrap();
        prop_assert_eq!(got, json!([expected]));
    }
}
