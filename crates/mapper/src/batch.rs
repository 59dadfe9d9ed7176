//! One `RowBatch` in, the `RecordBatch` and the `Progress` report out: the service's pure core.

use mixsync_bus::LOAD_EVENTS;
use mixsync_domain::ObjectKind;
use mixsync_proto::convert::to_domain_values;
use mixsync_proto::v1::{self, FailedRow, MixpanelObject, Record, RecordBatch, RowBatch, Stage};
use mixsync_state::RunPlan;

use crate::event::{EventMapper, EventOptions};
use crate::failure::RowFailure;

/// What mapping a batch produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MappedBatch {
    /// The records to load and their queue; `None` when no row could be mapped.
    pub records: Option<(&'static str, RecordBatch)>,
    /// The MAP report: every failed row with its reason.
    pub progress: v1::Progress,
}

/// Maps every row of `batch` with `plan`'s mapping, at `now_ms`.
pub(crate) fn map_batch(plan: &RunPlan, batch: RowBatch, now_ms: i64) -> MappedBatch {
    let mut records = Vec::with_capacity(batch.rows.len());
    let mut failures = Vec::new();
    let mapper = match plan.object {
        ObjectKind::Events => Some(EventMapper::new(
            &plan.mapping,
            &EventOptions {
                ip_zero: plan.options.ip_zero,
            },
            &batch.columns,
        )),
        ObjectKind::UserProfiles | ObjectKind::GroupProfiles => None,
    };
    for (i, row) in batch.rows.into_iter().enumerate() {
        let row_number = batch.first_row_number + i as u64;
        let Some(mapper) = &mapper else {
            failures.push(failed_row(
                row_number,
                row,
                vec![unsupported(plan.object, row_number)],
            ));
            continue;
        };
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
                json: record.json,
                row_hash: Vec::new(),
                source: Some(row),
            }),
            Err(reasons) => failures.push(failed_row(row_number, row, reasons)),
        }
    }
    let progress = v1::Progress {
        run_id: batch.run_id.clone(),
        activation_id: batch.activation_id.clone(),
        batch_id: batch.batch_id.clone(),
        stage: Stage::Map.into(),
        failed: failures.len() as u64,
        columns: if failures.is_empty() {
            Vec::new()
        } else {
            batch.columns.clone()
        },
        failures,
        ..v1::Progress::default()
    };
    let records = (!records.is_empty()).then(|| {
        (
            LOAD_EVENTS,
            RecordBatch {
                run_id: batch.run_id,
                activation_id: batch.activation_id,
                batch_id: batch.batch_id,
                object: MixpanelObject::Events.into(),
                records,
                columns: batch.columns,
                target_id: plan.target_id.clone(),
            },
        )
    });
    MappedBatch { records, progress }
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

fn unsupported(object: ObjectKind, row_number: u64) -> RowFailure {
    RowFailure {
        field: String::new(),
        column: String::new(),
        rule: "unsupported_object",
        message: format!(
            "row {row_number}: {object} activations are not supported yet; only events are"
        ),
    }
}

#[cfg(test)]
mod tests;
