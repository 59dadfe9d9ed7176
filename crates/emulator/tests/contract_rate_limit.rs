//! CONTRACT.md, "Rate limiting": per project, events per rolling second and bytes per rolling minute,
//! refused whole with the SPEC 429 body and `Retry-After`.

mod common;

use std::time::Duration;

use common::*;
use mixsync_emulator::{Config, ProjectConfig};
use serde_json::{Value, json};

fn limited(events_per_sec: u64, bytes_per_min: u64) -> Config {
    let mut config = config();
    config.rate_limit.enabled = true;
    config.rate_limit.events_per_sec = events_per_sec;
    config.rate_limit.bytes_per_min = bytes_per_min;
    config.rate_limit.retry_after = true;
    config
}

fn retry_after(resp: &Resp) -> u64 {
    let value = resp.header("retry-after").expect("Retry-After is sent");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is whole seconds"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_over_events_per_sec_is_429_with_retry_after() {
    let emu = Emu::start_with(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(60, "a")).await;
    let resp = emu.import(&events(60, "b")).await;
    resp.assert_raw(429, RATE_LIMITED);
    assert_eq!(retry_after(&resp), 1, "a 1 s window");
    assert_eq!(
        emu.event_list(1).await.len(),
        60,
        "a refused request stores nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_fills_the_window_exactly() {
    let emu = Emu::start_with(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(60, "a")).await;
    emu.import_all(&events(40, "b")).await;
    emu.import(&events(1, "c"))
        .await
        .assert_raw(429, RATE_LIMITED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_requests_do_not_count_toward_the_window() {
    let emu = Emu::start_with(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(60, "a")).await;
    for _ in 0..3 {
        emu.import(&events(60, "b"))
            .await
            .assert_raw(429, RATE_LIMITED);
    }
    emu.import_all(&events(40, "c")).await;
    assert_eq!(emu.event_list(1).await.len(), 100);
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["import"], json!({"200": 2, "429": 3}));
    assert_eq!(
        stats["records"],
        json!({"accepted": 100, "rejected": 0, "deduplicated": 0, "throttled": 180})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_is_admitted_again_after_the_window() {
    let emu = Emu::start_with(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(100, "a")).await;
    let resp = emu.import(&events(50, "b")).await;
    resp.assert_raw(429, RATE_LIMITED);
    tokio::time::sleep(Duration::from_secs(retry_after(&resp)) + Duration::from_millis(150)).await;
    emu.import_all(&events(50, "b")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_request_larger_than_the_window_is_admitted_when_it_is_empty() {
    let emu = Emu::start_with(limited(10, 2_000)).await;
    // 50 events and well over 2000 bytes.
    let batch = events(50, "big");
    assert!(serde_json::to_vec(&batch).unwrap().len() > 2_000);
    emu.import_all(&batch).await;
    emu.import(&events(1, "next"))
        .await
        .assert_raw(429, RATE_LIMITED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_checked_before_validation() {
    let emu = Emu::start_with(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    let invalid = vec![json!(1), json!({"event": ""})];
    emu.import(&invalid).await.assert_raw(429, RATE_LIMITED);
    let stats = emu.stats().await;
    assert_eq!(stats["records"]["rejected"], json!(0));
    assert_eq!(stats["records"]["throttled"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_checked_after_auth() {
    let emu = Emu::start_with(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    emu.post("/import")
        .basic("nobody", "")
        .json(&json!(events(5, "b")))
        .send()
        .await
        .assert_raw(401, UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_over_bytes_per_min_is_429() {
    let batch = events(40, "a");
    let len = serde_json::to_vec(&batch).unwrap().len() as u64;
    let emu = Emu::start_with(limited(1_000_000, len * 3 / 2)).await;
    emu.import_all(&batch).await;
    let resp = emu.import(&events(40, "b")).await;
    resp.assert_raw(429, RATE_LIMITED);
    let seconds = retry_after(&resp);
    assert!(
        (1..=60).contains(&seconds),
        "a 60 s window: Retry-After {seconds}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_are_counted_uncompressed() {
    let batch = events(40, "a");
    let len = serde_json::to_vec(&batch).unwrap().len() as u64;
    // Both gzipped bodies together are far smaller than the limit; uncompressed they exceed it.
    assert!(gzip(&serde_json::to_vec(&batch).unwrap()).len() as u64 * 2 < len);
    let emu = Emu::start_with(limited(1_000_000, len * 3 / 2)).await;
    emu.post("/import")
        .token()
        .json(&json!(batch))
        .gzip()
        .send()
        .await
        .assert(200, &import_ok(40));
    let second = events(40, "b");
    let resp = emu
        .post("/import")
        .token()
        .json(&json!(second))
        .gzip()
        .send()
        .await;
    resp.assert_raw(429, RATE_LIMITED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_left_out_when_off() {
    let mut config = limited(10, 2_000_000_000);
    config.rate_limit.retry_after = false;
    let emu = Emu::start_with(config).await;
    emu.import_all(&events(10, "a")).await;
    let resp = emu.import(&events(1, "b")).await;
    resp.assert_raw(429, RATE_LIMITED);
    assert_eq!(resp.header("retry-after"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_per_project() {
    let mut config = limited(10, 2_000_000_000);
    config.projects.push(ProjectConfig {
        id: 2,
        name: "Two".into(),
        token: "two-token".into(),
        api_secret: "two-secret".into(),
    });
    let emu = Emu::start_with(config).await;
    emu.import_all(&events(10, "a")).await;
    emu.import(&events(1, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);
    emu.post("/import")
        .basic("two-token", "")
        .json(&json!(events(10, "c")))
        .send()
        .await
        .assert(200, &import_ok(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engage_and_groups_count_updates_in_the_same_window() {
    let emu = Emu::start_with(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(6, "a")).await;
    let updates: Vec<Value> = (0..4)
        .map(|i| json!({"$token": TOKEN, "$distinct_id": format!("u{i}"), "$set": {"i": i}}))
        .collect();
    emu.engage("?verbose=1", &json!(updates))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    let one = json!([{"$token": TOKEN, "$distinct_id": "late", "$set": {"a": 1}}]);
    for query in ["", "?verbose=1", "?verbose=2"] {
        emu.engage(query, &one).await.assert_raw(429, RATE_LIMITED);
    }
    let group = json!([{"$token": TOKEN, "$group_key": "C", "$group_id": "g", "$set": {}}]);
    emu.groups("?verbose=1", &group)
        .await
        .assert_raw(429, RATE_LIMITED);
    emu.import(&events(1, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);
    assert!(emu.profile(1, "late").await.is_none());
    let stats = emu.stats().await;
    assert_eq!(stats["records"]["throttled"], json!(5));
    assert_eq!(stats["requests"]["engage"], json!({"200": 1, "429": 3}));
    assert_eq!(stats["requests"]["groups"], json!({"429": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_updates_are_limited_by_the_project_of_the_first_valid_token() {
    let mut config = limited(10, 2_000_000_000);
    config.projects.push(ProjectConfig {
        id: 2,
        name: "Two".into(),
        token: "two-token".into(),
        api_secret: "two-secret".into(),
    });
    let emu = Emu::start_with(config).await;
    emu.import_all(&events(10, "a")).await;
    // The first valid token is project 2's: admitted although project 1 is full.
    let updates = json!([
        {"$token": "nope", "$distinct_id": "x", "$set": {}},
        {"$token": "two-token", "$distinct_id": "u", "$set": {"a": 1}},
    ]);
    let resp = emu.engage("?verbose=1", &updates).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(emu.profile_props(2, "u").await, json!({"a": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_clears_the_rate_windows() {
    let emu = Emu::start_with(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    emu.import(&events(5, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);
    emu.reset().await;
    emu.import_all(&events(10, "b")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_update_bytes_count_toward_bytes_per_min() {
    let updates: Vec<Value> = (0..5)
        .map(|i| json!({"$token": TOKEN, "$distinct_id": format!("u{i}"), "$set": {"pad": "a".repeat(1000)}}))
        .collect();
    let len = serde_json::to_vec(&updates).unwrap().len() as u64;
    let emu = Emu::start_with(limited(1_000_000, len * 3 / 2)).await;
    emu.engage("?verbose=1", &json!(updates))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    let resp = emu.engage("?verbose=1", &json!(updates)).await;
    resp.assert_raw(429, RATE_LIMITED);
    assert!(retry_after(&resp) >= 1);
    let groups: Vec<Value> = (0..5)
        .map(|i| json!({"$token": TOKEN, "$group_key": "C", "$group_id": format!("g{i}"), "$set": {"pad": "a".repeat(1000)}}))
        .collect();
    emu.groups("", &json!(groups))
        .await
        .assert_raw(429, RATE_LIMITED);
}
