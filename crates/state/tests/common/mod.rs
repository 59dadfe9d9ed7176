//! A throwaway database per test: `mixsync_t_<random>`, dropped when the test ends.

#![allow(dead_code)]

use std::collections::BTreeMap;

use mixsync_domain::{FieldMapping, ObjectKind, Residency, Source, SyncBehaviour};
use mixsync_state::{
    ActivationOptions, ActivationSpec, Schedule, StateStore, TargetSpec, WarehouseSpec,
};
use secrecy::SecretString;
use tokio_postgres::NoTls;

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("mixsync_t_{:016x}", rand::random::<u64>());
        admin(&format!("CREATE DATABASE {name}")).await;
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        Self { name, url }
    }

    pub async fn store(&self) -> StateStore {
        let store = StateStore::connect(&self.url, &key("test-secret-key"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// A plain client on the test database, to look at the tables directly.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    pub async fn drop(self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(ADMIN_URL, NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

pub fn key(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

pub fn warehouse_spec(name: &str) -> WarehouseSpec {
    WarehouseSpec {
        name: name.into(),
        host: "127.0.0.1".into(),
        port: 5432,
        database: "warehouse".into(),
        user: "analytics".into(),
        password: Some(key("warehouse-password-123")),
        params: BTreeMap::new(),
    }
}

pub fn target_spec(name: &str) -> TargetSpec {
    TargetSpec {
        name: name.into(),
        project_id: 42,
        residency: Residency::Eu,
        base_url: None,
        token: Some(key("project-token-abc")),
        service_account_username: "sa.user".into(),
        service_account_secret: Some(key("sa-secret-xyz")),
    }
}

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

/// A store with one warehouse, target and activation; returns the activation id.
pub async fn seeded(store: &StateStore) -> String {
    let w = store.create_warehouse(&warehouse_spec("w")).await.unwrap();
    let t = store.create_target(&target_spec("t")).await.unwrap();
    store
        .create_activation(&activation_spec("a", &w.id, &t.id))
        .await
        .unwrap()
        .id
}
