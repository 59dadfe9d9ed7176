//! Failed records and dead letters: GetFailedRecord, ReplayFailedRecords, ListDeadLetters.
//!
//! A replay is a run of its own (`replay_of_run_id` set, full resync) whose input is the stored
//! rows, not the warehouse: control publishes them as RowBatches, with the extraction reports
//! an extractor would have sent, so the mapper re-maps them with the activation's current
//! mapping and they load and are accounted like any run's rows.

use std::collections::BTreeSet;

use futures_util::future::try_join_all;
use mixsync_bus::{PROGRESS, ROWS};
use mixsync_proto::v1::{self, progress::Terminal, replay_failed_records_request::Selection};
use mixsync_state::{ReplayRow, ReplaySelection};

use super::Context;
use crate::convert::{dead_letters_to_proto, failed_record_to_proto, page, run_to_proto};
use crate::errors::{ApiError, ApiResult};

/// Rows per RowBatch of a replay at most (the extractor's default).
const MAX_BATCH_ROWS: usize = 500;
/// Messages in flight at once while publishing a replay.
const PUBLISH_WINDOW: usize = 32;

pub(crate) async fn get(
    ctx: &Context,
    req: v1::GetFailedRecordRequest,
) -> ApiResult<v1::GetFailedRecordResponse> {
    let record = ctx.state.get_failed_record(req.id.trim()).await?;
    Ok(v1::GetFailedRecordResponse {
        record: Some(failed_record_to_proto(&record)),
    })
}

pub(crate) async fn list_dead_letters(
    ctx: &Context,
    req: v1::ListDeadLettersRequest,
) -> ApiResult<v1::ListDeadLettersResponse> {
    let run_id = Some(req.run_id.trim()).filter(|r| !r.is_empty());
    let listed = ctx
        .state
        .list_dead_letters(run_id, &page(req.page_size, &req.page_token))
        .await?;
    Ok(dead_letters_to_proto(&listed))
}

fn selection(req: v1::ReplayFailedRecordsRequest) -> ApiResult<ReplaySelection> {
    match req.selection {
        Some(Selection::RunId(id)) if !id.trim().is_empty() => {
            Ok(ReplaySelection::Run(id.trim().to_owned()))
        }
        Some(Selection::Ids(ids)) if ids.ids.iter().any(|i| !i.trim().is_empty()) => {
            Ok(ReplaySelection::Ids(
                ids.ids
                    .iter()
                    .map(|i| i.trim().to_owned())
                    .filter(|i| !i.is_empty())
                    .collect(),
            ))
        }
        _ => Err(ApiError::invalid(
            "selection",
            "give a run_id or the ids of failed records",
        )),
    }
}

pub(crate) async fn replay(
    ctx: &Context,
    req: v1::ReplayFailedRecordsRequest,
) -> ApiResult<v1::ReplayFailedRecordsResponse> {
    let selection = selection(req)?;
    if let ReplaySelection::Run(run_id) = &selection {
        ctx.state.get_run(run_id).await?;
    }
    let rows = ctx.state.replay_rows(&selection).await?;
    let runs: BTreeSet<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
    if runs.len() > 1 {
        return Err(ApiError::invalid(
            "ids",
            "failed records of several runs; replay one run's at a time",
        ));
    }
    let (Some(source_run), Some(first)) = (runs.first(), rows.first()) else {
        return Err(match selection {
            ReplaySelection::Run(run_id) => ApiError::FailedPrecondition(format!(
                "run `{run_id}` has no failed records left to replay"
            )),
            ReplaySelection::Ids(_) => ApiError::invalid("ids", "no such failed records"),
        });
    };
    let run = ctx
        .state
        .create_run(&first.activation_id, true, Some(source_run))
        .await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    if let Err(e) = ctx.state.mark_replayed(&ids, &run.id).await {
        let message = format!("could not mark the failed records: {e}");
        ctx.state.fail_run(&run.id, &message).await?;
        return Err(e.into());
    }
    if let Err(e) = publish(ctx, &run.id, &run.activation_id, &rows).await {
        let message = format!("could not queue the failed rows: {e}");
        ctx.state.fail_run(&run.id, &message).await?;
        return Err(ApiError::Unavailable(format!(
            "replay run `{}`: {message}; it was marked FAILED, replay again",
            run.id
        )));
    }
    tracing::info!(run_id = %run.id, replay_of = %source_run, records = rows.len(), "replay queued");
    Ok(v1::ReplayFailedRecordsResponse {
        run: Some(run_to_proto(&run)),
        record_count: rows.len() as u64,
    })
}

/// Splits rows (in row order) into batches of consecutive row numbers and equal columns, so
/// `first_row_number` keeps every row's original number.
pub(crate) fn segments(rows: &[ReplayRow]) -> Vec<&[ReplayRow]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        let cut = i == rows.len()
            || i - start >= MAX_BATCH_ROWS
            || rows[i].row_number != rows[i - 1].row_number + 1
            || rows[i].columns != rows[start].columns;
        if cut {
            out.push(&rows[start..i]);
            start = i;
        }
    }
    out
}

/// Publishes the rows as RowBatches and, for each, the extraction report; the last report
/// finishes the extraction.
async fn publish(
    ctx: &Context,
    run_id: &str,
    activation_id: &str,
    rows: &[ReplayRow],
) -> Result<(), mixsync_bus::BusError> {
    let segments = segments(rows);
    let batches = segments.len() as u64;
    let total_rows = rows.len() as u64;
    let mut messages = Vec::with_capacity(segments.len());
    for (seq, segment) in segments.into_iter().enumerate() {
        let seq = seq as u64;
        let last = seq + 1 == batches;
        let batch_id = format!("{run_id}-{seq}");
        let batch = v1::RowBatch {
            run_id: run_id.to_owned(),
            activation_id: activation_id.to_owned(),
            batch_id: batch_id.clone(),
            seq,
            columns: segment
                .first()
                .map(|r| r.columns.clone())
                .unwrap_or_default(),
            rows: segment.iter().map(|r| r.row.clone()).collect(),
            first_row_number: segment.first().map_or(1, |r| r.row_number),
            last,
            total_rows: if last { total_rows } else { 0 },
        };
        let progress = v1::Progress {
            run_id: run_id.to_owned(),
            batch_id,
            stage: v1::Stage::Extract.into(),
            extracted: segment.len() as u64,
            activation_id: activation_id.to_owned(),
            terminal: last.then_some(Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows,
                batches,
            })),
            ..v1::Progress::default()
        };
        messages.push((batch, progress));
    }
    for chunk in messages.chunks(PUBLISH_WINDOW) {
        try_join_all(chunk.iter().map(|(batch, progress)| async move {
            ctx.publisher.publish(ROWS, batch).await?;
            ctx.publisher.publish(PROGRESS, progress).await
        }))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u64, columns: &[&str]) -> ReplayRow {
        ReplayRow {
            id: format!("f{n}"),
            run_id: "r".into(),
            activation_id: "a".into(),
            row_number: n,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            row: v1::Row::default(),
        }
    }

    #[test]
    fn batches_keep_row_numbers_contiguous() {
        let rows: Vec<_> = [1, 2, 3, 7, 8, 20]
            .into_iter()
            .map(|n| row(n, &["a"]))
            .collect();
        let sizes: Vec<(u64, usize)> = segments(&rows)
            .iter()
            .map(|s| (s[0].row_number, s.len()))
            .collect();
        assert_eq!(sizes, [(1, 3), (7, 2), (20, 1)]);
    }

    #[test]
    fn batches_are_bounded_and_split_on_columns() {
        let mut rows: Vec<_> = (1..=1001).map(|n| row(n, &["a"])).collect();
        rows.push(row(1002, &["b"]));
        let sizes: Vec<usize> = segments(&rows).iter().map(|s| s.len()).collect();
        assert_eq!(sizes, [500, 500, 1, 1]);
        assert!(segments(&[]).is_empty());
    }
}
