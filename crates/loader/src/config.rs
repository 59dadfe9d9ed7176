//! The loader's configuration, read from `MIXSYNC_*` variables once at start and validated there,
//! so a bad value stops the service with a message naming the variable.

use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use crate::http::HttpSettings;
use crate::objects::events::EventsConfig;
use crate::objects::group_profiles::GroupProfilesConfig;
use crate::objects::user_profiles::UserProfilesConfig;
use crate::rate_limit::RateLimits;
use crate::retry::Backoff;

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mixsync";
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Everything `mixsync serve loader-events`, `loader-users` and `loader-groups` need (each reads
/// it whole and uses its object's part).
#[derive(Debug, Clone)]
pub struct Config {
    /// `MIXSYNC_DATABASE_URL`: the state database (targets are resolved there).
    pub database_url: SecretString,
    /// `MIXSYNC_AMQP_URL`: RabbitMQ.
    pub amqp_url: SecretString,
    /// `MIXSYNC_QUEUE_PREFIX`: prepended to every queue name.
    pub queue_prefix: String,
    /// `MIXSYNC_SECRET_KEY` (required): decrypts target secrets stored in the state database.
    pub secret_key: SecretString,
    /// `MIXSYNC_LOADER_PREFETCH` (default 16): RecordBatch messages held at once; with the batch
    /// size this bounds the loader's memory.
    pub prefetch: u16,
    /// `MIXSYNC_LOADER_CONCURRENCY` (default 4): requests in flight at once.
    pub concurrency: usize,
    /// `MIXSYNC_LOADER_LINGER_MS` (default 200): how long a request that is not full waits for more
    /// records.
    pub linger: Duration,
    /// `MIXSYNC_LOADER_TARGET_CACHE_SECS` (default 60): how long resolved targets are reused.
    pub target_cache_ttl: Duration,
    /// How requests are sent and retried.
    pub send: SendSettings,
    /// Events requests.
    pub events: EventsConfig,
    /// User profile requests.
    pub user_profiles: UserProfilesConfig,
    /// Group profile requests.
    pub group_profiles: GroupProfilesConfig,
}

/// How requests are sent, limited and retried; shared by every object.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    /// Timeouts (`MIXSYNC_LOADER_CONNECT_TIMEOUT_SECS` default 10,
    /// `MIXSYNC_LOADER_REQUEST_TIMEOUT_SECS` default 60).
    pub http: HttpSettings,
    /// Backoff between retries (`MIXSYNC_LOADER_RETRY_INITIAL_MS` default 2000,
    /// `MIXSYNC_LOADER_RETRY_MAX_MS` default 60000).
    pub backoff: Backoff,
    /// `MIXSYNC_LOADER_RETRY_BUDGET_SECS` (default 900; 0 = no limit): how long one request is
    /// retried before its records are handed back for redelivery (never dropped).
    pub retry_budget: Option<Duration>,
    /// `MIXSYNC_LOADER_RATE_LIMIT` (`on` default, `off`), `MIXSYNC_LOADER_EVENTS_PER_SEC` (default
    /// 30000) and `MIXSYNC_LOADER_BYTES_PER_MIN` (default 2000000000): the per-project limit this
    /// process keeps to; `None` when off.
    pub rate_limit: Option<RateLimits>,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            http: HttpSettings::default(),
            backoff: Backoff::default(),
            retry_budget: Some(Duration::from_secs(900)),
            rate_limit: Some(RateLimits::default()),
        }
    }
}

/// A variable holds a value that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{var}: `{value}` is not valid: expected {expected}")]
pub struct ConfigError {
    /// The variable's name.
    pub var: &'static str,
    /// What it holds.
    pub value: String,
    /// What it should hold.
    pub expected: String,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let var = Vars(&lookup);
        let send = SendSettings {
            http: HttpSettings {
                connect_timeout: var.secs("MIXSYNC_LOADER_CONNECT_TIMEOUT_SECS", 10, 1..=600)?,
                request_timeout: var.secs("MIXSYNC_LOADER_REQUEST_TIMEOUT_SECS", 60, 1..=3600)?,
            },
            backoff: Backoff {
                initial: var.millis("MIXSYNC_LOADER_RETRY_INITIAL_MS", 2_000, 1..=600_000)?,
                max: var.millis("MIXSYNC_LOADER_RETRY_MAX_MS", 60_000, 1..=3_600_000)?,
            },
            retry_budget: match var.number(
                "MIXSYNC_LOADER_RETRY_BUDGET_SECS",
                900u64,
                0..=604_800,
            )? {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            rate_limit: match var.switch("MIXSYNC_LOADER_RATE_LIMIT", true)? {
                false => None,
                true => Some(RateLimits {
                    events_per_sec: var.number(
                        "MIXSYNC_LOADER_EVENTS_PER_SEC",
                        30_000u64,
                        1..=u64::MAX,
                    )?,
                    bytes_per_min: var.number(
                        "MIXSYNC_LOADER_BYTES_PER_MIN",
                        2_000_000_000u64,
                        1..=u64::MAX,
                    )?,
                }),
            },
        };
        Ok(Config {
            database_url: var
                .string("MIXSYNC_DATABASE_URL", DEFAULT_DATABASE_URL)
                .into(),
            amqp_url: var.string("MIXSYNC_AMQP_URL", DEFAULT_AMQP_URL).into(),
            queue_prefix: var.string("MIXSYNC_QUEUE_PREFIX", ""),
            secret_key: var
                .get("MIXSYNC_SECRET_KEY")
                .map(SecretString::from)
                .ok_or_else(|| ConfigError {
                    var: "MIXSYNC_SECRET_KEY",
                    value: String::new(),
                    expected: "the key control stores target secrets with (it is not set)".into(),
                })?,
            prefetch: var.number("MIXSYNC_LOADER_PREFETCH", 16u16, 1..=u16::MAX)?,
            concurrency: var.number("MIXSYNC_LOADER_CONCURRENCY", 4usize, 1..=256)?,
            linger: var.millis("MIXSYNC_LOADER_LINGER_MS", 200, 0..=60_000)?,
            target_cache_ttl: var.secs("MIXSYNC_LOADER_TARGET_CACHE_SECS", 60, 0..=86_400)?,
            send,
            events: EventsConfig::from_lookup(&lookup)?,
            user_profiles: UserProfilesConfig::from_lookup(&lookup)?,
            group_profiles: GroupProfilesConfig::from_lookup(&lookup)?,
        })
    }
}

/// Typed access to variables; blank counts as unset.
pub(crate) struct Vars<'a, F>(pub(crate) &'a F);

impl<F: Fn(&str) -> Option<String>> Vars<'_, F> {
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// An integer in `range`, or `default` when unset.
    pub(crate) fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError {
                var: name,
                value,
                expected: format!("an integer from {} to {}", range.start(), range.end()),
            }),
        }
    }

    fn millis(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_millis)
    }

    fn secs(
        &self,
        name: &'static str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, range).map(Duration::from_secs)
    }

    fn switch(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        let Some(value) = self.get(name) else {
            return Ok(default);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError {
                var: name,
                value,
                expected: "`on` or `off`".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = [("MIXSYNC_SECRET_KEY", "k")]
            .iter()
            .chain(vars)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database_url.expose_secret(), DEFAULT_DATABASE_URL);
        assert_eq!(c.amqp_url.expose_secret(), DEFAULT_AMQP_URL);
        assert_eq!(c.queue_prefix, "");
        assert_eq!(c.prefetch, 16);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.linger, Duration::from_millis(200));
        assert_eq!(c.send, SendSettings::default());
        assert_eq!(c.events, EventsConfig::default());
        assert_eq!(c.user_profiles.max_batch_updates, 2000);
        assert_eq!(c.group_profiles.max_batch_updates, 200);
        assert_eq!(c.group_profiles, GroupProfilesConfig::default());
    }

    #[test]
    fn overrides() {
        let c = config(&[
            ("MIXSYNC_LOADER_RATE_LIMIT", "off"),
            ("MIXSYNC_LOADER_CONCURRENCY", "8"),
            ("MIXSYNC_LOADER_LINGER_MS", "0"),
            ("MIXSYNC_LOADER_RETRY_BUDGET_SECS", "0"),
            ("MIXSYNC_LOADER_RETRY_INITIAL_MS", "10"),
            ("MIXSYNC_LOADER_MAX_BATCH_EVENTS", "500"),
            ("MIXSYNC_LOADER_MAX_BATCH_BYTES", "2097152"),
            ("MIXSYNC_LOADER_MAX_GROUP_UPDATES", "2000"),
        ])
        .unwrap();
        assert_eq!(c.group_profiles.max_batch_updates, 2000);
        assert_eq!(c.user_profiles.max_batch_bytes, 2_097_152);
        assert_eq!(c.group_profiles.max_batch_bytes, 2_097_152);
        assert_eq!(c.send.rate_limit, None);
        assert_eq!(c.send.retry_budget, None);
        assert_eq!(c.send.backoff.initial, Duration::from_millis(10));
        assert_eq!(c.concurrency, 8);
        assert_eq!(c.linger, Duration::ZERO);
        assert_eq!(c.events.max_batch_events, 500);
        assert_eq!(c.events.max_batch_bytes, 2_097_152);
    }

    #[test]
    fn the_secret_key_is_required() {
        let error = Config::from_lookup(|_| None).unwrap_err();
        assert_eq!(error.var, "MIXSYNC_SECRET_KEY");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("MIXSYNC_LOADER_CONCURRENCY", "0"),
            ("MIXSYNC_LOADER_RATE_LIMIT", "maybe"),
            ("MIXSYNC_LOADER_MAX_BATCH_EVENTS", "2001"),
            ("MIXSYNC_LOADER_MAX_BATCH_BYTES", "10485761"),
            ("MIXSYNC_LOADER_MAX_GROUP_UPDATES", "2001"),
            ("MIXSYNC_LOADER_MAX_GROUP_UPDATES", "0"),
            ("MIXSYNC_LOADER_LINGER_MS", "soon"),
        ] {
            let error = config(&[(var, value)]).unwrap_err();
            assert_eq!(error.var, var);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }
}
