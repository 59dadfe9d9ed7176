use std::fmt;
use std::net::IpAddr;

use lapin::uri::AMQPUri;

use crate::BusError;

/// The variable holding the broker URL.
pub const AMQP_URL_VAR: &str = "MIXSYNC_AMQP_URL";
/// The variable holding the queue prefix.
pub const QUEUE_PREFIX_VAR: &str = "MIXSYNC_QUEUE_PREFIX";
/// The broker URL when [`AMQP_URL_VAR`] is unset: the local RabbitMQ, default vhost.
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

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
    /// A variable that is not UTF-8, a URL that does not parse, or a prefix that would make
    /// invalid queue names.
    pub fn from_env() -> Result<Self, BusError> {
        let config = Self {
            url: var(AMQP_URL_VAR)?.unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned()),
            prefix: var(QUEUE_PREFIX_VAR)?.unwrap_or_default(),
        };
        config.validate()?;
        Ok(config)
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
            .field("url", &redact_password(&self.url))
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn var(name: &'static str) -> Result<Option<String>, BusError> {
    match std::env::var(name) {
        Ok(value) => Ok(Some(value)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(BusError::NotUnicode(name)),
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

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_len);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[REDACTED]@{host}{path}")
        }
        None => url.to_owned(),
    }
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
