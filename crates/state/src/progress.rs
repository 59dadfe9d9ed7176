//! Progress accounting: each `(run, stage, batch)` report counts once, whatever the number of
//! deliveries, and the run ends exactly when its counts add up.

use mixsync_proto::v1::{self, progress::Terminal};
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::ids::new_id;
use crate::row_json::row_json;
use crate::runs::{RunCounts, RunState};
use crate::snapshots::{revert_batch, revert_keys, revert_run};
use crate::stage::Stage;
use crate::store::StateStore;

/// The rule of failed rows made from a dead-lettered batch.
pub const DEAD_LETTER_RULE: &str = "dead_letter";

/// What [`StateStore::apply_progress`] did with a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressOutcome {
    /// Counted; the run is now in `state`.
    Applied {
        /// The run's state after the report.
        state: RunState,
    },
    /// This `(run, stage, batch)` was already counted: a redelivery. Nothing changed.
    Duplicate,
    /// No such run (e.g. its activation was deleted). Nothing to record.
    UnknownRun,
}

/// The run row as locked for an update.
struct LockedRun {
    state: RunState,
    counts: RunCounts,
    total_rows: Option<u64>,
    extraction_finished: bool,
    activation_id: String,
    /// CancelRun was called: the run ends CANCELLED once its counts add up.
    cancel_requested: bool,
    /// Rows earlier attempts published (`None`: not known, an extractor died).
    prior_rows: Option<u64>,
    /// A fatal report came: the run ends FAILED once its counts add up.
    failing: bool,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl StateStore {
    /// Accounts one progress report: [`StateStore::apply_progress_batch`] of one.
    pub async fn apply_progress(
        &self,
        progress: &v1::Progress,
    ) -> Result<ProgressOutcome, StateError> {
        let outcomes = self
            .apply_progress_batch(std::slice::from_ref(progress))
            .await?;
        Ok(outcomes
            .into_iter()
            .next()
            .unwrap_or(ProgressOutcome::UnknownRun))
    }

    /// Accounts progress reports in one transaction (one commit for many reports is what lets
    /// control keep up with a fast pipeline). For each report: records the batch (once per
    /// `(run_id, stage, batch_id)`), adds its counts, stores its failed rows, puts back the
    /// snapshot hash of records that failed to load (and of a dead-lettered batch's), marks
    /// extraction finished or the run failed; then each run touched moves from QUEUED to
    /// RUNNING and ends — SUCCEEDED or PARTIALLY_FAILED — once extraction finished and
    /// `extracted = skipped + loaded + failed` (a run that ends FAILED puts back the snapshot
    /// hash of everything it sent). Reports for a run that already ended are recorded but do not change its
    /// state. Runs are locked in id order, so concurrent batches serialize without deadlocks.
    /// Returns one outcome per report, in order.
    pub async fn apply_progress_batch(
        &self,
        reports: &[v1::Progress],
    ) -> Result<Vec<ProgressOutcome>, StateError> {
        let mut outcomes = vec![ProgressOutcome::UnknownRun; reports.len()];
        let mut order: Vec<usize> = (0..reports.len()).collect();
        order.sort_by(|a, b| reports[*a].run_id.cmp(&reports[*b].run_id));
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut i = 0;
        while i < order.len() {
            let run_id = &reports[order[i]].run_id;
            let mut j = i;
            while j < order.len() && &reports[order[j]].run_id == run_id {
                j += 1;
            }
            apply_to_run(&tx, run_id, reports, &order[i..j], &mut outcomes).await?;
            i = j;
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Accounts the reports `indexes` (all of run `run_id`) inside `tx`.
async fn apply_to_run(
    tx: &Transaction<'_>,
    run_id: &str,
    reports: &[v1::Progress],
    indexes: &[usize],
    outcomes: &mut [ProgressOutcome],
) -> Result<(), StateError> {
    let Some(run) = lock_run(tx, run_id).await? else {
        return Ok(());
    };
    let mut counts = run.counts;
    let mut extraction_finished = run.extraction_finished;
    let mut total_rows = run.total_rows;
    let mut error_message: Option<String> = None;
    let mut applied = Vec::new();
    let mut unloaded_keys: Vec<&str> = Vec::new();
    for &index in indexes {
        let progress = &reports[index];
        let stage = Stage::from_proto(progress.stage());
        let inserted = tx
            .execute(
                "INSERT INTO batch_reports (run_id, stage, batch_id, extracted, skipped, loaded, failed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &progress.run_id,
                    &stage.as_str(),
                    &progress.batch_id,
                    &to_i64(progress.extracted),
                    &to_i64(progress.skipped),
                    &to_i64(progress.loaded),
                    &to_i64(progress.failed),
                ],
            )
            .await?;
        if inserted == 0 {
            outcomes[index] = ProgressOutcome::Duplicate;
            continue;
        }
        insert_failures(tx, progress, stage).await?;
        match stage {
            Stage::Load => unloaded_keys.extend(
                progress
                    .failures
                    .iter()
                    .filter(|f| !f.key.is_empty())
                    .map(|f| f.key.as_str()),
            ),
            // A dead-lettered RowBatch: whatever its rows claimed was never loaded.
            Stage::Map if progress.failures.iter().any(|f| f.rule == DEAD_LETTER_RULE) => {
                revert_batch(tx, &run.activation_id, run_id, &progress.batch_id).await?;
            }
            _ => {}
        }
        counts = RunCounts {
            extracted: counts.extracted + progress.extracted,
            skipped: counts.skipped + progress.skipped,
            loaded: counts.loaded + progress.loaded,
            failed: counts.failed + progress.failed,
        };
        match &progress.terminal {
            Some(Terminal::ExtractionFinished(done)) => {
                extraction_finished = true;
                // A restarted extractor of a cancelled run cannot know what its first delivery
                // published: the run closes on the extracted rows reported (which reach control
                // ahead of this report on the same queue).
                // Earlier attempts' rows count too (each attempt reads the query again).
                total_rows = match (done.total_unknown, run.prior_rows) {
                    (false, Some(prior)) => Some(prior + done.total_rows),
                    _ => None,
                };
            }
            Some(Terminal::Fatal(fatal)) => {
                error_message.get_or_insert_with(|| fatal.message.clone());
                if stage == Stage::Extract {
                    // The extractor stopped: what it published is on the queue ahead of this
                    // report; the run closes once those rows are accounted for.
                    extraction_finished = true;
                    total_rows = None;
                }
            }
            None => {}
        }
        applied.push(index);
    }
    if applied.is_empty() {
        return Ok(());
    }
    revert_keys(tx, &run.activation_id, run_id, &unloaded_keys).await?;
    let failing = run.failing || error_message.is_some();
    let state = next_state(run.state, &counts, extraction_finished, total_rows, failing);
    let state = match state {
        RunState::Succeeded | RunState::PartiallyFailed if run.cancel_requested => {
            RunState::Cancelled
        }
        state => state,
    };
    if extraction_finished && total_rows.is_none() && state.is_terminal() {
        total_rows = Some(counts.extracted);
    }
    let error_message = error_message.filter(|_| !run.state.is_terminal());
    let params: [&(dyn ToSql + Sync); 10] = [
        &run_id,
        &state.as_str(),
        &to_i64(counts.extracted),
        &to_i64(counts.skipped),
        &to_i64(counts.loaded),
        &to_i64(counts.failed),
        &extraction_finished,
        &total_rows.map(to_i64),
        &error_message,
        &failing,
    ];
    tx.execute(
        "UPDATE runs SET state = $2, extracted = $3, skipped = $4, loaded = $5, failed = $6,
             extraction_finished = $7, total_rows = $8,
             error_message = COALESCE(error_message, $9), failing = $10,
             started_at = COALESCE(started_at, now()),
             finished_at = CASE WHEN $2 IN ('queued', 'running') THEN NULL
                                ELSE COALESCE(finished_at, now()) END,
             updated_at = now()
         WHERE id = $1",
        &params,
    )
    .await?;
    if state == RunState::Failed && !run.state.is_terminal() {
        revert_run(tx, &run.activation_id, run_id).await?;
    }
    for index in applied {
        outcomes[index] = ProgressOutcome::Applied { state };
    }
    Ok(())
}

async fn lock_run(tx: &Transaction<'_>, run_id: &str) -> Result<Option<LockedRun>, StateError> {
    let Some(row) = tx
        .query_opt(
            "SELECT r.state, r.extracted, r.skipped, r.loaded, r.failed, r.total_rows,
                    r.extraction_finished, r.activation_id, r.cancel_requested_at IS NOT NULL,
                    r.prior_rows, r.failing
             FROM runs r WHERE r.id = $1 FOR UPDATE",
            &[&run_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let state: String = row.get(0);
    let total_rows: Option<i64> = row.get(5);
    Ok(Some(LockedRun {
        state: RunState::parse(&state).ok_or_else(|| {
            StateError::corrupt(format!("state of run `{run_id}`"), format!("`{state}`"))
        })?,
        counts: RunCounts {
            extracted: to_u64(row.get(1)),
            skipped: to_u64(row.get(2)),
            loaded: to_u64(row.get(3)),
            failed: to_u64(row.get(4)),
        },
        total_rows: total_rows.map(to_u64),
        extraction_finished: row.get(6),
        activation_id: row.get(7),
        cancel_requested: row.get(8),
        prior_rows: row.get::<_, Option<i64>>(9).map(to_u64),
        failing: row.get(10),
    }))
}

/// The state after a report. A run that ended stays as it is; it ends once every extracted
/// row is accounted for — `extracted` must also equal the query's total, so a late extractor
/// report for an earlier batch cannot let a run end early — FAILED after a fatal report
/// (`failing`: what was in flight drained first), else SUCCEEDED or PARTIALLY_FAILED.
pub(crate) fn next_state(
    current: RunState,
    counts: &RunCounts,
    extraction_finished: bool,
    total_rows: Option<u64>,
    failing: bool,
) -> RunState {
    if current.is_terminal() {
        return current;
    }
    let all_extracted = extraction_finished && total_rows.is_none_or(|t| t == counts.extracted);
    let accounted = counts.skipped + counts.loaded + counts.failed == counts.extracted;
    match (all_extracted && accounted, failing, counts.failed) {
        (false, _, _) => RunState::Running,
        (true, true, _) => RunState::Failed,
        (true, false, 0) => RunState::Succeeded,
        (true, false, _) => RunState::PartiallyFailed,
    }
}

async fn insert_failures(
    tx: &Transaction<'_>,
    progress: &v1::Progress,
    stage: Stage,
) -> Result<(), StateError> {
    if progress.failures.is_empty() {
        return Ok(());
    }
    let statement = tx
        .prepare(
            "INSERT INTO failed_records (id, run_id, activation_id, stage, batch_id, row_number, key, field, rule, message, row, record_json, columns, row_proto)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .await?;
    for failure in &progress.failures {
        let row = without_nul_json(row_json(&progress.columns, failure.row.as_ref()));
        let record_json = (!failure.record_json.is_empty())
            .then(|| without_nul(&String::from_utf8_lossy(&failure.record_json)));
        let (key, field, rule, message) = (
            without_nul(&failure.key),
            without_nul(&failure.field),
            without_nul(&failure.rule),
            without_nul(&failure.message),
        );
        // The row as it travelled, for replays (the JSON above is for people).
        let row_proto = failure.row.as_ref().map(prost::Message::encode_to_vec);
        let params: [&(dyn ToSql + Sync); 14] = [
            &new_id(),
            &progress.run_id,
            &progress.activation_id,
            &stage.as_str(),
            &progress.batch_id,
            &to_i64(failure.row_number),
            &key,
            &field,
            &rule,
            &message,
            &row,
            &record_json,
            &progress.columns,
            &row_proto,
        ];
        tx.execute(&statement, &params).await?;
    }
    Ok(())
}

/// Postgres text and jsonb cannot hold U+0000; a warehouse value can. Replace it rather than
/// lose the report.
fn without_nul(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn without_nul_json(value: serde_json::Value) -> serde_json::Value {
    let text = value.to_string();
    if !text.contains("\\u0000") {
        return value;
    }
    serde_json::from_str(&text.replace("\\u0000", "\\ufffd")).unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(extracted: u64, skipped: u64, loaded: u64, failed: u64) -> RunCounts {
        RunCounts {
            extracted,
            skipped,
            loaded,
            failed,
        }
    }

    #[test]
    fn ends_only_when_everything_is_accounted_for() {
        let running = RunState::Running;
        assert_eq!(
            next_state(running, &counts(10, 0, 10, 0), false, None, false),
            RunState::Running
        );
        assert_eq!(
            next_state(running, &counts(10, 0, 9, 0), true, Some(10), false),
            RunState::Running
        );
        assert_eq!(
            next_state(running, &counts(10, 2, 8, 0), true, Some(10), false),
            RunState::Succeeded
        );
        assert_eq!(
            next_state(running, &counts(10, 0, 9, 1), true, Some(10), false),
            RunState::PartiallyFailed
        );
        // The extractor's report for an earlier batch has not arrived yet.
        assert_eq!(
            next_state(running, &counts(5, 0, 5, 0), true, Some(10), false),
            RunState::Running
        );
        assert_eq!(
            next_state(RunState::Queued, &counts(0, 0, 0, 0), true, Some(0), false),
            RunState::Succeeded
        );
    }

    #[test]
    fn nul_characters_are_replaced() {
        assert_eq!(without_nul("a\0b"), "a\u{FFFD}b");
        let json = serde_json::json!({"c": "x\u{0}y"});
        assert_eq!(
            without_nul_json(json),
            serde_json::json!({"c": "x\u{FFFD}y"})
        );
    }

    #[test]
    fn fatal_fails_once_drained_and_terminal_states_stick() {
        assert_eq!(
            next_state(RunState::Running, &counts(0, 0, 0, 0), true, None, true),
            RunState::Failed
        );
        // Rows still in flight: the failing run drains first.
        assert_eq!(
            next_state(RunState::Running, &counts(10, 0, 4, 2), true, None, true),
            RunState::Running
        );
        assert_eq!(
            next_state(RunState::Running, &counts(10, 0, 4, 6), true, None, true),
            RunState::Failed
        );
        assert_eq!(
            next_state(
                RunState::Succeeded,
                &counts(1, 0, 1, 0),
                true,
                Some(1),
                true
            ),
            RunState::Succeeded
        );
    }
}
