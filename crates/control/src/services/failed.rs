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
use mixsync_state::{ReplayCursor, ReplayRow, ReplaySelection};

use super::Context;
use crate::convert::{dead_letters_to_proto, failed_record_to_proto, page, run_to_proto};
use crate::errors::{ApiError, ApiResult};

/// Rows per RowBatch of a replay at most (the extractor's default).
const MAX_BATCH_ROWS: usize = 500;
/// Messages in flight at once while publishing a replay.
const PUBLISH_WINDOW: usize = 32;
/// Failed records read (and held) at once while replaying a run's.
const REPLAY_PAGE: usize = 5_000;

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
    // Ids come in one page (there are as many as the request holds), so the one-run check
    // below sees them all; a run's records are read a page at a time.
    let first_page = match &selection {
        ReplaySelection::Run(run_id) => {
            ctx.state.get_run(run_id).await?;
            REPLAY_PAGE
        }
        ReplaySelection::Ids(ids) => ids.len(),
    };
    let (rows, next) = ctx.state.replay_rows(&selection, None, first_page).await?;
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
    let source_run = (*source_run).to_owned();
    let run = ctx
        .state
        .create_run(&first.activation_id, true, Some(&source_run))
        .await?;
    let count = match send_pages(ctx, &run.id, &run.activation_id, &selection, rows, next).await {
        Ok(count) => count,
        Err((message, error)) => {
            ctx.state.fail_run(&run.id, &message).await?;
            return Err(error);
        }
    };
    tracing::info!(run_id = %run.id, replay_of = %source_run, records = count, "replay queued");
    Ok(v1::ReplayFailedRecordsResponse {
        run: Some(run_to_proto(&run)),
        record_count: count,
    })
}

/// Marks and publishes the replay's rows page by page, starting with `rows`; returns how many
/// were sent, or why the replay run must fail and the error to answer with.
async fn send_pages(
    ctx: &Context,
    run_id: &str,
    activation_id: &str,
    selection: &ReplaySelection,
    mut rows: Vec<ReplayRow>,
    mut next: Option<ReplayCursor>,
) -> Result<u64, (String, ApiError)> {
    let mut batches = Batches::new(run_id, activation_id);
    loop {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        if let Err(e) = ctx.state.mark_replayed(&ids, run_id).await {
            return Err((format!("could not mark the failed records: {e}"), e.into()));
        }
        let ready = batches.add(&rows);
        publish(ctx, &ready).await.map_err(unqueued(run_id))?;
        let Some(cursor) = next.take() else { break };
        match ctx
            .state
            .replay_rows(selection, Some(&cursor), REPLAY_PAGE)
            .await
        {
            Ok((page, after)) => (rows, next) = (page, after),
            Err(e) => {
                return Err((format!("could not read the failed records: {e}"), e.into()));
            }
        }
    }
    let total = batches.total_rows;
    let last = batches.finish();
    publish(ctx, &last).await.map_err(unqueued(run_id))?;
    Ok(total)
}

fn unqueued(run_id: &str) -> impl Fn(mixsync_bus::BusError) -> (String, ApiError) + '_ {
    move |e| {
        let message = format!("could not queue the failed rows: {e}");
        let error = ApiError::Unavailable(format!(
            "replay run `{run_id}`: {message}; it was marked FAILED, replay again"
        ));
        (message, error)
    }
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

/// A replay's RowBatches, numbered as they come; the newest is held back until the next page
/// shows whether it is the last (the last one carries the extraction's end).
struct Batches {
    run_id: String,
    activation_id: String,
    seq: u64,
    total_rows: u64,
    held: Option<v1::RowBatch>,
}

impl Batches {
    fn new(run_id: &str, activation_id: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            activation_id: activation_id.to_owned(),
            seq: 0,
            total_rows: 0,
            held: None,
        }
    }

    /// Adds a page of rows; returns the batches ready to publish (all but the newest).
    fn add(&mut self, rows: &[ReplayRow]) -> Vec<(v1::RowBatch, v1::Progress)> {
        let mut ready = Vec::new();
        for segment in segments(rows) {
            let batch = v1::RowBatch {
                run_id: self.run_id.clone(),
                activation_id: self.activation_id.clone(),
                batch_id: format!("{}-{}", self.run_id, self.seq),
                seq: self.seq,
                columns: segment
                    .first()
                    .map(|r| r.columns.clone())
                    .unwrap_or_default(),
                rows: segment.iter().map(|r| r.row.clone()).collect(),
                first_row_number: segment.first().map_or(1, |r| r.row_number),
                last: false,
                total_rows: 0,
                attempt: 1,
            };
            self.seq += 1;
            self.total_rows += segment.len() as u64;
            if let Some(held) = self.held.replace(batch) {
                ready.push(self.with_report(held, None));
            }
        }
        ready
    }

    /// The held batch, now known to be the last, with the report that ends the extraction.
    fn finish(mut self) -> Vec<(v1::RowBatch, v1::Progress)> {
        let Some(mut last) = self.held.take() else {
            return Vec::new();
        };
        last.last = true;
        last.total_rows = self.total_rows;
        let done = v1::ExtractionFinished {
            total_rows: self.total_rows,
            batches: self.seq,
            total_unknown: false,
        };
        vec![self.with_report(last, Some(done))]
    }

    /// The extraction report an extractor would have sent with `batch`.
    fn with_report(
        &self,
        batch: v1::RowBatch,
        done: Option<v1::ExtractionFinished>,
    ) -> (v1::RowBatch, v1::Progress) {
        let progress = v1::Progress {
            run_id: self.run_id.clone(),
            batch_id: batch.batch_id.clone(),
            stage: v1::Stage::Extract.into(),
            extracted: batch.rows.len() as u64,
            activation_id: self.activation_id.clone(),
            terminal: done.map(Terminal::ExtractionFinished),
            ..v1::Progress::default()
        };
        (batch, progress)
    }
}

/// Publishes RowBatches and their extraction reports, `PUBLISH_WINDOW` at a time.
async fn publish(
    ctx: &Context,
    messages: &[(v1::RowBatch, v1::Progress)],
) -> Result<(), mixsync_bus::BusError> {
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

    #[test]
    fn pages_make_numbered_batches_and_only_the_last_ends_the_extraction() {
        let mut batches = Batches::new("r", "a");
        let first: Vec<_> = (1..=3).map(|n| row(n, &["a"])).collect();
        let ready = batches.add(&first);
        assert!(ready.is_empty(), "the newest batch is held");
        let second: Vec<_> = [10, 11].into_iter().map(|n| row(n, &["a"])).collect();
        let ready = batches.add(&second);
        assert_eq!(ready.len(), 1);
        assert_eq!(
            (ready[0].0.batch_id.as_str(), ready[0].0.last),
            ("r-0", false)
        );
        assert_eq!(ready[0].1.extracted, 3);
        assert!(ready[0].1.terminal.is_none());
        let last = batches.finish();
        assert_eq!(last.len(), 1);
        let (batch, report) = &last[0];
        assert_eq!(
            (batch.batch_id.as_str(), batch.last, batch.total_rows),
            ("r-1", true, 5)
        );
        assert_eq!(batch.first_row_number, 10);
        assert_eq!(
            report.terminal,
            Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows: 5,
                batches: 2,
                total_unknown: false,
            }))
        );
        assert!(Batches::new("r", "a").finish().is_empty());
    }
}
