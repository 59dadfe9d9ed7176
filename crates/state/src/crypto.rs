//! Secrets at rest: ChaCha20-Poly1305 with a random nonce per value, under a key derived
//! (SHA-256) from `MIXSYNC_SECRET_KEY`. The purpose of each secret is bound in as associated
//! data, so a ciphertext copied into another column does not decrypt.

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::StateError;

const NONCE_LEN: usize = 12;

/// Which secret a ciphertext holds (the associated data).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    WarehousePassword,
    ProjectToken,
    ServiceAccountSecret,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Self::WarehousePassword => b"mixsync/warehouses.password",
            Self::ProjectToken => b"mixsync/targets.token",
            Self::ServiceAccountSecret => b"mixsync/targets.service_account_secret",
        }
    }

    fn describe(self, id: &str) -> String {
        match self {
            Self::WarehousePassword => format!("password of warehouse `{id}`"),
            Self::ProjectToken => format!("project token of target `{id}`"),
            Self::ServiceAccountSecret => format!("service-account secret of target `{id}`"),
        }
    }
}

/// Encrypts and decrypts stored secrets.
#[derive(Clone)]
pub(crate) struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([REDACTED])")
    }
}

impl SecretBox {
    /// Derives the key from `secret_key`; an empty key is refused.
    pub(crate) fn new(secret_key: &SecretString) -> Result<Self, StateError> {
        let raw = secret_key.expose_secret();
        if raw.is_empty() {
            return Err(StateError::EmptySecretKey);
        }
        let digest = Sha256::digest(raw.as_bytes());
        let key = Key::from_slice(digest.as_slice());
        Ok(Self {
            cipher: ChaCha20Poly1305::new(key),
        })
    }

    /// `nonce || ciphertext` of `plain`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        id: &str,
        plain: &SecretString,
    ) -> Result<Vec<u8>, StateError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.expose_secret().as_bytes(),
                    aad: purpose.aad(),
                },
            )
            .map_err(|_| StateError::Encrypt {
                what: purpose.describe(id),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain text of a value made by [`SecretBox::seal`].
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: &[u8],
    ) -> Result<SecretString, StateError> {
        let err = || StateError::Decrypt {
            what: purpose.describe(id),
        };
        if sealed.len() < NONCE_LEN {
            return Err(err());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: purpose.aad(),
                },
            )
            .map_err(|_| err())?;
        let text = String::from_utf8(plain).map_err(|_| err())?;
        Ok(SecretString::from(text))
    }

    /// Seals an optional secret; `None` and empty stay `None`.
    pub(crate) fn seal_opt(
        &self,
        purpose: Purpose,
        id: &str,
        plain: Option<&SecretString>,
    ) -> Result<Option<Vec<u8>>, StateError> {
        match plain {
            Some(s) if !s.expose_secret().is_empty() => self.seal(purpose, id, s).map(Some),
            _ => Ok(None),
        }
    }

    /// Opens an optional sealed secret; a missing one is the empty string.
    pub(crate) fn open_opt(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: Option<&[u8]>,
    ) -> Result<SecretString, StateError> {
        match sealed {
            Some(bytes) => self.open(purpose, id, bytes),
            None => Ok(SecretString::from(String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let b = SecretBox::new(&key("k")).unwrap();
        let a1 = b.seal(Purpose::ProjectToken, "t", &key("tok")).unwrap();
        let a2 = b.seal(Purpose::ProjectToken, "t", &key("tok")).unwrap();
        assert_ne!(a1, a2);
        assert!(!a1.windows(3).any(|w| w == b"tok"));
        let opened = b.open(Purpose::ProjectToken, "t", &a1).unwrap();
        assert_eq!(opened.expose_secret(), "tok");
    }

    #[test]
    fn wrong_key_or_purpose_does_not_decrypt() {
        let b = SecretBox::new(&key("k")).unwrap();
        let sealed = b.seal(Purpose::ProjectToken, "t", &key("tok")).unwrap();
        let other = SecretBox::new(&key("other")).unwrap();
        let err = other.open(Purpose::ProjectToken, "t", &sealed).unwrap_err();
        assert!(err.to_string().contains("MIXSYNC_SECRET_KEY"), "{err}");
        assert!(b.open(Purpose::WarehousePassword, "t", &sealed).is_err());
        assert!(b.open(Purpose::ProjectToken, "t", &[1, 2]).is_err());
    }

    #[test]
    fn empty_key_is_refused() {
        assert!(matches!(
            SecretBox::new(&key("")),
            Err(StateError::EmptySecretKey)
        ));
    }
}
