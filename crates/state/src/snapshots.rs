//! Incremental syncs: the activation's snapshot of what Mixpanel holds (key → hash of the record
//! sent), and in the same rows the claims of the run going on (one run per activation at a time).
//! This is where a record's hash is compared with the snapshot: in the SQL of
//! [`StateStore::claim_keys`] (`claim_send`). The mapper (`crates/mapper/src/snapshot.rs`) computes
//! the hashes and acts on the decisions that come back.
//!
//! The mapper claims every key of a batch in one statement ([`StateStore::claim_keys`]), one
//! upsert per row and nothing else per row: the first batch to claim a key owns it for the rest
//! of the run (a later row with that key is a duplicate); the send-or-skip decision made against
//! the snapshot at that moment is stored with the claim, so a redelivered batch gets the same
//! decisions back and its counts stay those of the first delivery. The claim also writes the
//! record's hash as the snapshot's, ahead of the load, keeping the one before in `prev_hash`:
//! control puts that back for every record that fails to load, for a dead-lettered batch's
//! records, and for every record sent by a run that ends FAILED — so a record is only ever
//! skipped later if it was loaded (or, after a FAILED run, sent again although it was).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

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
    /// Claims `records`' keys for batch `batch_id` of the run of `plan` (one upsert, and a read
    /// of the keys this run had claimed already) and returns each key's claim. A key first
    /// claimed by this batch (now or on an earlier delivery) comes back with `batch_id`; one
    /// claimed by another batch comes back with that batch (a duplicate key). A new claim decides
    /// `send` by comparing the record's hash with the activation's snapshot (always `true` for a
    /// full resync), and keeps that decision for redeliveries. Keys repeated in `records` are
    /// claimed once, for their first occurrence. A run that has ended claims nothing new: its
    /// earlier claims come back as they were, other keys as this batch's, to send.
    pub async fn claim_keys(
        &self,
        plan: &RunPlan,
        batch_id: &str,
        records: &[KeyToClaim<'_>],
    ) -> Result<HashMap<String, KeyClaim>, StateError> {
        self.claim_keys_in(plan, 1, batch_id, records).await
    }

    /// [`StateStore::claim_keys`] for a batch of attempt `attempt` of the run: a key an
    /// earlier attempt claimed is claimed again, and compared with the snapshot as that
    /// attempt left it (so a record the earlier attempt loaded is skipped, one that failed to
    /// load is sent).
    pub async fn claim_keys_in(
        &self,
        plan: &RunPlan,
        attempt: u32,
        batch_id: &str,
        records: &[KeyToClaim<'_>],
    ) -> Result<HashMap<String, KeyClaim>, StateError> {
        let attempt = i32::try_from(attempt.max(1)).unwrap_or(i32::MAX);
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
        let params: [&(dyn ToSql + Sync); 8] = [
            &plan.run_id,
            &batch_id,
            &keys,
            &numbers,
            &hashes,
            &plan.full_resync,
            &plan.activation_id,
            &attempt,
        ];
        let client = self.client().await?;
        // Rows are upserted in key order, so concurrent batches sharing keys lock them in the
        // same order and cannot deadlock. A key this run claimed already (a duplicate, or this
        // batch redelivered) is left as it is and not returned: the second query reads it.
        // Only a live run whose settings the snapshot belongs to claims anything.
        let rows = client
            .query(
                "INSERT INTO sync_snapshots AS s
                     (activation_id, key, row_hash, claim_run, claim_batch, claim_row, claim_send,
                      claim_attempt)
                 SELECT $7, i.k, i.h, $1, $2, i.n, true, $8
                 FROM unnest($3::text[], $4::bigint[], $5::bytea[]) AS i(k, n, h)
                 WHERE EXISTS (
                     SELECT 1 FROM runs r JOIN activations a ON a.id = r.activation_id
                     WHERE r.id = $1 AND r.state IN ('queued', 'running')
                       AND r.fingerprint IS NOT DISTINCT FROM a.snapshot_fingerprint)
                 ORDER BY i.k
                 ON CONFLICT (activation_id, key) DO UPDATE SET
                     prev_hash = s.row_hash,
                     row_hash = EXCLUDED.row_hash,
                     claim_run = EXCLUDED.claim_run,
                     claim_batch = EXCLUDED.claim_batch,
                     claim_row = EXCLUDED.claim_row,
                     claim_send = $6 OR s.row_hash IS DISTINCT FROM EXCLUDED.row_hash,
                     claim_attempt = EXCLUDED.claim_attempt,
                     updated_at = now()
                 WHERE s.claim_run IS DISTINCT FROM EXCLUDED.claim_run
                    OR COALESCE(s.claim_attempt, 1) < EXCLUDED.claim_attempt
                 RETURNING key, claim_batch, claim_row, claim_send",
                &params,
            )
            .await?;
        let mut claimed: HashMap<String, KeyClaim> = rows.iter().map(claim_from_row).collect();
        if claimed.len() < keys.len() {
            let missing: Vec<&str> = keys
                .iter()
                .copied()
                .filter(|k| !claimed.contains_key(*k))
                .collect();
            let rows = client
                .query(
                    "SELECT key, claim_batch, claim_row, claim_send FROM sync_snapshots
                     WHERE activation_id = $1 AND key = ANY($2) AND claim_run = $3",
                    &[&plan.activation_id, &missing, &plan.run_id],
                )
                .await?;
            claimed.extend(rows.iter().map(claim_from_row));
        }
        // Keys still missing: the run has ended (or its settings are no longer the snapshot's)
        // and nothing was claimed: send.
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

    /// Number of keys in an activation's sync snapshot.
    pub async fn snapshot_size(&self, activation_id: &str) -> Result<u64, StateError> {
        let count: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT count(*) FROM sync_snapshots
                 WHERE activation_id = $1 AND row_hash IS NOT NULL",
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
) -> Result<Option<String>, StateError> {
    // The activation row is locked by the caller.
    let Some(before) = tx
        .query_opt(
            "SELECT snapshot_fingerprint, snapshot_reset_reason FROM activations
             WHERE id = $1
               AND (snapshot_fingerprint IS DISTINCT FROM $2 OR snapshot_reset_reason IS NOT NULL)",
            &[&activation_id, &fingerprint],
        )
        .await?
    else {
        return Ok(None);
    };
    let (old, reset): (Option<String>, Option<String>) = (before.get(0), before.get(1));
    tx.execute(
        "UPDATE activations SET snapshot_fingerprint = $2, snapshot_reset_reason = NULL
         WHERE id = $1",
        &[&activation_id, &fingerprint],
    )
    .await?;
    // A first sync needs no reason; otherwise say why every row goes again.
    let reason = match (reset, old) {
        (Some(reason), _) => Some(reason),
        (None, Some(_)) => {
            Some("the activation's query, mapping, object, options or target changed".to_owned())
        }
        (None, None) => None,
    };
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
            reason = reason.as_deref().unwrap_or("first sync"),
            "sync snapshot cleared, every row will be sent"
        );
    }
    Ok(reason)
}

/// A key as stored: Postgres text cannot hold U+0000, which a warehouse value can.
fn stored_key(key: &str) -> Cow<'_, str> {
    if key.contains('\0') {
        Cow::Owned(key.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(key)
    }
}

/// Puts back the snapshot hash of `keys` (records of run `run_id` that failed to load): the
/// next run sends them again.
pub(crate) async fn revert_keys(
    tx: &Transaction<'_>,
    activation_id: &str,
    run_id: &str,
    keys: &[&str],
) -> Result<(), StateError> {
    if keys.is_empty() {
        return Ok(());
    }
    let stored: Vec<Cow<'_, str>> = keys.iter().map(|k| stored_key(k)).collect();
    let stored: Vec<&str> = stored.iter().map(AsRef::as_ref).collect();
    tx.execute(
        "UPDATE sync_snapshots SET row_hash = prev_hash
         WHERE activation_id = $1 AND key = ANY($2) AND claim_run = $3",
        &[&activation_id, &stored, &run_id],
    )
    .await?;
    Ok(())
}

/// Puts back the snapshot hash of every record batch `batch_id` of run `run_id` claimed (a
/// dead-lettered batch). Reads the activation's whole snapshot: for rare events only.
pub(crate) async fn revert_batch(
    tx: &Transaction<'_>,
    activation_id: &str,
    run_id: &str,
    batch_id: &str,
) -> Result<(), StateError> {
    tx.execute(
        "UPDATE sync_snapshots SET row_hash = prev_hash
         WHERE activation_id = $1 AND claim_run = $2 AND claim_batch = $3 AND claim_send",
        &[&activation_id, &run_id, &batch_id],
    )
    .await?;
    Ok(())
}

/// Puts back the snapshot hash of every record run `run_id` sent: it ended FAILED, and which of
/// them Mixpanel took is not known, so the next run sends them all again (Mixpanel deduplicates
/// events by `$insert_id`; profile updates are idempotent but `$add`).
pub(crate) async fn revert_run(
    tx: &Transaction<'_>,
    activation_id: &str,
    run_id: &str,
) -> Result<(), StateError> {
    let reverted = tx
        .execute(
            "UPDATE sync_snapshots SET row_hash = prev_hash
             WHERE activation_id = $1 AND claim_run = $2 AND claim_send",
            &[&activation_id, &run_id],
        )
        .await?;
    if reverted > 0 {
        tracing::info!(
            run_id,
            reverted,
            "run failed: its records stay out of the sync snapshot and are sent again next run"
        );
    }
    Ok(())
}

fn claim_from_row(row: &tokio_postgres::Row) -> (String, KeyClaim) {
    let number: i64 = row.get(2);
    (
        row.get(0),
        KeyClaim {
            batch_id: row.get(1),
            row_number: u64::try_from(number).unwrap_or(0),
            send: row.get(3),
        },
    )
}
