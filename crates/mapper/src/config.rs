//! The mapper's configuration, from `MIXSYNC_*` environment variables.

use mixsync_bus::{BusConfig, BusError};
use secrecy::SecretString;

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mixsync";
/// Row batches mapped at once when `MIXSYNC_MAPPER_PREFETCH` is unset.
pub const DEFAULT_PREFETCH: u16 = 4;
/// The largest `MIXSYNC_MAPPER_PREFETCH` accepted.
pub const MAX_PREFETCH: u16 = 64;
/// Stands in for `MIXSYNC_SECRET_KEY` when it is unset: the mapper reads run plans only,
/// never a stored secret, so no real key is needed.
const UNUSED_SECRET_KEY: &str = "mixsync-mapper-reads-no-secrets";

/// A configuration variable that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUnicode(&'static str),
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

/// Everything the mapper needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The state database (`MIXSYNC_DATABASE_URL`), for run plans.
    pub database_url: SecretString,
    /// `MIXSYNC_SECRET_KEY`; optional, the mapper decrypts nothing.
    pub secret_key: SecretString,
    /// RabbitMQ (`MIXSYNC_AMQP_URL`, `MIXSYNC_QUEUE_PREFIX`).
    pub bus: BusConfig,
    /// Row batches taken from the queue and mapped at once (`MIXSYNC_MAPPER_PREFETCH`,
    /// default 4, 1 to 64).
    pub prefetch: u16,
}

impl Config {
    /// Reads and validates the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let database_url = var("MIXSYNC_DATABASE_URL")?
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
            .into();
        let secret_key = var("MIXSYNC_SECRET_KEY")?
            .unwrap_or_else(|| UNUSED_SECRET_KEY.to_owned())
            .into();
        let prefetch = match var("MIXSYNC_MAPPER_PREFETCH")? {
            None => DEFAULT_PREFETCH,
            Some(v) => parse_prefetch(&v)?,
        };
        Ok(Self {
            database_url,
            secret_key,
            bus: BusConfig::from_env()?,
            prefetch,
        })
    }
}

fn parse_prefetch(v: &str) -> Result<u16, ConfigError> {
    v.trim()
        .parse()
        .ok()
        .filter(|n| (1..=MAX_PREFETCH).contains(n))
        .ok_or(ConfigError::Invalid {
            name: "MIXSYNC_MAPPER_PREFETCH",
            value: v.to_owned(),
            expected: "a whole number from 1 to 64",
        })
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
    fn prefetch_is_bounded() {
        assert_eq!(parse_prefetch(" 8 ").unwrap(), 8);
        assert!(parse_prefetch("0").is_err());
        assert!(parse_prefetch("65").is_err());
        assert_eq!(
            parse_prefetch("x").unwrap_err().to_string(),
            "MIXSYNC_MAPPER_PREFETCH=x is invalid: a whole number from 1 to 64"
        );
    }
}
