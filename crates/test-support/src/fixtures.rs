//! The configuration the state, extractor and mapper tests seed: a warehouse, a Mixpanel target
//! and an events activation, and a run of it.

use std::collections::BTreeMap;

use mixsync_domain::{FieldMapping, ObjectKind, Residency, Source, SyncBehaviour};
use mixsync_state::{
    ActivationOptions, ActivationSpec, Schedule, StateStore, TargetSpec, WarehouseSpec,
};
use secrecy::SecretString;

/// A secret from a literal.
#[must_use]
pub fn key(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A warehouse with every field set, a password among them (nothing connects to it).
#[must_use]
pub fn warehouse_spec(name: &str) -> WarehouseSpec {
    WarehouseSpec {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 5432,
        database: "warehouse".into(),
        user: "analytics".into(),
        password: Some(key("warehouse-password-123")),
        params: BTreeMap::new(),
        root_cert: None,
        require_read_only_role: false,
    }
}

/// A warehouse that is `database` on the local Postgres, as the tests' trusted `postgres` user.
#[must_use]
pub fn local_warehouse_spec(name: &str, database: &str) -> WarehouseSpec {
    WarehouseSpec {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 5432,
        database: database.into(),
        user: "postgres".into(),
        password: None,
        params: BTreeMap::new(),
        root_cert: None,
        require_read_only_role: false,
    }
}

/// A target with every field and secret set (nothing sends to it).
#[must_use]
pub fn target_spec(name: &str) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        project_id: 42,
        residency: Residency::Eu,
        base_url: None,
        token: Some(key("project-token-abc")),
        service_account_username: "sa.user".into(),
        service_account_secret: Some(key("sa-secret-xyz")),
        allow_insecure_http: false,
        rate_limit_per_second: mixsync_state::DEFAULT_RATE_LIMIT_PER_SECOND,
    }
}

/// An events mapping: constant name `Signed Up`, `ts` time, `user_id`, `$insert_id` derived
/// from `id`.
#[must_use]
pub fn events_mapping() -> FieldMapping {
    FieldMapping {
        event_name: Some(Source::Constant(serde_json::json!("Signed Up"))),
        time: Some(Source::Column("ts".into())),
        distinct_id: Some(Source::Column("user_id".into())),
        insert_id: Some(Source::Derive {
            columns: vec!["id".into()],
        }),
        ..FieldMapping::default()
    }
}

/// An events activation over `signups` with [`events_mapping`], every 15 minutes.
#[must_use]
pub fn activation_spec(name: &str, warehouse_id: &str, target_id: &str) -> ActivationSpec {
    ActivationSpec {
        name: name.into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: "SELECT id, user_id, ts FROM signups".into(),
        object: ObjectKind::Events,
        sync_behaviour: SyncBehaviour::Insert,
        mapping: events_mapping(),
        options: ActivationOptions::default(),
        schedule: Schedule::EveryMinutes(15),
    }
}

/// A store with one warehouse, target and activation ([`activation_spec`]); returns the
/// activation id.
///
/// # Panics
///
/// When the store refuses them.
pub async fn seeded(store: &StateStore) -> String {
    let w = store.create_warehouse(&warehouse_spec("w")).await.unwrap();
    let t = store.create_target(&target_spec("t")).await.unwrap();
    store
        .create_activation(&activation_spec("a", &w.id, &t.id))
        .await
        .unwrap()
        .id
}

/// The ids [`seed_run`] made.
#[derive(Debug, Clone)]
pub struct SeededRun {
    pub run_id: String,
    pub activation_id: String,
    pub target_id: String,
}

/// A warehouse on the local database `warehouse_db`, a target, a manual activation
/// ([`activation_spec`] changed by `customize`: query, object, mapping…) and a new run of it.
///
/// # Panics
///
/// When the store refuses them.
pub async fn seed_run(
    store: &StateStore,
    warehouse_db: &str,
    customize: impl FnOnce(&mut ActivationSpec),
) -> SeededRun {
    let w = store
        .create_warehouse(&local_warehouse_spec("w", warehouse_db))
        .await
        .unwrap();
    let t = store.create_target(&target_spec("t")).await.unwrap();
    let mut spec = activation_spec("a", &w.id, &t.id);
    spec.schedule = Schedule::Manual;
    customize(&mut spec);
    let activation = store.create_activation(&spec).await.unwrap();
    let run = store.create_run(&activation.id, false, None).await.unwrap();
    SeededRun {
        run_id: run.id,
        activation_id: activation.id,
        target_id: t.id,
    }
}
