//! One `RowBatch` in, the `RecordBatch` and the `Progress` report out: the service's pure core.
//!
//! [`map_batch`] maps every row with the mapper of the run's object and drops later rows of a
//! key seen earlier in the batch; the service then claims the remaining keys in the state
//! store, and [`MappedBatch::finish`] applies those claims (duplicates across batches fail,
//! unchanged records are skipped) and builds the messages.

use std::collections::HashMap;

use mixsync_bus::{LOAD_EVENTS, LOAD_GROUP_PROFILES, LOAD_USER_PROFILES};
use mixsync_domain::{ObjectKind, Value};
use mixsync_proto::convert::to_domain_values;
use mixsync_proto::v1::{self, FailedRow, MixpanelObject, Record, RecordBatch, RowBatch, Stage};
use mixsync_state::{KeyClaim, KeyToClaim, RunPlan};

use crate::event::{EventMapper, EventOptions, MappedRecord};
use crate::failure::RowFailure;
use crate::profile::{ProfileMapper, ProfileOptions};
use crate::snapshot::{Decision, decide, duplicate, first_of_each_key, row_hash};

/// A batch mapped, before the snapshot decisions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedBatch {
    run_id: String,
    activation_id: String,
    batch_id: String,
    columns: Vec<String>,
    object: ObjectKind,
    target_id: String,
    /// The mapped records, one per key, with their `row_hash`.
    records: Vec<Record>,
    /// Rows that could not be mapped, and later rows of a key already in the batch.
    failures: Vec<FailedRow>,
}

/// The messages for a batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchOutput {
    /// The records to load and their queue; `None` when there is nothing to send.
    pub records: Option<(&'static str, RecordBatch)>,
    /// The MAP report: skipped records and every failed row with its reason.
    pub progress: v1::Progress,
}

/// The row mapper of an object.
enum RowMapper {
    Events(EventMapper),
    Profiles(ProfileMapper),
}

impl RowMapper {
    fn new(plan: &RunPlan, columns: &[String]) -> Self {
        match plan.object {
            ObjectKind::Events => Self::Events(EventMapper::new(
                &plan.mapping,
                &EventOptions {
                    ip_zero: plan.options.ip_zero,
                },
                columns,
            )),
            ObjectKind::UserProfiles | ObjectKind::GroupProfiles => {
                Self::Profiles(ProfileMapper::new(
                    plan.object,
                    &plan.mapping,
                    &ProfileOptions {
                        ip_zero: plan.options.ip_zero,
                        ignore_time: plan.options.ignore_time,
                    },
                    columns,
                ))
            }
        }
    }

    fn map(
        &self,
        row: &[Value],
        row_number: u64,
        now_ms: i64,
    ) -> Result<MappedRecord, Vec<RowFailure>> {
        match self {
            Self::Events(mapper) => mapper.map(row, row_number, now_ms),
            Self::Profiles(mapper) => mapper.map(row, row_number),
        }
    }
}

/// The load queue and record type of an object.
fn destination(object: ObjectKind) -> (&'static str, MixpanelObject) {
    match object {
        ObjectKind::Events => (LOAD_EVENTS, MixpanelObject::Events),
        ObjectKind::UserProfiles => (LOAD_USER_PROFILES, MixpanelObject::UserProfiles),
        ObjectKind::GroupProfiles => (LOAD_GROUP_PROFILES, MixpanelObject::GroupProfiles),
    }
}

/// Maps every row of `batch` with `plan`'s mapping, at `now_ms`.
pub(crate) fn map_batch(plan: &RunPlan, batch: RowBatch, now_ms: i64) -> MappedBatch {
    let mut records = Vec::with_capacity(batch.rows.len());
    let mut failures = Vec::new();
    let mapper = RowMapper::new(plan, &batch.columns);
    for (i, row) in batch.rows.into_iter().enumerate() {
        let row_number = batch.first_row_number + i as u64;
        let mapped = match to_domain_values(&row) {
            Ok(values) => mapper.map(&values, row_number, now_ms),
            Err(e) => Err(vec![RowFailure {
                field: String::new(),
                column: String::new(),
                rule: "undecodable_value",
                message: format!("row {row_number}: the row cannot be read: {e}"),
            }]),
        };
        match mapped {
            Ok(record) => records.push(Record {
                row_number,
                key: record.key,
                row_hash: row_hash(&record.json),
                json: record.json,
                source: Some(row),
            }),
            Err(reasons) => failures.push(failed_row(row_number, row, reasons)),
        }
    }
    let (records, duplicates) = first_of_each_key(plan.object, records);
    failures.extend(duplicates);
    MappedBatch {
        run_id: batch.run_id,
        activation_id: batch.activation_id,
        batch_id: batch.batch_id,
        columns: batch.columns,
        object: plan.object,
        target_id: plan.target_id.clone(),
        records,
        failures,
    }
}

impl MappedBatch {
    /// The batch id.
    pub(crate) fn batch_id(&self) -> &str {
        &self.batch_id
    }

    /// The records' keys to claim for the run.
    pub(crate) fn keys(&self) -> Vec<KeyToClaim<'_>> {
        self.records
            .iter()
            .map(|r| KeyToClaim {
                key: &r.key,
                row_number: r.row_number,
                row_hash: &r.row_hash,
            })
            .collect()
    }

    /// Applies the key claims: records whose key another batch claimed fail as duplicates,
    /// unchanged ones are skipped, the rest are sent. A record without a claim is sent.
    pub(crate) fn finish(self, claims: &HashMap<String, KeyClaim>) -> BatchOutput {
        let mut failures = self.failures;
        let mut send = Vec::with_capacity(self.records.len());
        let mut skipped = 0u64;
        for record in self.records {
            match decide(claims.get(&record.key), &self.batch_id) {
                Decision::Send => send.push(record),
                Decision::Skip => skipped += 1,
                Decision::Duplicate { first_row } => {
                    failures.push(duplicate(self.object, record, first_row));
                }
            }
        }
        failures.sort_by_key(|f| f.row_number);
        let progress = v1::Progress {
            run_id: self.run_id.clone(),
            activation_id: self.activation_id.clone(),
            batch_id: self.batch_id.clone(),
            stage: Stage::Map.into(),
            skipped,
            failed: failures.len() as u64,
            columns: if failures.is_empty() {
                Vec::new()
            } else {
                self.columns.clone()
            },
            failures,
            ..v1::Progress::default()
        };
        let (queue, object) = destination(self.object);
        let records = (!send.is_empty()).then(|| {
            (
                queue,
                RecordBatch {
                    run_id: self.run_id,
                    activation_id: self.activation_id,
                    batch_id: self.batch_id,
                    object: object.into(),
                    records: send,
                    columns: self.columns,
                    target_id: self.target_id,
                },
            )
        });
        BatchOutput { records, progress }
    }
}

/// One failed row: the first reason's field and rule, every reason's message.
fn failed_row(row_number: u64, row: v1::Row, reasons: Vec<RowFailure>) -> FailedRow {
    let message = reasons
        .iter()
        .map(|r| r.message.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let first = reasons.into_iter().next();
    FailedRow {
        row_number,
        field: first.as_ref().map(|f| f.field.clone()).unwrap_or_default(),
        rule: first.map(|f| f.rule.to_owned()).unwrap_or_default(),
        message,
        row: Some(row),
        ..FailedRow::default()
    }
}

#[cfg(test)]
mod tests;
