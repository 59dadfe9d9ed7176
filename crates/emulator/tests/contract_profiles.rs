//! CONTRACT.md, `POST /engage`: body encodings, request-level failures, per-update rules, the
//! operation semantics and the three answer styles.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use serde_json::{Value, json};

fn update(distinct_id: &str, op: &str, value: Value) -> Value {
    let mut u = json!({"$token": TOKEN, "$distinct_id": distinct_id});
    u[op] = value;
    u
}

fn set(distinct_id: &str, props: Value) -> Value {
    update(distinct_id, "$set", props)
}

/// Sends `[valid, bad]` with `verbose=1`: the answer names index 1 with `message`, and the valid
/// update was applied.
async fn assert_update_rejected(emu: &Emu, bad: &Value, message: &str) {
    let valid_id = format!("valid-{}", emu.stored_profiles(1).await["total"]);
    let resp = emu
        .engage(
            "?verbose=1",
            &json!([set(&valid_id, json!({"ok": true})), bad]),
        )
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (
            200,
            json!({"error": update_errors(2, &[(1, message)]), "status": 0})
        ),
        "bad update: {bad}"
    );
    assert_eq!(emu.profile_props(1, &valid_id).await, json!({"ok": true}));
}

/// Sends `[bad]` with `verbose=1` and returns the failure message for index 0.
async fn single_failure(emu: &Emu, bad: &Value) -> String {
    let resp = emu.engage("?verbose=1", &json!([bad])).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["status"], json!(0), "{bad}: {body}");
    let error = body["error"].as_str().unwrap();
    error
        .strip_prefix("1 of 1 updates failed: [0] ")
        .unwrap_or_else(|| panic!("{bad}: {error}"))
        .to_owned()
}

async fn assert_accepted(emu: &Emu, update: &Value) {
    let resp = emu.engage("?verbose=1", &json!([update])).await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!({"error": null, "status": 1})),
        "update: {update}"
    );
}

// ---- body encodings ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_json_array_sets_a_profile_and_answers_1() {
    let emu = Emu::start().await;
    let before = now_ms();
    let resp = emu
        .engage(
            "",
            &json!([
                set("u1", json!({"name": "Ada", "plan": "pro"})),
                set("u2", json!({"name": "Bob"}))
            ]),
        )
        .await;
    let after = now_ms();
    resp.assert_raw(200, "1");
    let profiles = emu.stored_profiles(1).await;
    assert_eq!(profiles["project_id"], json!(1));
    assert_eq!(profiles["total"], json!(2));
    let p1 = emu.profile(1, "u1").await.unwrap();
    assert_eq!(p1["distinct_id"], json!("u1"));
    assert_eq!(p1["properties"], json!({"name": "Ada", "plan": "pro"}));
    let last_seen = p1["last_seen"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&last_seen),
        "{before} <= {last_seen} <= {after}"
    );
    assert_eq!(p1.as_object().unwrap().len(), 3, "{p1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_accepts_a_single_update_object() {
    let emu = Emu::start().await;
    emu.engage("", &set("u1", json!({"a": 1})))
        .await
        .assert_raw(200, "1");
    assert_eq!(emu.profile_props(1, "u1").await, json!({"a": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_reads_a_json_body_with_any_content_type_but_form() {
    let emu = Emu::start().await;
    for (i, content_type) in [None, Some("application/json"), Some("text/plain")]
        .into_iter()
        .enumerate()
    {
        let body = serde_json::to_vec(&json!([set(&format!("u{i}"), json!({"i": i}))])).unwrap();
        let mut req = emu.post("/engage").body(body);
        if let Some(content_type) = content_type {
            req = req.content_type(content_type);
        }
        req.send().await.assert_raw(200, "1");
    }
    assert_eq!(emu.stored_profiles(1).await["total"], json!(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_form_body_with_base64_data() {
    let emu = Emu::start().await;
    let data =
        BASE64.encode(serde_json::to_vec(&json!([set("u1", json!({"via": "base64"}))])).unwrap());
    emu.post_form("/engage", &[("data", &data)])
        .await
        .assert_raw(200, "1");
    assert_eq!(emu.profile_props(1, "u1").await, json!({"via": "base64"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_form_body_with_plain_json_data() {
    let emu = Emu::start().await;
    let data = serde_json::to_string(&json!([set("u1", json!({"via": "plain", "q": "a+b=c&d"}))]))
        .unwrap();
    emu.post_form("/engage", &[("data", &data)])
        .await
        .assert_raw(200, "1");
    assert_eq!(
        emu.profile_props(1, "u1").await,
        json!({"via": "plain", "q": "a+b=c&d"})
    );
    // A single object, too.
    let data = serde_json::to_string(&set("u2", json!({"single": true}))).unwrap();
    emu.post_form("/engage", &[("data", &data)])
        .await
        .assert_raw(200, "1");
    assert_eq!(emu.profile_props(1, "u2").await, json!({"single": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_form_body_takes_verbose_and_ip_parameters() {
    let emu = Emu::start().await;
    let data = serde_json::to_string(&json!([set("u1", json!({"a": 1}))])).unwrap();
    emu.post_form("/engage", &[("data", &data), ("verbose", "1"), ("ip", "0")])
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.post_form("/engage", &[("data", "[]"), ("verbose", "2")])
        .await
        .assert_raw(
            400,
            r#"{"error":"Engage API error: data, missing or empty","status":0}"#,
        );
    emu.post_form("/engage", &[("verbose", "1"), ("data", "{")])
        .await
        .assert_raw(
            200,
            r#"{"error":"data, could not be parsed as JSON","status":0}"#,
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_form_body_without_data_is_missing_or_empty() {
    let emu = Emu::start().await;
    emu.post_form("/engage", &[("verbose", "1")])
        .await
        .assert_raw(200, r#"{"error":"data, missing or empty","status":0}"#);
    emu.post_form("/engage?verbose=1", &[("data", "")])
        .await
        .assert_raw(200, r#"{"error":"data, missing or empty","status":0}"#);
    emu.post_form("/engage", &[("other", "x")])
        .await
        .assert_raw(200, "0");
}

// ---- request-level failures ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_gzip() {
    let emu = Emu::start().await;
    let body = json!([set("u1", json!({"a": 1}))]);
    for (query, status, answer) in [
        ("", 200, "0"),
        (
            "?verbose=1",
            200,
            r#"{"error":"gzip encoding is not supported by this API","status":0}"#,
        ),
        (
            "?verbose=2",
            400,
            r#"{"error":"Engage API error: gzip encoding is not supported by this API","status":0}"#,
        ),
    ] {
        let resp = emu
            .post(&format!("/engage{query}"))
            .json(&body)
            .gzip()
            .send()
            .await;
        resp.assert_raw(status, answer);
    }
    assert_eq!(emu.stored_profiles(1).await["total"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_a_body_that_is_not_json() {
    let emu = Emu::start().await;
    for body in [&b"not json"[..], b"[{\"$token\":", b"\xff\xfe", b"1 2"] {
        let resp = emu
            .post("/engage?verbose=1")
            .content_type("application/json")
            .body(body.to_vec())
            .send()
            .await;
        resp.assert_raw(
            200,
            r#"{"error":"data, could not be parsed as JSON","status":0}"#,
        );
    }
    emu.post("/engage")
        .body(b"nope".to_vec())
        .send()
        .await
        .assert_raw(200, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_an_empty_array() {
    let emu = Emu::start().await;
    emu.engage("?verbose=1", &json!([]))
        .await
        .assert_raw(200, r#"{"error":"data, missing or empty","status":0}"#);
    emu.engage("", &json!([])).await.assert_raw(200, "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_more_than_2000_updates_and_applies_none() {
    let emu = Emu::start().await;
    let updates: Vec<Value> = (0..2001)
        .map(|i| set(&format!("u{i}"), json!({"i": i})))
        .collect();
    emu.engage("?verbose=1", &json!(updates)).await.assert_raw(
        200,
        r#"{"error":"too many updates in request: 2001 (max 2000)","status":0}"#,
    );
    assert_eq!(emu.stored_profiles(1).await["total"], json!(0));
    emu.engage("?verbose=1", &json!(updates[..2000]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    assert_eq!(emu.stored_profiles(1).await["total"], json!(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_update_limit_follows_the_configuration() {
    let mut config = config();
    config.limits.max_engage_updates = 3;
    let emu = Emu::start_with(config).await;
    let updates: Vec<Value> = (0..4)
        .map(|i| set(&format!("u{i}"), json!({"i": i})))
        .collect();
    emu.engage("?verbose=2", &json!(updates)).await.assert_raw(
        400,
        r#"{"error":"Engage API error: too many updates in request: 4 (max 3)","status":0}"#,
    );
    assert_eq!(emu.stored_profiles(1).await["total"], json!(0));
}

// ---- per-update rules ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_an_update_of_1_mb() {
    let emu = Emu::start().await;
    let base = set("big", json!({"pad": ""}));
    let base_len = serde_json::to_vec(&base).unwrap().len();
    let bad = set("big", json!({"pad": "a".repeat(1_048_576 - base_len)}));
    assert_eq!(serde_json::to_vec(&bad).unwrap().len(), 1_048_576);
    assert_update_rejected(
        &emu,
        &bad,
        "update is too large: 1048576 bytes (must be under 1048576)",
    )
    .await;
    assert!(emu.profile(1, "big").await.is_none());
    let ok = set("big", json!({"pad": "a".repeat(1_048_575 - base_len)}));
    assert_accepted(&emu, &ok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_an_update_that_is_not_an_object() {
    let emu = Emu::start().await;
    for bad in [
        json!(5),
        json!("x"),
        json!(null),
        json!([set("u", json!({}))]),
    ] {
        assert_update_rejected(&emu, &bad, "update must be an object").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_a_missing_token() {
    let emu = Emu::start().await;
    let no_token = json!({"$distinct_id": "u", "$set": {"a": 1}});
    assert_update_rejected(&emu, &no_token, "$token, missing or empty").await;
    let number = json!({"$token": 5, "$distinct_id": "u", "$set": {"a": 1}});
    assert_update_rejected(&emu, &number, "$token, missing or empty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_an_unknown_token() {
    let emu = Emu::start().await;
    for token in ["nope", API_SECRET, "DEMO-TOKEN"] {
        let bad = json!({"$token": token, "$distinct_id": "u", "$set": {"a": 1}});
        assert_update_rejected(&emu, &bad, "$token, invalid token").await;
    }
    assert!(emu.profile(1, "u").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_a_missing_or_empty_distinct_id() {
    let emu = Emu::start().await;
    for distinct_id in [
        None,
        Some(json!("")),
        Some(json!(null)),
        Some(json!(true)),
        Some(json!(["u"])),
    ] {
        let mut bad = json!({"$token": TOKEN, "$set": {"a": 1}});
        if let Some(id) = distinct_id {
            bad["$distinct_id"] = id;
        }
        assert_update_rejected(&emu, &bad, "$distinct_id, missing or empty").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_uses_a_numeric_distinct_id_as_decimal_text() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &json!({"$token": TOKEN, "$distinct_id": 42, "$set": {"a": 1}}),
    )
    .await;
    let profile = emu.profile(1, "42").await.unwrap();
    assert_eq!(profile["distinct_id"], json!("42"));
    assert_eq!(profile["properties"], json!({"a": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_requires_exactly_one_operation() {
    let emu = Emu::start().await;
    let none = json!({"$token": TOKEN, "$distinct_id": "u"});
    assert_update_rejected(&emu, &none, "exactly one operation is required, found 0").await;
    let two = json!({"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 1}, "$add": {"n": 1}});
    assert_update_rejected(&emu, &two, "exactly one operation is required, found 2").await;
    let three =
        json!({"$token": TOKEN, "$distinct_id": "u", "$set": {}, "$unset": ["a"], "$delete": null});
    assert_update_rejected(&emu, &three, "exactly one operation is required, found 3").await;
    assert!(emu.profile(1, "u").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_invalid_operation_values() {
    let emu = Emu::start().await;
    for (op, value) in [
        ("$set", json!(5)),
        ("$set", json!(["a"])),
        ("$set", json!(null)),
        ("$set_once", json!("x")),
        ("$add", json!({"n": "1"})),
        ("$add", json!({"n": true})),
        ("$add", json!([1])),
        ("$union", json!({"l": 1})),
        ("$union", json!(["a"])),
        ("$append", json!(5)),
        ("$remove", json!("x")),
        ("$unset", json!("name")),
        ("$unset", json!([1])),
        ("$unset", json!({"name": 1})),
    ] {
        let message = single_failure(&emu, &update("u", op, value.clone())).await;
        let prefix = format!("{op}, invalid value: ");
        assert!(
            message.starts_with(&prefix) && message.len() > prefix.len(),
            "{op} {value}: {message}"
        );
    }
    assert!(emu.profile(1, "u").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_accepts_any_value_for_delete() {
    let emu = Emu::start().await;
    for value in [json!(null), json!(""), json!(5), json!({}), json!([1])] {
        assert_accepted(&emu, &update("u", "$delete", value)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_rejects_unexpected_keys() {
    let emu = Emu::start().await;
    let mut bad = set("u", json!({"a": 1}));
    bad["foo"] = json!(1);
    assert_update_rejected(&emu, &bad, "unexpected key 'foo'").await;
    let mut bad = set("u", json!({"a": 1}));
    bad["$properties"] = json!({});
    assert_update_rejected(&emu, &bad, "unexpected key '$properties'").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_accepts_the_modifiers() {
    let emu = Emu::start().await;
    let mut u = set("u", json!({"a": 1}));
    for (key, value) in [
        ("$ip", json!("0")),
        ("$ignore_time", json!(false)),
        ("$time", json!(1_700_000_000.5)),
        ("$ignore_alias", json!(true)),
        ("$latitude", json!(48.85)),
        ("$longitude", json!(2.35)),
    ] {
        u[key] = value;
    }
    assert_accepted(&emu, &u).await;
    assert_eq!(emu.profile_props(1, "u").await, json!({"a": 1}));
    // `ip` in the query string is accepted too.
    emu.engage("?ip=0&verbose=1", &json!([set("v", json!({"b": 2}))]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_reports_the_first_failing_rule_of_an_update() {
    let emu = Emu::start().await;
    // token before distinct_id
    let bad = json!({"$set": {"a": 1}});
    assert_eq!(single_failure(&emu, &bad).await, "$token, missing or empty");
    // invalid token before distinct_id
    let bad = json!({"$token": "nope", "$set": {"a": 1}});
    assert_eq!(single_failure(&emu, &bad).await, "$token, invalid token");
    // distinct_id before operations
    let bad = json!({"$token": TOKEN, "foo": 1});
    assert_eq!(
        single_failure(&emu, &bad).await,
        "$distinct_id, missing or empty"
    );
    // operation count before operation value and unexpected keys
    let bad = json!({"$token": TOKEN, "$distinct_id": "u", "$set": 5, "$add": 5, "foo": 1});
    assert_eq!(
        single_failure(&emu, &bad).await,
        "exactly one operation is required, found 2"
    );
    // operation value before unexpected keys
    let bad = json!({"$token": TOKEN, "$distinct_id": "u", "$set": 5, "foo": 1});
    assert!(
        single_failure(&emu, &bad)
            .await
            .starts_with("$set, invalid value: ")
    );
    // size before everything
    let bad = json!({"pad": "a".repeat(1_048_576)});
    assert!(
        single_failure(&emu, &bad)
            .await
            .starts_with("update is too large: ")
    );
}

// ---- answer styles ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_default_style_answers_1_or_0_in_text() {
    let emu = Emu::start().await;
    let good = set("u1", json!({"a": 1}));
    let bad = json!({"$token": "nope", "$distinct_id": "u2", "$set": {"a": 1}});
    for query in ["", "?verbose=0"] {
        emu.engage(query, &json!([good])).await.assert_raw(200, "1");
        emu.engage(query, &json!([good, bad]))
            .await
            .assert_raw(200, "1");
        emu.engage(query, &json!([bad, bad]))
            .await
            .assert_raw(200, "0");
        emu.engage(query, &json!([])).await.assert_raw(200, "0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_verbose_1_answers_json_with_http_200() {
    let emu = Emu::start().await;
    let good = set("u1", json!({"a": 1}));
    let bad = json!({"$token": "nope", "$distinct_id": "u2", "$set": {"a": 1}});
    emu.engage("?verbose=1", &json!([good]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.engage("?verbose=1", &json!([good, bad, good]))
        .await
        .assert_raw(
            200,
            r#"{"error":"1 of 3 updates failed: [1] $token, invalid token","status":0}"#,
        );
    emu.engage("?verbose=1", &json!([bad, 7]))
        .await
        .assert_raw(
            200,
            r#"{"error":"2 of 2 updates failed: [0] $token, invalid token; [1] update must be an object","status":0}"#,
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_verbose_2_answers_400_on_any_failure() {
    let emu = Emu::start().await;
    let good = set("u1", json!({"a": 1}));
    let bad = json!({"$token": TOKEN, "$set": {"a": 1}});
    emu.engage("?verbose=2", &json!([good]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.engage("?verbose=2", &json!([good, bad]))
        .await
        .assert_raw(
            400,
            r#"{"error":"Engage API error: 1 of 2 updates failed: [1] $distinct_id, missing or empty","status":0}"#,
        );
    emu.engage("?verbose=2", &json!([bad]))
        .await
        .assert_raw(
            400,
            r#"{"error":"Engage API error: 1 of 1 updates failed: [0] $distinct_id, missing or empty","status":0}"#,
        );
    emu.post("/engage?verbose=2")
        .body(b"{{".to_vec())
        .send()
        .await
        .assert_raw(
            400,
            r#"{"error":"Engage API error: data, could not be parsed as JSON","status":0}"#,
        );
    // The valid update of the partly failed request was applied all the same.
    assert_eq!(emu.profile_props(1, "u1").await, json!({"a": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_errors_list_at_most_20_failures() {
    let emu = Emu::start().await;
    let mut updates = vec![set("ok", json!({"a": 1}))];
    updates.extend((0..25).map(|_| json!(0)));
    let failures: Vec<(usize, &str)> = (1..=25).map(|i| (i, "update must be an object")).collect();
    let expected = update_errors(26, &failures);
    assert!(expected.starts_with("25 of 26 updates failed: [1] update must be an object; [2] "));
    assert!(expected.ends_with("[20] update must be an object"));
    let resp = emu.engage("?verbose=1", &json!(updates)).await;
    resp.assert(200, &json!({"error": expected, "status": 0}));
}

// ---- semantics ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_set_overwrites() {
    let emu = Emu::start().await;
    emu.engage("", &json!([set("u", json!({"a": 1, "b": 1}))]))
        .await
        .assert_raw(200, "1");
    emu.engage("", &json!([set("u", json!({"b": 2, "c": [1]}))]))
        .await
        .assert_raw(200, "1");
    assert_eq!(
        emu.profile_props(1, "u").await,
        json!({"a": 1, "b": 2, "c": [1]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_set_once_does_not_overwrite() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &update("u", "$set_once", json!({"first_seen": "monday", "a": 1})),
    )
    .await;
    assert_accepted(
        &emu,
        &update("u", "$set_once", json!({"first_seen": "tuesday", "b": 2})),
    )
    .await;
    assert_eq!(
        emu.profile_props(1, "u").await,
        json!({"first_seen": "monday", "a": 1, "b": 2})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_add_increments() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &set("u", json!({"n": 5, "f": 1.5, "s": "text"}))).await;
    assert_accepted(
        &emu,
        &update("u", "$add", json!({"n": 3, "f": 1, "new": 2, "s": 1})),
    )
    .await;
    assert_accepted(&emu, &update("u", "$add", json!({"n": -10, "new": 0.5}))).await;
    let props = emu.profile_props(1, "u").await;
    let number = |key: &str| {
        props[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {props}"))
    };
    assert_eq!(
        (number("n"), number("f"), number("new")),
        (-2.0, 2.5, 2.5),
        "{props}"
    );
    assert_eq!(props["s"], json!("text"), "a non-number is left unchanged");
    assert_eq!(props.as_object().unwrap().len(), 4, "{props}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_union_deduplicates() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &set("u", json!({"l": ["a", "b"], "s": "x"}))).await;
    assert_accepted(
        &emu,
        &update(
            "u",
            "$union",
            json!({"l": ["b", "c", "c", 1], "s": ["y", "x"], "m": ["z", "z"]}),
        ),
    )
    .await;
    assert_eq!(
        emu.profile_props(1, "u").await,
        json!({"l": ["a", "b", "c", 1], "s": ["x", "y"], "m": ["z"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_append_appends_one_item() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &set("u", json!({"l": ["a"]}))).await;
    assert_accepted(&emu, &update("u", "$append", json!({"l": "a"}))).await;
    assert_accepted(
        &emu,
        &update("u", "$append", json!({"l": ["b", "c"], "m": "z"})),
    )
    .await;
    assert_eq!(
        emu.profile_props(1, "u").await,
        json!({"l": ["a", "a", ["b", "c"]], "m": ["z"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_remove_removes_every_equal_item() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &set("u", json!({"l": ["a", "b", "a", "c", 1], "k": [1, "1"]})),
    )
    .await;
    assert_accepted(
        &emu,
        &update("u", "$remove", json!({"l": "a", "k": 1, "missing": "x"})),
    )
    .await;
    assert_eq!(
        emu.profile_props(1, "u").await,
        json!({"l": ["b", "c", 1], "k": ["1"]})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_unset_removes_properties() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &set("u", json!({"a": 1, "b": 2, "c": 3}))).await;
    assert_accepted(&emu, &update("u", "$unset", json!(["a", "c", "missing"]))).await;
    assert_eq!(emu.profile_props(1, "u").await, json!({"b": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_delete_removes_the_profile() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &set("u", json!({"a": 1}))).await;
    assert_accepted(&emu, &set("other", json!({"a": 1}))).await;
    assert_accepted(&emu, &update("u", "$delete", json!(null))).await;
    assert!(emu.profile(1, "u").await.is_none());
    assert_eq!(emu.stored_profiles(1).await["total"], json!(1));
    // A later $set starts from nothing.
    assert_accepted(&emu, &set("u", json!({"b": 2}))).await;
    assert_eq!(emu.profile_props(1, "u").await, json!({"b": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_delete_unset_and_remove_do_not_create_a_profile() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &update("d", "$delete", json!(""))).await;
    assert_accepted(&emu, &update("un", "$unset", json!(["a"]))).await;
    assert_accepted(&emu, &update("r", "$remove", json!({"l": "a"}))).await;
    assert_eq!(
        emu.stored_profiles(1).await,
        json!({"project_id": 1, "total": 0, "profiles": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_other_operations_create_a_profile() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &update("s", "$set", json!({"a": 1}))).await;
    assert_accepted(&emu, &update("so", "$set_once", json!({"a": 1}))).await;
    assert_accepted(&emu, &update("ad", "$add", json!({"n": 2}))).await;
    assert_accepted(&emu, &update("un", "$union", json!({"l": ["x"]}))).await;
    assert_accepted(&emu, &update("ap", "$append", json!({"l": "x"}))).await;
    assert_eq!(emu.profile_props(1, "s").await, json!({"a": 1}));
    assert_eq!(emu.profile_props(1, "so").await, json!({"a": 1}));
    assert_eq!(emu.profile_props(1, "ad").await, json!({"n": 2}));
    assert_eq!(emu.profile_props(1, "un").await, json!({"l": ["x"]}));
    assert_eq!(emu.profile_props(1, "ap").await, json!({"l": ["x"]}));
    // An empty $set still creates the profile.
    assert_accepted(&emu, &update("empty", "$set", json!({}))).await;
    assert_eq!(emu.profile_props(1, "empty").await, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_updates_apply_in_order_and_invalid_ones_are_skipped() {
    let emu = Emu::start().await;
    let updates = json!([
        set("u", json!({"a": 1})),
        set("u", json!({"a": 2})),
        {"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 99}, "$add": {"n": 99}},
        update("u", "$add", json!({"n": 1})),
        update("u", "$add", json!({"n": 2})),
        {"$token": "bad", "$distinct_id": "u", "$set": {"a": 100}},
        update("u", "$unset", json!(["gone"])),
    ]);
    emu.engage("", &updates).await.assert_raw(200, "1");
    assert_eq!(emu.profile_props(1, "u").await, json!({"a": 2, "n": 3}));
    assert_eq!(
        emu.stats().await["records"],
        json!({"accepted": 5, "rejected": 2, "deduplicated": 0, "throttled": 0})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_sets_last_seen_unless_ignore_time() {
    let emu = Emu::start().await;
    let mut quiet = set("quiet", json!({"a": 1}));
    quiet["$ignore_time"] = json!(true);
    assert_accepted(&emu, &quiet).await;
    assert_eq!(
        emu.profile(1, "quiet").await.unwrap()["last_seen"],
        json!(null)
    );

    let before = now_ms();
    assert_accepted(&emu, &set("loud", json!({"a": 1}))).await;
    let after = now_ms();
    let first = emu.profile(1, "loud").await.unwrap()["last_seen"]
        .as_i64()
        .unwrap();
    assert!(
        (before..=after).contains(&first),
        "{before} <= {first} <= {after}"
    );

    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut quiet_again = set("loud", json!({"b": 2}));
    quiet_again["$ignore_time"] = json!(true);
    assert_accepted(&emu, &quiet_again).await;
    let profile = emu.profile(1, "loud").await.unwrap();
    assert_eq!(profile["last_seen"], json!(first));
    assert_eq!(profile["properties"], json!({"a": 1, "b": 2}));

    assert_accepted(&emu, &update("loud", "$add", json!({"n": 1}))).await;
    let later = emu.profile(1, "loud").await.unwrap()["last_seen"]
        .as_i64()
        .unwrap();
    assert!(later > first, "{later} > {first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_routes_each_update_to_its_tokens_project() {
    let mut config = config();
    config.projects.push(mixsync_emulator::ProjectConfig {
        id: 2,
        name: "Two".into(),
        token: "two-token".into(),
        api_secret: "two-secret".into(),
    });
    let emu = Emu::start_with(config).await;
    let updates = json!([
        set("u", json!({"p": 1})),
        {"$token": "two-token", "$distinct_id": "u", "$set": {"p": 2}},
    ]);
    emu.engage("?verbose=1", &updates)
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    assert_eq!(emu.profile_props(1, "u").await, json!({"p": 1}));
    assert_eq!(emu.profile_props(2, "u").await, json!({"p": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_requests_are_counted_in_stats() {
    let emu = Emu::start().await;
    emu.engage("", &json!([set("u", json!({}))]))
        .await
        .assert_raw(200, "1");
    emu.engage("?verbose=2", &json!([json!(1)]))
        .await
        .assert_raw(400, r#"{"error":"Engage API error: 1 of 1 updates failed: [0] update must be an object","status":0}"#);
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["engage"], json!({"200": 1, "400": 1}));
    assert_eq!(stats["records"]["accepted"], json!(1));
    assert_eq!(stats["records"]["rejected"], json!(1));
}
