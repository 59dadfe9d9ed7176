//! Certificates for TLS tests, made with the `openssl` command line (Debian's `openssl`
//! package), the way an operator would make them: a CA, a server certificate it signed for
//! `localhost` and `127.0.0.1`, a client certificate it signed, and a second CA with a client
//! certificate of its own, for refusals.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A directory of PEM files; removed when dropped.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
}

impl TestPki {
    /// Makes every certificate in a new directory under the temporary directory.
    ///
    /// # Panics
    ///
    /// When `openssl` is missing or fails.
    #[must_use]
    pub fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("mixsync-pki-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let pki = Self { dir };
        pki.ca("ca", "mixsync test CA");
        pki.ca("other-ca", "another test CA");
        pki.leaf(
            "server",
            "ca",
            "localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        pki.leaf(
            "client",
            "ca",
            "mixsync-cli",
            "extendedKeyUsage=clientAuth\n",
        );
        pki.leaf(
            "other-client",
            "other-ca",
            "mixsync-cli",
            "extendedKeyUsage=clientAuth\n",
        );
        pki
    }

    /// `NAME.pem` (a certificate) or `NAME.key` (its key): `ca`, `other-ca`, `server`,
    /// `client`, `other-client`.
    #[must_use]
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn ca(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN={subject}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn leaf(&self, name: &str, ca: &str, common_name: &str, extensions: &str) {
        let ext = format!("{name}.ext");
        std::fs::write(
            self.dir.join(&ext),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n{extensions}"),
        )
        .expect("the extensions file");
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={common_name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            &ext,
            "-out",
            &format!("{name}.pem"),
        ]);
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("the openssl command (Debian package `openssl`)");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
