//! The mapper's configuration, from `MIXSYNC_*` environment variables read through
//! [`mixsync_config::Env`].

use mixsync_bus::BusConfig;
use mixsync_config::Env;
use secrecy::SecretString;

pub use mixsync_config::ConfigError;

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = mixsync_config::defaults::DATABASE_URL;
/// Row batches mapped at once when `MIXSYNC_MAPPER_PREFETCH` is unset.
pub const DEFAULT_PREFETCH: u16 = 4;
/// The largest `MIXSYNC_MAPPER_PREFETCH` accepted.
pub const MAX_PREFETCH: u16 = 64;
/// Stands in for `MIXSYNC_SECRET_KEY` when it is unset: the mapper reads run plans only,
/// never a stored secret, so no real key is needed.
const UNUSED_SECRET_KEY: &str = "mixsync-mapper-reads-no-secrets";

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
    /// Reads and validates the configuration from `env`.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database_url: mixsync_config::database_url(env)?,
            secret_key: env
                .secret(mixsync_config::SECRET_KEY_VAR)?
                .unwrap_or_else(|| UNUSED_SECRET_KEY.into()),
            bus: BusConfig::read(env)?,
            prefetch: env.number(
                "MIXSYNC_MAPPER_PREFETCH",
                DEFAULT_PREFETCH,
                1..=MAX_PREFETCH,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefetch(value: &str) -> Result<u16, ConfigError> {
        Config::read(&Env::from_pairs([("MIXSYNC_MAPPER_PREFETCH", value)])).map(|c| c.prefetch)
    }

    #[test]
    fn prefetch_is_bounded() {
        assert_eq!(prefetch(" 8 ").unwrap(), 8);
        assert_eq!(prefetch("").unwrap(), DEFAULT_PREFETCH);
        assert!(prefetch("0").is_err());
        assert!(prefetch("65").is_err());
        assert_eq!(
            prefetch("x").unwrap_err().to_string(),
            "MIXSYNC_MAPPER_PREFETCH=x is invalid: expected a whole number from 1 to 64"
        );
    }
}
