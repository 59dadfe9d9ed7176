//! CONTRACT.md, "Rate limiting": per project, events per rolling second and bytes per rolling minute,
//! refused whole with the SPEC 429 body and `Retry-After`.
//!
//! The windows run on a `ManualClock` that only these tests move, so every edge is exact: time does
//! not pass between two requests unless the test says so, however slow the machine is.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mixsync_emulator::{Config, ManualClock, ProjectConfig};
use serde_json::{Value, json};

const MS: Duration = Duration::from_millis(1);

fn limited(events_per_sec: u64, bytes_per_min: u64) -> Config {
    let mut config = config();
    config.rate_limit.enabled = true;
    config.rate_limit.events_per_sec = events_per_sec;
    config.rate_limit.bytes_per_min = bytes_per_min;
    config.rate_limit.retry_after = true;
    config
}

/// An emulator with these limits on a clock at its origin, and the clock.
async fn start(config: Config) -> (Emu, Arc<ManualClock>) {
    let clock = ManualClock::new();
    (Emu::start_with_clock(config, clock.clone()).await, clock)
}

fn retry_after(resp: &Resp) -> u64 {
    let value = resp.header("retry-after").expect("Retry-After is sent");
    value
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {value:?} is whole seconds"))
}

/// Asserts a 429 with the SPEC body and returns its `Retry-After`.
#[track_caller]
fn refused(resp: &Resp) -> u64 {
    resp.assert_raw(429, RATE_LIMITED);
    retry_after(resp)
}

#[tokio::test]
async fn import_over_events_per_sec_is_429_with_retry_after() {
    let (emu, _clock) = start(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(60, "a")).await;
    let resp = emu.import(&events(60, "b")).await;
    assert_eq!(refused(&resp), 1, "the first bucket leaves in 1 s");
    assert_eq!(
        emu.event_list(1).await.len(),
        60,
        "a refused request stores nothing"
    );
}

#[tokio::test]
async fn import_fills_the_window_exactly() {
    let (emu, _clock) = start(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(60, "a")).await;
    emu.import_all(&events(40, "b")).await;
    emu.import(&events(1, "c"))
        .await
        .assert_raw(429, RATE_LIMITED);
}

#[tokio::test]
async fn refused_requests_do_not_count_toward_the_window() {
    let (emu, _clock) = start(limited(100, 2_000_000_000)).await;
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

#[tokio::test]
async fn the_window_rolls_exactly_one_second_after_its_first_bucket() {
    let (emu, clock) = start(limited(100, 2_000_000_000)).await;
    emu.import_all(&events(100, "a")).await;
    assert_eq!(refused(&emu.import(&events(50, "b")).await), 1);
    clock.advance(999 * MS);
    // One millisecond left still rounds up to a whole second.
    assert_eq!(refused(&emu.import(&events(50, "b")).await), 1);
    clock.advance(MS);
    emu.import_all(&events(50, "b")).await;
    // The new window holds those 50: 50 more fit, one beyond does not.
    assert_eq!(refused(&emu.import(&events(51, "c")).await), 1);
    emu.import_all(&events(50, "c")).await;
    assert_eq!(emu.event_list(1).await.len(), 200);
}

#[tokio::test]
async fn the_second_is_counted_in_100_ms_buckets() {
    let (emu, clock) = start(limited(10, 2_000_000_000)).await;
    // 250 ms falls in the bucket that starts at 200 ms; 650 ms in the one at 600 ms.
    clock.advance(250 * MS);
    emu.import_all(&events(4, "a")).await;
    clock.advance(400 * MS);
    emu.import_all(&events(6, "b")).await;
    // 4 more need the first bucket gone (at 1200 ms); 5 more need both (at 1600 ms).
    assert_eq!(refused(&emu.import(&events(4, "c")).await), 1);
    assert_eq!(refused(&emu.import(&events(5, "c")).await), 1);
    clock.advance(550 * MS);
    // Now 1200 ms: the first bucket has left, the second stays until 1600 ms.
    assert_eq!(refused(&emu.import(&events(5, "c")).await), 1);
    emu.import_all(&events(4, "c")).await;
    clock.advance(400 * MS);
    // Now 1600 ms: only the 4 admitted at 1200 ms are left.
    emu.import_all(&events(6, "d")).await;
    assert_eq!(emu.event_list(1).await.len(), 20);
}

#[tokio::test]
async fn a_single_request_larger_than_the_window_is_admitted_when_it_is_empty() {
    let (emu, clock) = start(limited(10, 2_000)).await;
    // 50 events and well over 2000 bytes.
    let batch = events(50, "big");
    assert!(serde_json::to_vec(&batch).unwrap().len() > 2_000);
    emu.import_all(&batch).await;
    // The records second has rolled; the bytes minute has not.
    clock.advance(1_000 * MS);
    assert_eq!(refused(&emu.import(&events(1, "next")).await), 59);
    clock.advance(59_000 * MS);
    emu.import_all(&events(1, "next")).await;
}

#[tokio::test]
async fn rate_limit_is_checked_before_validation() {
    let (emu, _clock) = start(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    let invalid = vec![json!(1), json!({"event": ""})];
    emu.import(&invalid).await.assert_raw(429, RATE_LIMITED);
    let stats = emu.stats().await;
    assert_eq!(stats["records"]["rejected"], json!(0));
    assert_eq!(stats["records"]["throttled"], json!(2));
}

#[tokio::test]
async fn rate_limit_is_checked_after_auth() {
    let (emu, _clock) = start(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    emu.post("/import")
        .basic("nobody", "")
        .json(&json!(events(5, "b")))
        .send()
        .await
        .assert_raw(401, UNAUTHORIZED);
}

#[tokio::test]
async fn import_over_bytes_per_min_is_429_until_the_minute_rolls() {
    let batch = events(40, "a");
    let len = serde_json::to_vec(&batch).unwrap().len() as u64;
    let (emu, clock) = start(limited(1_000_000, len * 3 / 2)).await;
    emu.import_all(&batch).await;
    assert_eq!(refused(&emu.import(&events(40, "b")).await), 60);
    // Retry-After counts down in whole seconds, rounded up.
    clock.advance(500 * MS);
    assert_eq!(refused(&emu.import(&events(40, "b")).await), 60);
    clock.advance(500 * MS);
    assert_eq!(refused(&emu.import(&events(40, "b")).await), 59);
    clock.advance(29_500 * MS);
    assert_eq!(refused(&emu.import(&events(40, "b")).await), 30);
    clock.advance(29_499 * MS);
    assert_eq!(refused(&emu.import(&events(40, "b")).await), 1);
    clock.advance(MS);
    emu.import_all(&events(40, "b")).await;
    let stats = emu.stats().await;
    assert_eq!(stats["requests"]["import"], json!({"200": 2, "429": 5}));
}

#[tokio::test]
async fn bytes_are_counted_uncompressed() {
    let batch = events(40, "a");
    let len = serde_json::to_vec(&batch).unwrap().len() as u64;
    // Both gzipped bodies together are far smaller than the limit; uncompressed they exceed it.
    assert!(gzip(&serde_json::to_vec(&batch).unwrap()).len() as u64 * 2 < len);
    let (emu, _clock) = start(limited(1_000_000, len * 3 / 2)).await;
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
    assert_eq!(refused(&resp), 60);
}

#[tokio::test]
async fn retry_after_is_left_out_when_off() {
    let mut config = limited(10, 2_000_000_000);
    config.rate_limit.retry_after = false;
    let (emu, _clock) = start(config).await;
    emu.import_all(&events(10, "a")).await;
    let resp = emu.import(&events(1, "b")).await;
    resp.assert_raw(429, RATE_LIMITED);
    assert_eq!(resp.header("retry-after"), None);
}

fn with_second_project(mut config: Config) -> Config {
    config.projects.push(ProjectConfig {
        id: 2,
        name: "Two".into(),
        token: "two-token".into(),
        api_secret: "two-secret".into(),
    });
    config
}

#[tokio::test]
async fn rate_limit_is_per_project() {
    let (emu, _clock) = start(with_second_project(limited(10, 2_000_000_000))).await;
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

#[tokio::test]
async fn engage_and_groups_count_updates_in_the_same_window() {
    let (emu, _clock) = start(limited(10, 2_000_000_000)).await;
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

#[tokio::test]
async fn profile_updates_are_limited_by_the_project_of_the_first_valid_token() {
    let (emu, _clock) = start(with_second_project(limited(10, 2_000_000_000))).await;
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

#[tokio::test]
async fn reset_clears_the_rate_windows() {
    let (emu, _clock) = start(limited(10, 2_000_000_000)).await;
    emu.import_all(&events(10, "a")).await;
    emu.import(&events(5, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);
    emu.reset().await;
    emu.import_all(&events(10, "b")).await;
}

#[tokio::test]
async fn profile_update_bytes_count_toward_bytes_per_min() {
    let updates: Vec<Value> = (0..5)
        .map(|i| json!({"$token": TOKEN, "$distinct_id": format!("u{i}"), "$set": {"pad": "a".repeat(1000)}}))
        .collect();
    let len = serde_json::to_vec(&updates).unwrap().len() as u64;
    let (emu, clock) = start(limited(1_000_000, len * 3 / 2)).await;
    emu.engage("?verbose=1", &json!(updates))
        .await
        .assert_raw(200, r#"{"error":null,"status":1}"#);
    clock.advance(20_000 * MS);
    assert_eq!(
        refused(&emu.engage("?verbose=1", &json!(updates)).await),
        40
    );
    let groups: Vec<Value> = (0..5)
        .map(|i| json!({"$token": TOKEN, "$group_key": "C", "$group_id": format!("g{i}"), "$set": {"pad": "a".repeat(1000)}}))
        .collect();
    assert_eq!(refused(&emu.groups("", &json!(groups)).await), 40);
    clock.advance(40_000 * MS);
    emu.groups("", &json!(groups)).await.assert_raw(200, "1");
}

/// `spawn` without a clock measures the windows on the real monotonic clock: the window rolls as real
/// time passes, while an emulator on a clock nobody advances stays refused all that time.
#[tokio::test]
async fn the_default_emulator_rolls_its_window_on_the_real_clock() {
    let real = Emu::start_with(limited(10, 2_000_000_000)).await;
    let (frozen, _clock) = start(limited(10, 2_000_000_000)).await;
    let filled = Instant::now();
    real.import_all(&events(10, "a")).await;
    frozen.import_all(&events(10, "a")).await;
    real.import(&events(1, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);

    // Wait for the event (the real window rolling), polling; refused attempts do not count.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let resp = real.import(&events(1, "b")).await;
        if resp.status == 200 {
            break;
        }
        resp.assert_raw(429, RATE_LIMITED);
        assert!(Instant::now() < deadline, "the real window never rolled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The bucket the first 10 went into started at most 100 ms before they arrived, so it cannot
    // have left before 900 ms of real time; a slow machine only makes this later.
    assert!(filled.elapsed() >= 900 * MS, "{:?}", filled.elapsed());

    // At least that much real time has passed for the frozen emulator too.
    frozen
        .import(&events(1, "b"))
        .await
        .assert_raw(429, RATE_LIMITED);
}
