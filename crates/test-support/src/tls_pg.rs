//! The TLS-only PostgreSQL cluster of `.ci/tls-postgres`: made and started on first use (the
//! script is idempotent and takes a lock, so concurrent tests share one cluster).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestDb;

/// The running TLS-only cluster and its certificates.
#[derive(Debug, Clone)]
pub struct TlsPostgres {
    /// Its port on localhost.
    pub port: u16,
    /// Where `ca.pem`, `other-ca.pem` and `server.pem` are.
    pub dir: PathBuf,
}

impl TlsPostgres {
    /// Makes and starts the cluster if it is not running.
    ///
    /// # Panics
    ///
    /// When the script fails (it needs root and PostgreSQL's `pg_createcluster`).
    #[must_use]
    pub fn ensure() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/tls-postgres");
        let out = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}):\n{stdout}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{} printed no `{key}=`: {stdout}", script.display()))
                .to_owned()
        };
        Self {
            port: field("port").parse().expect("a port"),
            dir: PathBuf::from(field("dir")),
        }
    }

    /// The CA that signed the server's certificate.
    #[must_use]
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing the server presents.
    #[must_use]
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The server as a URL without a database, by the name its certificate is issued for.
    #[must_use]
    pub fn server(&self) -> String {
        format!("postgres://postgres@localhost:{}", self.port)
    }

    /// A new empty database on this cluster, dropped with its guard; the guard's own
    /// connections use `sslmode=require`.
    pub async fn database(&self) -> TestDb {
        TestDb::create_on(
            &self.server(),
            "?sslmode=require",
            format!("mixsync_tls_{}", crate::unique_suffix()),
        )
        .await
    }
}
