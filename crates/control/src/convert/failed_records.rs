//! Failed records on the wire.

use mixsync_proto::v1;
use mixsync_state::{
    DeadLetterEntry, DeadLetterPage, FailedRecord, FailedRecordFilter, FailedRecordPage, Stage,
};

use super::{json_to_struct, timestamp};
use crate::errors::{ApiError, ApiResult};

/// The filter of a ListFailedRecords request: a run or an activation is required.
pub(crate) fn failed_record_filter(
    request: &v1::ListFailedRecordsRequest,
) -> ApiResult<FailedRecordFilter> {
    let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = FailedRecordFilter {
        run_id: opt(&request.run_id),
        activation_id: opt(&request.activation_id),
        stage: match request.stage() {
            v1::Stage::Unspecified => None,
            stage => Some(Stage::from_proto(stage)),
        },
        field: opt(&request.field),
        rule: opt(&request.rule),
    };
    if filter.run_id.is_none() && filter.activation_id.is_none() {
        return Err(ApiError::invalid(
            "run_id",
            "give a run_id or an activation_id",
        ));
    }
    Ok(filter)
}

/// A page of failed records on the wire.
pub(crate) fn failed_records_to_proto(page: &FailedRecordPage) -> v1::ListFailedRecordsResponse {
    v1::ListFailedRecordsResponse {
        records: page.page.items.iter().map(failed_record_to_proto).collect(),
        next_page_token: page.page.next_page_token.clone().unwrap_or_default(),
        counts_by_reason: page
            .counts_by_reason
            .iter()
            .map(|c| v1::FailureReasonCount {
                stage: c.stage.to_proto().into(),
                field: c.field.clone(),
                rule: c.rule.clone(),
                count: c.count,
            })
            .collect(),
        total_count: page.total_count,
    }
}

/// One failed record on the wire.
pub(crate) fn failed_record_to_proto(r: &FailedRecord) -> v1::FailedRecord {
    v1::FailedRecord {
        id: r.id.clone(),
        run_id: r.run_id.clone(),
        activation_id: r.activation_id.clone(),
        stage: r.stage.to_proto().into(),
        field: r.field.clone(),
        rule: r.rule.clone(),
        message: r.message.clone(),
        row: Some(json_to_struct(&r.row)),
        record_json: r.record_json.clone().unwrap_or_default(),
        created_at: Some(timestamp(r.created_at)),
        row_number: r.row_number,
        key: r.key.clone(),
        batch_id: r.batch_id.clone(),
        replayed_by_run_id: r.replayed_by_run_id.clone().unwrap_or_default(),
    }
}

fn dead_letter_to_proto(e: &DeadLetterEntry) -> v1::DeadLetterEntry {
    let l = &e.letter;
    v1::DeadLetterEntry {
        id: e.id.clone(),
        run_id: l.run_id.clone().unwrap_or_default(),
        activation_id: l.activation_id.clone().unwrap_or_default(),
        batch_id: l.batch_id.clone().unwrap_or_default(),
        stage: l.stage.to_proto().into(),
        queue: l.queue.clone(),
        reason: l.reason.clone(),
        headers: l.headers.clone().into_iter().collect(),
        original: l.original.clone(),
        failed_records: l.failed_records,
        received_at: Some(timestamp(e.received_at)),
    }
}

/// A page of dead letters on the wire.
pub(crate) fn dead_letters_to_proto(page: &DeadLetterPage) -> v1::ListDeadLettersResponse {
    v1::ListDeadLettersResponse {
        dead_letters: page.page.items.iter().map(dead_letter_to_proto).collect(),
        next_page_token: page.page.next_page_token.clone().unwrap_or_default(),
        total_count: page.total_count,
    }
}
