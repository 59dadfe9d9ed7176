//! Every applied migration's checksum is recorded; a database migrated before checksums gets
//! them on its next start; a migration changed after it was applied is refused by name.

mod common;

use common::TestDb;
use mixsync_state::{StateError, StateStore};
use sha2::{Digest as _, Sha256};

/// The migration files, read here on their own (not through the crate), in order.
const FILES: &[(&str, &str)] = &[
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

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `(version, checksum)` for every file: what a fully migrated database must record.
fn expected() -> Vec<(String, Option<String>)> {
    FILES
        .iter()
        .map(|(version, sql)| ((*version).to_owned(), Some(sha256_hex(sql))))
        .collect()
}

/// `(version, checksum)` as recorded, in order.
async fn recorded(db: &TestDb) -> Vec<(String, Option<String>)> {
    db.client()
        .await
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// `(version, applied_at)` as recorded, in order.
async fn applied_at(db: &TestDb) -> Vec<(String, String)> {
    db.client()
        .await
        .query(
            "SELECT version, applied_at::text FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// A store on `db` that has not migrated it (yet).
async fn unmigrated_store(db: &TestDb) -> StateStore {
    StateStore::connect(&db.url, &common::key("test-secret-key"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fresh_database_records_each_migrations_checksum() {
    let db = TestDb::create().await;
    let store = db.store().await;
    assert_eq!(recorded(&db).await, expected());
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let first = applied_at(&db).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(recorded(&db).await, expected());
    assert_eq!(applied_at(&db).await, first, "nothing was applied again");
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn a_database_migrated_before_checksums_gets_them_on_its_next_start() {
    let db = TestDb::create().await;
    // What builds before checksums left: their bookkeeping table, without the column, and all
    // but the last migration applied.
    let client = db.client().await;
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (
                 version text PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .unwrap();
    let (last, older) = FILES.split_last().unwrap();
    for (version, sql) in older {
        client.batch_execute(sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .unwrap();
    }

    let store = unmigrated_store(&db).await;
    store.migrate().await.unwrap();
    assert_eq!(recorded(&db).await, expected());
    // The missing migration was applied, not only recorded.
    let lease_columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_name = 'runs' AND column_name = 'extract_lease'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lease_columns, 1, "{} applied", last.0);
    // And the backfilled checksums now guard those migrations too.
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'x' WHERE version = '0001_initial'",
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(
        store.migrate().await,
        Err(StateError::ChangedMigration { .. })
    ));
    drop(store);
    db.drop().await;
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_refused_by_name() {
    let db = TestDb::create().await;
    let store = db.store().await;
    // The database applied another text of 0003 than this build carries.
    let applied_text = format!("{}\n-- a column since dropped from the file\n", FILES[2].1);
    let applied = sha256_hex(&applied_text);
    let client = db.client().await;
    client
        .execute(
            "UPDATE schema_migrations SET checksum = $1 WHERE version = '0003_dead_letters_replays'",
            &[&applied],
        )
        .await
        .unwrap();

    let err = store.migrate().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "migration 0003_dead_letters_replays.sql was changed after it was applied to this \
             database (checksum {applied}, now {}): restore it and put the change in a new \
             migration",
            sha256_hex(FILES[2].1)
        )
    );
    // Refused as a whole: the recorded checksum is left as it was, for the operator to compare.
    let kept: String = client
        .query_one(
            "SELECT checksum FROM schema_migrations WHERE version = '0003_dead_letters_replays'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, applied);
    drop(store);
    db.drop().await;
}
