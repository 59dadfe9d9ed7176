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
}
