//! Cancelling runs: a queued run ends CANCELLED at once; a running one is marked, its
//! extractor stops reading, and it ends CANCELLED once what was extracted is accounted for.

use crate::error::StateError;
use crate::runs::{COLUMNS, Run, from_row};
use crate::snapshots::revert_run;
use crate::store::StateStore;

impl StateStore {
    /// Asks a run to stop. A queued run ends CANCELLED now; a running one is marked
    /// cancel-requested (see [`StateStore::cancel_requested`]); a run that already ended is
    /// returned unchanged.
    pub async fn request_cancel(&self, id: &str) -> Result<Run, StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let sql = format!(
            "UPDATE runs SET state = 'cancelled', cancel_requested_at = now(), finished_at = now(),
                 updated_at = now()
             WHERE id = $1 AND state = 'queued' RETURNING {COLUMNS}"
        );
        let row = match tx.query_opt(&sql, &[&id]).await? {
            Some(row) => {
                // A replay's batches can be mapped while its run is still queued.
                let run = from_row(&row)?;
                revert_run(&tx, &run.activation_id, id).await?;
                Some(row)
            }
            None => {
                let sql = format!(
                    "UPDATE runs SET cancel_requested_at = COALESCE(cancel_requested_at, now()),
                         updated_at = now()
                     WHERE id = $1 AND state = 'running' RETURNING {COLUMNS}"
                );
                tx.query_opt(&sql, &[&id]).await?
            }
        };
        tx.commit().await?;
        match row {
            Some(row) => from_row(&row),
            None => self.get_run(id).await,
        }
    }

    /// The extractor's claim on run `id` before it reads anything: a queued run becomes RUNNING
    /// (a redelivered request finds it RUNNING already). `false` — do not extract — when cancel
    /// was requested, the run ended, or it does not exist. One row update, so it serializes with
    /// [`StateStore::request_cancel`]: a run is either cancelled while queued (and never
    /// extracted) or cancelled while running (and drained), never both.
    pub async fn begin_extraction(&self, id: &str) -> Result<bool, StateError> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, now()),
                     updated_at = now()
                 WHERE id = $1 AND state IN ('queued', 'running') AND cancel_requested_at IS NULL",
                &[&id],
            )
            .await?;
        Ok(updated == 1)
    }

    /// What the extractor of run `id` needs between batches: whether to stop (cancel
    /// was requested or the run ended) and how many rows are accounted for downstream
    /// (`skipped + loaded + failed`), so it can keep the rows in flight bounded.
    pub async fn extraction_pressure(&self, id: &str) -> Result<(bool, u64), StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT cancel_requested_at IS NOT NULL OR state NOT IN ('queued', 'running'),
                        skipped + loaded + failed
                 FROM runs WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map_or((false, 0), |row| {
            (row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or(0))
        }))
    }
}
