//! Schema migrations: plain SQL files embedded at build time, applied in order inside one
//! transaction under an advisory lock, so several control replicas starting at once apply each
//! migration exactly once.

use crate::error::StateError;
use crate::store::StateStore;

/// Every migration, in order. Never edit or renumber one that has shipped; add a new file.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_initial",
        include_str!("../migrations/0001_initial.sql"),
    ),
    (
        "0002_sync_snapshots",
        include_str!("../migrations/0002_sync_snapshots.sql"),
    ),
    (
        "0003_dead_letters_replays",
        include_str!("../migrations/0003_dead_letters_replays.sql"),
    ),
    (
        "0004_schedules",
        include_str!("../migrations/0004_schedules.sql"),
    ),
    (
        "0005_claims_in_snapshot",
        include_str!("../migrations/0005_claims_in_snapshot.sql"),
    ),
    (
        "0006_extraction_lease",
        include_str!("../migrations/0006_extraction_lease.sql"),
    ),
];

/// Key of the advisory lock held while migrating ("mixsync" in ASCII).
const LOCK_KEY: i64 = 0x006d_6978_7379_6e63;

impl StateStore {
    /// Brings the schema up to date. Safe to call from several processes at once and again
    /// after it succeeded (a no-op then).
    pub async fn migrate(&self) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version text PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await?;
        let applied: Vec<String> = tx
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if let Some(unknown) = applied
            .iter()
            .find(|v| !MIGRATIONS.iter().any(|(known, _)| known == v))
        {
            return Err(StateError::UnknownMigration(unknown.clone()));
        }
        for (version, sql) in MIGRATIONS {
            if applied.iter().any(|v| v == version) {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|source| StateError::Migration { version, source })?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await?;
            tracing::info!(version, "applied state migration");
        }
        tx.commit().await?;
        Ok(())
    }
}
