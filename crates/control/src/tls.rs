//! gRPC over TLS, and mutual TLS, for control's API (`docs/tls.md`, "The gRPC API").
//!
//! TLS is on when both `MIXSYNC_GRPC_TLS_CERT` and `MIXSYNC_GRPC_TLS_KEY` name PEM files; with
//! `MIXSYNC_GRPC_TLS_CLIENT_CA` also set, every client must present a certificate signed by one of
//! that file's CAs, or the handshake fails before any RPC (health and reflection included). The
//! files are read and checked at start, so a wrong path or a file of the wrong kind stops control
//! with a message naming the variable, instead of failing the first handshake.

use std::path::{Path, PathBuf};

use mixsync_config::{ConfigError, Env};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The server's certificate chain (PEM).
pub const CERT_VAR: &str = "MIXSYNC_GRPC_TLS_CERT";
/// The server's private key (PEM).
pub const KEY_VAR: &str = "MIXSYNC_GRPC_TLS_KEY";
/// The CAs client certificates must be signed by (PEM); turns on mutual TLS.
pub const CLIENT_CA_VAR: &str = "MIXSYNC_GRPC_TLS_CLIENT_CA";

/// Where control's TLS files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcTls {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by one of these CAs.
    pub client_ca: Option<PathBuf>,
}

/// How callers reach the API, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP/2.
    Plain,
    /// TLS.
    Tls,
    /// TLS with client certificates required.
    MutualTls,
}

impl Transport {
    /// How it is logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plaintext",
            Self::Tls => "tls",
            Self::MutualTls => "mutual-tls",
        }
    }
}

impl GrpcTls {
    /// The TLS settings in `env`, `None` when TLS is off.
    ///
    /// # Errors
    ///
    /// Only one of the certificate and the key, or a client CA without them.
    pub fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
        let cert = env.string(CERT_VAR)?;
        let key = env.string(KEY_VAR)?;
        let client_ca = env.string(CLIENT_CA_VAR)?;
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.into(),
                key: key.into(),
                client_ca: client_ca.map(PathBuf::from),
            })),
            (Some(_), None) => Err(ConfigError::Missing {
                var: KEY_VAR,
                what: format!(
                    "{CERT_VAR} is set, so control serves TLS: set {KEY_VAR} to the PEM file of \
                     the certificate's private key"
                ),
            }),
            (None, Some(_)) => Err(ConfigError::Missing {
                var: CERT_VAR,
                what: format!(
                    "{KEY_VAR} is set, so control serves TLS: set {CERT_VAR} to the PEM file of \
                     the server's certificate chain"
                ),
            }),
            (None, None) => match client_ca {
                Some(ca) => Err(ConfigError::unusable(
                    CLIENT_CA_VAR,
                    ca,
                    format!(
                        "client certificates need TLS: set {CERT_VAR} and {KEY_VAR} to the \
                         server's certificate and key too"
                    ),
                )),
                None => Ok(None),
            },
        }
    }

    /// How callers will reach the API with these settings.
    pub fn transport(tls: Option<&Self>) -> Transport {
        match tls {
            None => Transport::Plain,
            Some(Self {
                client_ca: None, ..
            }) => Transport::Tls,
            Some(_) => Transport::MutualTls,
        }
    }

    /// Reads and checks the files: the certificate file must hold at least one certificate, the
    /// key file a private key, the client CA file at least one certificate.
    ///
    /// # Errors
    ///
    /// A file that cannot be read or does not hold what it should, naming its variable.
    pub fn server_config(&self) -> Result<ServerTlsConfig, ConfigError> {
        let cert = read_certificates(CERT_VAR, &self.cert)?;
        let key = read(KEY_VAR, &self.key)?;
        let Ok(private) = PrivateKeyDer::from_pem_slice(&key) else {
            return Err(ConfigError::unusable(
                KEY_VAR,
                self.key.display().to_string(),
                "the file holds no PEM private key (`-----BEGIN PRIVATE KEY-----`, or an RSA or EC key)",
            ));
        };
        // The pair is checked the way the server will use it, so a key of another certificate
        // stops control here, naming the files.
        let chain: Vec<_> = CertificateDer::pem_slice_iter(&cert)
            .filter_map(Result::ok)
            .collect();
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| {
            ConfigError::unusable(
                KEY_VAR,
                self.key.display().to_string(),
                format!(
                    "the key cannot be used with the certificate in {}: {e}",
                    self.cert.display()
                ),
            )
        })?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca {
            config =
                config.client_ca_root(Certificate::from_pem(read_certificates(CLIENT_CA_VAR, ca)?));
        }
        Ok(config)
    }
}

fn read(var: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| {
        ConfigError::unusable(
            var,
            path.display().to_string(),
            format!("cannot read the file: {e}"),
        )
    })
}

fn read_certificates(var: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem = read(var, path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .filter(Result::is_ok)
        .count();
    if certificates == 0 {
        return Err(ConfigError::unusable(
            var,
            path.display().to_string(),
            "the file holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
        ));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_env(vars: &[(&str, &str)]) -> Result<Option<GrpcTls>, ConfigError> {
        GrpcTls::read(&Env::from_pairs(vars.iter().copied()))
    }

    #[test]
    fn off_unless_both_certificate_and_key_are_set() {
        assert_eq!(read_env(&[]).unwrap(), None);
        assert_eq!(read_env(&[(CERT_VAR, " "), (KEY_VAR, "")]).unwrap(), None);
        let err = read_env(&[(CERT_VAR, "/c.pem")]).unwrap_err();
        assert_eq!(err.var(), KEY_VAR, "{err}");
        let err = read_env(&[(KEY_VAR, "/k.pem")]).unwrap_err();
        assert_eq!(err.var(), CERT_VAR, "{err}");
        let err = read_env(&[(CLIENT_CA_VAR, "/ca.pem")]).unwrap_err();
        assert_eq!(err.var(), CLIENT_CA_VAR, "{err}");
        assert!(
            err.to_string().contains("client certificates need TLS"),
            "{err}"
        );
        let tls = read_env(&[
            (CERT_VAR, "/c.pem"),
            (KEY_VAR, "/k.pem"),
            (CLIENT_CA_VAR, "/ca.pem"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(GrpcTls::transport(Some(&tls)), Transport::MutualTls);
        assert_eq!(GrpcTls::transport(None), Transport::Plain);
    }

    #[test]
    fn files_that_hold_the_wrong_thing_are_named() {
        let dir = std::env::temp_dir().join(format!("mixsync-grpc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello").unwrap();
        let tls = GrpcTls {
            cert: not_pem.clone(),
            key: not_pem.clone(),
            client_ca: None,
        };
        let err = tls.server_config().unwrap_err();
        assert_eq!(err.var(), CERT_VAR);
        assert!(
            err.to_string().contains("holds no PEM certificate"),
            "{err}"
        );
        let missing = GrpcTls {
            cert: dir.join("missing.pem"),
            ..tls
        };
        let err = missing.server_config().unwrap_err();
        assert!(err.to_string().contains("cannot read the file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_and_a_matching_pair_accepted() {
        let pki = mixsync_test_support::TestPki::new();
        let good = GrpcTls {
            cert: pki.path("server.pem"),
            key: pki.path("server.key"),
            client_ca: Some(pki.path("ca.pem")),
        };
        assert!(good.server_config().is_ok());
        let mismatched = GrpcTls {
            key: pki.path("client.key"),
            ..good.clone()
        };
        let err = mismatched.server_config().unwrap_err();
        assert_eq!(err.var(), KEY_VAR);
        assert!(
            err.to_string()
                .contains("cannot be used with the certificate"),
            "{err}"
        );
        let ca_is_a_key = GrpcTls {
            client_ca: Some(pki.path("ca.key")),
            ..good
        };
        let err = ca_is_a_key.server_config().unwrap_err();
        assert_eq!(err.var(), CLIENT_CA_VAR, "{err}");
    }
}
