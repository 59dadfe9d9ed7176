//! Keeping every stored secret readable by the current key (`docs/security.md`, "Rotating the
//! key"): control calls [`StateStore::rotate_secrets`] at start, the other services
//! [`StateStore::check_secret_key`], so a wrong key stops a service at start instead of failing
//! a run later.

use std::collections::BTreeMap;

use crate::crypto::{Opened, Purpose, key_id_of};
use crate::error::StateError;
use crate::store::StateStore;

/// What [`StateStore::rotate_secrets`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// The id of the current key (a hash of it, never the key), as stored in every secret.
    pub key_id: String,
    /// Secrets already stored under the current key.
    pub current: usize,
    /// Re-encrypted from `MIXSYNC_SECRET_KEY_PREVIOUS` to the current key.
    pub from_previous: usize,
    /// Re-encrypted from the format before migration 0009.
    pub from_legacy: usize,
}

impl Rotation {
    /// How many were written again.
    pub fn reencrypted(&self) -> usize {
        self.from_previous + self.from_legacy
    }
}

/// What [`StateStore::check_secret_key`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// Every stored secret names a key this process has (or is in the old format, which control
    /// rewrites); `secrets` were looked at.
    Usable {
        /// How many secrets are stored.
        secrets: usize,
    },
    /// The state database is not set up yet (control has not applied the migrations).
    NotSetUp,
}

impl StateStore {
    /// Re-encrypts, in one transaction, every stored secret that is not yet in the current format
    /// under the current key: those under `MIXSYNC_SECRET_KEY_PREVIOUS`, and those in the format
    /// before migration 0009. Reads everything first and changes nothing when any secret cannot
    /// be read with the keys given, so a wrong key is found at start and costs nothing.
    pub async fn rotate_secrets(&self) -> Result<Rotation, StateError> {
        let secrets = self.secrets().await?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut rotation = Rotation {
            key_id: secrets.current_key_id(),
            ..Rotation::default()
        };
        let mut rewrites = Vec::new();
        let mut unreadable = Vec::new();
        let mut total = 0;
        for purpose in Purpose::ALL {
            let (table, column) = (purpose.table(), purpose.column());
            let rows = tx
                .query(
                    &format!(
                        "SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL ORDER BY id FOR UPDATE"
                    ),
                    &[],
                )
                .await?;
            for row in rows {
                total += 1;
                let id: String = row.get(0);
                let sealed: Vec<u8> = row.get(1);
                match secrets.open_with(purpose, &id, &sealed) {
                    Ok((_, Opened::Current)) => rotation.current += 1,
                    Ok((plain, opened)) => {
                        if opened == Opened::Previous {
                            rotation.from_previous += 1;
                        } else {
                            rotation.from_legacy += 1;
                        }
                        rewrites.push((purpose, id.clone(), secrets.seal(purpose, &id, &plain)?));
                    }
                    Err(e) => unreadable.push(e),
                }
            }
        }
        let count = unreadable.len();
        if let Some(example) = unreadable.into_iter().next() {
            return Err(StateError::SecretsUnreadable {
                unreadable: count,
                total,
                example: Box::new(example),
            });
        }
        for (purpose, id, sealed) in rewrites {
            tx.execute(
                &format!(
                    "UPDATE {} SET {} = $2 WHERE id = $1",
                    purpose.table(),
                    purpose.column()
                ),
                &[&id, &sealed],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(rotation)
    }

    /// Checks, without decrypting, that every stored secret was stored under a key this process
    /// has: the key ids in the stored values against the current and previous keys' ids.
    pub async fn check_secret_key(&self) -> Result<KeyCheck, StateError> {
        let secrets = match self.secrets().await {
            Ok(secrets) => secrets,
            Err(StateError::NotSetUp) => return Ok(KeyCheck::NotSetUp),
            Err(e) => return Err(e),
        };
        let client = self.client().await?;
        let mut by_key: BTreeMap<String, (usize, Option<(Purpose, String)>)> = BTreeMap::new();
        let mut total = 0;
        for purpose in Purpose::ALL {
            let (table, column) = (purpose.table(), purpose.column());
            let rows = client
                .query(
                    &format!(
                        "SELECT id, substring({column} from 1 for 9) FROM {table} WHERE {column} IS NOT NULL"
                    ),
                    &[],
                )
                .await?;
            for row in rows {
                total += 1;
                let head: Vec<u8> = row.get(1);
                if let Some(key_id) = key_id_of(&head) {
                    let entry = by_key.entry(key_id).or_default();
                    entry.0 += 1;
                    entry.1.get_or_insert_with(|| (purpose, row.get(0)));
                }
            }
        }
        let known = secrets.key_ids();
        let foreign: Vec<_> = by_key
            .into_iter()
            .filter(|(id, _)| !known.contains(id))
            .collect();
        if let Some((key_id, (_, Some((purpose, id))))) = foreign.first() {
            return Err(StateError::SecretsUnreadable {
                unreadable: foreign.iter().map(|(_, (n, _))| n).sum(),
                total,
                example: Box::new(StateError::WrongSecretKey {
                    what: purpose.describe(id),
                    key_id: key_id.clone(),
                }),
            });
        }
        Ok(KeyCheck::Usable { secrets: total })
    }
}
