use std::fmt;
use std::net::IpAddr;

use lapin::uri::AMQPUri;
use mixsync_config::{ConfigError, Env, redact_url_password};
use secrecy::ExposeSecret as _;

use crate::BusError;

/// The variable holding the broker URL.
pub const AMQP_URL_VAR: &str = "MIXSYNC_AMQP_URL";
/// The variable holding the queue prefix.
pub const QUEUE_PREFIX_VAR: &str = "MIXSYNC_QUEUE_PREFIX";
/// The broker URL when [`AMQP_URL_VAR`] is unset: the local RabbitMQ, default vhost.
pub const DEFAULT_AMQP_URL: &str = mixsync_config::defaults::AMQP_URL;

/// The longest prefix accepted, so every prefixed name stays under AMQP's 255 bytes.
const MAX_PREFIX_LEN: usize = 200;

/// Where the bus connects and how it names its queues.
///
/// `Debug` hides the password in `url`.
#[derive(Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// `amqp://user:password@host:port/vhost` (`%2f` is the default vhost `/`); `amqps://` for TLS.
    pub url: String,
    /// Prepended to every queue and exchange name (e.g. `t1234.` in tests); empty in production.
    pub prefix: String,
}

impl BusConfig {
    /// Reads `MIXSYNC_AMQP_URL` (default [`DEFAULT_AMQP_URL`]) and `MIXSYNC_QUEUE_PREFIX`
    /// (default empty), and validates both.
    ///
    /// # Errors
    ///
    /// A URL that does not parse, or a prefix that would make invalid queue names, naming the
    /// variable (the URL's password is never echoed).
    pub fn read(env: &Env) -> Result<Self, ConfigError> {
        let config = Self {
            url: env
                .url(AMQP_URL_VAR, DEFAULT_AMQP_URL)?
                .expose_secret()
                .to_owned(),
            prefix: env.string_or(QUEUE_PREFIX_VAR, "")?,
        };
        match config.validate() {
            Ok(()) => Ok(config),
            Err(BusError::InvalidPrefix(prefix)) => Err(ConfigError::invalid(
                QUEUE_PREFIX_VAR,
                prefix,
                format!("at most {MAX_PREFIX_LEN} characters among letters, digits and . _ - :"),
            )),
            Err(_) => Err(ConfigError::invalid(
                AMQP_URL_VAR,
                redact_url_password(&config.url),
                "amqp://user:password@host:port/vhost (or amqps://)",
            )),
        }
    }

    /// Checks the URL and the prefix without connecting.
    ///
    /// # Errors
    ///
    /// [`BusError::InvalidUrl`] or [`BusError::InvalidPrefix`].
    pub fn validate(&self) -> Result<(), BusError> {
        let valid_prefix = self.prefix.len() <= MAX_PREFIX_LEN
            && self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b));
        if !valid_prefix {
            return Err(BusError::InvalidPrefix(self.prefix.clone()));
        }
        parse_url(&self.url).map(drop)
    }
}

impl fmt::Debug for BusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusConfig")
            .field("url", &redact_url_password(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Parses an AMQP URL, keeping an IP-address host: the URI parser only keeps domain names
/// and would silently connect to `localhost` instead.
pub(crate) fn parse_url(url: &str) -> Result<AMQPUri, BusError> {
    let mut uri: AMQPUri = url.parse().map_err(|_| BusError::InvalidUrl)?;
    if let Some(ip) = host_ip(url) {
        uri.authority.host = ip.to_string();
    }
    Ok(uri)
}

/// `host:port/vhost`, for messages that must not show credentials.
pub(crate) fn endpoint(uri: &AMQPUri) -> String {
    format!(
        "{}:{}/{}",
        uri.authority.host, uri.authority.port, uri.vhost
    )
}

/// The authority part of `scheme://authority/path`, with any `user:password@` removed.
fn host_and_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host),
    )
}

fn host_ip(url: &str) -> Option<IpAddr> {
    let host_port = host_and_port(url)?;
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_host_is_kept() {
        let uri = parse_url("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(uri.authority.host, "127.0.0.1");
        assert_eq!(uri.authority.port, 5672);
        assert_eq!(uri.vhost, "/");
        assert_eq!(uri.authority.userinfo.password, "guest");

        let uri = parse_url("amqp://u:p@[::1]:5673/v").unwrap();
        assert_eq!(uri.authority.host, "::1");
        assert_eq!(endpoint(&uri), "::1:5673/v");
    }

    #[test]
    fn a_domain_host_is_the_parsers() {
        let uri = parse_url("amqps://user:secret@rabbit.internal/prod").unwrap();
        assert_eq!(uri.authority.host, "rabbit.internal");
        assert_eq!(uri.authority.port, 5671);
    }

    #[test]
    fn a_bad_url_does_not_echo_the_password() {
        let error = parse_url("http//user:hunter2@host").unwrap_err();
        assert!(matches!(error, BusError::InvalidUrl));
        assert!(!error.to_string().contains("hunter2"));
    }

    #[test]
    fn debug_hides_the_password() {
        let config = BusConfig {
            url: "amqp://guest:hunter2@10.0.0.5:5672/%2f?heartbeat=10".to_owned(),
            prefix: "t1.".to_owned(),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("amqp://guest:[REDACTED]@10.0.0.5:5672/%2f?heartbeat=10"));
    }

    #[test]
    fn read_names_the_variable() {
        let env = Env::from_pairs([("MIXSYNC_QUEUE_PREFIX", "has space")]);
        let error = BusConfig::read(&env).unwrap_err();
        assert_eq!(error.var(), QUEUE_PREFIX_VAR);
        let env = Env::from_pairs([("MIXSYNC_AMQP_URL", "http//user:hunter2@host")]);
        let error = BusConfig::read(&env).unwrap_err().to_string();
        assert!(error.starts_with("MIXSYNC_AMQP_URL="), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
        let config = BusConfig::read(&Env::from_pairs([("MIXSYNC_QUEUE_PREFIX", " ")])).unwrap();
        assert_eq!(
            config,
            BusConfig {
                url: DEFAULT_AMQP_URL.into(),
                prefix: String::new()
            }
        );
    }

    #[test]
    fn prefixes_are_checked() {
        let config = |prefix: &str| BusConfig {
            url: DEFAULT_AMQP_URL.to_owned(),
            prefix: prefix.to_owned(),
        };
        assert!(config("").validate().is_ok());
        assert!(config("t123abc.").validate().is_ok());
        assert!(config("has space").validate().is_err());
        assert!(config(&"x".repeat(201)).validate().is_err());
    }
}
