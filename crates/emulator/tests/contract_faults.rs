//! CONTRACT.md, "Fault injection": `PUT`/`GET /_emulator/faults`, fail_next, error_rate, reset_rate,
//! latency, endpoints, and that failures store nothing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use mixsync_emulator::Faults;
use serde_json::{Value, json};

const DEFAULT_FAULTS: &str = r#"{"error_rate":0.0,"error_statuses":[500,502,503],"latency_ms":0,"latency_jitter_ms":0,"reset_rate":0.0,"fail_next":0,"fail_next_status":503,"endpoints":["import","engage","groups"]}"#;

fn injected(status: u16, reason: &str) -> String {
    format!(r#"{{"code":{status},"error":"injected fault","status":"{reason}"}}"#)
}

fn one_update() -> Value {
    json!([{"$token": TOKEN, "$distinct_id": "u", "$set": {"a": 1}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_default_settings_are_shown_by_get() {
    let emu = Emu::start().await;
    emu.get("/_emulator/faults")
        .send()
        .await
        .assert_raw(200, DEFAULT_FAULTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_put_replaces_the_settings_and_fills_missing_keys_with_defaults() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"latency_ms": 5, "error_statuses": [429], "endpoints": ["me"]}))
        .await;
    let shown = emu.get_ok("/_emulator/faults").await;
    assert_eq!(
        shown,
        json!({"error_rate": 0.0, "error_statuses": [429], "latency_ms": 5, "latency_jitter_ms": 0,
            "reset_rate": 0.0, "fail_next": 0, "fail_next_status": 503, "endpoints": ["me"]})
    );
    // Replaced, not merged.
    emu.set_faults(&json!({"fail_next_status": 500})).await;
    let shown = emu.get_ok("/_emulator/faults").await;
    assert_eq!(shown["latency_ms"], json!(0));
    assert_eq!(shown["error_statuses"], json!([500, 502, 503]));
    assert_eq!(shown["endpoints"], json!(["import", "engage", "groups"]));
    assert_eq!(shown["fail_next_status"], json!(500));
    emu.set_faults(&json!({})).await;
    emu.get("/_emulator/faults")
        .send()
        .await
        .assert_raw(200, DEFAULT_FAULTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_put_rejects_invalid_settings_with_400() {
    let emu = Emu::start().await;
    for body in [
        json!({"error_rate": 1.5}),
        json!({"error_rate": -0.1}),
        json!({"reset_rate": 2}),
        json!({"error_rate": 0.5, "error_statuses": [404]}),
        json!({"fail_next": 1, "fail_next_status": 200}),
        json!({"endpoints": ["track"]}),
        json!({"error_rate": "often"}),
        json!({"fail_next": -1}),
        json!({"no_such_key": 1}),
    ] {
        let resp = emu.put_faults(&body).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text());
        let json = resp.json();
        let object = json.as_object().unwrap_or_else(|| panic!("{body}: {json}"));
        assert_eq!(object.len(), 1, "{body}: {json}");
        assert!(
            object["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}: {json}"
        );
    }
    let resp = emu
        .request(reqwest::Method::PUT, "/_emulator/faults")
        .content_type("application/json")
        .body(b"{not json".to_vec())
        .send()
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert!(resp.json()["error"].is_string());
    // The settings are unchanged.
    emu.get("/_emulator/faults")
        .send()
        .await
        .assert_raw(200, DEFAULT_FAULTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_put_rejects_a_body_that_is_not_an_object() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"latency_ms": 1})).await;
    // The settings are an object: an array (serde's sequence form of a struct) is invalid too.
    for body in [json!([]), json!([1.0]), json!(null), json!(0.5)] {
        let resp = emu.put_faults(&body).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text());
        assert!(resp.json()["error"].is_string(), "{body}: {}", resp.text());
    }
    assert_eq!(
        emu.get_ok("/_emulator/faults").await["latency_ms"],
        json!(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_next_fails_that_many_requests_then_passes() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 2})).await;
    let batch = events(2, "fn");
    for _ in 0..2 {
        emu.import(&batch)
            .await
            .assert_raw(503, &injected(503, "Service Unavailable"));
    }
    assert_eq!(emu.event_list(1).await.len(), 0, "a failure stores nothing");
    emu.import_all(&batch).await;
    assert_eq!(emu.get_ok("/_emulator/faults").await["fail_next"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_next_uses_fail_next_status() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 3, "fail_next_status": 502}))
        .await;
    emu.import(&events(1, "a"))
        .await
        .assert_raw(502, &injected(502, "Bad Gateway"));
    emu.set_faults(&json!({"fail_next": 1, "fail_next_status": 500}))
        .await;
    emu.import(&events(1, "a"))
        .await
        .assert_raw(500, &injected(500, "Internal Server Error"));
    emu.set_faults(&json!({"fail_next": 1, "fail_next_status": 504}))
        .await;
    emu.import(&events(1, "a"))
        .await
        .assert_raw(504, &injected(504, "Gateway Timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_429_has_the_rate_limit_body() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 1, "fail_next_status": 429}))
        .await;
    emu.import(&events(1, "a"))
        .await
        .assert_raw(429, RATE_LIMITED);
    emu.import_all(&events(1, "a")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_apply_before_auth() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 1})).await;
    let resp = emu
        .post("/import")
        .json(&json!(events(1, "a")))
        .send()
        .await;
    resp.assert_raw(503, &injected(503, "Service Unavailable"));
    let resp = emu
        .post("/import")
        .json(&json!(events(1, "a")))
        .send()
        .await;
    resp.assert_raw(401, UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_1_fails_every_request_with_a_given_status() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"error_rate": 1.0, "error_statuses": [502]}))
        .await;
    for _ in 0..5 {
        emu.import(&events(3, "er"))
            .await
            .assert_raw(502, &injected(502, "Bad Gateway"));
    }
    emu.set_faults(&json!({"error_rate": 1.0, "error_statuses": [500, 503, 429]}))
        .await;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let resp = emu.import(&events(3, "er")).await;
        match resp.status {
            500 => resp.assert_raw(500, &injected(500, "Internal Server Error")),
            503 => resp.assert_raw(503, &injected(503, "Service Unavailable")),
            429 => resp.assert_raw(429, RATE_LIMITED),
            other => panic!("status {other}: {}", resp.text()),
        }
        seen.insert(resp.status);
    }
    assert_eq!(seen.len(), 3, "every status is drawn: {seen:?}");
    assert_eq!(emu.event_list(1).await.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_count_under_requests_only() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 2, "fail_next_status": 503}))
        .await;
    emu.import(&events(5, "a"))
        .await
        .assert_raw(503, &injected(503, "Service Unavailable"));
    emu.engage("", &one_update())
        .await
        .assert_raw(503, &injected(503, "Service Unavailable"));
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["import"], json!({"503": 1}));
    assert_eq!(stats["requests"]["engage"], json!({"503": 1}));
    assert_eq!(
        stats["records"],
        json!({"accepted": 0, "rejected": 0, "deduplicated": 0, "throttled": 0})
    );
    assert!(emu.profile(1, "u").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_apply_only_to_the_listed_endpoints() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"error_rate": 1.0, "error_statuses": [503], "endpoints": ["groups"]}))
        .await;
    emu.import_all(&events(1, "a")).await;
    emu.engage("", &one_update()).await.assert_raw(200, "1");
    let group = json!([{"$token": TOKEN, "$group_key": "C", "$group_id": "g", "$set": {}}]);
    emu.groups("?verbose=1", &group)
        .await
        .assert_raw(503, &injected(503, "Service Unavailable"));
    // Inspection endpoints and /api/app/me are never affected unless listed.
    emu.get("/api/app/me")
        .basic(SA_USER, SA_SECRET)
        .send()
        .await;
    assert_eq!(emu.stats().await["requests"]["me"], json!({"200": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_can_target_me() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"fail_next": 1, "endpoints": ["me"]}))
        .await;
    emu.get("/api/app/me")
        .basic(SA_USER, SA_SECRET)
        .send()
        .await
        .assert_raw(503, &injected(503, "Service Unavailable"));
    emu.import_all(&events(1, "a")).await;
    let resp = emu
        .get("/api/app/me")
        .basic(SA_USER, SA_SECRET)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_rate_1_resets_the_connection() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"reset_rate": 1.0, "endpoints": ["import", "engage"]}))
        .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for path in ["/import", "/engage"] {
        let result = client
            .post(emu.url(path))
            .header("authorization", basic(TOKEN, ""))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&json!(events(1, "reset"))).unwrap())
            .send()
            .await;
        let err = result.expect_err("the connection is reset without an answer");
        assert!(!err.is_timeout(), "reset, not a hang: {err}");
    }
    assert_eq!(emu.event_list(1).await.len(), 0);
    // The emulator still serves.
    emu.set_faults(&json!({})).await;
    emu.import_all(&events(1, "after")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_the_answer() {
    let emu = Emu::start().await;
    emu.set_faults(&json!({"latency_ms": 300, "endpoints": ["import"]}))
        .await;
    let start = Instant::now();
    emu.import_all(&events(1, "slow")).await;
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );
    emu.set_faults(&json!({"latency_ms": 100, "latency_jitter_ms": 100, "fail_next": 1}))
        .await;
    let start = Instant::now();
    emu.import(&events(1, "slow2"))
        .await
        .assert_raw(503, &injected(503, "Service Unavailable"));
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "the latency comes before the failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_at_start_come_from_the_configuration_and_reset_restores_them() {
    let mut config = config();
    config.faults = Faults {
        fail_next: 1,
        fail_next_status: 502,
        ..Faults::default()
    };
    let emu = Emu::start_with(config).await;
    emu.import(&events(1, "a"))
        .await
        .assert_raw(502, &injected(502, "Bad Gateway"));
    emu.import_all(&events(1, "a")).await;
    emu.set_faults(&json!({"latency_ms": 1})).await;
    emu.reset().await;
    let shown = emu.get_ok("/_emulator/faults").await;
    assert_eq!(shown["fail_next"], json!(1));
    assert_eq!(shown["fail_next_status"], json!(502));
    assert_eq!(shown["latency_ms"], json!(0));
    emu.import(&events(1, "b"))
        .await
        .assert_raw(502, &injected(502, "Bad Gateway"));
}
