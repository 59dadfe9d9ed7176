//! CONTRACT.md, "Inspection (`/_emulator/`)", unknown paths and wrong methods.

mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_start_at_zero_with_the_contract_key_order() {
    let emu = Emu::start().await;
    emu.get("/_emulator/stats").send().await.assert_raw(
        200,
        r#"{"requests":{"import":{},"engage":{},"groups":{},"me":{}},"records":{"accepted":0,"rejected":0,"deduplicated":0,"throttled":0},"projects":{}}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_requests_by_endpoint_and_status() {
    let emu = Emu::start().await;
    emu.import_all(&events(2, "a")).await;
    emu.import_all(&events(2, "b")).await;
    emu.post("/import")
        .json(&json!(events(1, "c")))
        .send()
        .await
        .assert_raw(401, UNAUTHORIZED);
    emu.import(&[json!(1)]).await;
    emu.engage(
        "",
        &json!([{"$token": TOKEN, "$distinct_id": "u", "$set": {}}]),
    )
    .await;
    emu.groups(
        "",
        &json!([{"$token": TOKEN, "$group_key": "k", "$group_id": "g", "$set": {}}]),
    )
    .await;
    emu.get("/api/app/me")
        .basic(SA_USER, SA_SECRET)
        .send()
        .await;
    let mut stats = emu.stats().await;
    // Every ingestion request that reached the rate limiter (the 401 did not), by project.
    let projects = stats["projects"].take();
    assert_eq!(projects["1"]["requests"], json!(5));
    assert_eq!(projects["1"]["records"], json!(7));
    assert_eq!(projects["1"]["peak_records_per_second"], json!(7));
    assert!(
        projects["1"]["last_arrival_ms"].as_u64() >= projects["1"]["first_arrival_ms"].as_u64()
    );
    assert_eq!(
        stats,
        json!({
            "requests": {
                "import": {"200": 2, "400": 1, "401": 1},
                "engage": {"200": 1},
                "groups": {"200": 1},
                "me": {"200": 1}
            },
            "records": {"accepted": 6, "rejected": 1, "deduplicated": 0, "throttled": 0},
            "projects": null
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_inspection_has_the_contract_shape_and_key_order() {
    let emu = Emu::start().await;
    let resp = emu
        .post("/import")
        .token()
        .content_type("application/json")
        .body(br#"[{"event":"E","properties":{"time":1700000000,"distinct_id":"u1","$insert_id":"i1","b":2,"a":1}}]"#.to_vec())
        .send()
        .await;
    resp.assert(200, &import_ok(1));
    emu.get("/_emulator/events?project_id=1").send().await.assert_raw(
        200,
        r#"{"project_id":1,"total":1,"events":[{"event":"E","properties":{"time":1700000000,"distinct_id":"u1","$insert_id":"i1","b":2,"a":1}}]}"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_inspection_filters_by_event_and_distinct_id() {
    let emu = Emu::start().await;
    let a1 = event("Signed Up", "alice", "f-1");
    let a2 = event("Purchase", "alice", "f-2");
    let b1 = event("Signed Up", "bob", "f-3");
    emu.import_all(&[a1.clone(), a2.clone(), b1.clone()]).await;
    assert_eq!(
        emu.get_ok("/_emulator/events?project_id=1&event=Signed%20Up")
            .await,
        json!({"project_id": 1, "total": 2, "events": [a1.clone(), b1]})
    );
    assert_eq!(
        emu.get_ok("/_emulator/events?project_id=1&distinct_id=alice")
            .await,
        json!({"project_id": 1, "total": 2, "events": [a1.clone(), a2]})
    );
    assert_eq!(
        emu.get_ok("/_emulator/events?project_id=1&event=Signed%20Up&distinct_id=alice")
            .await,
        json!({"project_id": 1, "total": 1, "events": [a1]})
    );
    assert_eq!(
        emu.get_ok("/_emulator/events?project_id=1&event=None")
            .await,
        json!({"project_id": 1, "total": 0, "events": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_inspection_has_the_contract_shape_and_key_order() {
    let emu = Emu::start().await;
    let updates = json!([
        {"$token": TOKEN, "$distinct_id": "u1", "$set": {"b": 2, "a": 1}, "$ignore_time": true},
        {"$token": TOKEN, "$distinct_id": "u2", "$set": {"c": 3}, "$ignore_time": true},
    ]);
    emu.engage("", &updates).await.assert_raw(200, "1");
    emu.get("/_emulator/profiles?project_id=1&distinct_id=u1").send().await.assert_raw(
        200,
        r#"{"project_id":1,"total":1,"profiles":[{"distinct_id":"u1","properties":{"b":2,"a":1},"last_seen":null}]}"#,
    );
    assert_eq!(emu.stored_profiles(1).await["total"], json!(2));
    assert_eq!(
        emu.get_ok("/_emulator/profiles?project_id=1&distinct_id=nobody")
            .await,
        json!({"project_id": 1, "total": 0, "profiles": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_inspection_has_the_contract_shape_and_key_order() {
    let emu = Emu::start().await;
    let updates = json!([
        {"$token": TOKEN, "$group_key": "Company", "$group_id": "Acme", "$set": {"plan": "pro"}, "$ignore_time": true},
        {"$token": TOKEN, "$group_key": "Company", "$group_id": "Beta", "$set": {}, "$ignore_time": true},
    ]);
    emu.groups("", &updates).await.assert_raw(200, "1");
    emu.get("/_emulator/groups?project_id=1&group_key=Company&group_id=Acme")
        .send()
        .await
        .assert_raw(
            200,
            r#"{"project_id":1,"group_key":"Company","total":1,"groups":[{"group_key":"Company","group_id":"Acme","properties":{"plan":"pro"},"last_seen":null}]}"#,
        );
    assert_eq!(emu.stored_groups(1, "Company").await["total"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_without_project_id_is_400() {
    let emu = Emu::start().await;
    for path in [
        "/_emulator/events",
        "/_emulator/profiles",
        "/_emulator/groups?group_key=Company",
    ] {
        let resp = emu.get(path).send().await;
        assert_eq!(resp.status, 400, "{path}: {}", resp.text());
        let body = resp.json();
        assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{path}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspection_of_an_unknown_project_is_404() {
    let emu = Emu::start().await;
    for path in [
        "/_emulator/events?project_id=9",
        "/_emulator/profiles?project_id=9",
        "/_emulator/groups?project_id=9&group_key=Company",
    ] {
        emu.get(path)
            .send()
            .await
            .assert_raw(404, r#"{"error":"unknown project 9"}"#);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_clears_events_profiles_groups_and_stats() {
    let emu = Emu::start().await;
    emu.import_all(&events(3, "r")).await;
    emu.engage(
        "",
        &json!([{"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 1}}]),
    )
    .await
    .assert_raw(200, "1");
    emu.groups(
        "",
        &json!([{"$token": TOKEN, "$group_key": "C", "$group_id": "g", "$set": {}}]),
    )
    .await
    .assert_raw(200, "1");
    let resp = emu.post("/_emulator/reset").send().await;
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(
        emu.stored_events(1).await,
        json!({"project_id": 1, "total": 0, "events": []})
    );
    assert_eq!(
        emu.stored_profiles(1).await,
        json!({"project_id": 1, "total": 0, "profiles": []})
    );
    assert_eq!(
        emu.stored_groups(1, "C").await,
        json!({"project_id": 1, "group_key": "C", "total": 0, "groups": []})
    );
    emu.get("/_emulator/stats").send().await.assert_raw(
        200,
        r#"{"requests":{"import":{},"engage":{},"groups":{},"me":{}},"records":{"accepted":0,"rejected":0,"deduplicated":0,"throttled":0},"projects":{}}"#,
    );
    // After a reset, the same events are new again (no dedup against cleared ones).
    emu.import_all(&events(3, "r")).await;
    assert_eq!(emu.stats().await["records"]["deduplicated"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_restores_the_start_fault_settings() {
    let emu = Emu::start().await;
    let start = emu.get("/_emulator/faults").send().await.text();
    emu.set_faults(&json!({"error_rate": 1.0, "latency_ms": 10}))
        .await;
    emu.reset().await;
    emu.get("/_emulator/faults")
        .send()
        .await
        .assert_raw(200, &start);
    emu.import_all(&events(1, "after-reset")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404() {
    let emu = Emu::start().await;
    for path in [
        "/",
        "/track",
        "/imports",
        "/_emulator/nothing",
        "/api/app/you",
        "/import/extra",
    ] {
        for method in [Method::GET, Method::POST] {
            let resp = emu.request(method.clone(), path).token().send().await;
            resp.assert_raw(404, r#"{"error":"not found"}"#);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_is_405() {
    let emu = Emu::start().await;
    for (method, path) in [
        (Method::GET, "/import"),
        (Method::PUT, "/import"),
        (Method::DELETE, "/engage"),
        (Method::PATCH, "/groups"),
        (Method::DELETE, "/api/app/me"),
        (Method::POST, "/_emulator/stats"),
        (Method::GET, "/_emulator/reset"),
        (Method::DELETE, "/_emulator/faults"),
    ] {
        let resp = emu.request(method.clone(), path).token().send().await;
        assert_eq!(resp.status, 405, "{method} {path}: {}", resp.text());
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_limit_caps_the_list_but_not_the_total() {
    let emu = Emu::start().await;
    emu.import_all(&events(5, "l")).await;
    let body = emu.get_ok("/_emulator/events?project_id=1&limit=2").await;
    assert_eq!(body["total"], 5);
    assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    let body = emu.get_ok("/_emulator/events?project_id=1&limit=0").await;
    assert_eq!(
        (
            body["total"].as_u64(),
            body["events"].as_array().map(Vec::len)
        ),
        (Some(5), Some(0))
    );
    let resp = emu
        .get("/_emulator/events?project_id=1&limit=x")
        .send()
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
}
