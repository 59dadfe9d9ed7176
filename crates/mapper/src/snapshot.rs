//! The mapper's side of incremental syncs: each record's hash, duplicate keys within a batch, and
//! what to do with a record given its key's claim.
//!
//! The hash is not compared here. [`mixsync_state::StateStore::claim_keys`]
//! (`crates/state/src/snapshots.rs`) compares it with the activation's snapshot in SQL, in the
//! same upsert that claims the key for the run, and returns the decision (`send`); [`decide`]
//! only reads that claim (duplicate of another batch, send, or skip).

use std::collections::HashMap;

use mixsync_domain::ObjectKind;
use mixsync_proto::v1::{FailedRow, Record};
use mixsync_state::KeyClaim;
use sha2::{Digest, Sha256};

/// The rule a repeated key breaks.
pub(crate) const DUPLICATE_KEY: &str = "duplicate_key";

/// `Record.row_hash`: SHA-256 of the record JSON, stored in the snapshot once loaded.
pub(crate) fn row_hash(json: &[u8]) -> Vec<u8> {
    Sha256::digest(json).to_vec()
}

/// What happens to a mapped record once its key is claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// New or changed (or a full resync): send it.
    Send,
    /// Unchanged since Mixpanel last accepted it: count it as skipped.
    Skip,
    /// Its key was claimed first by row `first_row` of another batch of this run.
    Duplicate {
        /// The row that holds the key.
        first_row: u64,
    },
}

/// The decision for a record of batch `batch_id` given its key's claim. A key without a claim
/// (nothing could be recorded for it) is sent.
pub(crate) fn decide(claim: Option<&KeyClaim>, batch_id: &str) -> Decision {
    match claim {
        None => Decision::Send,
        Some(claim) if claim.is_duplicate_for(batch_id) => Decision::Duplicate {
            first_row: claim.row_number,
        },
        Some(claim) if claim.send => Decision::Send,
        Some(_) => Decision::Skip,
    }
}

/// Splits `records` into the first record of each key and failures for the later ones.
pub(crate) fn first_of_each_key(
    object: ObjectKind,
    records: Vec<Record>,
) -> (Vec<Record>, Vec<FailedRow>) {
    let mut first: HashMap<String, u64> = HashMap::with_capacity(records.len());
    let mut kept = Vec::with_capacity(records.len());
    let mut duplicates = Vec::new();
    for record in records {
        match first.get(&record.key) {
            Some(&first_row) => duplicates.push(duplicate(object, record, first_row)),
            None => {
                first.insert(record.key.clone(), record.row_number);
                kept.push(record);
            }
        }
    }
    (kept, duplicates)
}

/// The failure of `record`, whose key row `first_row` already holds in this run.
pub(crate) fn duplicate(object: ObjectKind, record: Record, first_row: u64) -> FailedRow {
    let (field, what) = match object {
        ObjectKind::Events => ("$insert_id", "$insert_id"),
        ObjectKind::UserProfiles => ("$distinct_id", "distinct_id"),
        ObjectKind::GroupProfiles => ("$group_id", "group"),
    };
    FailedRow {
        row_number: record.row_number,
        message: format!(
            "row {}: {what} `{}` appears again in this run (first at row {first_row}); \
             only the first row is sent",
            record.row_number, record.key
        ),
        key: record.key,
        field: field.into(),
        rule: DUPLICATE_KEY.into(),
        row: record.source,
        record_json: record.json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(row_number: u64, key: &str) -> Record {
        let json = format!(r#"{{"k":"{key}"}}"#).into_bytes();
        Record {
            row_number,
            key: key.into(),
            row_hash: row_hash(&json),
            json,
            source: None,
        }
    }

    #[test]
    fn hashes_are_sha256_of_the_json() {
        assert_eq!(
            row_hash(b"abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn later_rows_with_a_key_fail_naming_the_first() {
        let records = vec![record(3, "u1"), record(4, "u2"), record(12, "u1")];
        let (kept, failed) = first_of_each_key(ObjectKind::UserProfiles, records);
        let kept: Vec<_> = kept.iter().map(|r| r.row_number).collect();
        assert_eq!(kept, [3, 4]);
        assert_eq!(failed.len(), 1);
        let f = &failed[0];
        assert_eq!(
            (
                f.row_number,
                f.key.as_str(),
                f.field.as_str(),
                f.rule.as_str()
            ),
            (12, "u1", "$distinct_id", DUPLICATE_KEY)
        );
        assert_eq!(
            f.message,
            "row 12: distinct_id `u1` appears again in this run (first at row 3); only the first row is sent"
        );
        assert_eq!(f.record_json, br#"{"k":"u1"}"#);
    }

    #[test]
    fn claims_decide() {
        let claim = |batch: &str, row_number, send| KeyClaim {
            batch_id: batch.into(),
            row_number,
            send,
        };
        assert_eq!(decide(None, "b"), Decision::Send);
        assert_eq!(decide(Some(&claim("b", 7, true)), "b"), Decision::Send);
        assert_eq!(decide(Some(&claim("b", 7, false)), "b"), Decision::Skip);
        assert_eq!(
            decide(Some(&claim("a", 2, true)), "b"),
            Decision::Duplicate { first_row: 2 }
        );
    }
}
