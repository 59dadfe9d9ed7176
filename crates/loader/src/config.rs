//! The loader's configuration, read from `MIXSYNC_*` variables once at start and validated there,
//! so a bad value stops the service with a message naming the variable.

use std::time::Duration;

use mixsync_bus::BusConfig;
use mixsync_config::{BareUnit, Env};
use mixsync_domain::rules::{
    DEFAULT_MAX_GROUP_UPDATES, LOADER_IMPORT_BYTES, MAX_ENGAGE_UPDATES, MAX_IMPORT_BYTES,
};
use secrecy::SecretString;

pub use mixsync_config::ConfigError;

use crate::http::HttpSettings;
use crate::objects::events::EventsConfig;
use crate::rate_limit::RateSettings;
use crate::retry::Backoff;

/// The most updates Mixpanel documents for one `/groups` request (docs/mixpanel-api.md §3).
const MAX_GROUP_UPDATES: usize = 2000;

/// Everything `mixsync serve loader-events`, `loader-users` and `loader-groups` need (each reads
/// it whole and uses its object's part).
#[derive(Debug, Clone)]
pub struct Config {
    /// `MIXSYNC_DATABASE_URL`: the state database (targets are resolved there).
    pub database_url: SecretString,
    /// RabbitMQ (`MIXSYNC_AMQP_URL`, `MIXSYNC_QUEUE_PREFIX`).
    pub bus: BusConfig,
    /// `MIXSYNC_SECRET_KEY` (required): decrypts target secrets stored in the state database.
    pub secret_key: SecretString,
    /// The key being rotated away from (`MIXSYNC_SECRET_KEY_PREVIOUS`, optional).
    pub secret_key_previous: Option<SecretString>,
    /// `MIXSYNC_LOADER_PREFETCH` (default 16): RecordBatch messages held at once; with the batch
    /// size this bounds the loader's memory.
    pub prefetch: u16,
    /// `MIXSYNC_LOADER_CONCURRENCY` (default 4): requests in flight at once.
    pub concurrency: usize,
    /// `MIXSYNC_LOADER_LINGER_MS` (default 200ms, a bare number is milliseconds): how long a request that is not full waits for more
    /// records.
    pub linger: Duration,
    /// `MIXSYNC_LOADER_TARGET_CACHE_SECS` (default 1m, a bare number is seconds): how long resolved targets are reused.
    pub target_cache_ttl: Duration,
    /// How requests are sent and retried.
    pub send: SendSettings,
    /// Events requests.
    pub events: EventsConfig,
    /// User profile requests (`/engage`).
    pub user_profiles: ProfilesConfig,
    /// Group profile requests (`/groups`).
    pub group_profiles: ProfilesConfig,
}

/// How large one `/engage` or `/groups` request may get.
///
/// `/engage` takes Mixpanel's 2000 updates (docs/mixpanel-api.md §2.4). `/groups` is documented
/// at 2000 too (docs/mixpanel-api.md §3), but an older limit of 200 may still apply, so mixsync sends 200 unless
/// `MIXSYNC_LOADER_MAX_GROUP_UPDATES` says otherwise. Mixpanel documents no byte limit for
/// either request, only 1 MB per update; bodies are kept under the same 9.8 MiB as `/import`
/// (`MIXSYNC_LOADER_MAX_BATCH_BYTES`), so 2000 large updates go in several requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfilesConfig {
    /// Update objects per request. A record with more updates than this goes alone.
    pub max_batch_updates: usize,
    /// JSON bytes per request.
    pub max_batch_bytes: usize,
}

impl ProfilesConfig {
    /// `/engage`'s defaults: 2000 updates, 9.8 MiB.
    pub const USERS: ProfilesConfig = ProfilesConfig {
        max_batch_updates: MAX_ENGAGE_UPDATES,
        max_batch_bytes: LOADER_IMPORT_BYTES,
    };
    /// `/groups`' defaults: 200 updates, 9.8 MiB.
    pub const GROUPS: ProfilesConfig = ProfilesConfig {
        max_batch_updates: DEFAULT_MAX_GROUP_UPDATES,
        max_batch_bytes: LOADER_IMPORT_BYTES,
    };
}

/// How requests are sent, limited and retried; shared by every object.
#[derive(Debug, Clone, PartialEq)]
pub struct SendSettings {
    /// Timeouts (`MIXSYNC_LOADER_CONNECT_TIMEOUT_SECS` default 10s,
    /// `MIXSYNC_LOADER_REQUEST_TIMEOUT_SECS` default 60s; durations, a bare number is seconds).
    pub http: HttpSettings,
    /// Backoff between retries (`MIXSYNC_LOADER_RETRY_INITIAL_MS` default 2s,
    /// `MIXSYNC_LOADER_RETRY_MAX_MS` default 1m; durations, a bare number is milliseconds).
    pub backoff: Backoff,
    /// `MIXSYNC_LOADER_RETRY_BUDGET_SECS` (default 15m, a bare number is seconds; 0 = no limit): how long one request is
    /// retried before its records are handed back for redelivery (never dropped).
    pub retry_budget: Option<Duration>,
    /// `MIXSYNC_LOADER_RATE_LIMIT` (`on` default, `off`), `MIXSYNC_LOADER_BYTES_PER_MIN` (default
    /// 2000000000) and `MIXSYNC_LOADER_RATE_MARGIN_MS` (default 20ms): the per-project limit
    /// every loader keeps to together (the records cap is each target's
    /// `rate_limit_per_second`); `None` when off.
    pub rate_limit: Option<RateSettings>,
}

impl Default for SendSettings {
    fn default() -> Self {
        SendSettings {
            http: HttpSettings::default(),
            backoff: Backoff::default(),
            retry_budget: Some(Duration::from_secs(900)),
            rate_limit: Some(RateSettings::default()),
        }
    }
}

impl Config {
    /// Reads and validates the variables in `env`.
    pub fn read(env: &Env) -> Result<Config, ConfigError> {
        let secs = |var, default: Duration, max_secs| {
            env.duration(
                var,
                default,
                BareUnit::Secs,
                Duration::ZERO..=Duration::from_secs(max_secs),
            )
        };
        let millis =
            |var, default: Duration, range| env.duration(var, default, BareUnit::Millis, range);
        let http = HttpSettings::default();
        let backoff = Backoff::default();
        let rate = RateSettings::default();
        if let Some(value) = env.string("MIXSYNC_LOADER_EVENTS_PER_SEC")? {
            // Said out loud rather than ignored: the cap moved to the target, where every
            // loader process reads the same one.
            return Err(ConfigError::unusable(
                "MIXSYNC_LOADER_EVENTS_PER_SEC",
                value,
                "is no longer read: a project's cap is its target's rate_limit_per_second \
                 (`mixsync target update … --rate-limit-per-second N`), shared by every loader",
            ));
        }
        let send = SendSettings {
            http: HttpSettings {
                connect_timeout: env.duration(
                    "MIXSYNC_LOADER_CONNECT_TIMEOUT_SECS",
                    http.connect_timeout,
                    BareUnit::Secs,
                    Duration::from_secs(1)..=Duration::from_secs(600),
                )?,
                request_timeout: env.duration(
                    "MIXSYNC_LOADER_REQUEST_TIMEOUT_SECS",
                    http.request_timeout,
                    BareUnit::Secs,
                    Duration::from_secs(1)..=Duration::from_secs(3600),
                )?,
            },
            backoff: Backoff {
                initial: millis(
                    "MIXSYNC_LOADER_RETRY_INITIAL_MS",
                    backoff.initial,
                    Duration::from_millis(1)..=Duration::from_secs(600),
                )?,
                max: millis(
                    "MIXSYNC_LOADER_RETRY_MAX_MS",
                    backoff.max,
                    Duration::from_millis(1)..=Duration::from_secs(3600),
                )?,
            },
            retry_budget: Some(secs(
                "MIXSYNC_LOADER_RETRY_BUDGET_SECS",
                SendSettings::default().retry_budget.unwrap_or_default(),
                7 * 24 * 3600,
            )?)
            .filter(|budget| !budget.is_zero()),
            rate_limit: match env.switch("MIXSYNC_LOADER_RATE_LIMIT", true)? {
                false => None,
                true => Some(RateSettings {
                    bytes_per_min: env.number(
                        "MIXSYNC_LOADER_BYTES_PER_MIN",
                        rate.bytes_per_min,
                        1..=u64::MAX,
                    )?,
                    margin: millis(
                        "MIXSYNC_LOADER_RATE_MARGIN_MS",
                        rate.margin,
                        Duration::ZERO..=Duration::from_secs(1),
                    )?,
                }),
            },
        };
        // One byte limit for every object's requests.
        let max_batch_bytes = env.number(
            "MIXSYNC_LOADER_MAX_BATCH_BYTES",
            LOADER_IMPORT_BYTES,
            1024..=MAX_IMPORT_BYTES,
        )?;
        Ok(Config {
            database_url: mixsync_config::database_url(env)?,
            bus: BusConfig::read(env)?,
            secret_key: mixsync_config::secret_key(
                env,
                "the key control stores target secrets with (the same as control's)",
            )?,
            secret_key_previous: mixsync_config::secret_key_previous(env)?,
            prefetch: env.number("MIXSYNC_LOADER_PREFETCH", 16u16, 1..=u16::MAX)?,
            concurrency: env.number("MIXSYNC_LOADER_CONCURRENCY", 4usize, 1..=256)?,
            linger: millis(
                "MIXSYNC_LOADER_LINGER_MS",
                Duration::from_millis(200),
                Duration::ZERO..=Duration::from_secs(60),
            )?,
            target_cache_ttl: secs(
                "MIXSYNC_LOADER_TARGET_CACHE_SECS",
                Duration::from_secs(60),
                86_400,
            )?,
            send,
            events: EventsConfig::read(env, max_batch_bytes)?,
            user_profiles: ProfilesConfig {
                max_batch_bytes,
                ..ProfilesConfig::USERS
            },
            group_profiles: ProfilesConfig {
                max_batch_updates: env.number(
                    "MIXSYNC_LOADER_MAX_GROUP_UPDATES",
                    ProfilesConfig::GROUPS.max_batch_updates,
                    1..=MAX_GROUP_UPDATES,
                )?,
                max_batch_bytes,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(
            [("MIXSYNC_SECRET_KEY", "k")].iter().chain(vars).copied(),
        ))
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.database_url.expose_secret(),
            mixsync_config::defaults::DATABASE_URL
        );
        assert_eq!(c.bus.url, mixsync_config::defaults::AMQP_URL);
        assert_eq!(c.bus.prefix, "");
        assert_eq!(c.prefetch, 16);
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.linger, Duration::from_millis(200));
        assert_eq!(c.send, SendSettings::default());
        assert_eq!(c.events, EventsConfig::default());
        assert_eq!(c.target_cache_ttl, Duration::from_secs(60));
        assert_eq!(c.user_profiles, ProfilesConfig::USERS);
        assert_eq!(c.user_profiles.max_batch_updates, 2000);
        assert_eq!(c.group_profiles, ProfilesConfig::GROUPS);
        assert_eq!(c.group_profiles.max_batch_updates, 200);
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
    fn durations_take_units_or_the_names_unit() {
        let c = config(&[
            ("MIXSYNC_LOADER_LINGER_MS", "1s"),
            ("MIXSYNC_LOADER_RETRY_MAX_MS", "2m"),
            ("MIXSYNC_LOADER_REQUEST_TIMEOUT_SECS", "90"),
            ("MIXSYNC_LOADER_RETRY_BUDGET_SECS", "1h"),
            ("MIXSYNC_LOADER_RATE_LIMIT", "No"),
        ])
        .unwrap();
        assert_eq!(c.linger, Duration::from_secs(1));
        assert_eq!(c.send.backoff.max, Duration::from_secs(120));
        assert_eq!(c.send.http.request_timeout, Duration::from_secs(90));
        assert_eq!(c.send.retry_budget, Some(Duration::from_secs(3600)));
        assert_eq!(c.send.rate_limit, None);
    }

    #[test]
    fn the_rate_margin_is_read_and_the_old_per_process_cap_is_refused() {
        let c = config(&[("MIXSYNC_LOADER_RATE_MARGIN_MS", "150")]).unwrap();
        assert_eq!(
            c.send.rate_limit.map(|r| r.margin),
            Some(Duration::from_millis(150))
        );
        let error = config(&[("MIXSYNC_LOADER_EVENTS_PER_SEC", "1000")]).unwrap_err();
        assert_eq!(error.var(), "MIXSYNC_LOADER_EVENTS_PER_SEC");
        assert!(
            error.to_string().contains("rate_limit_per_second"),
            "{error}"
        );
    }

    #[test]
    fn the_secret_key_is_required() {
        let error = Config::read(&Env::from_pairs([("MIXSYNC_SECRET_KEY", " ")])).unwrap_err();
        assert_eq!(error.var(), "MIXSYNC_SECRET_KEY");
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
            assert_eq!(error.var(), var);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }
}
