//! The emulator's configuration: read from `MIXSYNC_EMULATOR_*` variables and an optional projects file
//! (TOML or JSON), validated once at start.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use mixsync_config::Env;

use mixsync_domain::rules::{self, TruncateUnit};
use serde::{Deserialize, Serialize};

use crate::faults::Faults;

/// Everything the emulator needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one.
    pub addr: SocketAddr,
    /// The Mixpanel projects this emulator hosts.
    pub projects: Vec<ProjectConfig>,
    /// Service accounts and their roles on those projects.
    pub service_accounts: Vec<ServiceAccountConfig>,
    /// Per-request limits.
    pub limits: Limits,
    /// The per-project rolling-window rate limiter.
    pub rate_limit: RateLimitConfig,
    /// Fault injection at start (changeable at run time).
    pub faults: Faults,
}

/// One Mixpanel project.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Numeric project id, as in `?project_id=`.
    pub id: u64,
    /// Display name returned by `/api/app/me`.
    #[serde(default)]
    pub name: String,
    /// Project token (`$token` on profile updates, or Basic `token:`).
    pub token: String,
    /// Legacy project API secret (Basic `secret:`).
    pub api_secret: String,
}

/// A service account and its role per project id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountConfig {
    /// Basic-auth user name.
    pub username: String,
    /// Basic-auth password.
    pub secret: String,
    /// Role per project id (the key is the id as a string, as in TOML tables).
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
}

/// Mixpanel project roles; only Owner and Admin may import.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Full control.
    Owner,
    /// May import.
    Admin,
    /// Read and analyse; may not import.
    Analyst,
    /// Read only.
    Consumer,
}

impl Role {
    /// Whether this role may send data to `/import`.
    pub fn can_import(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// The lowercase name used in responses.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Consumer => "consumer",
        }
    }
}

/// Per-request limits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// `/import` uncompressed body limit in bytes.
    pub max_import_bytes: usize,
    /// Events per `/import` request.
    pub max_import_events: usize,
    /// Updates per `/engage` request.
    pub max_engage_updates: usize,
    /// Updates per `/groups` request.
    pub max_group_updates: usize,
    /// Unit of the 255 string truncation.
    pub truncate: TruncateUnit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_import_bytes: rules::MAX_IMPORT_BYTES,
            max_import_events: rules::MAX_IMPORT_EVENTS,
            max_engage_updates: rules::MAX_ENGAGE_UPDATES,
            max_group_updates: rules::DEFAULT_MAX_GROUP_UPDATES,
            truncate: TruncateUnit::Bytes,
        }
    }
}

/// The per-project rate limiter's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Off: every request is admitted.
    pub enabled: bool,
    /// Records per second, over a rolling 1 s window.
    pub events_per_sec: u64,
    /// Uncompressed bytes per minute, over a rolling 60 s window.
    pub bytes_per_min: u64,
    /// Send `Retry-After` with 429s.
    pub retry_after: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: true,
            events_per_sec: 30_000,
            bytes_per_min: 2_000_000_000,
            retry_after: true,
        }
    }
}

/// The optional projects file's shape.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    projects: Vec<ProjectConfig>,
    #[serde(default)]
    service_accounts: Vec<ServiceAccountConfig>,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    faults: Option<Faults>,
}

/// Why the configuration could not be used: every error names the variable (and, for the
/// projects file, the file and key).
pub use mixsync_config::ConfigError;

/// The variable naming the optional projects file.
const PROJECTS_VAR: &str = "MIXSYNC_EMULATOR_PROJECTS";

const DEFAULT_ADDR: &str = "127.0.0.1:3900";

impl Config {
    /// The demo project and accounts of CONTRACT.md, on the default address, every default.
    pub fn demo() -> Config {
        Config {
            addr: DEFAULT_ADDR.parse().expect("default address is valid"),
            projects: vec![ProjectConfig {
                id: 1,
                name: "Demo".into(),
                token: "demo-token".into(),
                api_secret: "demo-api-secret".into(),
            }],
            service_accounts: vec![
                ServiceAccountConfig {
                    username: "demo-sa".into(),
                    secret: "demo-secret".into(),
                    roles: BTreeMap::from([("1".into(), Role::Owner)]),
                },
                ServiceAccountConfig {
                    username: "demo-viewer".into(),
                    secret: "demo-viewer-secret".into(),
                    roles: BTreeMap::from([("1".into(), Role::Consumer)]),
                },
            ],
            limits: Limits::default(),
            rate_limit: RateLimitConfig::default(),
            faults: Faults::default(),
        }
    }

    /// Reads `MIXSYNC_EMULATOR_*` from `env`: the projects file first, then the variables,
    /// which override it.
    pub fn read(env: &Env) -> Result<Config, ConfigError> {
        let mut config = Config::demo();
        if let Some(path) = env.string(PROJECTS_VAR)? {
            config.apply_file(Path::new(&path))?;
        }
        config.addr = env.parse(
            "MIXSYNC_EMULATOR_ADDR",
            config.addr,
            "a socket address such as 127.0.0.1:3900",
        )?;
        let limits = &mut config.limits;
        for (var, limit) in [
            (
                "MIXSYNC_EMULATOR_MAX_IMPORT_BYTES",
                &mut limits.max_import_bytes,
            ),
            (
                "MIXSYNC_EMULATOR_MAX_IMPORT_EVENTS",
                &mut limits.max_import_events,
            ),
            (
                "MIXSYNC_EMULATOR_MAX_ENGAGE_UPDATES",
                &mut limits.max_engage_updates,
            ),
            (
                "MIXSYNC_EMULATOR_MAX_GROUP_UPDATES",
                &mut limits.max_group_updates,
            ),
        ] {
            *limit = env.number(var, *limit, 1..=usize::MAX)?;
        }
        limits.truncate = env.choice(
            "MIXSYNC_EMULATOR_TRUNCATE",
            limits.truncate,
            &[
                ("bytes", TruncateUnit::Bytes),
                ("chars", TruncateUnit::Chars),
            ],
        )?;
        let rate = &mut config.rate_limit;
        rate.enabled = env.switch("MIXSYNC_EMULATOR_RATE_LIMIT", rate.enabled)?;
        rate.events_per_sec = env.number(
            "MIXSYNC_EMULATOR_EVENTS_PER_SEC",
            rate.events_per_sec,
            1..=u64::MAX,
        )?;
        rate.bytes_per_min = env.number(
            "MIXSYNC_EMULATOR_BYTES_PER_MIN",
            rate.bytes_per_min,
            1..=u64::MAX,
        )?;
        rate.retry_after = env.switch("MIXSYNC_EMULATOR_RETRY_AFTER", rate.retry_after)?;
        if let Some(v) = env.string("MIXSYNC_EMULATOR_FAULTS")? {
            let faults: Faults = serde_json::from_str(&v).map_err(|e| {
                ConfigError::invalid(
                    "MIXSYNC_EMULATOR_FAULTS",
                    &v,
                    format!("fault settings as JSON ({e})"),
                )
            })?;
            faults
                .validate()
                .map_err(|e| ConfigError::invalid("MIXSYNC_EMULATOR_FAULTS", &v, e))?;
            config.faults = faults;
        }
        Ok(config)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::unusable(PROJECTS_VAR, &shown, format!("cannot read the file: {e}"))
        })?;
        let file_error = |detail: String| {
            ConfigError::unusable(
                PROJECTS_VAR,
                &shown,
                format!("the file is not valid: {detail}"),
            )
        };
        let file: FileConfig = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text).map_err(|e| file_error(e.to_string()))?,
            Some("toml") => toml::from_str(&text).map_err(|e| file_error(e.to_string()))?,
            _ => {
                return Err(file_error(
                    "the file name must end in .toml or .json".into(),
                ));
            }
        };
        validate_accounts(&file.projects, &file.service_accounts).map_err(file_error)?;
        self.projects = file.projects;
        self.service_accounts = file.service_accounts;
        if let Some(limits) = file.limits {
            self.limits = limits;
        }
        if let Some(rate) = file.rate_limit {
            self.rate_limit = rate;
        }
        if let Some(faults) = file.faults {
            faults
                .validate()
                .map_err(|e| file_error(format!("faults: {e}")))?;
            self.faults = faults;
        }
        Ok(())
    }
}

fn validate_accounts(
    projects: &[ProjectConfig],
    accounts: &[ServiceAccountConfig],
) -> Result<(), String> {
    if projects.is_empty() {
        return Err("`projects` must list at least one project".into());
    }
    for (i, p) in projects.iter().enumerate() {
        if p.id == 0 {
            return Err(format!("projects[{i}].id must be a positive integer"));
        }
        if p.token.is_empty() || p.api_secret.is_empty() {
            return Err(format!(
                "projects[{i}]: `token` and `api_secret` must not be empty"
            ));
        }
        if projects[..i]
            .iter()
            .any(|q| q.id == p.id || q.token == p.token)
        {
            return Err(format!(
                "projects[{i}]: id {} or its token is used twice",
                p.id
            ));
        }
    }
    for (i, a) in accounts.iter().enumerate() {
        if a.username.is_empty() || a.secret.is_empty() {
            return Err(format!(
                "service_accounts[{i}]: `username` and `secret` must not be empty"
            ));
        }
        for pid in a.roles.keys() {
            let known = pid
                .parse::<u64>()
                .ok()
                .is_some_and(|id| projects.iter().any(|p| p.id == id));
            if !known {
                return Err(format!(
                    "service_accounts[{i}].roles: `{pid}` is not the id of a project in this file"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> Env {
        Env::from_pairs(vars.iter().copied())
    }

    #[test]
    fn no_variables_gives_the_demo_project() {
        let config = Config::read(&lookup(&[])).unwrap();
        assert_eq!(config.addr.to_string(), "127.0.0.1:3900");
        assert_eq!(config.projects[0].token, "demo-token");
        assert_eq!(config.service_accounts.len(), 2);
        assert!(config.rate_limit.enabled);
        assert_eq!(config.limits.max_group_updates, 200);
    }

    #[test]
    fn variables_override_defaults() {
        let config = Config::read(&lookup(&[
            ("MIXSYNC_EMULATOR_ADDR", "0.0.0.0:4000"),
            ("MIXSYNC_EMULATOR_MAX_IMPORT_BYTES", "2097152"),
            ("MIXSYNC_EMULATOR_RATE_LIMIT", "off"),
            ("MIXSYNC_EMULATOR_TRUNCATE", "chars"),
            ("MIXSYNC_EMULATOR_FAULTS", r#"{"error_rate":0.2}"#),
        ]))
        .unwrap();
        assert_eq!(config.addr.port(), 4000);
        assert_eq!(config.limits.max_import_bytes, 2_097_152);
        assert!(!config.rate_limit.enabled);
        assert_eq!(config.limits.truncate, TruncateUnit::Chars);
        assert!((config.faults.error_rate - 0.2).abs() < f64::EPSILON);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("MIXSYNC_EMULATOR_ADDR", "nowhere"),
            ("MIXSYNC_EMULATOR_MAX_IMPORT_EVENTS", "0"),
            ("MIXSYNC_EMULATOR_RATE_LIMIT", "maybe"),
            ("MIXSYNC_EMULATOR_TRUNCATE", "words"),
            ("MIXSYNC_EMULATOR_FAULTS", r#"{"error_rate":2}"#),
        ] {
            let err = Config::read(&lookup(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(var), "{err}");
            assert!(err.contains(value), "{err}");
        }
    }

    #[test]
    fn projects_file_in_toml_and_json() {
        let dir = std::env::temp_dir().join(format!("mixsync-emu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("p.toml");
        std::fs::write(
            &toml_path,
            "[[projects]]\nid = 7\nname = \"Seven\"\ntoken = \"t7\"\napi_secret = \"s7\"\n\n\
             [[service_accounts]]\nusername = \"sa\"\nsecret = \"x\"\nroles = { \"7\" = \"admin\" }\n\n\
             [limits]\nmax_group_updates = 2000\n",
        )
        .unwrap();
        let config = Config::read(&lookup(&[(
            "MIXSYNC_EMULATOR_PROJECTS",
            toml_path.to_str().unwrap(),
        )]))
        .unwrap();
        assert_eq!(config.projects[0].id, 7);
        assert_eq!(config.service_accounts[0].roles["7"], Role::Admin);
        assert_eq!(config.limits.max_group_updates, 2000);

        let json_path = dir.join("p.json");
        std::fs::write(
            &json_path,
            r#"{"projects":[{"id":8,"token":"t8","api_secret":"s8"}],"service_accounts":[{"username":"a","secret":"b","roles":{"9":"owner"}}]}"#,
        )
        .unwrap();
        let err = Config::read(&lookup(&[(
            "MIXSYNC_EMULATOR_PROJECTS",
            json_path.to_str().unwrap(),
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("`9` is not the id of a project"), "{err}");

        std::fs::write(
            &json_path,
            r#"{"projects":[{"id":8,"token":"t8","api_secret":"s8","extra":1}]}"#,
        )
        .unwrap();
        let err = Config::read(&lookup(&[(
            "MIXSYNC_EMULATOR_PROJECTS",
            json_path.to_str().unwrap(),
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
