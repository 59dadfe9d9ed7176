//! Secrets are encrypted at rest and come back only through the connection readers.

use mixsync_state::{KeyCheck, SecretKeys, StateError, StateStore};
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
    assert!(matches!(err, StateError::WrongSecretKey { .. }), "{err}");
    assert!(err.to_string().contains("MIXSYNC_SECRET_KEY_PREVIOUS"));
    // And a process started with it is told so before it reads anything.
    let err = other.check_secret_key().await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("MIXSYNC_SECRET_KEY does not open 3 of the 3 stored secrets"),
        "{err}"
    );
    drop((store, other));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let a = store.create_target(&target_spec("a")).await.unwrap();
    let mut spec_b = target_spec("b");
    spec_b.token = Some(key("token-of-b"));
    let b = store.create_target(&spec_b).await.unwrap();
    let client = db.client().await;
    // Someone with write access to the database swaps the two tokens.
    client
        .execute(
            "UPDATE targets SET token_secret = CASE id WHEN $1 THEN (SELECT token_secret FROM targets WHERE id = $2)
                                                     ELSE (SELECT token_secret FROM targets WHERE id = $1) END
             WHERE id IN ($1, $2)",
            &[&a.id, &b.id],
        )
        .await
        .unwrap();
    for id in [&a.id, &b.id] {
        let err = store.target_connection(id).await.unwrap_err();
        assert!(matches!(err, StateError::Decrypt { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("project token of target `{id}`"))
                && err.to_string().contains("not stored for this row"),
            "{err}"
        );
    }
    // Copying a token into the service-account column of its own row fails the same way.
    client
        .execute(
            "UPDATE targets SET service_account_secret = token_secret, token_secret = NULL WHERE id = $1",
            &[&a.id],
        )
        .await
        .unwrap();
    let err = store.target_connection(&a.id).await.unwrap_err();
    assert!(matches!(err, StateError::Decrypt { .. }), "{err}");
    drop(store);
}

#[tokio::test]
async fn rotation_moves_every_secret_to_the_new_key_and_refuses_a_wrong_one() {
    let db = TestDb::create().await;
    let old = db.state().await;
    let w = old.create_warehouse(&warehouse_spec("w")).await.unwrap();
    let t = old.create_target(&target_spec("t")).await.unwrap();

    // The new key alone cannot read them, and rotating with it changes nothing.
    let new_only = StateStore::connect(&db.url(), &key("the-new-key"))
        .await
        .unwrap();
    let err = new_only.rotate_secrets().await.unwrap_err();
    assert!(
        matches!(
            err,
            StateError::SecretsUnreadable {
                unreadable: 3,
                total: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        old.target_connection(&t.id).await.is_ok(),
        "nothing changed"
    );

    // New key with the old one as previous: all three re-encrypted, once.
    let keys = SecretKeys::new(&key("the-new-key"))
        .unwrap()
        .with_previous(Some(&key(mixsync_test_support::SECRET_KEY)));
    let rotating = StateStore::connect_with_keys(&db.url(), keys)
        .await
        .unwrap();
    let rotation = rotating.rotate_secrets().await.unwrap();
    assert_eq!(
        (rotation.from_previous, rotation.current),
        (3, 0),
        "{rotation:?}"
    );
    let again = rotating.rotate_secrets().await.unwrap();
    assert_eq!((again.reencrypted(), again.current), (0, 3), "{again:?}");

    // The new key alone now reads everything; the old one no longer does.
    let new_only = StateStore::connect(&db.url(), &key("the-new-key"))
        .await
        .unwrap();
    assert!(matches!(
        new_only.check_secret_key().await.unwrap(),
        KeyCheck::Usable { secrets: 3 }
    ));
    let conn = new_only.target_connection(&t.id).await.unwrap();
    assert_eq!(conn.token.expose_secret(), "project-token-abc");
    let wh = new_only.warehouse_connection(&w.id).await.unwrap();
    assert!(wh.dsn.expose_secret().contains("warehouse-password-123"));
    assert!(matches!(
        old.target_connection(&t.id).await.unwrap_err(),
        StateError::WrongSecretKey { .. }
    ));
    drop((old, rotating, new_only));
}

#[tokio::test]
async fn secrets_in_the_format_before_migration_9_are_converted() {
    use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
    use chacha20poly1305::{ChaCha20Poly1305, Key};
    use sha2::{Digest, Sha256};

    let db = TestDb::create().await;
    let store = db.state().await;
    let t = store.create_target(&target_spec("t")).await.unwrap();
    // What an installation before migration 9 stored (SHA-256 key, the column as associated
    // data), with the 0x00 the migration puts in front.
    let digest = Sha256::digest(mixsync_test_support::SECRET_KEY.as_bytes());
    let cipher = ChaCha20Poly1305::new(Key::from_slice(digest.as_slice()));
    let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
    let body = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: b"old-token",
                aad: b"mixsync/targets.token",
            },
        )
        .unwrap();
    let legacy = [&[0u8][..], nonce.as_slice(), &body].concat();
    db.client()
        .await
        .execute(
            "UPDATE targets SET token_secret = $2 WHERE id = $1",
            &[&t.id, &legacy],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .target_connection(&t.id)
            .await
            .unwrap()
            .token
            .expose_secret(),
        "old-token"
    );
    let rotation = store.rotate_secrets().await.unwrap();
    assert_eq!(
        (rotation.from_legacy, rotation.current),
        (1, 1),
        "{rotation:?}"
    );
    let stored: Vec<u8> = db
        .client()
        .await
        .query_one("SELECT token_secret FROM targets WHERE id = $1", &[&t.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored[0], 1, "now in format 1");
    assert_eq!(
        store
            .target_connection(&t.id)
            .await
            .unwrap()
            .token
            .expose_secret(),
        "old-token"
    );
    drop(store);
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
