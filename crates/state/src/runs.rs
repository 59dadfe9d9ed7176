//! Runs: one execution of an activation, with its state and counts.

use std::time::SystemTime;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::StateError;
use crate::fingerprint::fingerprint;
use crate::ids::new_id;
use crate::page::{Page, PageRequest, paginate};
use crate::plan::RunSettings;
use crate::snapshots::{invalidate_if_changed, revert_run};
use crate::store::StateStore;

/// Life cycle of a run: `Queued → Running → Succeeded | PartiallyFailed | Failed | Cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    /// Waiting to start.
    Queued,
    /// Extracting, mapping or loading.
    Running,
    /// Every row was loaded or skipped.
    Succeeded,
    /// Finished with some failed records.
    PartiallyFailed,
    /// Stopped by an error.
    Failed,
    /// Stopped on request.
    Cancelled,
}

impl RunState {
    /// Every state, in life-cycle order.
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::PartiallyFailed,
        Self::Failed,
        Self::Cancelled,
    ];

    /// The stored name, e.g. `partially_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::PartiallyFailed => "partially_failed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Row counts of a run. When a run ends, `extracted = skipped + loaded + failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunCounts {
    /// Rows read from the warehouse.
    pub extracted: u64,
    /// Rows unchanged since the last sync.
    pub skipped: u64,
    /// Records Mixpanel accepted.
    pub loaded: u64,
    /// Rows that became failed records.
    pub failed: u64,
}

/// One execution of an activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Id (UUID v7).
    pub id: String,
    /// The activation.
    pub activation_id: String,
    /// Current state.
    pub state: RunState,
    /// Counts so far.
    pub counts: RunCounts,
    /// Rows the query returned, once extraction finished.
    pub total_rows: Option<u64>,
    /// Whether extraction finished.
    pub extraction_finished: bool,
    /// Why the run failed.
    pub error_message: Option<String>,
    /// Ignore sync snapshots.
    pub full_resync: bool,
    /// For a replay, the run whose failed records it sends.
    pub replay_of_run_id: Option<String>,
    /// When it was queued.
    pub created_at: SystemTime,
    /// When the first progress report arrived.
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub finished_at: Option<SystemTime>,
    /// Which attempt it is on (1 for the first): a transient failure starts the next.
    pub attempt: u32,
    /// The most attempts it may take.
    pub max_attempts: u32,
    /// Why the last attempt ended, once one did.
    pub attempt_error: Option<String>,
    /// Why this run sends every row again, when its sync snapshot was emptied (the
    /// destination or the settings changed); `None` for a first sync or an unchanged one.
    pub full_sync_reason: Option<String>,
}

/// Which runs to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Only runs of this activation.
    pub activation_id: Option<String>,
    /// Only runs in these states (empty: all).
    pub states: Vec<RunState>,
}

pub(crate) const COLUMNS: &str = "id, activation_id, state, extracted, skipped, loaded, failed, \
     total_rows, extraction_finished, error_message, full_resync, replay_of_run_id, created_at, \
     started_at, finished_at, attempt, max_attempts, attempt_error, full_sync_reason";

fn count(row: &Row, index: usize) -> u64 {
    let value: i64 = row.get(index);
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn from_row(row: &Row) -> Result<Run, StateError> {
    let id: String = row.get(0);
    let state: String = row.get(2);
    let total_rows: Option<i64> = row.get(7);
    Ok(Run {
        activation_id: row.get(1),
        state: RunState::parse(&state).ok_or_else(|| {
            StateError::corrupt(format!("state of run `{id}`"), format!("`{state}`"))
        })?,
        counts: RunCounts {
            extracted: count(row, 3),
            skipped: count(row, 4),
            loaded: count(row, 5),
            failed: count(row, 6),
        },
        total_rows: total_rows.and_then(|t| u64::try_from(t).ok()),
        extraction_finished: row.get(8),
        error_message: row.get(9),
        full_resync: row.get(10),
        replay_of_run_id: row.get(11),
        created_at: row.get(12),
        started_at: row.get(13),
        finished_at: row.get(14),
        attempt: u32::try_from(row.get::<_, i32>(15)).unwrap_or(1),
        max_attempts: u32::try_from(row.get::<_, i32>(16)).unwrap_or(1),
        attempt_error: row.get(17),
        full_sync_reason: row.get(18),
        id,
    })
}

impl StateStore {
    /// Queues a run of an activation, freezing its current settings into the run. When those
    /// settings' fingerprint differs from the one the activation's sync snapshot was made
    /// with, the snapshot is emptied (every row is sent again) in the same transaction. Fails
    /// with [`StateError::RunInProgress`] while another run of it is queued or running.
    pub async fn create_run(
        &self,
        activation_id: &str,
        full_resync: bool,
        replay_of_run_id: Option<&str>,
    ) -> Result<Run, StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let run = Self::insert_run(&tx, activation_id, full_resync, replay_of_run_id).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// [`StateStore::create_run`] inside `tx` (the scheduler claims and triggers in one).
    pub(crate) async fn insert_run(
        tx: &tokio_postgres::Transaction<'_>,
        activation_id: &str,
        full_resync: bool,
        replay_of_run_id: Option<&str>,
    ) -> Result<Run, StateError> {
        // Lock the activation so two triggers serialize, and snapshot it.
        let activation = Self::activation_for_update(tx, activation_id).await?;
        if let Some(row) = tx
            .query_opt(
                "SELECT id FROM runs WHERE activation_id = $1 AND state IN ('queued', 'running')",
                &[&activation_id],
            )
            .await?
        {
            return Err(StateError::RunInProgress {
                activation_id: activation_id.to_owned(),
                run_id: row.get(0),
            });
        }
        let fingerprint = fingerprint(&activation)?;
        let full_sync_reason = invalidate_if_changed(tx, activation_id, &fingerprint).await?;
        let max_attempts = i32::try_from(activation.options.max_attempts.max(1)).unwrap_or(1);
        let settings = serde_json::to_value(&activation)
            .map_err(|e| StateError::corrupt("run settings", e))?;
        let id = new_id();
        let sql = format!(
            "INSERT INTO runs (id, activation_id, state, full_resync, replay_of_run_id, settings,
                 fingerprint, max_attempts, full_sync_reason, request_published)
             VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $4::text IS NOT NULL)
             RETURNING {COLUMNS}"
        );
        let params: [&(dyn ToSql + Sync); 8] = [
            &id,
            &activation_id,
            &full_resync,
            &replay_of_run_id,
            &settings,
            &fingerprint,
            &max_attempts,
            &full_sync_reason,
        ];
        let row = tx.query_one(&sql, &params).await.map_err(|e| {
            if StateError::is_unique_violation(&e) {
                StateError::RunInProgress {
                    activation_id: activation_id.to_owned(),
                    run_id: "(another)".into(),
                }
            } else {
                e.into()
            }
        })?;
        from_row(&row)
    }

    async fn activation_for_update(
        tx: &tokio_postgres::Transaction<'_>,
        activation_id: &str,
    ) -> Result<RunSettings, StateError> {
        let row = tx
            .query_opt(
                "SELECT warehouse_id, target_id, query, object, mapping, options
                 FROM activations WHERE id = $1 FOR UPDATE",
                &[&activation_id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("activation", activation_id))?;
        let what = |w: &str| format!("{w} of activation `{activation_id}`");
        let object: String = row.get(3);
        let mapping: serde_json::Value = row.get(4);
        let options: serde_json::Value = row.get(5);
        Ok(RunSettings {
            warehouse_id: row.get(0),
            target_id: row.get(1),
            query: row.get(2),
            object: object
                .parse()
                .map_err(|e| StateError::corrupt(what("object"), e))?,
            mapping: serde_json::from_value(mapping)
                .map_err(|e| StateError::corrupt(what("mapping"), e))?,
            options: serde_json::from_value(options)
                .map_err(|e| StateError::corrupt(what("options"), e))?,
        })
    }

    /// One run by id.
    pub async fn get_run(&self, id: &str) -> Result<Run, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = $1");
        let row = client
            .query_opt(&sql, &[&id])
            .await?
            .ok_or_else(|| StateError::not_found("run", id))?;
        from_row(&row)
    }

    /// Runs, newest first.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        page: &PageRequest,
    ) -> Result<Page<Run>, StateError> {
        let client = self.client().await?;
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM runs
             WHERE ($1 = '' OR id < $1)
               AND ($2::text IS NULL OR activation_id = $2)
               AND (cardinality($3::text[]) = 0 OR state = ANY($3))
             ORDER BY id DESC LIMIT $4"
        );
        let rows = client
            .query(
                &sql,
                &[
                    &page.page_token,
                    &filter.activation_id,
                    &states,
                    &page.fetch(),
                ],
            )
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page, |r| r.id.clone()))
    }

    /// Records that run `id`'s ExtractRequest was confirmed by the broker (the outbox).
    pub async fn mark_request_published(&self, id: &str) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE runs SET request_published = true WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Claims up to `limit` queued runs whose ExtractRequest was not confirmed `after` their
    /// creation (control died between the commit and the publish, or RabbitMQ was away), to
    /// publish it again: each is given `after` again before it is relayed once more. `SKIP
    /// LOCKED`, so control replicas do not relay one twice at once.
    pub async fn unpublished_requests(
        &self,
        after: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<crate::ExpiredExtraction>, StateError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE runs SET updated_at = now()
                 WHERE id IN (
                     SELECT id FROM runs
                     WHERE NOT request_published AND state = 'queued'
                       AND updated_at < now() - $1 * interval '1 millisecond'
                     ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, activation_id, full_resync",
                &[&(after.as_secs_f64() * 1000.0), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| crate::ExpiredExtraction {
                run_id: row.get(0),
                activation_id: row.get(1),
                full_resync: row.get(2),
                give_up: None,
            })
            .collect())
    }

    /// Makes an unfinished run end FAILED with `message` once what is in flight is accounted
    /// for (as a fatal report does); a run that ended is left as it is.
    pub async fn fail_run_when_drained(&self, id: &str, message: &str) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE runs SET failing = true, error_message = COALESCE(error_message, $2),
                     updated_at = now()
                 WHERE id = $1 AND state IN ('queued', 'running')",
                &[&id, &message],
            )
            .await?;
        Ok(())
    }

    /// Ends an unfinished run as FAILED with `message` (e.g. when its ExtractRequest could not
    /// be published). A run that already ended is returned unchanged.
    pub async fn fail_run(&self, id: &str, message: &str) -> Result<Run, StateError> {
        self.finish_run(id, RunState::Failed, Some(message)).await
    }

    /// Ends an unfinished run as CANCELLED. A run that already ended is returned unchanged.
    pub async fn cancel_run(&self, id: &str) -> Result<Run, StateError> {
        self.finish_run(id, RunState::Cancelled, None).await
    }

    async fn finish_run(
        &self,
        id: &str,
        state: RunState,
        message: Option<&str>,
    ) -> Result<Run, StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let sql = format!(
            "UPDATE runs SET state = $2, error_message = COALESCE($3, error_message),
                 finished_at = now(), updated_at = now()
             WHERE id = $1 AND state IN ('queued', 'running') RETURNING {COLUMNS}"
        );
        let ended = tx
            .query_opt(&sql, &[&id, &state.as_str(), &message])
            .await?;
        let ended = ended.as_ref().map(from_row).transpose()?;
        if let Some(run) = &ended
            && run.state == RunState::Failed
        {
            revert_run(&tx, &run.activation_id, id).await?;
        }
        tx.commit().await?;
        match ended {
            Some(run) => Ok(run),
            None => self.get_run(id).await,
        }
    }
}
