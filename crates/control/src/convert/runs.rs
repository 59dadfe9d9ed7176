//! Runs on the wire.

use std::time::SystemTime;

use mixsync_proto::v1;
use mixsync_state::{Run, RunFilter, RunState};

use super::timestamp;

fn state_to_proto(state: RunState) -> v1::RunState {
    match state {
        RunState::Queued => v1::RunState::Queued,
        RunState::Running => v1::RunState::Running,
        RunState::Succeeded => v1::RunState::Succeeded,
        RunState::PartiallyFailed => v1::RunState::PartiallyFailed,
        RunState::Failed => v1::RunState::Failed,
        RunState::Cancelled => v1::RunState::Cancelled,
    }
}

fn state_from_proto(state: v1::RunState) -> Option<RunState> {
    match state {
        v1::RunState::Unspecified => None,
        v1::RunState::Queued => Some(RunState::Queued),
        v1::RunState::Running => Some(RunState::Running),
        v1::RunState::Succeeded => Some(RunState::Succeeded),
        v1::RunState::PartiallyFailed => Some(RunState::PartiallyFailed),
        v1::RunState::Failed => Some(RunState::Failed),
        v1::RunState::Cancelled => Some(RunState::Cancelled),
    }
}

/// A run on the wire.
pub(crate) fn run_to_proto(run: &Run) -> v1::Run {
    v1::Run {
        id: run.id.clone(),
        activation_id: run.activation_id.clone(),
        state: state_to_proto(run.state).into(),
        counts: Some(v1::RunCounts {
            extracted: run.counts.extracted,
            skipped: run.counts.skipped,
            loaded: run.counts.loaded,
            failed: run.counts.failed,
        }),
        error_message: run.error_message.clone().unwrap_or_default(),
        created_at: Some(timestamp(run.created_at)),
        started_at: run.started_at.map(timestamp),
        finished_at: run.finished_at.map(timestamp),
        full_resync: run.full_resync,
        replay_of_run_id: run.replay_of_run_id.clone().unwrap_or_default(),
        attempt: run.attempt,
        max_attempts: run.max_attempts,
        attempt_error: run.attempt_error.clone().unwrap_or_default(),
        full_sync_reason: run.full_sync_reason.clone().unwrap_or_default(),
    }
}

/// One WatchRun update.
pub(crate) fn run_progress(run: &Run) -> v1::RunProgress {
    v1::RunProgress {
        run: Some(run_to_proto(run)),
        total_rows: run.total_rows.filter(|_| run.extraction_finished),
        observed_at: Some(timestamp(SystemTime::now())),
    }
}

/// The filter of a ListRuns request; unknown state numbers are ignored.
pub(crate) fn run_filter(request: &v1::ListRunsRequest) -> RunFilter {
    RunFilter {
        activation_id: Some(request.activation_id.trim().to_owned()).filter(|a| !a.is_empty()),
        states: request.states().filter_map(state_from_proto).collect(),
    }
}
