//! CONTRACT.md, "Configuration": the variables, their defaults, the projects file, and that an invalid
//! value stops the emulator with a message naming the variable (or file and key).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::*;
use mixsync_domain::rules::TruncateUnit;
use mixsync_emulator::{
    Config, Faults, Limits, ProjectConfig, RateLimitConfig, Role, ServiceAccountConfig,
};
use serde_json::json;

fn lookup(vars: &[(&str, &str)]) -> mixsync_config::Env {
    mixsync_config::Env::from_pairs(vars.iter().copied())
}

/// A file in a directory of its own, removed when dropped.
struct TempFile {
    dir: PathBuf,
    path: PathBuf,
}

impl TempFile {
    fn new(test: &str, name: &str, contents: &str) -> TempFile {
        let dir = std::env::temp_dir().join(format!(
            "mixsync-emulator-contract-{}-{test}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PROJECTS_TOML: &str = r#"
[[projects]]
id = 7
name = "Seven"
token = "seven-token"
api_secret = "seven-secret"

[[projects]]
id = 8
name = "Eight"
token = "eight-token"
api_secret = "eight-secret"

[[service_accounts]]
username = "loader"
secret = "loader-secret"
roles = { "7" = "admin", "8" = "consumer" }
"#;

#[test]
fn config_defaults_without_variables() {
    let config = Config::read(&lookup(&[])).unwrap();
    assert_eq!(config.addr.to_string(), "127.0.0.1:3900");
    assert_eq!(
        config.projects,
        vec![ProjectConfig {
            id: 1,
            name: "Demo".into(),
            token: "demo-token".into(),
            api_secret: "demo-api-secret".into(),
        }]
    );
    assert_eq!(
        config.service_accounts,
        vec![
            ServiceAccountConfig {
                username: "demo-sa".into(),
                secret: "demo-secret".into(),
                roles: BTreeMap::from([("1".to_string(), Role::Owner)]),
            },
            ServiceAccountConfig {
                username: "demo-viewer".into(),
                secret: "demo-viewer-secret".into(),
                roles: BTreeMap::from([("1".to_string(), Role::Consumer)]),
            },
        ]
    );
    assert_eq!(
        config.limits,
        Limits {
            max_import_bytes: 10_485_760,
            max_import_events: 2000,
            max_engage_updates: 2000,
            max_group_updates: 200,
            truncate: TruncateUnit::Bytes,
        }
    );
    assert_eq!(
        config.rate_limit,
        RateLimitConfig {
            enabled: true,
            events_per_sec: 30_000,
            bytes_per_min: 2_000_000_000,
            retry_after: true,
        }
    );
    assert_eq!(
        config.faults,
        Faults {
            error_rate: 0.0,
            error_statuses: vec![500, 502, 503],
            latency_ms: 0,
            latency_jitter_ms: 0,
            reset_rate: 0.0,
            fail_next: 0,
            fail_next_status: 503,
            endpoints: vec!["import".into(), "engage".into(), "groups".into()],
        }
    );
}

#[test]
fn config_demo_equals_the_defaults() {
    let demo = Config::demo();
    let defaults = Config::read(&lookup(&[])).unwrap();
    assert_eq!(demo.addr, defaults.addr);
    assert_eq!(demo.projects, defaults.projects);
    assert_eq!(demo.service_accounts, defaults.service_accounts);
    assert_eq!(demo.limits, defaults.limits);
    assert_eq!(demo.rate_limit, defaults.rate_limit);
    assert_eq!(demo.faults, defaults.faults);
}

#[test]
fn config_reads_every_variable() {
    let config = Config::read(&lookup(&[
        ("MIXSYNC_EMULATOR_ADDR", "0.0.0.0:4000"),
        ("MIXSYNC_EMULATOR_MAX_IMPORT_BYTES", "2097152"),
        ("MIXSYNC_EMULATOR_MAX_IMPORT_EVENTS", "500"),
        ("MIXSYNC_EMULATOR_MAX_ENGAGE_UPDATES", "100"),
        ("MIXSYNC_EMULATOR_MAX_GROUP_UPDATES", "2000"),
        ("MIXSYNC_EMULATOR_TRUNCATE", "chars"),
        ("MIXSYNC_EMULATOR_RATE_LIMIT", "off"),
        ("MIXSYNC_EMULATOR_EVENTS_PER_SEC", "100"),
        ("MIXSYNC_EMULATOR_BYTES_PER_MIN", "5000"),
        ("MIXSYNC_EMULATOR_RETRY_AFTER", "off"),
        (
            "MIXSYNC_EMULATOR_FAULTS",
            r#"{"error_rate":0.25,"fail_next":2,"endpoints":["import"]}"#,
        ),
    ]))
    .unwrap();
    assert_eq!(config.addr.to_string(), "0.0.0.0:4000");
    assert_eq!(
        config.limits,
        Limits {
            max_import_bytes: 2_097_152,
            max_import_events: 500,
            max_engage_updates: 100,
            max_group_updates: 2000,
            truncate: TruncateUnit::Chars,
        }
    );
    assert_eq!(
        config.rate_limit,
        RateLimitConfig {
            enabled: false,
            events_per_sec: 100,
            bytes_per_min: 5000,
            retry_after: false,
        }
    );
    assert_eq!(
        config.faults,
        Faults {
            error_rate: 0.25,
            fail_next: 2,
            endpoints: vec!["import".into()],
            ..Faults::default()
        }
    );
}

#[test]
fn config_rejects_invalid_values_naming_the_variable() {
    for (var, value, accepted) in [
        ("MIXSYNC_EMULATOR_ADDR", "nowhere", None),
        ("MIXSYNC_EMULATOR_MAX_IMPORT_BYTES", "ten", None),
        ("MIXSYNC_EMULATOR_MAX_IMPORT_EVENTS", "-5", None),
        ("MIXSYNC_EMULATOR_MAX_ENGAGE_UPDATES", "1.5", None),
        ("MIXSYNC_EMULATOR_MAX_GROUP_UPDATES", "lots", None),
        (
            "MIXSYNC_EMULATOR_TRUNCATE",
            "words",
            Some(["bytes", "chars"]),
        ),
        ("MIXSYNC_EMULATOR_RATE_LIMIT", "maybe", Some(["on", "off"])),
        ("MIXSYNC_EMULATOR_EVENTS_PER_SEC", "fast", None),
        ("MIXSYNC_EMULATOR_BYTES_PER_MIN", "2GB", None),
        (
            "MIXSYNC_EMULATOR_RETRY_AFTER",
            "sometimes",
            Some(["on", "off"]),
        ),
        ("MIXSYNC_EMULATOR_FAULTS", "{not json", None),
        ("MIXSYNC_EMULATOR_FAULTS", r#"{"error_rate":2}"#, None),
    ] {
        let err = Config::read(&lookup(&[(var, value)]))
            .err()
            .unwrap_or_else(|| panic!("{var}={value} is accepted"))
            .to_string();
        assert!(err.contains(var), "{var}={value}: {err}");
        for word in accepted.into_iter().flatten() {
            assert!(
                err.contains(word),
                "{var}={value} names the accepted values: {err}"
            );
        }
    }
}

#[test]
fn config_reads_a_toml_projects_file() {
    let file = TempFile::new("toml", "projects.toml", PROJECTS_TOML);
    let config = Config::read(&lookup(&[("MIXSYNC_EMULATOR_PROJECTS", file.path())])).unwrap();
    assert_eq!(config.projects.len(), 2);
    assert_eq!(
        config.projects[0],
        ProjectConfig {
            id: 7,
            name: "Seven".into(),
            token: "seven-token".into(),
            api_secret: "seven-secret".into(),
        }
    );
    assert_eq!(
        config.service_accounts,
        vec![ServiceAccountConfig {
            username: "loader".into(),
            secret: "loader-secret".into(),
            roles: BTreeMap::from([
                ("7".to_string(), Role::Admin),
                ("8".to_string(), Role::Consumer)
            ]),
        }]
    );
}

#[test]
fn config_reads_a_json_projects_file_with_optional_sections() {
    let json = json!({
        "projects": [{"id": 5, "name": "Five", "token": "five-token", "api_secret": "five-secret"}],
        "service_accounts": [{"username": "sa", "secret": "s", "roles": {"5": "owner"}}],
        "limits": {"max_import_bytes": 2097152, "max_group_updates": 2000, "truncate": "chars"},
        "rate_limit": {"enabled": false, "events_per_sec": 10},
        "faults": {"latency_ms": 7}
    });
    let file = TempFile::new("json", "projects.json", &json.to_string());
    let config = Config::read(&lookup(&[("MIXSYNC_EMULATOR_PROJECTS", file.path())])).unwrap();
    assert_eq!(config.projects[0].id, 5);
    assert_eq!(config.service_accounts[0].roles["5"], Role::Owner);
    assert_eq!(config.limits.max_import_bytes, 2_097_152);
    assert_eq!(config.limits.max_group_updates, 2000);
    assert_eq!(config.limits.max_import_events, 2000);
    assert_eq!(config.limits.truncate, TruncateUnit::Chars);
    assert!(!config.rate_limit.enabled);
    assert_eq!(config.rate_limit.events_per_sec, 10);
    assert_eq!(config.rate_limit.bytes_per_min, 2_000_000_000);
    assert_eq!(config.faults.latency_ms, 7);
    assert_eq!(config.faults.fail_next_status, 503);
}

#[test]
fn config_variables_override_the_file() {
    let toml = format!(
        "{PROJECTS_TOML}\n[limits]\nmax_group_updates = 2000\n\n[rate_limit]\nenabled = false\n"
    );
    let file = TempFile::new("override", "projects.toml", &toml);
    let config = Config::read(&lookup(&[
        ("MIXSYNC_EMULATOR_PROJECTS", file.path()),
        ("MIXSYNC_EMULATOR_MAX_GROUP_UPDATES", "50"),
        ("MIXSYNC_EMULATOR_RATE_LIMIT", "on"),
    ]))
    .unwrap();
    assert_eq!(config.limits.max_group_updates, 50);
    assert!(config.rate_limit.enabled);
    assert_eq!(config.projects[0].id, 7);
}

#[test]
fn config_rejects_unknown_keys_in_the_projects_file_naming_file_and_key() {
    let toml = PROJECTS_TOML.replace("name = \"Seven\"", "name = \"Seven\"\nregion = \"eu\"");
    let file = TempFile::new("unknown-key", "projects.toml", &toml);
    let err = Config::read(&lookup(&[("MIXSYNC_EMULATOR_PROJECTS", file.path())]))
        .expect_err("an unknown key is an error")
        .to_string();
    assert!(err.contains(file.path()), "{err}");
    assert!(err.contains("region"), "{err}");

    let json = r#"{"projects":[{"id":1,"token":"t","api_secret":"s"}],"extra":true}"#;
    let file = TempFile::new("unknown-json-key", "projects.json", json);
    let err = Config::read(&lookup(&[("MIXSYNC_EMULATOR_PROJECTS", file.path())]))
        .expect_err("an unknown key is an error")
        .to_string();
    assert!(err.contains(file.path()) && err.contains("extra"), "{err}");
}

#[test]
fn config_rejects_an_invalid_role_and_a_missing_file() {
    let toml = PROJECTS_TOML.replace("\"8\" = \"consumer\"", "\"8\" = \"superuser\"");
    let file = TempFile::new("role", "projects.toml", &toml);
    let err = Config::read(&lookup(&[("MIXSYNC_EMULATOR_PROJECTS", file.path())]))
        .expect_err("an unknown role is an error")
        .to_string();
    assert!(
        err.contains(file.path()) && err.contains("superuser"),
        "{err}"
    );

    let err = Config::read(&lookup(&[(
        "MIXSYNC_EMULATOR_PROJECTS",
        "/nonexistent/mixsync/projects.toml",
    )]))
    .expect_err("a missing file is an error")
    .to_string();
    assert!(
        err.contains("MIXSYNC_EMULATOR_PROJECTS")
            || err.contains("/nonexistent/mixsync/projects.toml"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emulator_started_from_variables_serves_the_files_projects() {
    let file = TempFile::new("serve", "projects.toml", PROJECTS_TOML);
    let config = Config::read(&lookup(&[
        ("MIXSYNC_EMULATOR_ADDR", "127.0.0.1:0"),
        ("MIXSYNC_EMULATOR_PROJECTS", file.path()),
        ("MIXSYNC_EMULATOR_RATE_LIMIT", "off"),
        ("MIXSYNC_EMULATOR_MAX_IMPORT_BYTES", "2097152"),
    ]))
    .unwrap();
    let emu = Emu::start_with(config).await;
    assert_ne!(emu.emulator.addr().port(), 0);
    assert_eq!(
        emu.base,
        format!("http://127.0.0.1:{}", emu.emulator.addr().port())
    );
    emu.post("/import?project_id=7")
        .basic("loader", "loader-secret")
        .json(&json!(events(2, "file")))
        .send()
        .await
        .assert(200, &import_ok(2));
    emu.post("/import?project_id=8")
        .basic("loader", "loader-secret")
        .json(&json!(events(1, "file")))
        .send()
        .await
        .assert_raw(
            403,
            r#"{"code":403,"error":"service account 'loader' needs the Owner or Admin role on project 8 to import data","status":"Forbidden"}"#,
        );
    // The demo project is gone.
    emu.post("/import")
        .token()
        .json(&json!(events(1, "demo")))
        .send()
        .await
        .assert_raw(401, UNAUTHORIZED);
    emu.get("/_emulator/events?project_id=1")
        .send()
        .await
        .assert_raw(404, r#"{"error":"unknown project 1"}"#);
    assert_eq!(emu.event_list(7).await.len(), 2);
    let resp = emu
        .post("/import")
        .basic("seven-token", "")
        .content_type("application/json")
        .body(vec![b' '; 2_097_153])
        .send()
        .await;
    assert_eq!(resp.status, 413, "{}", resp.text());
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_serving() {
    let emu = Emu::start().await;
    let url = emu.url("/_emulator/stats");
    emu.get("/_emulator/stats").send().await;
    emu.shutdown().await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let result = client.get(url).send().await;
    assert!(result.is_err(), "{result:?}");
}
