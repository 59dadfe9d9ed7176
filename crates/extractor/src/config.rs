//! The extractor's configuration, from `MIXSYNC_*` environment variables read through
//! [`mixsync_config::Env`].

use std::time::Duration;

use mixsync_bus::BusConfig;
use mixsync_config::{BareUnit, Env};
use secrecy::SecretString;

pub use mixsync_config::ConfigError;

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = mixsync_config::defaults::DATABASE_URL;
/// Rows per `RowBatch` when `MIXSYNC_EXTRACT_BATCH_ROWS` is unset.
pub const DEFAULT_BATCH_ROWS: usize = 500;
/// Default bound on rows extracted but not yet accounted for downstream.
pub const DEFAULT_MAX_IN_FLIGHT_ROWS: u64 = 50_000;
/// The largest `MIXSYNC_EXTRACT_BATCH_ROWS` accepted, to keep messages well under RabbitMQ's
/// frame limits.
pub const MAX_BATCH_ROWS: usize = 10_000;
/// The activation query's statement timeout when `MIXSYNC_STATEMENT_TIMEOUT` is unset.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Everything the extractor needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The state database (`MIXSYNC_DATABASE_URL`).
    pub database_url: SecretString,
    /// Decrypts warehouse passwords (`MIXSYNC_SECRET_KEY`, required).
    pub secret_key: SecretString,
    /// The key being rotated away from (`MIXSYNC_SECRET_KEY_PREVIOUS`, optional).
    pub secret_key_previous: Option<SecretString>,
    /// RabbitMQ (`MIXSYNC_AMQP_URL`, `MIXSYNC_QUEUE_PREFIX`).
    pub bus: BusConfig,
    /// Rows per `RowBatch` (`MIXSYNC_EXTRACT_BATCH_ROWS`, default 500, 1 to 10,000).
    pub batch_rows: usize,
    /// The activation query's statement timeout (`MIXSYNC_STATEMENT_TIMEOUT`, default 30 min):
    /// seconds, or a number with a unit `ms`, `s`, `m` or `h`; `0` for none.
    pub statement_timeout: Duration,
    /// Rows read but not yet accounted for downstream (skipped, loaded or failed) after which
    /// reading waits (`MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS`, default 50,000; `0` for no bound).
    /// It keeps RabbitMQ's queues short against a slow or rate-limited target and lets a
    /// cancel stop a run within seconds.
    pub max_in_flight_rows: u64,
}

impl Config {
    /// Reads and validates the configuration from `env`.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: mixsync_config::database_url(env)?,
            secret_key: mixsync_config::secret_key(
                env,
                "the key warehouse passwords are encrypted with (the same as control's)",
            )?,
            secret_key_previous: mixsync_config::secret_key_previous(env)?,
            bus: BusConfig::read(env)?,
            batch_rows: env.number(
                "MIXSYNC_EXTRACT_BATCH_ROWS",
                DEFAULT_BATCH_ROWS,
                1..=MAX_BATCH_ROWS,
            )?,
            statement_timeout: env.duration(
                "MIXSYNC_STATEMENT_TIMEOUT",
                DEFAULT_STATEMENT_TIMEOUT,
                BareUnit::Secs,
                Duration::ZERO..=Duration::from_secs(7 * 24 * 3600),
            )?,
            max_in_flight_rows: env.number(
                "MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS",
                DEFAULT_MAX_IN_FLIGHT_ROWS,
                0..=u64::MAX,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(
            [("MIXSYNC_SECRET_KEY", "k")].iter().chain(vars).copied(),
        ))
    }

    #[test]
    fn defaults() {
        let c = read(&[]).unwrap();
        assert_eq!(c.batch_rows, DEFAULT_BATCH_ROWS);
        assert_eq!(c.statement_timeout, DEFAULT_STATEMENT_TIMEOUT);
        assert_eq!(c.max_in_flight_rows, DEFAULT_MAX_IN_FLIGHT_ROWS);
        let err = Config::read(&Env::from_pairs([("MIXSYNC_SECRET_KEY", "")])).unwrap_err();
        assert_eq!(err.var(), "MIXSYNC_SECRET_KEY");
    }

    #[test]
    fn durations_take_a_unit() {
        let timeout = |v| read(&[("MIXSYNC_STATEMENT_TIMEOUT", v)]).map(|c| c.statement_timeout);
        assert_eq!(timeout("1800").unwrap(), Duration::from_secs(1800));
        assert_eq!(timeout("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(timeout(" 2h ").unwrap(), Duration::from_secs(7200));
        assert_eq!(timeout("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(timeout("0").unwrap(), Duration::ZERO);
        for bad in ["m", "-1", "8days", "soon"] {
            assert_eq!(
                timeout(bad).unwrap_err().var(),
                "MIXSYNC_STATEMENT_TIMEOUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn batch_rows_are_bounded() {
        let rows = |v| read(&[("MIXSYNC_EXTRACT_BATCH_ROWS", v)]).map(|c| c.batch_rows);
        assert_eq!(rows("500").unwrap(), 500);
        assert!(rows("0").is_err());
        assert!(rows("10001").is_err());
        assert_eq!(
            rows("many").unwrap_err().to_string(),
            "MIXSYNC_EXTRACT_BATCH_ROWS=many is invalid: expected a whole number from 1 to 10000"
        );
    }
}
