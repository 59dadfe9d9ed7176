//! Postgres connections the way libpq makes them, on rustls.
//!
//! Every Postgres connection mixsync opens (warehouses, the state database, the demo's seeding)
//! goes through [`PgConfig`]: it reads libpq's `sslmode` (`disable`, `allow`, `prefer`,
//! `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file, `system`, or a PEM
//! given through the API) and connects over rustls. No OpenSSL. The rules, and how they map to
//! libpq's, are in `docs/tls.md`.

mod dsn;
mod tls;

use std::error::Error as _;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Host;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Socket};
pub use tokio_postgres_rustls::MakeRustlsConnect;

pub use dsn::quote;
pub use tls::{provider, roots};

/// The stream of a connection made by [`PgConfig::connect`].
pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
/// A connection made by [`PgConfig::connect`]; poll it (spawn it) for the client to work.
pub type Connection = tokio_postgres::Connection<Socket, TlsStream>;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS if the server refuses a plain connection.
    Allow,
    /// TLS if the server offers it, plain otherwise. libpq's default, and ours.
    Prefer,
    /// TLS or nothing; the certificate is not checked (unless `sslrootcert` is given).
    Require,
    /// TLS, and the certificate must chain to a trusted CA.
    VerifyCa,
    /// TLS, the certificate must chain to a trusted CA and be issued for the host name.
    VerifyFull,
}

impl SslMode {
    /// libpq's name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

impl FromStr for SslMode {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => return Err(DsnError::SslMode(other.to_owned())),
        })
    }
}

/// Where the CAs that may sign the server's certificate come from.
#[derive(Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file on this machine (`sslrootcert=/path/ca.pem`).
    File(PathBuf),
    /// The operating system's trust store (`sslrootcert=system`, libpq 16's spelling).
    System,
    /// PEM text given through the API (stored encrypted with the warehouse).
    Pem(String),
}

impl std::fmt::Debug for RootCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "File({})", path.display()),
            Self::System => f.write_str("System"),
            Self::Pem(_) => f.write_str("Pem(..)"),
        }
    }
}

/// Which checks a TLS connection makes of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// None: encrypted, but anyone could be on the other end.
    None,
    /// The chain up to a trusted CA.
    Chain,
    /// The chain and the host name.
    ChainAndHost,
}

/// A connection string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DsnError {
    /// `sslmode` names no mode.
    #[error("sslmode `{0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    /// The string is not a URL or key=value pairs.
    #[error("{0}")]
    Syntax(String),
    /// tokio-postgres refused the rest; its message never quotes the string.
    #[error("{0}")]
    Invalid(String),
}

/// The TLS settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// `sslrootcert` names a file that cannot be read or holds no certificate.
    #[error("sslrootcert `{path}` cannot be used: {reason}")]
    RootCertFile {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The CA certificate given through the API is not usable.
    #[error("the CA certificate (ssl_root_cert) cannot be used: {0}")]
    RootCertPem(String),
    /// `sslrootcert=system` (or a verifying mode without `sslrootcert`) found no system CAs.
    #[error(
        "no CA certificates were found in the system trust store; give the server's CA with `sslrootcert`"
    )]
    NoSystemRoots,
    /// rustls refused the configuration.
    #[error("TLS cannot be set up: {0}")]
    Setup(String),
}

/// How opening a connection failed, in words for the user. Never quotes the connection string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectError {
    /// What kind of failure.
    pub kind: ConnectErrorKind,
    /// What happened and, where we know, what to do.
    pub message: String,
}

/// The kinds of [`ConnectError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectErrorKind {
    /// The TLS settings cannot be used (unreadable `sslrootcert`, …).
    Setup,
    /// The network: refused, unreachable, reset.
    Network,
    /// The TLS handshake failed (certificate refused, server without TLS).
    Tls,
    /// The server answered with an error (authentication, pg_hba.conf, unknown database).
    Server,
    /// The server is there but cannot take connections now: starting up, shutting down, in
    /// recovery (SQLSTATE 57P03), or out of connection slots (class 53). Trying again helps.
    Unavailable,
}

impl ConnectError {
    /// Whether trying again later may succeed: the server is unreachable or not ready. Bad
    /// credentials, TLS and settings problems are not.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self.kind,
            ConnectErrorKind::Network | ConnectErrorKind::Unavailable
        )
    }
}

/// A parsed connection string with its TLS settings.
#[derive(Debug, Clone)]
pub struct PgConfig {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<RootCert>,
}

impl PgConfig {
    /// Parses a `postgres://` URL or libpq key=value string. `sslmode` defaults to `prefer`.
    pub fn parse(dsn: &str) -> Result<Self, DsnError> {
        let split = dsn::split(dsn)?;
        // The parser's message never quotes the string, so a password stays out of it.
        let config = tokio_postgres::Config::from_str(&split.rest)
            .map_err(|e| DsnError::Invalid(e.to_string()))?;
        Ok(Self {
            config,
            ssl_mode: split.ssl_mode.unwrap_or(SslMode::Prefer),
            root_cert: split.root_cert,
        })
    }

    /// The settings tokio-postgres uses (host, user, timeouts, …).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The settings tokio-postgres uses, to change them.
    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The `sslmode`.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// The `sslrootcert`, if any.
    pub fn root_cert(&self) -> Option<&RootCert> {
        self.root_cert.as_ref()
    }

    /// Trusts the CAs of `root` instead of what the string said.
    pub fn set_root_cert(&mut self, root: RootCert) {
        self.root_cert = Some(root);
    }

    /// Which certificate checks a TLS connection makes.
    pub fn verification(&self) -> Verification {
        match self.ssl_mode {
            SslMode::VerifyFull => Verification::ChainAndHost,
            SslMode::VerifyCa => Verification::Chain,
            _ if self.root_cert.is_some() => Verification::Chain,
            _ => Verification::None,
        }
    }

    /// The first host, for messages.
    pub fn host(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        }
    }

    /// The TLS connector for these settings (also used when TLS is off: it is then never
    /// asked to connect).
    pub fn make_tls(&self) -> Result<MakeRustlsConnect, TlsError> {
        let verification = if self.ssl_mode == SslMode::Disable {
            Verification::None
        } else {
            self.verification()
        };
        let config = tls::client_config(verification, self.root_cert.as_ref())?;
        Ok(MakeRustlsConnect::new(config))
    }

    /// What tokio-postgres is told, and the connector, for a pool. `allow` is settled first by
    /// [`PgConfig::settle`]; here it is taken as `prefer`.
    pub fn for_pool(&self) -> Result<(tokio_postgres::Config, MakeRustlsConnect), TlsError> {
        let mut config = self.config.clone();
        config.ssl_mode(tokio_mode(self.ssl_mode));
        Ok((config, self.make_tls()?))
    }

    /// For `allow`: connects once to learn whether the server takes plain connections, and
    /// returns the settings that will be used from then on (`disable` or `require`). Other
    /// modes are returned as they are, without connecting.
    pub async fn settle(&self) -> Result<Self, ConnectError> {
        if self.ssl_mode != SslMode::Allow {
            return Ok(self.clone());
        }
        let (client, connection, encrypted) = self.connect_inner().await?;
        drop(client);
        drop(connection);
        let mut settled = self.clone();
        settled.ssl_mode = if encrypted {
            SslMode::Require
        } else {
            SslMode::Disable
        };
        Ok(settled)
    }

    /// Opens a connection. `allow` tries plain first and TLS when the server refuses it.
    pub async fn connect(&self) -> Result<(Client, Connection), ConnectError> {
        let (client, connection, _) = self.connect_inner().await?;
        Ok((client, connection))
    }

    async fn connect_inner(&self) -> Result<(Client, Connection, bool), ConnectError> {
        let tls = self.make_tls().map_err(|e| ConnectError {
            kind: ConnectErrorKind::Setup,
            message: e.to_string(),
        })?;
        let attempt = |mode: SslMode| {
            let mut config = self.config.clone();
            config.ssl_mode(tokio_mode(mode));
            let tls = tls.clone();
            async move { config.connect(tls).await }
        };
        if self.ssl_mode == SslMode::Allow {
            match attempt(SslMode::Disable).await {
                Ok((client, connection)) => return Ok((client, connection, false)),
                Err(e) if e.as_db_error().is_some() => {}
                Err(e) => return Err(self.explain(&e)),
            }
            return attempt(SslMode::Require)
                .await
                .map(|(client, connection)| (client, connection, true))
                .map_err(|e| self.explain(&e));
        }
        let (client, connection) = attempt(self.ssl_mode).await.map_err(|e| self.explain(&e))?;
        Ok((client, connection, self.ssl_mode != SslMode::Disable))
    }

    /// Turns a connect error into words that say what failed and what to change.
    pub fn explain(&self, e: &tokio_postgres::Error) -> ConnectError {
        if let Some(db) = e.as_db_error() {
            let mut message = db.message().to_owned();
            if let Some(detail) = db.detail() {
                message.push_str("; ");
                message.push_str(detail);
            }
            if message.contains("no encryption") {
                message = format!(
                    "the server refused a connection without TLS ({message}); set sslmode=require, or verify-full with the server's CA in sslrootcert"
                );
            }
            let code = db.code().code();
            let kind = if code == "57P03" || code.starts_with("53") {
                ConnectErrorKind::Unavailable
            } else {
                ConnectErrorKind::Server
            };
            return ConnectError { kind, message };
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
        while let Some(cause) = source {
            if let Some(rustls) = as_rustls(cause) {
                return ConnectError {
                    kind: ConnectErrorKind::Tls,
                    message: tls::explain(rustls, &self.host()),
                };
            }
            source = cause.source();
        }
        let text = chain(e);
        if text.contains("server does not support TLS") {
            return ConnectError {
                kind: ConnectErrorKind::Tls,
                message: format!(
                    "the server does not accept TLS connections, and sslmode={} requires TLS",
                    self.ssl_mode.as_str()
                ),
            };
        }
        if text.contains("TLS") {
            return ConnectError {
                kind: ConnectErrorKind::Tls,
                message: text,
            };
        }
        // Only the host the caller gave is named, never an address it resolved to.
        let host = self.host();
        let message = if text.contains("Connection refused") {
            format!(
                "the connection to `{host}` was refused: is PostgreSQL running and listening on that port?"
            )
        } else if text.contains("timed out") {
            format!(
                "the connection to `{host}` timed out: is the host reachable from here (firewall, security group)?"
            )
        } else if text.contains("lookup")
            || text.contains("resolve")
            || text.contains("Name or service not known")
        {
            format!("the host name `{host}` does not resolve")
        } else if text.contains("unreachable") {
            format!("`{host}` is unreachable from here (no route to it)")
        } else {
            format!("cannot connect to `{host}`: {text}")
        };
        ConnectError {
            kind: ConnectErrorKind::Network,
            message,
        }
    }
}

fn tokio_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    use tokio_postgres::config::SslMode as T;
    match mode {
        SslMode::Disable => T::Disable,
        SslMode::Allow | SslMode::Prefer => T::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => T::Require,
    }
}

/// The rustls error inside `e`: tokio-rustls wraps it in an `io::Error`, whose `source()`
/// skips it, so look inside. Also used for HTTP clients on rustls (control's TestTarget).
pub fn as_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    e.downcast_ref::<rustls::Error>().or_else(|| {
        e.downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// `e` and its causes, `: `-separated ("error connecting to server: Connection refused").
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_default_to_prefer() {
        for mode in [
            SslMode::Disable,
            SslMode::Allow,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(mode.as_str().parse::<SslMode>().unwrap(), mode);
        }
        let c = PgConfig::parse("postgres://u@h/db").unwrap();
        assert_eq!(c.ssl_mode(), SslMode::Prefer);
        assert_eq!(c.verification(), Verification::None);
    }

    #[test]
    fn verification_follows_libpq() {
        let v = |dsn: &str| PgConfig::parse(dsn).unwrap().verification();
        assert_eq!(v("host=h sslmode=verify-full"), Verification::ChainAndHost);
        assert_eq!(v("host=h sslmode=verify-ca"), Verification::Chain);
        assert_eq!(v("host=h sslmode=require"), Verification::None);
        assert_eq!(
            v("host=h sslmode=require sslrootcert=/ca.pem"),
            Verification::Chain
        );
    }

    #[test]
    fn a_bad_dsn_never_echoes_the_password() {
        let e = PgConfig::parse("postgres://u:hunter2@h:notaport/db").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PgConfig::parse("host=h password=hunter2 sslmode=maybe").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("maybe"), "{e}");
    }

    #[test]
    fn unusable_root_certificates_are_named() {
        let mut c = PgConfig::parse("host=h sslmode=verify-full").unwrap();
        c.set_root_cert(RootCert::File("/nonexistent/ca.pem".into()));
        let e = c.make_tls().err().expect("refused");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        c.set_root_cert(RootCert::Pem("hello".into()));
        let e = c.make_tls().err().expect("refused");
        assert!(e.to_string().contains("BEGIN CERTIFICATE"), "{e}");
        // `disable` never reads the root certificate.
        let mut off = PgConfig::parse("host=h sslmode=disable").unwrap();
        off.set_root_cert(RootCert::File("/nonexistent/ca.pem".into()));
        assert!(off.make_tls().is_ok());
    }
}
