//! Control's configuration, from `MIXSYNC_*` environment variables, validated at start.

use std::net::SocketAddr;

use mixsync_bus::{BusConfig, BusError};
use secrecy::{ExposeSecret as _, SecretString};

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/mixsync";
/// `MIXSYNC_GRPC_ADDR` when unset.
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:50051";

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

/// Everything control needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gRPC API listens (`MIXSYNC_GRPC_ADDR`, default `127.0.0.1:50051`).
    pub grpc_addr: SocketAddr,
    /// The bearer token every call but health must carry (`MIXSYNC_API_TOKEN`); `None` leaves
    /// the API open (fine on loopback, not elsewhere).
    pub api_token: Option<SecretString>,
    /// The state database (`MIXSYNC_DATABASE_URL`).
    pub database_url: SecretString,
    /// Encrypts secrets at rest (`MIXSYNC_SECRET_KEY`, required).
    pub secret_key: SecretString,
    /// RabbitMQ (`MIXSYNC_AMQP_URL`, `MIXSYNC_QUEUE_PREFIX`).
    pub bus: BusConfig,
}

impl Config {
    /// Reads and validates the configuration from the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(std::env::var)
    }

    /// Like [`Config::from_env`], reading variables through `lookup` (for tests).
    pub fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<String, std::env::VarError>,
    ) -> Result<Self, ConfigError> {
        let var = |name: &'static str| match lookup(name) {
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(ConfigError::NotUnicode(name)),
        };
        let grpc_addr = match var("MIXSYNC_GRPC_ADDR")? {
            None => DEFAULT_GRPC_ADDR
                .parse()
                .map_err(|_| ConfigError::Invalid {
                    name: "MIXSYNC_GRPC_ADDR",
                    value: DEFAULT_GRPC_ADDR.into(),
                    expected: "an address and port",
                })?,
            Some(v) => v.trim().parse().map_err(|_| ConfigError::Invalid {
                name: "MIXSYNC_GRPC_ADDR",
                value: v,
                expected: "an address and port, e.g. 127.0.0.1:50051 or [::]:50051",
            })?,
        };
        let api_token = var("MIXSYNC_API_TOKEN")?.map(SecretString::from);
        let database_url = var("MIXSYNC_DATABASE_URL")?
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
            .into();
        let secret_key: SecretString = var("MIXSYNC_SECRET_KEY")?
            .ok_or(ConfigError::Missing {
                name: "MIXSYNC_SECRET_KEY",
                what: "a long random string; secrets are encrypted at rest with it (every service needs the same one)",
            })?
            .into();
        let bus = BusConfig {
            url: var("MIXSYNC_AMQP_URL")?
                .unwrap_or_else(|| mixsync_bus::DEFAULT_AMQP_URL.to_owned()),
            prefix: var("MIXSYNC_QUEUE_PREFIX")?.unwrap_or_default(),
        };
        bus.validate()?;
        Ok(Self {
            grpc_addr,
            api_token,
            database_url,
            secret_key,
            bus,
        })
    }

    pub(crate) fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(
        vars: &[(&'static str, &'static str)],
    ) -> impl Fn(&'static str) -> Result<String, std::env::VarError> {
        let vars: HashMap<_, _> = vars.iter().copied().collect();
        move |name| {
            vars.get(name)
                .map(|v| (*v).to_owned())
                .ok_or(std::env::VarError::NotPresent)
        }
    }

    #[test]
    fn defaults_and_required_key() {
        let config = Config::from_lookup(lookup(&[("MIXSYNC_SECRET_KEY", "k")])).unwrap();
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
        assert!(config.api_token.is_none());
        assert_eq!(config.database_url(), DEFAULT_DATABASE_URL);
        let err = Config::from_lookup(lookup(&[])).unwrap_err();
        assert!(err.to_string().starts_with("MIXSYNC_SECRET_KEY is not set"));
    }

    #[test]
    fn bad_address_is_named() {
        let err = Config::from_lookup(lookup(&[
            ("MIXSYNC_SECRET_KEY", "k"),
            ("MIXSYNC_GRPC_ADDR", "localhost"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MIXSYNC_GRPC_ADDR=localhost is invalid")
        );
    }
}
