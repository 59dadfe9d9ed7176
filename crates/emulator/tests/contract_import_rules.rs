//! CONTRACT.md, `POST /import` step 7: the per-event rules table, one test per row, plus the order in
//! which the rules are applied.
//!
//! Each rejection is checked in a strict batch `[valid, bad]`: the answer is the 400 naming index 1 and
//! counting the valid event, and afterwards exactly the valid event has been stored.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use serde_json::{Map, Value, json};

static NEXT_VALID: AtomicUsize = AtomicUsize::new(0);

/// Sends `[valid, bad]` (bad given as raw bytes) and checks the answer and the store.
async fn assert_rejected_raw(
    emu: &Emu,
    bad: &[u8],
    insert_id: Option<&str>,
    field: &str,
    message: &str,
) {
    let good = event(
        "Valid",
        "u-valid",
        &format!("valid-{}", NEXT_VALID.fetch_add(1, Ordering::Relaxed)),
    );
    let before = emu.event_list(1).await;
    let body = raw_array(&[&serde_json::to_vec(&good).unwrap(), bad]);
    let resp = emu
        .post("/import?strict=1")
        .token()
        .content_type("application/json")
        .body(body)
        .send()
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (
            400,
            strict_failure(vec![failure(1, insert_id, field, message)], 1)
        ),
        "bad event: {}",
        String::from_utf8_lossy(bad)
    );
    let mut expected = before;
    expected.push(good);
    assert_eq!(
        emu.event_list(1).await,
        expected,
        "only the valid event is stored"
    );
}

async fn assert_rejected(
    emu: &Emu,
    bad: &Value,
    insert_id: Option<&str>,
    field: &str,
    message: &str,
) {
    assert_rejected_raw(
        emu,
        &serde_json::to_vec(bad).unwrap(),
        insert_id,
        field,
        message,
    )
    .await;
}

/// Imports `ev` alone and expects it to be accepted.
async fn assert_accepted(emu: &Emu, ev: &Value) {
    let resp = emu.import(std::slice::from_ref(ev)).await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, import_ok(1)),
        "event: {ev}"
    );
}

/// The properties of a valid event as raw JSON text (without the closing brace), for raw bodies.
fn raw_event(name: &str, insert_id: &str, extra: &str) -> Vec<u8> {
    let mut s =
        format!(r#"{{"event":"{name}","properties":{{"time":{},"distinct_id":"u1","$insert_id":"{insert_id}""#, now_s())
            .into_bytes();
    s.extend_from_slice(extra.as_bytes());
    s.extend_from_slice(b"}}");
    s
}

fn raw_event_bytes(name: &[u8], insert_id: &str, extra: &[u8]) -> Vec<u8> {
    let mut s = b"{\"event\":\"".to_vec();
    s.extend_from_slice(name);
    s.extend_from_slice(
        format!(
            r#"","properties":{{"time":{},"distinct_id":"u1","$insert_id":"{insert_id}""#,
            now_s()
        )
        .as_bytes(),
    );
    s.extend_from_slice(extra);
    s.extend_from_slice(b"}}");
    s
}

/// An event whose compact JSON is exactly `len` bytes (padded through a string property).
fn event_of_len(len: usize, insert_id: &str) -> Value {
    let base = with_prop(event("Big", "u1", insert_id), "pad", json!(""));
    let base_len = serde_json::to_vec(&base).unwrap().len();
    let ev = with_prop(base, "pad", json!("a".repeat(len - base_len)));
    assert_eq!(serde_json::to_vec(&ev).unwrap().len(), len);
    ev
}

fn object_with_keys(n: usize) -> Value {
    let map: Map<String, Value> = (0..n).map(|i| (format!("k{i}"), json!(1))).collect();
    Value::Object(map)
}

// ---- rule 1: valid UTF-8 ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_invalid_utf8_in_a_property_value() {
    let emu = Emu::start().await;
    let bad = raw_event_bytes(b"E", "utf-1", b",\"name\":\"ab\xff\xfecd\"");
    assert_rejected_raw(
        &emu,
        &bad,
        Some("utf-1"),
        "properties.name",
        "properties.name is invalid: string should be valid utf8",
    )
    .await;
    let bad = raw_event_bytes(b"E", "utf-2", b",\"other\":\"\xc3\x28\"");
    assert_rejected_raw(
        &emu,
        &bad,
        Some("utf-2"),
        "properties.other",
        "properties.other is invalid: string should be valid utf8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_lone_surrogate_escape() {
    let emu = Emu::start().await;
    for (i, escape) in [r"\ud800", r"\udfff", r"x\ud83dy"].into_iter().enumerate() {
        let id = format!("sur-{i}");
        let bad = raw_event_bytes(b"E", &id, format!(r#","name":"{escape}""#).as_bytes());
        assert_rejected_raw(
            &emu,
            &bad,
            Some(&id),
            "properties.name",
            "properties.name is invalid: string should be valid utf8",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_a_surrogate_pair_escape() {
    let emu = Emu::start().await;
    let body = raw_array(&[&raw_event("E", "pair-1", r#","name":"\ud83d\ude00""#)]);
    emu.post("/import")
        .token()
        .content_type("application/json")
        .body(body)
        .send()
        .await
        .assert(200, &import_ok(1));
    assert_eq!(
        emu.event_list(1).await[0]["properties"]["name"],
        json!("😀")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_invalid_utf8_in_the_event_name() {
    let emu = Emu::start().await;
    let bad = raw_event_bytes(b"Sign\xffed Up", "utf-ev", b"");
    assert_rejected_raw(
        &emu,
        &bad,
        Some("utf-ev"),
        "event",
        "event is invalid: string should be valid utf8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_invalid_utf8_in_a_property_name() {
    let emu = Emu::start().await;
    let bad = raw_event_bytes(b"E", "utf-key", b",\"na\xffme\":\"v\"");
    assert_rejected_raw(
        &emu,
        &bad,
        Some("utf-key"),
        "properties",
        "properties is invalid: string should be valid utf8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_utf8_before_every_other_rule() {
    let emu = Emu::start().await;
    // Also lacks `time` (rule 7) and has an extra top-level key (rule 4).
    let bad = b"{\"event\":\"E\",\"properties\":{\"distinct_id\":\"u\",\"$insert_id\":\"utf-first\",\"p\":\"\xff\"},\"x\":1}";
    assert_rejected_raw(
        &emu,
        bad,
        Some("utf-first"),
        "properties.p",
        "properties.p is invalid: string should be valid utf8",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_invalid_utf8_in_an_ndjson_line_as_one_event() {
    let emu = Emu::start().await;
    let good = event("A", "u", "nd-utf-ok");
    let mut body = serde_json::to_vec(&good).unwrap();
    body.push(b'\n');
    body.extend(raw_event_bytes(b"E", "nd-utf", b",\"p\":\"\xff\""));
    body.push(b'\n');
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/x-ndjson")
        .body(body)
        .send()
        .await;
    resp.assert(
        400,
        &strict_failure(
            vec![failure(
                1,
                Some("nd-utf"),
                "properties.p",
                "properties.p is invalid: string should be valid utf8",
            )],
            1,
        ),
    );
    assert_eq!(emu.event_list(1).await, vec![good]);
}

// ---- rule 2: under 1 MB ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_event_of_1_mb() {
    let emu = Emu::start().await;
    let bad = event_of_len(1_048_576, "big-1");
    assert_rejected(
        &emu,
        &bad,
        Some("big-1"),
        "event",
        "event is too large: 1048576 bytes (must be under 1048576)",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_an_event_just_under_1_mb() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &event_of_len(1_048_575, "big-2")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_the_event_size_before_its_shape() {
    let emu = Emu::start().await;
    let bad = json!("x".repeat(1_048_576)); // 1048578 bytes with the quotes
    assert_rejected(
        &emu,
        &bad,
        None,
        "event",
        "event is too large: 1048578 bytes (must be under 1048576)",
    )
    .await;
}

// ---- rule 3: an object ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_event_that_is_not_an_object() {
    let emu = Emu::start().await;
    for bad in [
        json!(5),
        json!("Signed Up"),
        json!([]),
        json!([{"event": "E"}]),
        json!(null),
        json!(true),
    ] {
        assert_rejected(
            &emu,
            &bad,
            None,
            "event",
            "event must be an object with 'event' and 'properties'",
        )
        .await;
    }
}

// ---- rule 4: only `event` and `properties` ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_top_level_keys_other_than_event_and_properties() {
    let emu = Emu::start().await;
    let mut bad = event("E", "u", "top-1");
    bad["time"] = json!(now_s());
    assert_rejected(
        &emu,
        &bad,
        Some("top-1"),
        "time",
        "'time' is not allowed: an event has only 'event' and 'properties'",
    )
    .await;
    // Checked before the presence of `event`.
    let bad = json!({"properties": event("E", "u", "top-2")["properties"].clone(), "$insert_id": "top-2"});
    assert_rejected(
        &emu,
        &bad,
        Some("top-2"),
        "$insert_id",
        "'$insert_id' is not allowed: an event has only 'event' and 'properties'",
    )
    .await;
}

// ---- rule 5: `event` a non-empty string ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_missing_or_empty_event_name() {
    let emu = Emu::start().await;
    let props = event("E", "u", "name-1")["properties"].clone();
    for bad in [
        json!({"properties": props.clone()}),
        json!({"event": "", "properties": props.clone()}),
        json!({"event": 5, "properties": props.clone()}),
        json!({"event": null, "properties": props.clone()}),
        json!({"event": ["E"], "properties": props.clone()}),
    ] {
        assert_rejected(
            &emu,
            &bad,
            Some("name-1"),
            "event",
            "'event' must be a non-empty string",
        )
        .await;
    }
}

// ---- rule 6: `properties` an object ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_missing_or_non_object_properties() {
    let emu = Emu::start().await;
    for bad in [
        json!({"event": "E"}),
        json!({"event": "E", "properties": []}),
        json!({"event": "E", "properties": "x"}),
        json!({"event": "E", "properties": null}),
        json!({"event": "E", "properties": [{"time": 1, "distinct_id": "u", "$insert_id": "p-1"}]}),
    ] {
        assert_rejected(
            &emu,
            &bad,
            None,
            "properties",
            "'properties' must be an object",
        )
        .await;
    }
}

// ---- rules 7–10: time ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_missing_time() {
    let emu = Emu::start().await;
    let bad = without_prop(event("E", "u", "t-1"), "time");
    assert_rejected(
        &emu,
        &bad,
        Some("t-1"),
        "properties.time",
        "'properties.time' must be specified",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_time_that_is_not_an_integer() {
    let emu = Emu::start().await;
    let message = "'properties.time' is invalid: must be specified as seconds since epoch";
    let now = now_s();
    for time in [
        json!(now as f64 + 0.5),
        json!(now.to_string()),
        json!(true),
        json!([now]),
        json!({"s": now}),
    ] {
        let bad = with_prop(event("E", "u", "t-2"), "time", time);
        assert_rejected(&emu, &bad, Some("t-2"), "properties.time", message).await;
    }
    // Integers beyond i64.
    for time in [
        "99999999999999999999",
        "18446744073709551615",
        "-99999999999999999999",
    ] {
        let bad = format!(
            r#"{{"event":"E","properties":{{"time":{time},"distinct_id":"u","$insert_id":"t-3"}}}}"#
        );
        assert_rejected_raw(
            &emu,
            bad.as_bytes(),
            Some("t-3"),
            "properties.time",
            message,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_time_before_1971() {
    let emu = Emu::start().await;
    let message = "'properties.time' is invalid: must be after 1971-01-01";
    // 31536000 s is 1971-01-01T00:00:00Z; values from 10^10 up are milliseconds.
    // 10^10 is read as milliseconds: 1970-04-26.
    for time in [31_535_999_i64, 0, -1, 1, 31_535_999_999, 10_000_000_000] {
        let bad = with_prop(event("E", "u", "t-4"), "time", json!(time));
        assert_rejected(&emu, &bad, Some("t-4"), "properties.time", message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_time_from_1971_in_seconds_and_milliseconds() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "t-5"), "time", json!(31_536_000)),
    )
    .await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "t-6"), "time", json!(31_536_000_000_i64)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_time_more_than_an_hour_ahead() {
    let emu = Emu::start().await;
    let message = "'properties.time' is invalid: must not be more than 1 hour in the future";
    for time in [
        now_s() + 3605,
        now_ms() + 3_605_000,
        9_999_999_999,
        now_s() + 86_400 * 365,
    ] {
        let bad = with_prop(event("E", "u", "t-8"), "time", json!(time));
        assert_rejected(&emu, &bad, Some("t-8"), "properties.time", message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_time_up_to_an_hour_ahead() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "t-9"), "time", json!(now_s() + 3595)),
    )
    .await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "t-10"), "time", json!(now_ms() + 3_595_000)),
    )
    .await;
}

// ---- rules 11–13: distinct_id ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_missing_distinct_id() {
    let emu = Emu::start().await;
    let bad = without_prop(event("E", "u", "d-1"), "distinct_id");
    assert_rejected(
        &emu,
        &bad,
        Some("d-1"),
        "properties.distinct_id",
        "'properties.distinct_id' must be specified",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_distinct_id_that_is_not_a_string() {
    let emu = Emu::start().await;
    for id in [
        json!(123),
        json!(true),
        json!(["u"]),
        json!({"id": "u"}),
        json!(1.5),
    ] {
        let bad = with_prop(event("E", "u", "d-2"), "distinct_id", id);
        assert_rejected(
            &emu,
            &bad,
            Some("d-2"),
            "properties.distinct_id",
            "'properties.distinct_id' is invalid: must be a string",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_denied_distinct_id() {
    let emu = Emu::start().await;
    for value in [
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "true",
        "false",
        "[]",
        "{}",
    ] {
        let bad = with_prop(event("E", "u", "d-3"), "distinct_id", json!(value));
        assert_rejected(
            &emu,
            &bad,
            Some("d-3"),
            "properties.distinct_id",
            &format!("'properties.distinct_id' is invalid: '{value}' is not a valid distinct_id"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_denies_distinct_ids_case_insensitively_and_trimmed() {
    let emu = Emu::start().await;
    for value in ["NULL", "Anonymous", " anon ", "\tUndefined\n", "N/A", "  0"] {
        let bad = with_prop(event("E", "u", "d-4"), "distinct_id", json!(value));
        let resp = emu.import(&[bad]).await;
        assert_eq!(resp.status, 400, "{value:?}: {}", resp.text());
        let record = &resp.json()["failed_records"][0];
        assert_eq!(
            record["field"],
            json!("properties.distinct_id"),
            "{value:?}"
        );
        let message = record["message"].as_str().unwrap();
        assert!(
            message.starts_with("'properties.distinct_id' is invalid: '")
                && message.ends_with("' is not a valid distinct_id"),
            "{value:?}: {message}"
        );
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_an_empty_or_merely_similar_distinct_id() {
    let emu = Emu::start().await;
    for (i, value) in [
        "",
        "nullify",
        "anon-42",
        "00000000-0000-0000-0000-000000000001",
        "-10",
    ]
    .into_iter()
    .enumerate()
    {
        assert_accepted(&emu, &event("E", value, &format!("d-ok-{i}"))).await;
    }
}

// ---- rules 14–18: $insert_id ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_missing_insert_id() {
    let emu = Emu::start().await;
    let bad = without_prop(event("E", "u", "x"), "$insert_id");
    assert_rejected(
        &emu,
        &bad,
        None,
        "$insert_id",
        "'$insert_id' must be specified",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_insert_id_that_is_not_a_string() {
    let emu = Emu::start().await;
    for id in [json!(5), json!(true), json!(["a"]), json!({"a": 1})] {
        let bad = with_prop(event("E", "u", "x"), "$insert_id", id);
        assert_rejected(
            &emu,
            &bad,
            None,
            "$insert_id",
            "'$insert_id' is invalid: must be a string",
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_insert_id_over_36_bytes() {
    let emu = Emu::start().await;
    let message = "'$insert_id' is invalid: must be at most 36 bytes";
    for id in [
        "a".repeat(37),
        "é".repeat(19),
        format!("{}-x", "0".repeat(36)),
    ] {
        let bad = with_prop(event("E", "u", "x"), "$insert_id", json!(id));
        assert_rejected(&emu, &bad, Some(id.as_str()), "$insert_id", message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_an_insert_id_of_36_bytes() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &event("E", "u", &"a".repeat(36))).await;
    assert_accepted(
        &emu,
        &event("E", "u", "123e4567-e89b-12d3-a456-426614174000"),
    )
    .await;
    assert_accepted(&emu, &event("E", "u", "X")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_an_insert_id_with_other_characters() {
    let emu = Emu::start().await;
    let message =
        "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters";
    for id in [
        "a_b", "a b", "", "a.b", "é", "abc/def", "n/a", "<nil>", "[]",
    ] {
        let bad = with_prop(event("E", "u", "x"), "$insert_id", json!(id));
        assert_rejected(&emu, &bad, Some(id), "$insert_id", message).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_reserved_insert_id() {
    let emu = Emu::start().await;
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "na",
        "undefined",
        "unknown",
        "0",
        "-1",
        "true",
        "false",
    ] {
        let bad = with_prop(event("E", "u", "x"), "$insert_id", json!(id));
        assert_rejected(
            &emu,
            &bad,
            Some(id),
            "$insert_id",
            &format!("'$insert_id' is invalid: '{id}' is a reserved value"),
        )
        .await;
    }
}

// ---- rule 19: fewer than 255 properties ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_255_properties() {
    let emu = Emu::start().await;
    // time, distinct_id and $insert_id count: 3 + 252 = 255.
    let mut bad = event("E", "u", "many-props");
    for i in 0..252 {
        bad = with_prop(bad, &format!("p{i}"), json!(i));
    }
    assert_rejected(
        &emu,
        &bad,
        Some("many-props"),
        "properties",
        "'properties' is invalid: must have fewer than 255 properties",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_254_properties() {
    let emu = Emu::start().await;
    let mut ev = event("E", "u", "props-254");
    for i in 0..251 {
        ev = with_prop(ev, &format!("p{i}"), json!(i));
    }
    assert_eq!(ev["properties"].as_object().unwrap().len(), 254);
    assert_accepted(&emu, &ev).await;
}

// ---- rules 20–23: per property ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_objects_nested_deeper_than_3() {
    let emu = Emu::start().await;
    let bad = with_prop(
        event("E", "u", "deep"),
        "obj",
        json!({"a": {"b": {"c": {"d": 1}}}}),
    );
    assert_rejected(
        &emu,
        &bad,
        Some("deep"),
        "properties.obj",
        "'properties.obj' is invalid: nested objects must be at most 3 levels deep",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_objects_nested_3_deep() {
    let emu = Emu::start().await;
    let ev = with_prop(
        event("E", "u", "deep-ok"),
        "obj",
        json!({"a": {"b": {"c": 1}}, "x": {"y": 2}}),
    );
    assert_accepted(&emu, &ev).await;
    assert_eq!(emu.event_list(1).await, vec![ev]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_nested_object_with_255_keys() {
    let emu = Emu::start().await;
    let message = "'properties.obj' is invalid: objects must have fewer than 255 keys";
    let bad = with_prop(event("E", "u", "keys-1"), "obj", object_with_keys(255));
    assert_rejected(&emu, &bad, Some("keys-1"), "properties.obj", message).await;
    let bad = with_prop(
        event("E", "u", "keys-2"),
        "obj",
        json!({"inner": object_with_keys(255)}),
    );
    assert_rejected(&emu, &bad, Some("keys-2"), "properties.obj", message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_a_nested_object_with_254_keys() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "keys-ok"), "obj", object_with_keys(254)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_list_with_255_items() {
    let emu = Emu::start().await;
    let message = "'properties.list' is invalid: lists must have fewer than 255 items";
    let bad = with_prop(event("E", "u", "list-1"), "list", json!(vec![0; 255]));
    assert_rejected(&emu, &bad, Some("list-1"), "properties.list", message).await;
    let bad = with_prop(
        event("E", "u", "list-2"),
        "list",
        json!({"inner": vec![0; 300]}),
    );
    assert_rejected(&emu, &bad, Some("list-2"), "properties.list", message).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_a_list_with_254_items() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "list-ok"), "list", json!(vec![0; 254])),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_rejects_a_list_or_object_property_over_8_kb() {
    let emu = Emu::start().await;
    // ["aaa…"] with 8189 a's is 8193 bytes of compact JSON.
    let bad = with_prop(event("E", "u", "kb-1"), "list", json!(["a".repeat(8189)]));
    assert_rejected(
        &emu,
        &bad,
        Some("kb-1"),
        "properties.list",
        "'properties.list' is invalid: list and object properties must be at most 8 KB",
    )
    .await;
    // {"s":"aaa…"} with 8185 a's is 8193 bytes.
    let obj = json!({"s": "a".repeat(8185)});
    assert_eq!(serde_json::to_vec(&obj).unwrap().len(), 8193);
    let bad = with_prop(event("E", "u", "kb-2"), "obj", obj);
    assert_rejected(
        &emu,
        &bad,
        Some("kb-2"),
        "properties.obj",
        "'properties.obj' is invalid: list and object properties must be at most 8 KB",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_accepts_a_list_or_object_property_of_exactly_8_kb() {
    let emu = Emu::start().await;
    let list = json!(["a".repeat(8188)]);
    let obj = json!({"s": "a".repeat(8184)});
    assert_eq!(serde_json::to_vec(&list).unwrap().len(), 8192);
    assert_eq!(serde_json::to_vec(&obj).unwrap().len(), 8192);
    assert_accepted(&emu, &with_prop(event("E", "u", "kb-ok-1"), "list", list)).await;
    assert_accepted(&emu, &with_prop(event("E", "u", "kb-ok-2"), "obj", obj)).await;
    // A long plain string is not limited: it is truncated when stored.
    assert_accepted(
        &emu,
        &with_prop(event("E", "u", "kb-ok-3"), "s", json!("a".repeat(20_000))),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_checks_properties_in_the_order_sent() {
    let emu = Emu::start().await;
    let too_long = json!(vec![0; 255]);
    let too_deep = json!({"a": {"b": {"c": {"d": 1}}}});
    let first_long = with_prop(
        with_prop(event("E", "u", "ord-1"), "first", too_long.clone()),
        "second",
        too_deep.clone(),
    );
    let text = serde_json::to_string(&first_long).unwrap();
    assert!(
        text.find("\"first\"").unwrap() < text.find("\"second\"").unwrap(),
        "key order is kept"
    );
    assert_rejected(
        &emu,
        &first_long,
        Some("ord-1"),
        "properties.first",
        "'properties.first' is invalid: lists must have fewer than 255 items",
    )
    .await;
    let first_deep = with_prop(
        with_prop(event("E", "u", "ord-2"), "first", too_deep),
        "second",
        too_long,
    );
    assert_rejected(
        &emu,
        &first_deep,
        Some("ord-2"),
        "properties.first",
        "'properties.first' is invalid: nested objects must be at most 3 levels deep",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reports_only_the_first_failing_rule_of_an_event() {
    let emu = Emu::start().await;
    // Rule 4 before 5 and 6.
    assert_rejected(
        &emu,
        &json!({"extra": 1}),
        None,
        "extra",
        "'extra' is not allowed: an event has only 'event' and 'properties'",
    )
    .await;
    // Rule 5 before 6.
    assert_rejected(
        &emu,
        &json!({"event": ""}),
        None,
        "event",
        "'event' must be a non-empty string",
    )
    .await;
    // Rule 7 before 11 and 14.
    assert_rejected(
        &emu,
        &json!({"event": "E", "properties": {}}),
        None,
        "properties.time",
        "'properties.time' must be specified",
    )
    .await;
    // Rule 9 before 13 and 17.
    let bad = json!({"event": "E", "properties": {"time": 5, "distinct_id": "null", "$insert_id": "a b"}});
    assert_rejected(
        &emu,
        &bad,
        Some("a b"),
        "properties.time",
        "'properties.time' is invalid: must be after 1971-01-01",
    )
    .await;
    // Rule 13 before 17.
    let bad = json!({"event": "E", "properties": {"time": now_s(), "distinct_id": "null", "$insert_id": "a b"}});
    assert_rejected(
        &emu,
        &bad,
        Some("a b"),
        "properties.distinct_id",
        "'properties.distinct_id' is invalid: 'null' is not a valid distinct_id",
    )
    .await;
    // Rule 17 before 19–23.
    let bad = with_prop(
        with_prop(
            event("E", "u", "a_b"),
            "deep",
            json!({"a": {"b": {"c": {"d": 1}}}}),
        ),
        "list",
        json!(vec![1; 300]),
    );
    assert_rejected(
        &emu,
        &bad,
        Some("a_b"),
        "$insert_id",
        "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters",
    )
    .await;
    // Rule 19 before 20.
    let mut bad = with_prop(
        event("E", "u", "r19"),
        "deep",
        json!({"a": {"b": {"c": {"d": 1}}}}),
    );
    for i in 0..260 {
        bad = with_prop(bad, &format!("p{i}"), json!(i));
    }
    assert_rejected(
        &emu,
        &bad,
        Some("r19"),
        "properties",
        "'properties' is invalid: must have fewer than 255 properties",
    )
    .await;
}
