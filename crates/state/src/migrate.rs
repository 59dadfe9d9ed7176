//! Schema migrations: plain SQL files embedded at build time, applied in order inside one
//! transaction under an advisory lock, so several control replicas starting at once apply each
//! migration exactly once.
//!
//! Each applied migration's sha256 is recorded in `schema_migrations.checksum`, and a start
//! with a migration file that differs from the one applied is refused: an edited migration would
//! otherwise leave databases migrated before the edit with another schema than new ones.

use sha2::{Digest as _, Sha256};

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
    (
        "0007_warehouse_tls_and_role",
        include_str!("../migrations/0007_warehouse_tls_and_role.sql"),
    ),
    (
        "0008_target_insecure_http",
        include_str!("../migrations/0008_target_insecure_http.sql"),
    ),
    (
        "0009_secrets_at_rest_v1",
        include_str!("../migrations/0009_secrets_at_rest_v1.sql"),
    ),
    (
        "0010_run_attempts",
        include_str!("../migrations/0010_run_attempts.sql"),
    ),
    (
        "0011_rate_limit",
        include_str!("../migrations/0011_rate_limit.sql"),
    ),
];

/// Key of the advisory lock held while migrating ("mixsync" in ASCII).
const LOCK_KEY: i64 = 0x006d_6978_7379_6e63;

/// The sha256 (lowercase hex) of a migration's SQL. Line endings are read as `\n`, so a checkout
/// that converts them (git's `autocrlf`) does not count as a change.
pub(crate) fn checksum(sql: &str) -> String {
    let digest = Sha256::digest(sql.replace("\r\n", "\n").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Refuses a migration whose recorded checksum is not the one of its file in this build.
fn check_unchanged(version: &str, recorded: &str, sql: &str) -> Result<(), StateError> {
    let current = checksum(sql);
    if recorded == current {
        return Ok(());
    }
    Err(StateError::ChangedMigration {
        file: format!("{version}.sql"),
        recorded: recorded.to_owned(),
        current,
    })
}

impl StateStore {
    /// Brings the schema up to date. Safe to call from several processes at once and again
    /// after it succeeded (a no-op then). Refuses a database with a migration this build does
    /// not know, or one whose file changed since it was applied.
    pub async fn migrate(&self) -> Result<(), StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        // `checksum` came after the table: databases migrated before it get the column here,
        // empty, and their applied migrations' checksums below.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version text PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now(),
                 checksum text
             );
             ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum text",
        )
        .await?;
        let applied: Vec<(String, Option<String>)> = tx
            .query(
                "SELECT version, checksum FROM schema_migrations ORDER BY version",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        if let Some((unknown, _)) = applied
            .iter()
            .find(|(v, _)| !MIGRATIONS.iter().any(|(known, _)| known == v))
        {
            return Err(StateError::UnknownMigration(unknown.clone()));
        }
        for (version, sql) in MIGRATIONS {
            match applied.iter().find(|(v, _)| v == version) {
                Some((_, Some(recorded))) => check_unchanged(version, recorded, sql)?,
                Some((_, None)) => {
                    // Applied by a build that did not record checksums: the file as it is now
                    // is taken to be the one applied (nothing else is known about it).
                    tx.execute(
                        "UPDATE schema_migrations SET checksum = $2 WHERE version = $1",
                        &[version, &checksum(sql)],
                    )
                    .await?;
                    tracing::info!(version, "recorded the checksum of an applied migration");
                }
                None => {
                    tx.batch_execute(sql)
                        .await
                        .map_err(|source| StateError::Migration { version, source })?;
                    tx.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                        &[version, &checksum(sql)],
                    )
                    .await?;
                    tracing::info!(version, "applied state migration");
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_the_sha256_of_the_sql_with_lf_line_endings() {
        // `printf 'SELECT 1;\n' | sha256sum`
        let lf = "SELECT 1;\n";
        assert_eq!(
            checksum(lf),
            "b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd"
        );
        assert_eq!(checksum("SELECT 1;\r\n"), checksum(lf));
        assert_ne!(checksum("SELECT 2;\n"), checksum(lf));
    }

    #[test]
    fn a_changed_migration_is_refused_naming_its_file_and_both_checksums() {
        let applied = checksum("CREATE TABLE t (id int);\n");
        assert!(check_unchanged("0007_t", &applied, "CREATE TABLE t (id int);\n").is_ok());
        let err = check_unchanged("0007_t", &applied, "CREATE TABLE t (id bigint);\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "migration 0007_t.sql was changed after it was applied to this database \
                 (checksum {applied}, now {}): restore it and put the change in a new migration",
                checksum("CREATE TABLE t (id bigint);\n")
            )
        );
    }

    #[test]
    fn every_migration_has_a_distinct_version_in_order() {
        let versions: Vec<&str> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(versions, sorted);
    }
}
