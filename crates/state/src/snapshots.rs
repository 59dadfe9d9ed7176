//! Incremental syncs: the activation's snapshot of what Mixpanel accepted (key → hash of the
//! record sent) and the keys each unfinished run has seen (`run_keys`).
//!
//! The mapper claims every key of a batch in one statement ([`StateStore::claim_keys`]): the
//! first batch to claim a key owns it for the rest of the run (a later row with that key is a
//! duplicate), and the send-or-skip decision made against the snapshot at that moment is
//! stored with the claim. A redelivered batch therefore finds its own claims and gets the same
//! decisions back, even after its records were loaded and the snapshot changed: its counts
//! stay exactly those of the first delivery.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use mixsync_proto::v1::SyncedRecord;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::plan::RunPlan;
use crate::store::StateStore;

/// A mapped record offered to [`StateStore::claim_keys`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyToClaim<'a> {
    /// `Record.key`: `$insert_id`, distinct id, or `<group_key>/<group_id>`.
    pub key: &'a str,
    /// 1-based row number of its source row in the run.
    pub row_number: u64,
    /// `Record.row_hash`: SHA-256 of the record JSON.
    pub row_hash: &'a [u8],
}

/// Who owns a key in a run, and whether its record is to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyClaim {
    /// The batch that claimed the key first.
    pub batch_id: String,
    /// The row number it had there.
    pub row_number: u64,
    /// Whether the record differed from the snapshot (or the run is a full resync) when the
    /// key was claimed; `false` means it is unchanged and skipped.
    pub send: bool,
}

impl KeyClaim {
    /// Whether the key belongs to another batch than `batch_id`: the record is a duplicate.
    pub fn is_duplicate_for(&self, batch_id: &str) -> bool {
        self.batch_id != batch_id
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl StateStore {
    /// Claims `records`' keys for batch `batch_id` of the run of `plan`, in one statement, and
    /// returns each key's claim. A key first claimed by this batch (now or on an earlier
    /// delivery) comes back with `batch_id`; one claimed by another batch comes back with that
    /// batch (a duplicate key). A new claim decides `send` by comparing the record's hash with
    /// the activation's snapshot (always `true` for a full resync), and keeps that decision
    /// for redeliveries. Keys repeated in `records` are claimed once, for their first
    /// occurrence. For a run that has already ended nothing is recorded and every key comes
    /// back as this batch's, to send.
    pub async fn claim_keys(
        &self,
        plan: &RunPlan,
        batch_id: &str,
        records: &[KeyToClaim<'_>],
    ) -> Result<HashMap<String, KeyClaim>, StateError> {
        let mut unique: BTreeMap<Cow<'_, str>, &KeyToClaim<'_>> = BTreeMap::new();
        for record in records {
            unique.entry(stored_key(record.key)).or_insert(record);
        }
        if unique.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<&str> = unique.keys().map(AsRef::as_ref).collect();
        let numbers: Vec<i64> = unique.values().map(|r| to_i64(r.row_number)).collect();
        let hashes: Vec<&[u8]> = unique.values().map(|r| r.row_hash).collect();
        let params: [&(dyn ToSql + Sync); 7] = [
            &plan.run_id,
            &batch_id,
            &keys,
            &numbers,
            &hashes,
            &plan.full_resync,
            &plan.activation_id,
        ];
        // Rows are inserted in key order, so concurrent batches sharing keys lock them in the
        // same order and cannot deadlock. The snapshot is read with one primary-key probe per key
        // (LATERAL with LIMIT, which the planner cannot flatten into a join): a join let it
        // sort-merge the activation's whole snapshot (a million rows, with stale statistics
        // while a first run fills it) for every batch of 500.
        let rows = self
            .client()
            .await?
            .query(
                "INSERT INTO run_keys (run_id, key, batch_id, row_number, send)
                 SELECT $1, i.k, $2, i.n, ($6 OR s.row_hash IS DISTINCT FROM i.h)
                 FROM unnest($3::text[], $4::bigint[], $5::bytea[]) AS i(k, n, h)
                 LEFT JOIN LATERAL (
                     SELECT row_hash FROM sync_snapshots
                     WHERE activation_id = $7 AND key = i.k
                     LIMIT 1
                 ) s ON true
                 WHERE EXISTS (SELECT 1 FROM runs WHERE id = $1 AND state IN ('queued', 'running'))
                 ORDER BY i.k
                 ON CONFLICT (run_id, key) DO UPDATE SET batch_id = run_keys.batch_id
                 RETURNING key, batch_id, row_number, send",
                &params,
            )
            .await?;
        let mut claimed: HashMap<String, KeyClaim> = rows
            .iter()
            .map(|row| {
                let number: i64 = row.get(2);
                (
                    row.get(0),
                    KeyClaim {
                        batch_id: row.get(1),
                        row_number: u64::try_from(number).unwrap_or(0),
                        send: row.get(3),
                    },
                )
            })
            .collect();
        // Keys missing from the answer: the run has ended and nothing was claimed.
        Ok(unique
            .into_iter()
            .map(|(stored, record)| {
                let claim = claimed.remove(stored.as_ref()).unwrap_or_else(|| KeyClaim {
                    batch_id: batch_id.to_owned(),
                    row_number: record.row_number,
                    send: true,
                });
                (record.key.to_owned(), claim)
            })
            .collect())
    }

    /// The snapshot hashes of `keys` for an activation: what Mixpanel last accepted for each
    /// key that has been synced. Keys never synced (or failed) are absent.
    pub async fn snapshot_hashes(
        &self,
        activation_id: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Vec<u8>>, StateError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let stored: HashMap<Cow<'_, str>, &str> =
            keys.iter().map(|key| (stored_key(key), *key)).collect();
        let lookup: Vec<&str> = stored.keys().map(AsRef::as_ref).collect();
        let rows = self
            .client()
            .await?
            .query(
                "SELECT key, row_hash FROM sync_snapshots WHERE activation_id = $1 AND key = ANY($2)",
                &[&activation_id, &lookup],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let key: &str = row.get(0);
                let original = stored.get(key)?;
                Some(((*original).to_owned(), row.get(1)))
            })
            .collect())
    }

    /// Number of keys in an activation's sync snapshot.
    pub async fn snapshot_size(&self, activation_id: &str) -> Result<u64, StateError> {
        let count: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM sync_snapshots WHERE activation_id = $1",
                &[&activation_id],
            )
            .await?
            .get(0);
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

/// Empties the activation's snapshot and records `fingerprint` as the one it belongs to, when
/// the stored fingerprint differs. Returns whether it did. The activation row must be locked.
pub(crate) async fn invalidate_if_changed(
    tx: &Transaction<'_>,
    activation_id: &str,
    fingerprint: &str,
) -> Result<bool, StateError> {
    let changed = tx
        .execute(
            "UPDATE activations SET snapshot_fingerprint = $2
             WHERE id = $1 AND snapshot_fingerprint IS DISTINCT FROM $2",
            &[&activation_id, &fingerprint],
        )
        .await?;
    if changed == 0 {
        return Ok(false);
    }
    let removed = tx
        .execute(
            "DELETE FROM sync_snapshots WHERE activation_id = $1",
            &[&activation_id],
        )
        .await?;
    if removed > 0 {
        tracing::info!(
            activation_id,
            removed,
            "activation settings changed: sync snapshot cleared, every row will be sent"
        );
    }
    Ok(true)
}

/// Records what Mixpanel accepted (`synced`, later entries win for a repeated key) as the
/// activation's snapshot, in one statement.
pub(crate) async fn upsert_synced(
    tx: &Transaction<'_>,
    activation_id: &str,
    synced: BTreeMap<Cow<'_, str>, &[u8]>,
) -> Result<(), StateError> {
    if synced.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = synced.keys().map(AsRef::as_ref).collect();
    let hashes: Vec<&[u8]> = synced.values().copied().collect();
    tx.execute(
        "INSERT INTO sync_snapshots (activation_id, key, row_hash)
         SELECT $1, k, h FROM unnest($2::text[], $3::bytea[]) AS t(k, h) ORDER BY k
         ON CONFLICT (activation_id, key)
         DO UPDATE SET row_hash = EXCLUDED.row_hash, updated_at = now()",
        &[&activation_id, &keys, &hashes],
    )
    .await?;
    Ok(())
}

/// Adds a report's synced records to `into` (stored key → hash).
pub(crate) fn collect_synced<'a>(
    into: &mut BTreeMap<Cow<'a, str>, &'a [u8]>,
    synced: &'a [SyncedRecord],
) {
    for record in synced {
        into.insert(stored_key(&record.key), record.row_hash.as_slice());
    }
}

/// A key as stored: Postgres text cannot hold U+0000, which a warehouse value can.
fn stored_key(key: &str) -> Cow<'_, str> {
    if key.contains('\0') {
        Cow::Owned(key.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// Deletes a run's key claims (it has ended: they are no longer needed).
pub(crate) async fn forget_run_keys(tx: &Transaction<'_>, run_id: &str) -> Result<(), StateError> {
    tx.execute("DELETE FROM run_keys WHERE run_id = $1", &[&run_id])
        .await?;
    Ok(())
}
