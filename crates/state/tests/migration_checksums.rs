//! Every applied migration's checksum is recorded; a database migrated before checksums gets
//! them on its next start; a migration changed after it was applied is refused by name.

use mixsync_state::{StateError, StateStore};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::key;
use sha2::{Digest as _, Sha256};

/// The migration files, read here from the folder on their own (not through the crate's list, so
/// a file left out of that list fails these tests too), in order: `(version, sql)`.
fn files() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .map(|path| {
            let version = path.file_stem().unwrap().to_str().unwrap().to_owned();
            (version, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `(version, checksum)` for every file: what a fully migrated database must record.
fn expected() -> Vec<(String, Option<String>)> {
    files()
        .into_iter()
        .map(|(version, sql)| (version, Some(sha256_hex(&sql))))
        .collect()
}

/// `(version, column)` of `schema_migrations`, in order, the column as text.
async fn recorded(db: &TestDb, column: &str) -> Vec<(String, Option<String>)> {
    let sql = format!("SELECT version, {column}::text FROM schema_migrations ORDER BY version");
    db.client()
        .await
        .query(&sql, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// A store on `db` that has not migrated it (yet).
async fn unmigrated_store(db: &TestDb) -> StateStore {
    StateStore::connect(&db.url(), &key("test-secret-key"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_fresh_database_records_each_migrations_checksum() {
    let db = TestDb::create().await;
    let store = db.state().await;
    assert_eq!(recorded(&db, "checksum").await, expected());
    drop(store);
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let first = recorded(&db, "applied_at").await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    assert_eq!(recorded(&db, "checksum").await, expected());
    assert_eq!(
        recorded(&db, "applied_at").await,
        first,
        "nothing was applied again"
    );
    drop(store);
}

#[tokio::test]
async fn a_database_migrated_before_checksums_gets_them_on_its_next_start() {
    let db = TestDb::create().await;
    // What builds before checksums left: their bookkeeping table, without the column, and the
    // migrations up to 0005 applied (0006 came later).
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
    let older = files()
        .into_iter()
        .filter(|(version, _)| version.as_str() < "0006");
    for (version, sql) in older {
        client.batch_execute(&sql).await.unwrap();
        client
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .unwrap();
    }

    let store = unmigrated_store(&db).await;
    store.migrate().await.unwrap();
    assert_eq!(recorded(&db, "checksum").await, expected());
    // The missing migration was applied (its column is there), not only recorded.
    let lease_columns: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_name = 'runs' AND column_name = 'extract_lease'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lease_columns, 1, "0006_extraction_lease applied");
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
}

#[tokio::test]
async fn a_migration_changed_after_it_was_applied_is_refused_by_name() {
    let db = TestDb::create().await;
    let store = db.state().await;
    // The database applied another text of 0003 than this build carries.
    let (version, sql) = &files()[2];
    assert_eq!(version, "0003_dead_letters_replays");
    let applied_text = format!("{sql}\n-- a column since dropped from the file\n");
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
            sha256_hex(sql)
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
}
