//! Secrets at rest (`docs/security.md`, "Secrets at rest").
//!
//! **Key.** The 32-byte key is derived from `MIXSYNC_SECRET_KEY` with argon2id and a random salt
//! made once per installation (the `installation` table, migration 0009). We chose a
//! memory-hard KDF over "a required 32-byte random key expanded with HKDF" because the key has
//! always been a passphrase the operator picks (every existing installation has one, many of
//! them short): argon2id makes each guess against a stolen database dump cost tens of
//! milliseconds and 19 MiB, and the salt stops one precomputation from serving every
//! installation. A random 32-byte key (`openssl rand -hex 32`) is still what we recommend.
//!
//! **Format (version 1).** `0x01 ‖ key id (8 bytes) ‖ nonce (12) ‖ ChaCha20-Poly1305 ciphertext
//! and tag`. The key id is a hash of the derived key, so a value stored under another key is told
//! apart from a damaged one, and rotation knows what to re-encrypt. The associated data binds
//! the table, the column and the row id (`mixsync/v1/targets.token_secret/<id>`): a ciphertext
//! copied to another column or another row does not decrypt.
//!
//! **Version 0** is the format before migration 0009 (which prefixed those values with `0x00`):
//! key = SHA-256 of the passphrase, associated data = the column only. It is only ever read, and
//! control rewrites every such value as version 1 at start ([`crate::StateStore::rotate_secrets`]).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::error::StateError;

const NONCE_LEN: usize = 12;
const KEY_ID_LEN: usize = 8;
/// The format written today.
pub(crate) const VERSION: u8 = 1;
/// The format before migration 0009.
pub(crate) const LEGACY: u8 = 0;
const HEADER_LEN: usize = 1 + KEY_ID_LEN;

/// argon2id's cost: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane). Changing it changes
/// every derived key, so it is part of the format: a new cost needs a new version.
fn kdf() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Which secret a ciphertext holds: its table and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    WarehousePassword,
    WarehouseRootCert,
    ProjectToken,
    ServiceAccountSecret,
}

impl Purpose {
    /// Every stored secret column, for rotation and key checks.
    pub(crate) const ALL: [Purpose; 4] = [
        Purpose::WarehousePassword,
        Purpose::WarehouseRootCert,
        Purpose::ProjectToken,
        Purpose::ServiceAccountSecret,
    ];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Self::WarehousePassword | Self::WarehouseRootCert => "warehouses",
            Self::ProjectToken | Self::ServiceAccountSecret => "targets",
        }
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::WarehousePassword => "password_secret",
            Self::WarehouseRootCert => "ssl_root_cert_secret",
            Self::ProjectToken => "token_secret",
            Self::ServiceAccountSecret => "service_account_secret",
        }
    }

    fn aad(self, row_id: &str) -> Vec<u8> {
        format!("mixsync/v1/{}.{}/{row_id}", self.table(), self.column()).into_bytes()
    }

    fn legacy_aad(self) -> &'static [u8] {
        match self {
            Self::WarehousePassword => b"mixsync/warehouses.password",
            Self::WarehouseRootCert => b"mixsync/warehouses.ssl_root_cert",
            Self::ProjectToken => b"mixsync/targets.token",
            Self::ServiceAccountSecret => b"mixsync/targets.service_account_secret",
        }
    }

    pub(crate) fn describe(self, id: &str) -> String {
        match self {
            Self::WarehousePassword => format!("password of warehouse `{id}`"),
            Self::WarehouseRootCert => format!("CA certificate of warehouse `{id}`"),
            Self::ProjectToken => format!("project token of target `{id}`"),
            Self::ServiceAccountSecret => format!("service-account secret of target `{id}`"),
        }
    }
}

/// `MIXSYNC_SECRET_KEY` and, while rotating, `MIXSYNC_SECRET_KEY_PREVIOUS`.
#[derive(Clone)]
pub struct SecretKeys {
    current: SecretString,
    previous: Option<SecretString>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKeys")
            .field("current", &"[REDACTED]")
            .field("previous", &self.previous.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

impl SecretKeys {
    /// The key secrets are stored under; an empty one is refused.
    pub fn new(current: &SecretString) -> Result<Self, StateError> {
        if current.expose_secret().is_empty() {
            return Err(StateError::EmptySecretKey);
        }
        Ok(Self {
            current: current.clone(),
            previous: None,
        })
    }

    /// Also reads secrets stored under `previous` (blank counts as none).
    #[must_use]
    pub fn with_previous(mut self, previous: Option<&SecretString>) -> Self {
        self.previous = previous
            .filter(|p| !p.expose_secret().trim().is_empty())
            .cloned();
        self
    }

    /// Whether a previous key is set.
    pub fn has_previous(&self) -> bool {
        self.previous.is_some()
    }
}

/// One derived key.
#[derive(Clone)]
struct DerivedKey {
    id: [u8; KEY_ID_LEN],
    cipher: ChaCha20Poly1305,
}

impl DerivedKey {
    fn derive(passphrase: &SecretString, salt: &[u8]) -> Result<Self, StateError> {
        let mut key = [0u8; 32];
        kdf()
            .hash_password_into(passphrase.expose_secret().as_bytes(), salt, &mut key)
            .map_err(|e| StateError::KeyDerivation(e.to_string()))?;
        let digest = Sha256::new()
            .chain_update(b"mixsync key id v1")
            .chain_update(key)
            .finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&key));
        key.fill(0);
        Ok(Self { id, cipher })
    }
}

/// Which key opened a value, for rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opened {
    /// Version 1 under the current key: nothing to do.
    Current,
    /// Version 1 under the previous key.
    Previous,
    /// Version 0 (either key).
    Legacy,
}

/// Encrypts and decrypts stored secrets with the derived keys.
#[derive(Clone)]
pub(crate) struct SecretBox {
    current: DerivedKey,
    previous: Option<DerivedKey>,
    /// Version 0 keys: SHA-256 of each passphrase.
    legacy: Vec<ChaCha20Poly1305>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([REDACTED])")
    }
}

impl SecretBox {
    /// Derives the keys with the installation's `salt` (argon2id: tens of milliseconds, call it
    /// off the async threads).
    pub(crate) fn derive(keys: &SecretKeys, salt: &[u8]) -> Result<Self, StateError> {
        let legacy = |p: &SecretString| {
            let digest = Sha256::digest(p.expose_secret().as_bytes());
            ChaCha20Poly1305::new(Key::from_slice(digest.as_slice()))
        };
        let mut legacy_keys = vec![legacy(&keys.current)];
        legacy_keys.extend(keys.previous.as_ref().map(legacy));
        Ok(Self {
            current: DerivedKey::derive(&keys.current, salt)?,
            previous: keys
                .previous
                .as_ref()
                .map(|p| DerivedKey::derive(p, salt))
                .transpose()?,
            legacy: legacy_keys,
        })
    }

    /// The key id of the current key (hex), for logs.
    pub(crate) fn current_key_id(&self) -> String {
        hex(&self.current.id)
    }

    /// The ids (hex) of the current and the previous key.
    pub(crate) fn key_ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| hex(&k.id))
            .collect()
    }

    /// `0x01 ‖ key id ‖ nonce ‖ ciphertext` of `plain`, bound to `purpose` and row `id`.
    pub(crate) fn seal(
        &self,
        purpose: Purpose,
        id: &str,
        plain: &SecretString,
    ) -> Result<Vec<u8>, StateError> {
        self.seal_bytes(purpose, id, plain.expose_secret().as_bytes())
    }

    fn seal_bytes(&self, purpose: Purpose, id: &str, plain: &[u8]) -> Result<Vec<u8>, StateError> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = purpose.aad(id);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| StateError::Encrypt {
                what: purpose.describe(id),
            })?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain text of a stored value, and which key opened it.
    pub(crate) fn open_with(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: &[u8],
    ) -> Result<(SecretString, Opened), StateError> {
        let (plain, opened) = match sealed.first() {
            Some(&VERSION) if sealed.len() >= HEADER_LEN + NONCE_LEN => {
                let key_id = &sealed[1..HEADER_LEN];
                let (key, opened) = if key_id == self.current.id {
                    (&self.current, Opened::Current)
                } else if let Some(previous) = self.previous.as_ref().filter(|p| p.id == key_id) {
                    (previous, Opened::Previous)
                } else {
                    return Err(StateError::WrongSecretKey {
                        what: purpose.describe(id),
                        key_id: hex(key_id),
                    });
                };
                let (nonce, body) = sealed[HEADER_LEN..].split_at(NONCE_LEN);
                let aad = purpose.aad(id);
                let plain = key
                    .cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: body,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| StateError::Decrypt {
                        what: purpose.describe(id),
                    })?;
                (plain, opened)
            }
            Some(&LEGACY) if sealed.len() > 1 + NONCE_LEN => {
                let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
                let plain = self
                    .legacy
                    .iter()
                    .find_map(|cipher| {
                        cipher
                            .decrypt(
                                Nonce::from_slice(nonce),
                                Payload {
                                    msg: body,
                                    aad: purpose.legacy_aad(),
                                },
                            )
                            .ok()
                    })
                    .ok_or_else(|| StateError::WrongSecretKey {
                        what: purpose.describe(id),
                        key_id: "(the format before 0.2, no key id)".into(),
                    })?;
                (plain, Opened::Legacy)
            }
            _ => {
                return Err(StateError::Decrypt {
                    what: purpose.describe(id),
                });
            }
        };
        let text = String::from_utf8(plain).map_err(|_| StateError::Decrypt {
            what: purpose.describe(id),
        })?;
        Ok((SecretString::from(text), opened))
    }

    /// The plain text of a stored value.
    pub(crate) fn open(
        &self,
        purpose: Purpose,
        id: &str,
        sealed: &[u8],
    ) -> Result<SecretString, StateError> {
        self.open_with(purpose, id, sealed).map(|(plain, _)| plain)
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

/// The key id stored in a version-1 value, if it is one.
pub(crate) fn key_id_of(sealed: &[u8]) -> Option<String> {
    (sealed.first() == Some(&VERSION) && sealed.len() >= HEADER_LEN)
        .then(|| hex(&sealed[1..HEADER_LEN]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: &[u8] = b"sixteen byte salt";

    fn key(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn sbox(current: &str, previous: Option<&str>) -> SecretBox {
        let keys = SecretKeys::new(&key(current))
            .unwrap()
            .with_previous(previous.map(key).as_ref());
        SecretBox::derive(&keys, SALT).unwrap()
    }

    #[test]
    fn round_trips_with_a_fresh_nonce_and_a_versioned_header() {
        let b = sbox("k", None);
        let a1 = b.seal(Purpose::ProjectToken, "t", &key("tok")).unwrap();
        let a2 = b.seal(Purpose::ProjectToken, "t", &key("tok")).unwrap();
        assert_ne!(a1, a2);
        assert_eq!(a1[0], VERSION);
        assert_eq!(key_id_of(&a1), Some(b.current_key_id()));
        assert!(!a1.windows(3).any(|w| w == b"tok"));
        let (opened, how) = b.open_with(Purpose::ProjectToken, "t", &a1).unwrap();
        assert_eq!(opened.expose_secret(), "tok");
        assert_eq!(how, Opened::Current);
    }

    #[test]
    fn the_salt_changes_the_key() {
        let keys = SecretKeys::new(&key("k")).unwrap();
        let a = SecretBox::derive(&keys, b"salt number one!").unwrap();
        let b = SecretBox::derive(&keys, b"salt number two!").unwrap();
        assert_ne!(a.current_key_id(), b.current_key_id());
    }

    #[test]
    fn another_row_column_or_key_does_not_decrypt() {
        let b = sbox("k", None);
        let sealed = b.seal(Purpose::ProjectToken, "t1", &key("tok")).unwrap();
        // Another row of the same column.
        let err = b.open(Purpose::ProjectToken, "t2", &sealed).unwrap_err();
        assert!(matches!(err, StateError::Decrypt { .. }), "{err}");
        assert!(err.to_string().contains("target `t2`"), "{err}");
        // Another column of the same row.
        assert!(
            b.open(Purpose::ServiceAccountSecret, "t1", &sealed)
                .is_err()
        );
        // Another key: named as such, with the key id it was stored under.
        let other = sbox("other", None);
        let err = other
            .open(Purpose::ProjectToken, "t1", &sealed)
            .unwrap_err();
        assert!(matches!(err, StateError::WrongSecretKey { .. }), "{err}");
        assert!(err.to_string().contains(&b.current_key_id()), "{err}");
        // A damaged value.
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(
            b.open(Purpose::ProjectToken, "t1", &damaged),
            Err(StateError::Decrypt { .. })
        ));
        assert!(b.open(Purpose::ProjectToken, "t1", &[1, 2]).is_err());
        assert!(b.open(Purpose::ProjectToken, "t1", &[7; 40]).is_err());
    }

    #[test]
    fn the_previous_key_still_opens_what_it_sealed() {
        let old = sbox("old", None);
        let sealed = old
            .seal(Purpose::WarehousePassword, "w", &key("pw"))
            .unwrap();
        let rotating = sbox("new", Some("old"));
        let (plain, how) = rotating
            .open_with(Purpose::WarehousePassword, "w", &sealed)
            .unwrap();
        assert_eq!(plain.expose_secret(), "pw");
        assert_eq!(how, Opened::Previous);
    }

    /// Version 0, as stored before migration 0009 (which added the `0x00` in front).
    fn legacy_seal(passphrase: &str, purpose: Purpose, plain: &str) -> Vec<u8> {
        let digest = Sha256::digest(passphrase.as_bytes());
        let cipher = ChaCha20Poly1305::new(Key::from_slice(digest.as_slice()));
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let body = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain.as_bytes(),
                    aad: purpose.legacy_aad(),
                },
            )
            .unwrap();
        let mut out = vec![LEGACY];
        out.extend_from_slice(nonce.as_slice());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn the_old_format_opens_with_either_passphrase() {
        let sealed = legacy_seal("old", Purpose::ProjectToken, "tok");
        for b in [sbox("old", None), sbox("new", Some("old"))] {
            let (plain, how) = b.open_with(Purpose::ProjectToken, "t", &sealed).unwrap();
            assert_eq!(plain.expose_secret(), "tok");
            assert_eq!(how, Opened::Legacy);
        }
        let err = sbox("new", None)
            .open(Purpose::ProjectToken, "t", &sealed)
            .unwrap_err();
        assert!(matches!(err, StateError::WrongSecretKey { .. }), "{err}");
    }

    #[test]
    fn empty_key_is_refused_and_debug_is_redacted() {
        assert!(matches!(
            SecretKeys::new(&key("")),
            Err(StateError::EmptySecretKey)
        ));
        let keys = SecretKeys::new(&key("hunter2"))
            .unwrap()
            .with_previous(Some(&key("hunter1")));
        assert!(!format!("{keys:?}").contains("hunter"));
        assert!(keys.has_previous());
        let blank = SecretKeys::new(&key("k"))
            .unwrap()
            .with_previous(Some(&key("  ")));
        assert!(!blank.has_previous());
    }
}
