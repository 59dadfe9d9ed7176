//! CONTRACT.md, `POST /groups`: group profiles keyed by `$group_key` + `$group_id`, their own rules,
//! the 200-update default limit and the `Groups API error:` prefix.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::*;
use serde_json::{Value, json};

fn group_update(key: &str, id: Value, op: &str, value: Value) -> Value {
    let mut u = json!({"$token": TOKEN, "$group_key": key, "$group_id": id});
    u[op] = value;
    u
}

fn group_set(key: &str, id: &str, props: Value) -> Value {
    group_update(key, json!(id), "$set", props)
}

async fn assert_accepted(emu: &Emu, update: &Value) {
    let resp = emu.groups("?verbose=1", &json!([update])).await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!({"error": null, "status": 1})),
        "update: {update}"
    );
}

async fn group_props(emu: &Emu, key: &str, id: &str) -> Value {
    emu.group(1, key, id)
        .await
        .unwrap_or_else(|| panic!("no group {key}/{id}"))["properties"]
        .clone()
}

/// Sends `[valid, bad]` with `verbose=1` and checks the failure of index 1.
async fn assert_update_rejected(emu: &Emu, bad: &Value, message: &str) {
    let resp = emu
        .groups(
            "?verbose=1",
            &json!([group_set("Valid", "v", json!({"ok": true})), bad]),
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
    assert_eq!(group_props(emu, "Valid", "v").await, json!({"ok": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_keyed_by_group_key_and_group_id() {
    let emu = Emu::start().await;
    let before = now_ms();
    emu.groups(
        "",
        &json!([
            group_set("Company", "Acme", json!({"plan": "pro"})),
            group_set("Company", "Beta", json!({"plan": "free"})),
            group_set("Team", "Acme", json!({"size": 4})),
        ]),
    )
    .await
    .assert_raw(200, "1");
    let after = now_ms();
    let companies = emu.stored_groups(1, "Company").await;
    assert_eq!(companies["project_id"], json!(1));
    assert_eq!(companies["group_key"], json!("Company"));
    assert_eq!(companies["total"], json!(2));
    let acme = emu.group(1, "Company", "Acme").await.unwrap();
    assert_eq!(acme["group_key"], json!("Company"));
    assert_eq!(acme["group_id"], json!("Acme"));
    assert_eq!(acme["properties"], json!({"plan": "pro"}));
    let last_seen = acme["last_seen"].as_i64().unwrap();
    assert!(
        (before..=after).contains(&last_seen),
        "{before} <= {last_seen} <= {after}"
    );
    assert_eq!(acme.as_object().unwrap().len(), 4, "{acme}");
    assert_eq!(group_props(&emu, "Team", "Acme").await, json!({"size": 4}));
    assert_eq!(emu.stored_groups(1, "Team").await["total"], json!(1));
    assert_eq!(emu.stored_groups(1, "Nobody").await["total"], json!(0));
    // Groups are not user profiles.
    assert_eq!(emu.stored_profiles(1).await["total"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_accept_a_numeric_group_id() {
    let emu = Emu::start().await;
    assert_accepted(
        &emu,
        &group_update("Company", json!(42), "$set", json!({"n": true})),
    )
    .await;
    let group = emu
        .group(1, "Company", "42")
        .await
        .expect("found by its decimal text");
    assert!(
        group["group_id"] == json!(42) || group["group_id"] == json!("42"),
        "{group}"
    );
    assert_eq!(group["properties"], json!({"n": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_a_missing_or_empty_group_key() {
    let emu = Emu::start().await;
    for key in [None, Some(json!("")), Some(json!(5)), Some(json!(null))] {
        let mut bad = json!({"$token": TOKEN, "$group_id": "g", "$set": {"a": 1}});
        if let Some(key) = key {
            bad["$group_key"] = key;
        }
        assert_update_rejected(&emu, &bad, "$group_key, missing or empty").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_a_missing_or_empty_group_id() {
    let emu = Emu::start().await;
    for id in [
        None,
        Some(json!("")),
        Some(json!(null)),
        Some(json!(true)),
        Some(json!(["g"])),
    ] {
        let mut bad = json!({"$token": TOKEN, "$group_key": "Company", "$set": {"a": 1}});
        if let Some(id) = id {
            bad["$group_id"] = id;
        }
        assert_update_rejected(&emu, &bad, "$group_id, missing or empty").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_a_missing_or_unknown_token() {
    let emu = Emu::start().await;
    let bad = json!({"$group_key": "Company", "$group_id": "g", "$set": {"a": 1}});
    assert_update_rejected(&emu, &bad, "$token, missing or empty").await;
    let bad =
        json!({"$token": "nope", "$group_key": "Company", "$group_id": "g", "$set": {"a": 1}});
    assert_update_rejected(&emu, &bad, "$token, invalid token").await;
    assert!(emu.group(1, "Company", "g").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_require_exactly_one_operation_and_no_unexpected_keys() {
    let emu = Emu::start().await;
    let bad = json!({"$token": TOKEN, "$group_key": "C", "$group_id": "g"});
    assert_update_rejected(&emu, &bad, "exactly one operation is required, found 0").await;
    let bad =
        json!({"$token": TOKEN, "$group_key": "C", "$group_id": "g", "$set": {}, "$unset": ["a"]});
    assert_update_rejected(&emu, &bad, "exactly one operation is required, found 2").await;
    let mut bad = group_set("C", "g", json!({"a": 1}));
    bad["foo"] = json!(1);
    assert_update_rejected(&emu, &bad, "unexpected key 'foo'").await;
    assert!(emu.group(1, "C", "g").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_an_update_of_1_mb() {
    let emu = Emu::start().await;
    let base = group_set("C", "big", json!({"pad": ""}));
    let base_len = serde_json::to_vec(&base).unwrap().len();
    let bad = group_set("C", "big", json!({"pad": "a".repeat(1_048_576 - base_len)}));
    assert_update_rejected(
        &emu,
        &bad,
        "update is too large: 1048576 bytes (must be under 1048576)",
    )
    .await;
    assert!(emu.group(1, "C", "big").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_an_invalid_operation_value() {
    let emu = Emu::start().await;
    for (op, value) in [
        ("$set", json!(1)),
        ("$union", json!({"l": "x"})),
        ("$unset", json!("a")),
    ] {
        let resp = emu
            .groups(
                "?verbose=1",
                &json!([group_update("C", json!("g"), op, value)]),
            )
            .await;
        assert_eq!(resp.status, 200);
        let error = resp.json()["error"].as_str().unwrap().to_owned();
        let prefix = format!("1 of 1 updates failed: [0] {op}, invalid value: ");
        assert!(
            error.starts_with(&prefix) && error.len() > prefix.len(),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_apply_every_operation() {
    let emu = Emu::start().await;
    let ops = [
        group_set(
            "C",
            "g",
            json!({"name": "Acme", "tags": ["a", "b", "a"], "n": 1, "drop": true}),
        ),
        group_update(
            "C",
            json!("g"),
            "$set_once",
            json!({"name": "Other", "founded": 1999}),
        ),
        group_update("C", json!("g"), "$add", json!({"n": 2})),
        group_update("C", json!("g"), "$union", json!({"tags": ["b", "c"]})),
        group_update("C", json!("g"), "$append", json!({"tags": "d"})),
        group_update("C", json!("g"), "$remove", json!({"tags": "a"})),
        group_update("C", json!("g"), "$unset", json!(["drop"])),
    ];
    for op in &ops {
        assert_accepted(&emu, op).await;
    }
    let props = group_props(&emu, "C", "g").await;
    assert_eq!(props["name"], json!("Acme"));
    assert_eq!(props["founded"], json!(1999));
    assert_eq!(props["n"].as_f64(), Some(3.0));
    assert_eq!(props["tags"], json!(["b", "c", "d"]));
    assert!(props.get("drop").is_none(), "{props}");
    assert_eq!(props.as_object().unwrap().len(), 4, "{props}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_delete_removes_the_group_and_does_not_create_one() {
    let emu = Emu::start().await;
    assert_accepted(&emu, &group_set("C", "g", json!({"a": 1}))).await;
    assert_accepted(&emu, &group_set("C", "h", json!({"a": 1}))).await;
    assert_accepted(&emu, &group_update("C", json!("g"), "$delete", json!(null))).await;
    assert!(emu.group(1, "C", "g").await.is_none());
    assert_eq!(emu.stored_groups(1, "C").await["total"], json!(1));
    for (op, value) in [
        ("$delete", json!(null)),
        ("$unset", json!(["a"])),
        ("$remove", json!({"l": 1})),
    ] {
        assert_accepted(&emu, &group_update("C", json!("new"), op, value)).await;
    }
    assert!(emu.group(1, "C", "new").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_ignore_time_leaves_last_seen_unset() {
    let emu = Emu::start().await;
    let mut u = group_set("C", "g", json!({"a": 1}));
    u["$ignore_time"] = json!(true);
    assert_accepted(&emu, &u).await;
    assert_eq!(
        emu.group(1, "C", "g").await.unwrap()["last_seen"],
        json!(null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_more_than_200_updates_by_default() {
    let emu = Emu::start().await;
    let updates: Vec<Value> = (0..201)
        .map(|i| group_set("C", &format!("g{i}"), json!({"i": i})))
        .collect();
    emu.groups("?verbose=1", &json!(updates)).await.assert_raw(
        200,
        r#"{"error":"too many updates in request: 201 (max 200)","status":0}"#,
    );
    emu.groups("?verbose=2", &json!(updates)).await.assert_raw(
        400,
        r#"{"error":"Groups API error: too many updates in request: 201 (max 200)","status":0}"#,
    );
    emu.groups("", &json!(updates)).await.assert_raw(200, "0");
    assert_eq!(emu.stored_groups(1, "C").await["total"], json!(0));
    emu.groups("?verbose=1", &json!(updates[..200]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    assert_eq!(emu.stored_groups(1, "C").await["total"], json!(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_update_limit_follows_the_configuration() {
    let mut config = config();
    config.limits.max_group_updates = 2000;
    let emu = Emu::start_with(config).await;
    let updates: Vec<Value> = (0..2001)
        .map(|i| group_set("C", &format!("g{i}"), json!({})))
        .collect();
    emu.groups("?verbose=1", &json!(updates[..2000]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.groups("?verbose=1", &json!(updates)).await.assert_raw(
        200,
        r#"{"error":"too many updates in request: 2001 (max 2000)","status":0}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_verbose_2_uses_the_groups_prefix() {
    let emu = Emu::start().await;
    let good = group_set("C", "g", json!({"a": 1}));
    let bad = json!({"$token": TOKEN, "$group_key": "C", "$set": {"a": 1}});
    emu.groups("?verbose=2", &json!([good]))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.groups("?verbose=2", &json!([good, bad]))
        .await
        .assert_raw(
            400,
            r#"{"error":"Groups API error: 1 of 2 updates failed: [1] $group_id, missing or empty","status":0}"#,
        );
    emu.groups("?verbose=2", &json!([])).await.assert_raw(
        400,
        r#"{"error":"Groups API error: data, missing or empty","status":0}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_default_and_verbose_1_styles() {
    let emu = Emu::start().await;
    let good = group_set("C", "g", json!({"a": 1}));
    let bad = json!({"$token": "nope", "$group_key": "C", "$group_id": "g", "$set": {"a": 1}});
    emu.groups("", &json!([good])).await.assert_raw(200, "1");
    emu.groups("", &json!([good, bad]))
        .await
        .assert_raw(200, "1");
    emu.groups("?verbose=0", &json!([bad]))
        .await
        .assert_raw(200, "0");
    emu.groups("?verbose=1", &json!([bad, good]))
        .await
        .assert_raw(
            200,
            r#"{"error":"1 of 2 updates failed: [0] $token, invalid token","status":0}"#,
        );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_reject_gzip() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/groups?verbose=2")
        .json(&json!([group_set("C", "g", json!({}))]))
        .gzip()
        .send()
        .await;
    resp.assert_raw(
        400,
        r#"{"error":"Groups API error: gzip encoding is not supported by this API","status":0}"#,
    );
    assert_eq!(emu.stored_groups(1, "C").await["total"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_form_body_with_base64_or_plain_data() {
    let emu = Emu::start().await;
    let encoded = BASE64
        .encode(serde_json::to_vec(&json!([group_set("C", "b64", json!({"x": 1}))])).unwrap());
    emu.post_form("/groups", &[("data", &encoded)])
        .await
        .assert_raw(200, "1");
    let plain = serde_json::to_string(&json!([group_set("C", "plain", json!({"x": 2}))])).unwrap();
    emu.post_form("/groups", &[("data", &plain), ("verbose", "1")])
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    emu.post_form("/groups", &[("verbose", "1")])
        .await
        .assert_raw(200, r#"{"error":"data, missing or empty","status":0}"#);
    assert_eq!(group_props(&emu, "C", "b64").await, json!({"x": 1}));
    assert_eq!(group_props(&emu, "C", "plain").await, json!({"x": 2}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_requests_are_counted_in_stats() {
    let emu = Emu::start().await;
    emu.groups("", &json!([group_set("C", "g", json!({})), json!(1)]))
        .await
        .assert_raw(200, "1");
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["groups"], json!({"200": 1}));
    assert_eq!(stats["records"]["accepted"], json!(1));
    assert_eq!(stats["records"]["rejected"], json!(1));
}
