//! Control's configuration, from `MIXSYNC_*` environment variables read through
//! [`mixsync_config::Env`], validated at start.

use std::net::SocketAddr;
use std::time::Duration;

use mixsync_bus::BusConfig;
use mixsync_config::{BareUnit, Env};
use secrecy::{ExposeSecret as _, SecretString};

use crate::tls::GrpcTls;

pub use mixsync_config::ConfigError;

/// `MIXSYNC_DATABASE_URL` when unset: the local state database.
pub const DEFAULT_DATABASE_URL: &str = mixsync_config::defaults::DATABASE_URL;
/// `MIXSYNC_GRPC_ADDR` when unset.
pub const DEFAULT_GRPC_ADDR: &str = mixsync_config::defaults::GRPC_ADDR;

/// The variable holding the gRPC API's bearer token.
const API_TOKEN_VAR: &str = "MIXSYNC_API_TOKEN";
/// The shortest token accepted: a guessable token is no protection.
const MIN_TOKEN_CHARS: usize = 16;

/// Who may call the gRPC API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiAccess {
    /// Callers with the bearer token.
    Token,
    /// Anyone who can reach a loopback address: no token is set, so control only starts on one.
    LocalOnly,
}

impl ApiAccess {
    /// Secure by default: a token must be at least [`MIN_TOKEN_CHARS`] characters, and without one
    /// control only listens on a loopback address (an open API on the network would hand out
    /// every stored warehouse and target to anyone who can reach the port).
    ///
    /// # Errors
    ///
    /// A short token, or no token on an address that is not loopback; the message says what to set.
    pub fn decide(addr: SocketAddr, token: Option<&SecretString>) -> Result<Self, ConfigError> {
        match token {
            Some(token) if token.expose_secret().chars().count() < MIN_TOKEN_CHARS => {
                Err(ConfigError::invalid(
                    API_TOKEN_VAR,
                    "[REDACTED]",
                    format!(
                        "a token of at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
                    ),
                ))
            }
            Some(_) => Ok(ApiAccess::Token),
            None if addr.ip().is_loopback() => Ok(ApiAccess::LocalOnly),
            None => Err(ConfigError::Missing {
                var: API_TOKEN_VAR,
                what: format!(
                    "control listens on {addr}, which is reachable from other machines; set a \
                     token of at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`), or \
                     listen on a loopback address (MIXSYNC_GRPC_ADDR=127.0.0.1:50051) for an API \
                     without one"
                ),
            }),
        }
    }
}

/// Everything control needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gRPC API listens (`MIXSYNC_GRPC_ADDR`, default `127.0.0.1:50051`).
    pub grpc_addr: SocketAddr,
    /// The bearer token every call but health must carry (`MIXSYNC_API_TOKEN`); `None` leaves
    /// the API open (fine on loopback, not elsewhere).
    pub api_token: Option<SecretString>,
    /// TLS for the gRPC API (`MIXSYNC_GRPC_TLS_CERT`, `_KEY`, `_CLIENT_CA`); `None` serves
    /// plain HTTP/2.
    pub grpc_tls: Option<GrpcTls>,
    /// The state database (`MIXSYNC_DATABASE_URL`).
    pub database_url: SecretString,
    /// Encrypts secrets at rest (`MIXSYNC_SECRET_KEY`, required).
    pub secret_key: SecretString,
    /// The key being rotated away from (`MIXSYNC_SECRET_KEY_PREVIOUS`, optional): every secret
    /// stored under it is re-encrypted under `secret_key` at start.
    pub secret_key_previous: Option<SecretString>,
    /// RabbitMQ (`MIXSYNC_AMQP_URL`, `MIXSYNC_QUEUE_PREFIX`).
    pub bus: BusConfig,
    /// The scheduler (`MIXSYNC_SCHEDULER_TICK`, `MIXSYNC_SCHEDULER_MINUTE_SECONDS`).
    pub scheduler: SchedulerConfig,
}

/// How control's scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How often it looks for due slots (`MIXSYNC_SCHEDULER_TICK`, default 5s; a duration, a
    /// bare number is seconds).
    pub tick: Duration,
    /// How long a minute is for every-N-minutes schedules: 60 s, or
    /// `MIXSYNC_SCHEDULER_MINUTE_SECONDS` (1 to 60) — for tests only, so an "every minute"
    /// activation can be watched for several slots in seconds.
    pub minute: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            tick: Duration::from_secs(5),
            minute: Duration::from_secs(60),
        }
    }
}

impl Config {
    /// Reads and validates the configuration from `env`.
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let grpc_addr = env.parse(
            "MIXSYNC_GRPC_ADDR",
            DEFAULT_GRPC_ADDR
                .parse()
                .expect("the default address parses"),
            "an address and port, e.g. 127.0.0.1:50051 or [::]:50051",
        )?;
        let api_token = env.secret(API_TOKEN_VAR)?;
        let grpc_tls = GrpcTls::read(env)?;
        if let Some(tls) = &grpc_tls {
            // Checked here too, so `--print-config` and a bad file fail the same way.
            tls.server_config()?;
        }
        let database_url = mixsync_config::database_url(env)?;
        let secret_key = mixsync_config::secret_key(
            env,
            "a long random string; secrets are encrypted at rest with it (every service needs the same one)",
        )?;
        let secret_key_previous = mixsync_config::secret_key_previous(env)?;
        ApiAccess::decide(grpc_addr, api_token.as_ref())?;
        let bus = BusConfig::read(env)?;
        let defaults = SchedulerConfig::default();
        let scheduler = SchedulerConfig {
            tick: env.duration(
                "MIXSYNC_SCHEDULER_TICK",
                defaults.tick,
                BareUnit::Secs,
                Duration::from_millis(10)..=Duration::from_secs(3600),
            )?,
            minute: env
                .number("MIXSYNC_SCHEDULER_MINUTE_SECONDS", 60u64, 1..=60)
                .map(Duration::from_secs)?,
        };
        Ok(Self {
            grpc_addr,
            api_token,
            grpc_tls,
            database_url,
            secret_key,
            secret_key_previous,
            bus,
            scheduler,
        })
    }

    pub(crate) fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::read(&Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn defaults_and_required_key() {
        let config = read(&[("MIXSYNC_SECRET_KEY", "k")]).unwrap();
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
        assert!(config.api_token.is_none());
        assert_eq!(config.database_url(), DEFAULT_DATABASE_URL);
        assert_eq!(config.scheduler, SchedulerConfig::default());
        let err = read(&[]).unwrap_err();
        assert!(err.to_string().starts_with("MIXSYNC_SECRET_KEY is not set"));
        // Blank is unset, as everywhere.
        let config = read(&[("MIXSYNC_SECRET_KEY", "k"), ("MIXSYNC_API_TOKEN", " ")]).unwrap();
        assert!(config.api_token.is_none());
    }

    #[test]
    fn the_api_is_never_open_to_the_network() {
        let key = ("MIXSYNC_SECRET_KEY", "k");
        let token = ("MIXSYNC_API_TOKEN", "0123456789abcdef");
        // No token (or a blank one) on an address others can reach: refused, saying what to set.
        for addr in ["0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051"] {
            for vars in [
                vec![key, ("MIXSYNC_GRPC_ADDR", addr)],
                vec![
                    key,
                    ("MIXSYNC_GRPC_ADDR", addr),
                    ("MIXSYNC_API_TOKEN", "  "),
                ],
            ] {
                let err = read(&vars).unwrap_err().to_string();
                assert!(
                    err.starts_with(&format!(
                        "MIXSYNC_API_TOKEN is not set: control listens on {addr}"
                    )),
                    "{err}"
                );
                assert!(err.contains("openssl rand -hex 32"), "{err}");
            }
            assert!(read(&[key, token, ("MIXSYNC_GRPC_ADDR", addr)]).is_ok());
        }
        // Loopback without a token: open to local callers only.
        for addr in ["127.0.0.1:50051", "[::1]:50051"] {
            let c = read(&[key, ("MIXSYNC_GRPC_ADDR", addr)]).unwrap();
            assert_eq!(
                ApiAccess::decide(c.grpc_addr, c.api_token.as_ref()).unwrap(),
                ApiAccess::LocalOnly
            );
        }
        // A short token is refused anywhere, and never echoed.
        let err = read(&[key, ("MIXSYNC_API_TOKEN", "change-me")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "MIXSYNC_API_TOKEN=[REDACTED] is invalid: expected a token of at least 16 characters \
             (e.g. `openssl rand -hex 32`)"
        );
        let c = read(&[key, token]).unwrap();
        assert_eq!(
            ApiAccess::decide(c.grpc_addr, c.api_token.as_ref()).unwrap(),
            ApiAccess::Token
        );
    }

    #[test]
    fn bad_address_is_named() {
        let err = read(&[
            ("MIXSYNC_SECRET_KEY", "k"),
            ("MIXSYNC_GRPC_ADDR", "localhost"),
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MIXSYNC_GRPC_ADDR=localhost is invalid")
        );
    }

    #[test]
    fn scheduler_settings() {
        let c = read(&[
            ("MIXSYNC_SECRET_KEY", "k"),
            ("MIXSYNC_SCHEDULER_TICK", "500ms"),
            ("MIXSYNC_SCHEDULER_MINUTE_SECONDS", "10"),
        ])
        .unwrap();
        assert_eq!(c.scheduler.tick, Duration::from_millis(500));
        assert_eq!(c.scheduler.minute, Duration::from_secs(10));
        // The one duration grammar: hours too, and a bare number is seconds.
        let c = read(&[("MIXSYNC_SECRET_KEY", "k"), ("MIXSYNC_SCHEDULER_TICK", "2")]).unwrap();
        assert_eq!(c.scheduler.tick, Duration::from_secs(2));
        for (var, value) in [
            ("MIXSYNC_SCHEDULER_TICK", "0s"),
            ("MIXSYNC_SCHEDULER_TICK", "fast"),
            ("MIXSYNC_SCHEDULER_MINUTE_SECONDS", "0"),
        ] {
            let err = read(&[("MIXSYNC_SECRET_KEY", "k"), (var, value)]).unwrap_err();
            assert_eq!(err.var(), var);
        }
    }
}
