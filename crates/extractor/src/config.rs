//! The extractor's configuration, from `MIXSYNC_*` environment variables.

use std::time::Duration;

use mixsync_bus::{BusConfig, BusError};
use secrecy::SecretString;

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mixsync";
/// Rows per `RowBatch` when `MIXSYNC_EXTRACT_BATCH_ROWS` is unset.
pub const DEFAULT_BATCH_ROWS: usize = 500;
/// Default bound on rows extracted but not yet accounted for downstream.
pub const DEFAULT_MAX_IN_FLIGHT_ROWS: u64 = 50_000;
/// The largest `MIXSYNC_EXTRACT_BATCH_ROWS` accepted, to keep messages well under RabbitMQ's
/// frame limits.
pub const MAX_BATCH_ROWS: usize = 10_000;
/// The activation query's statement timeout when `MIXSYNC_STATEMENT_TIMEOUT` is unset.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// A configuration variable that is missing or does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(&'static str),
    /// A required variable is unset or empty.
    #[error("{name} is not set: {what}")]
    Missing {
        /// The variable.
        name: &'static str,
        /// What to set it to.
        what: &'static str,
    },
    /// A variable's value does not parse.
    #[error("{name}={value} is invalid: {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// The bus configuration is invalid.
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Everything the extractor needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The state database (`MIXSYNC_DATABASE_URL`).
    pub database_url: SecretString,
    /// Decrypts warehouse passwords (`MIXSYNC_SECRET_KEY`, required).
    pub secret_key: SecretString,
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
    /// Reads and validates the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = var("MIXSYNC_DATABASE_URL")?
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
            .into();
        let secret_key = var("MIXSYNC_SECRET_KEY")?
            .ok_or(ConfigError::Missing {
                name: "MIXSYNC_SECRET_KEY",
                what: "the key warehouse passwords are encrypted with (the same as control's)",
            })?
            .into();
        let batch_rows = match var("MIXSYNC_EXTRACT_BATCH_ROWS")? {
            None => DEFAULT_BATCH_ROWS,
            Some(v) => parse_batch_rows(&v)?,
        };
        let statement_timeout = match var("MIXSYNC_STATEMENT_TIMEOUT")? {
            None => DEFAULT_STATEMENT_TIMEOUT,
            Some(v) => parse_duration(&v).ok_or(ConfigError::Invalid {
                name: "MIXSYNC_STATEMENT_TIMEOUT",
                value: v,
                expected: "seconds, or a number with a unit ms, s, m or h (e.g. 30m)",
            })?,
        };
        let max_in_flight_rows = match var("MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS")? {
            None => DEFAULT_MAX_IN_FLIGHT_ROWS,
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS",
                value: v,
                expected: "a whole number of rows (0 for no bound)",
            })?,
        };
        Ok(Self {
            database_url,
            secret_key,
            bus: BusConfig::from_env()?,
            batch_rows,
            statement_timeout,
            max_in_flight_rows,
        })
    }
}

fn parse_batch_rows(v: &str) -> Result<usize, ConfigError> {
    v.trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_BATCH_ROWS).contains(n))
        .ok_or(ConfigError::Invalid {
            name: "MIXSYNC_EXTRACT_BATCH_ROWS",
            value: v.to_owned(),
            expected: "a whole number from 1 to 10000",
        })
}

/// `1800`, `1800s`, `30m`, `1h`, `500ms` → a duration.
pub(crate) fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().ok()?;
    let ms = match unit.trim() {
        "ms" => n,
        "" | "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

/// The variable's value; `None` when unset or empty.
fn var(name: &'static str) -> Result<Option<String>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit() {
        let d = parse_duration;
        assert_eq!(d("1800"), Some(Duration::from_secs(1800)));
        assert_eq!(d("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(d(" 2h "), Some(Duration::from_secs(7200)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("1.5h"), None);
        assert_eq!(d("m"), None);
        assert_eq!(d("-1"), None);
        assert_eq!(d("10d"), None);
    }

    #[test]
    fn batch_rows_are_bounded() {
        assert_eq!(parse_batch_rows("500").unwrap(), 500);
        assert!(parse_batch_rows("0").is_err());
        assert!(parse_batch_rows("10001").is_err());
        let err = parse_batch_rows("many").unwrap_err();
        assert_eq!(
            err.to_string(),
            "MIXSYNC_EXTRACT_BATCH_ROWS=many is invalid: a whole number from 1 to 10000"
        );
    }
}
