//! Runs: Trigger, Get, List, Watch; and failed-record listing.

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;
use mixsync_proto::v1;
use mixsync_state::{Run, RunCounts, RunState};
use tonic::Status;

use super::Context;
use crate::convert::{
    failed_record_filter, failed_records_to_proto, page, run_filter, run_progress, run_to_proto,
};
use crate::errors::{ApiError, ApiResult};

/// How often WatchRun looks at the run.
pub(crate) const WATCH_POLL: Duration = Duration::from_millis(250);

/// The stream WatchRun answers with.
pub(crate) type WatchStream = Pin<Box<dyn Stream<Item = Result<v1::RunProgress, Status>> + Send>>;

pub(crate) async fn trigger(
    ctx: &Context,
    req: v1::TriggerRunRequest,
) -> ApiResult<v1::TriggerRunResponse> {
    let activation_id = req.activation_id.trim();
    if activation_id.is_empty() {
        return Err(ApiError::invalid("activation_id", "is required"));
    }
    let run = ctx
        .state
        .create_run(activation_id, req.full_resync, None)
        .await?;
    queue(ctx, &run).await?;
    tracing::info!(run_id = %run.id, activation_id, full_resync = run.full_resync, "run queued");
    Ok(v1::TriggerRunResponse {
        run: Some(run_to_proto(&run)),
    })
}

/// Publishes a queued run's ExtractRequest (TriggerRun and the scheduler). The run was
/// committed with its request unpublished (the outbox): when publishing fails here, the run
/// stays QUEUED and the scheduler relays the request until the broker confirms it.
pub(crate) async fn queue(ctx: &Context, run: &Run) -> ApiResult<()> {
    if let Err(e) = publish_request(ctx, &run.id, &run.activation_id, run.full_resync).await {
        tracing::warn!(run_id = %run.id, error = %e,
            "cannot queue the extraction now; the scheduler will publish it again");
    }
    Ok(())
}

/// Publishes run `run_id`'s ExtractRequest and, once the broker confirmed it, records that
/// (a run whose request is recorded unpublished is relayed by the scheduler).
pub(crate) async fn publish_request(
    ctx: &Context,
    run_id: &str,
    activation_id: &str,
    full_resync: bool,
) -> Result<(), String> {
    let request = v1::ExtractRequest {
        run_id: run_id.to_owned(),
        activation_id: activation_id.to_owned(),
        full_resync,
    };
    ctx.publisher
        .publish(mixsync_bus::EXTRACT, &request)
        .await
        .map_err(|e| e.to_string())?;
    ctx.state
        .mark_request_published(run_id)
        .await
        .map_err(|e| e.to_string())
}

/// CancelRun: a queued run ends CANCELLED now; a running one stops extracting and ends
/// CANCELLED once what is in flight is accounted for.
pub(crate) async fn cancel(
    ctx: &Context,
    req: v1::CancelRunRequest,
) -> ApiResult<v1::CancelRunResponse> {
    let id = req.id.trim();
    if id.is_empty() {
        return Err(ApiError::invalid("id", "is required"));
    }
    let run = ctx.state.request_cancel(id).await?;
    tracing::info!(run_id = %run.id, state = %run.state, "run cancel requested");
    Ok(v1::CancelRunResponse {
        run: Some(run_to_proto(&run)),
    })
}

pub(crate) async fn get(ctx: &Context, req: v1::GetRunRequest) -> ApiResult<v1::GetRunResponse> {
    let run = ctx.state.get_run(req.id.trim()).await?;
    Ok(v1::GetRunResponse {
        run: Some(run_to_proto(&run)),
    })
}

pub(crate) async fn list(
    ctx: &Context,
    req: v1::ListRunsRequest,
) -> ApiResult<v1::ListRunsResponse> {
    let listed = ctx
        .state
        .list_runs(&run_filter(&req), &page(req.page_size, &req.page_token))
        .await?;
    Ok(v1::ListRunsResponse {
        runs: listed.items.iter().map(run_to_proto).collect(),
        next_page_token: listed.next_page_token.unwrap_or_default(),
    })
}

pub(crate) async fn list_failed_records(
    ctx: &Context,
    req: v1::ListFailedRecordsRequest,
) -> ApiResult<v1::ListFailedRecordsResponse> {
    let filter = failed_record_filter(&req)?;
    let listed = ctx
        .state
        .list_failed_records(&filter, &page(req.page_size, &req.page_token))
        .await?;
    Ok(failed_records_to_proto(&listed))
}

/// What a watcher has seen of a run; an update goes out when it changes.
#[derive(PartialEq)]
struct Seen {
    state: RunState,
    counts: RunCounts,
    total_rows: Option<u64>,
    error_message: Option<String>,
}

impl Seen {
    fn of(run: &Run) -> Self {
        Self {
            state: run.state,
            counts: run.counts,
            total_rows: run.total_rows,
            error_message: run.error_message.clone(),
        }
    }
}

struct Watch {
    ctx: Context,
    id: String,
    seen: Option<Seen>,
    done: bool,
}

/// The run now, then each change (polled every [`WATCH_POLL`]), ending after a terminal state.
pub(crate) async fn watch(ctx: &Context, req: v1::WatchRunRequest) -> ApiResult<WatchStream> {
    let id = req.id.trim().to_owned();
    // Unknown ids fail the call itself, not the first stream item.
    ctx.state.get_run(&id).await?;
    let watch = Watch {
        ctx: ctx.clone(),
        id,
        seen: None,
        done: false,
    };
    Ok(Box::pin(futures_util::stream::unfold(watch, next_update)))
}

async fn next_update(mut w: Watch) -> Option<(Result<v1::RunProgress, Status>, Watch)> {
    if w.done {
        return None;
    }
    loop {
        let run = match w.ctx.state.get_run(&w.id).await {
            Ok(run) => run,
            Err(e) => {
                w.done = true;
                return Some((Err(Status::from(ApiError::from(e))), w));
            }
        };
        let seen = Seen::of(&run);
        if w.seen.as_ref() != Some(&seen) {
            w.done = run.state.is_terminal();
            w.seen = Some(seen);
            return Some((Ok(run_progress(&run)), w));
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_POLL) => {}
            () = w.ctx.shutdown.cancelled() => {
                w.done = true;
                return Some((Err(Status::unavailable("control is shutting down; watch the run again")), w));
            }
        }
    }
}
