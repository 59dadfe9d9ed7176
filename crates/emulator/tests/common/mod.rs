//! Shared helpers for the contract tests: start an emulator on a free port, send requests to it,
//! and read back what it stored through the `/_emulator/` inspection endpoints.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use flate2::Compression;
use flate2::write::GzEncoder;
use mixsync_emulator::{Clock, Config, Emulator};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

pub const TOKEN: &str = "demo-token";
pub const API_SECRET: &str = "demo-api-secret";
pub const SA_USER: &str = "demo-sa";
pub const SA_SECRET: &str = "demo-secret";
pub const VIEWER_USER: &str = "demo-viewer";
pub const VIEWER_SECRET: &str = "demo-viewer-secret";

pub const UNAUTHORIZED: &str =
    r#"{"code":401,"error":"Invalid credentials","status":"Unauthorized"}"#;
pub const RATE_LIMITED: &str = r#"{"code":429,"error":"Project exceeded rate limits. Please retry the request with exponential backoff.","status":"Too Many Requests"}"#;

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The demo configuration on a free port, with the rate limiter off so tests are deterministic.
pub fn config() -> Config {
    let mut config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::demo()
    };
    config.rate_limit.enabled = false;
    config
}

/// `Basic base64(user:pass)`.
pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{pass}")))
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A valid event stamped with the current time in seconds.
pub fn event(name: &str, distinct_id: &str, insert_id: &str) -> Value {
    json!({
        "event": name,
        "properties": {"time": now_s(), "distinct_id": distinct_id, "$insert_id": insert_id}
    })
}

/// `n` valid, distinct events named `name`, insert ids `{prefix}-0` … `{prefix}-{n-1}`.
pub fn events(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| event("Signed Up", &format!("user-{i}"), &format!("{prefix}-{i}")))
        .collect()
}

/// `event` with `properties[key] = value` added (or replaced).
pub fn with_prop(mut event: Value, key: &str, value: Value) -> Value {
    event["properties"][key] = value;
    event
}

/// `event` with `properties[key]` removed.
pub fn without_prop(mut event: Value, key: &str) -> Value {
    event["properties"].as_object_mut().unwrap().remove(key);
    event
}

/// A JSON array body built from raw, already encoded elements (which may hold invalid UTF-8).
pub fn raw_array(elements: &[&[u8]]) -> Vec<u8> {
    let mut body = b"[".to_vec();
    for (i, element) in elements.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(element);
    }
    body.push(b']');
    body
}

pub fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut body = Vec::new();
    for line in lines {
        body.extend(serde_json::to_vec(line).unwrap());
        body.push(b'\n');
    }
    body
}

/// The 200 answer of `/import`.
pub fn import_ok(n: usize) -> Value {
    json!({"code": 200, "num_records_imported": n, "status": "OK"})
}

/// One `failed_records` entry.
pub fn failure(index: usize, insert_id: Option<&str>, field: &str, message: &str) -> Value {
    json!({"index": index, "insert_id": insert_id, "field": field, "message": message})
}

/// The strict-mode 400 answer of `/import`.
pub fn strict_failure(failed: Vec<Value>, imported: usize) -> Value {
    json!({
        "code": 400,
        "error": "some data points in the request failed validation",
        "failed_records": failed,
        "num_records_imported": imported,
        "status": "Bad Request"
    })
}

/// The `ERRORS` text of `/engage` and `/groups` for per-update failures.
pub fn update_errors(total: usize, failures: &[(usize, &str)]) -> String {
    let listed: Vec<String> = failures
        .iter()
        .take(20)
        .map(|(i, m)| format!("[{i}] {m}"))
        .collect();
    format!(
        "{} of {total} updates failed: {}",
        failures.len(),
        listed.join("; ")
    )
}

/// An answer: status, headers and the raw body.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} {:?}",
                self.status,
                self.text()
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// Asserts the status and the parsed body.
    #[track_caller]
    pub fn assert(&self, status: u16, body: &Value) {
        assert_eq!(
            (self.status, self.json()),
            (status, body.clone()),
            "raw body: {}",
            self.text()
        );
    }

    /// Asserts the status and the exact bytes of the body (key order included).
    #[track_caller]
    pub fn assert_raw(&self, status: u16, body: &str) {
        assert_eq!((self.status, self.text().as_str()), (status, body));
    }
}

/// A running emulator and a client for it.
pub struct Emu {
    pub emulator: Emulator,
    pub base: String,
    pub client: reqwest::Client,
}

impl Emu {
    pub async fn start() -> Emu {
        Emu::start_with(config()).await
    }

    pub async fn start_with(config: Config) -> Emu {
        Emu::with_client(mixsync_emulator::spawn(config).await)
    }

    /// An emulator whose rate windows run on `clock` (a `ManualClock` the test advances).
    pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Emu {
        Emu::with_client(mixsync_emulator::spawn_with_clock(config, clock).await)
    }

    fn with_client(spawned: Result<Emulator, mixsync_emulator::Error>) -> Emu {
        let emulator = spawned.expect("emulator starts");
        let base = emulator.base_url();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Emu {
            emulator,
            base,
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            emu: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.request(Method::POST, path)
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.request(Method::GET, path)
    }

    /// `POST /import?strict=1` with token auth and a JSON array.
    pub async fn import(&self, events: &[Value]) -> Resp {
        self.post("/import?strict=1")
            .token()
            .json(&json!(events))
            .send()
            .await
    }

    /// Imports and asserts `200` with every event counted.
    pub async fn import_all(&self, events: &[Value]) {
        self.import(events)
            .await
            .assert(200, &import_ok(events.len()));
    }

    /// `POST /engage{query}` with a JSON body.
    pub async fn engage(&self, query: &str, body: &Value) -> Resp {
        self.post(&format!("/engage{query}"))
            .json(body)
            .send()
            .await
    }

    /// `POST /groups{query}` with a JSON body.
    pub async fn groups(&self, query: &str, body: &Value) -> Resp {
        self.post(&format!("/groups{query}"))
            .json(body)
            .send()
            .await
    }

    /// A form-encoded POST to `path` with these parameters.
    pub async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> Resp {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        self.post(path)
            .content_type("application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .send()
            .await
    }

    /// `GET path`, asserting 200, parsed as JSON.
    pub async fn get_ok(&self, path: &str) -> Value {
        let resp = self.get(path).send().await;
        assert_eq!(resp.status, 200, "GET {path}: {}", resp.text());
        resp.json()
    }

    /// The inspection answer for the project's events.
    pub async fn stored_events(&self, project: u64) -> Value {
        self.get_ok(&format!("/_emulator/events?project_id={project}"))
            .await
    }

    /// The project's stored events, in order of first arrival.
    pub async fn event_list(&self, project: u64) -> Vec<Value> {
        let body = self.stored_events(project).await;
        assert_eq!(body["project_id"], json!(project));
        let events = body["events"].as_array().unwrap().clone();
        assert_eq!(body["total"], json!(events.len()), "{body}");
        events
    }

    pub async fn stored_profiles(&self, project: u64) -> Value {
        self.get_ok(&format!("/_emulator/profiles?project_id={project}"))
            .await
    }

    /// The profile of `distinct_id`, if stored.
    pub async fn profile(&self, project: u64, distinct_id: &str) -> Option<Value> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("project_id", &project.to_string())
            .append_pair("distinct_id", distinct_id)
            .finish();
        let body = self.get_ok(&format!("/_emulator/profiles?{query}")).await;
        let profiles = body["profiles"].as_array().unwrap();
        assert!(profiles.len() <= 1, "{body}");
        profiles.first().cloned()
    }

    /// The properties of `distinct_id`'s profile; panics when there is none.
    pub async fn profile_props(&self, project: u64, distinct_id: &str) -> Value {
        let profile = self.profile(project, distinct_id).await;
        profile.unwrap_or_else(|| panic!("no profile {distinct_id}"))["properties"].clone()
    }

    pub async fn stored_groups(&self, project: u64, group_key: &str) -> Value {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("project_id", &project.to_string())
            .append_pair("group_key", group_key)
            .finish();
        self.get_ok(&format!("/_emulator/groups?{query}")).await
    }

    /// The group profile (`group_key`, `group_id`), if stored.
    pub async fn group(&self, project: u64, group_key: &str, group_id: &str) -> Option<Value> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("project_id", &project.to_string())
            .append_pair("group_key", group_key)
            .append_pair("group_id", group_id)
            .finish();
        let body = self.get_ok(&format!("/_emulator/groups?{query}")).await;
        let groups = body["groups"].as_array().unwrap();
        assert!(groups.len() <= 1, "{body}");
        groups.first().cloned()
    }

    pub async fn stats(&self) -> Value {
        self.get_ok("/_emulator/stats").await
    }

    /// `PUT /_emulator/faults`.
    pub async fn put_faults(&self, faults: &Value) -> Resp {
        self.request(Method::PUT, "/_emulator/faults")
            .json(faults)
            .send()
            .await
    }

    /// Replaces the fault settings, asserting success.
    pub async fn set_faults(&self, faults: &Value) {
        let resp = self.put_faults(faults).await;
        assert!(
            (200..300).contains(&resp.status),
            "PUT faults: {} {}",
            resp.status,
            resp.text()
        );
    }

    /// `POST /_emulator/reset`, asserting 204.
    pub async fn reset(&self) {
        let resp = self.post("/_emulator/reset").send().await;
        assert_eq!(resp.status, 204, "{}", resp.text());
    }

    pub async fn shutdown(self) {
        self.emulator.shutdown().await;
    }
}

/// A request being built.
pub struct Req<'a> {
    emu: &'a Emu,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn authorization(self, value: &str) -> Self {
        self.header("authorization", value)
    }

    pub fn basic(self, user: &str, pass: &str) -> Self {
        self.authorization(&basic(user, pass))
    }

    /// Basic auth with the demo project's token.
    pub fn token(self) -> Self {
        self.basic(TOKEN, "")
    }

    pub fn content_type(self, value: &str) -> Self {
        self.header("content-type", value)
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    pub fn json(self, value: &Value) -> Self {
        self.content_type("application/json")
            .body(serde_json::to_vec(value).unwrap())
    }

    pub fn ndjson(self, lines: &[Value]) -> Self {
        self.content_type("application/x-ndjson")
            .body(ndjson(lines))
    }

    /// Compresses the body so far and labels it `Content-Encoding: gzip`.
    pub fn gzip(mut self) -> Self {
        self.body = gzip(&self.body);
        self.header("content-encoding", "gzip")
    }

    pub async fn send(self) -> Resp {
        let mut request = self
            .emu
            .client
            .request(self.method, self.emu.url(&self.path));
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .body(self.body)
            .send()
            .await
            .expect("the emulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the body arrives").to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }
}
