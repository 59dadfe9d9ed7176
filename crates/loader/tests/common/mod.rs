//! Shared helpers: an emulator on a free port, targets for its demo project, events, and the
//! emulator's inspection endpoints.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mixsync_emulator::{Config, Emulator};
use mixsync_loader::http::HttpSettings;
use mixsync_loader::retry::Backoff;
use mixsync_loader::{SendSettings, Target};
use serde_json::{Value, json};

pub const PROJECT: u64 = 1;

/// The emulator's demo project on a free port, rate limit off unless a test turns it on.
pub fn emulator_config() -> Config {
    let mut config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::demo()
    };
    config.rate_limit.enabled = false;
    config
}

pub async fn start(config: Config) -> Emulator {
    mixsync_emulator::spawn(config).await.unwrap()
}

/// The demo project as seen by the owner service account.
pub fn target(emulator: &Emulator) -> Target {
    target_as(emulator, "demo-sa", "demo-secret")
}

pub fn target_as(emulator: &Emulator, user: &str, secret: &str) -> Target {
    Target {
        base_url: emulator.base_url(),
        project_id: PROJECT,
        token: "demo-token".into(),
        service_account_username: user.into(),
        service_account_secret: secret.into(),
        rate_limit_per_second: 30_000,
    }
}

/// Fast retries so tests with faults stay quick; no rate limit.
pub fn settings() -> SendSettings {
    SendSettings {
        http: HttpSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        },
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(200),
        },
        retry_budget: Some(Duration::from_secs(120)),
        rate_limit: None,
    }
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A valid event.
pub fn event(insert_id: &str) -> Value {
    json!({
        "event": "Signed Up",
        "properties": {"time": now_s(), "distinct_id": format!("user-{insert_id}"), "$insert_id": insert_id, "ip": 0, "plan": "pro"}
    })
}

pub fn bytes(event: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(event).unwrap())
}

/// `n` valid events with insert ids `{prefix}-{i}`.
pub fn events(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| bytes(&event(&format!("{prefix}-{i}"))))
        .collect()
}

async fn get(emulator: &Emulator, path: &str) -> Value {
    reqwest::get(format!("{}{path}", emulator.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The emulator's stored events of the demo project.
pub async fn stored(emulator: &Emulator) -> Vec<Value> {
    let body = get(emulator, &format!("/_emulator/events?project_id={PROJECT}")).await;
    body["events"].as_array().unwrap().clone()
}

/// The insert ids stored, sorted.
pub async fn stored_ids(emulator: &Emulator) -> Vec<String> {
    let mut ids: Vec<String> = stored(emulator)
        .await
        .iter()
        .map(|e| e["properties"]["$insert_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

pub async fn stats(emulator: &Emulator) -> Value {
    get(emulator, "/_emulator/stats").await
}

/// Requests to `/import` answered with `status`.
pub async fn import_requests(emulator: &Emulator, status: u16) -> u64 {
    stats(emulator).await["requests"]["import"][status.to_string()]
        .as_u64()
        .unwrap_or(0)
}

pub async fn set_faults(emulator: &Emulator, faults: Value) {
    let response = reqwest::Client::new()
        .put(format!("{}/_emulator/faults", emulator.base_url()))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}

pub fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Requests to `endpoint` (`import`, `engage`, `groups`) answered with `status`.
pub async fn requests(emulator: &Emulator, endpoint: &str, status: u16) -> u64 {
    stats(emulator).await["requests"][endpoint][status.to_string()]
        .as_u64()
        .unwrap_or(0)
}

/// A user profile record as the mapper builds it: one update object per operation, no `$token`.
pub fn user_record(distinct_id: &str, operations: &[(&str, Value)]) -> Bytes {
    let updates: Vec<Value> = operations
        .iter()
        .map(|(op, value)| json!({"$distinct_id": distinct_id, "$ip": "0", *op: value}))
        .collect();
    bytes(&json!(updates))
}

/// A group profile record: one update object per operation, no `$token`.
pub fn group_record(group_key: &str, group_id: &str, operations: &[(&str, Value)]) -> Bytes {
    let updates: Vec<Value> = operations
        .iter()
        .map(|(op, value)| json!({"$group_key": group_key, "$group_id": group_id, *op: value}))
        .collect();
    bytes(&json!(updates))
}

/// The demo project's user profiles, by distinct id.
pub async fn profiles(emulator: &Emulator) -> std::collections::BTreeMap<String, Value> {
    let body = get(
        emulator,
        &format!("/_emulator/profiles?project_id={PROJECT}"),
    )
    .await;
    body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["distinct_id"].as_str().unwrap().to_owned(),
                p["properties"].clone(),
            )
        })
        .collect()
}

/// The demo project's group profiles of `group_key`, by group id.
pub async fn groups(
    emulator: &Emulator,
    group_key: &str,
) -> std::collections::BTreeMap<String, Value> {
    let body = get(
        emulator,
        &format!("/_emulator/groups?project_id={PROJECT}&group_key={group_key}"),
    )
    .await;
    body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group_id"].as_str().unwrap().to_owned(),
                g["properties"].clone(),
            )
        })
        .collect()
}
