//! Migrations apply once, however often and however concurrently they run.

use mixsync_test_support::TestDb;

#[tokio::test]
async fn migrations_are_idempotent_and_safe_to_run_concurrently() {
    let db = TestDb::create().await;
    let store = db.state().await;
    // Again, and from several "replicas" at once.
    store.migrate().await.unwrap();
    let replicas: Vec<_> = (0..4).map(|_| store.clone()).collect();
    let results = futures_util::future::join_all(replicas.iter().map(|s| s.migrate())).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    let client = db.client().await;
    let versions: Vec<String> = client
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        [
            "0001_initial",
            "0002_sync_snapshots",
            "0003_dead_letters_replays",
            "0004_schedules",
            "0005_claims_in_snapshot",
            "0006_extraction_lease",
            "0007_warehouse_tls_and_role",
            "0008_target_insecure_http",
            "0009_secrets_at_rest_v1",
            "0010_run_attempts",
            "0011_rate_limit",
        ]
    );
    drop(store);
    drop(replicas);
}

#[tokio::test]
async fn an_unknown_migration_is_refused() {
    let db = TestDb::create().await;
    let store = db.state().await;
    db.client()
        .await
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ('9999_future')",
            &[],
        )
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(err.to_string().contains("9999_future"), "{err}");
    drop(store);
}
