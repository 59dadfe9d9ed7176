//! Secrets are encrypted at rest and come back only through the connection readers.

use mixsync_state::{StateError, StateStore};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::{key, seeded, target_spec, warehouse_spec};
use secrecy::ExposeSecret;

#[tokio::test]
async fn secrets_are_not_readable_in_the_tables() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let w = store.create_warehouse(&warehouse_spec("w")).await.unwrap();
    let t = store.create_target(&target_spec("t")).await.unwrap();
    assert!(w.has_password);
    assert!(t.has_token && t.has_service_account_secret);

    let client = db.client().await;
    let dump: String = client
        .query_one(
            "SELECT (SELECT string_agg(w::text, ' ') FROM warehouses w) || (SELECT string_agg(t::text, ' ') FROM targets t)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    for secret in [
        "warehouse-password-123",
        "project-token-abc",
        "sa-secret-xyz",
    ] {
        assert!(!dump.contains(secret), "{secret} readable in {dump}");
        let hex: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(&hex), "{secret} readable as hex");
    }

    let conn = store.warehouse_connection(&w.id).await.unwrap();
    assert!(conn.dsn.expose_secret().contains("warehouse-password-123"));
    assert!(!format!("{conn:?}").contains("warehouse-password-123"));
    let target = store.target_connection(&t.id).await.unwrap();
    assert_eq!(target.base_url, "https://api-eu.mixpanel.com");
    assert_eq!(target.project_id, 42);
    assert_eq!(target.token.expose_secret(), "project-token-abc");
    assert_eq!(
        target.service_account_secret.expose_secret(),
        "sa-secret-xyz"
    );
    assert_eq!(target.service_account_username, "sa.user");

    // Another key cannot read them.
    let other = StateStore::connect(&db.url(), &key("another-key"))
        .await
        .unwrap();
    let err = other.target_connection(&t.id).await.unwrap_err();
    assert!(matches!(err, StateError::Decrypt { .. }), "{err}");
    assert!(err.to_string().contains("MIXSYNC_SECRET_KEY"));
    drop((store, other));
}

#[tokio::test]
async fn updating_a_target_keeps_secrets_left_empty() {
    let db = TestDb::create().await;
    let store = db.state().await;
    seeded(&store).await;
    let t = store.find_target_by_name("t").await.unwrap().unwrap();
    let mut spec = target_spec("t2");
    spec.token = None;
    spec.service_account_secret = Some(key("new-secret"));
    spec.base_url = Some("http://127.0.0.1:3900/".into());
    let updated = store.update_target(&t.id, &spec).await.unwrap();
    assert_eq!(updated.name, "t2");
    let conn = store.target_connection(&t.id).await.unwrap();
    assert_eq!(conn.token.expose_secret(), "project-token-abc");
    assert_eq!(conn.service_account_secret.expose_secret(), "new-secret");
    assert_eq!(conn.base_url, "http://127.0.0.1:3900");
    drop(store);
}
