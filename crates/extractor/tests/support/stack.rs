//! A state database with one events run, and a bus with its own queue prefix.

use std::collections::BTreeMap;
use std::time::Duration;

use mixsync_bus::{Bus, BusConfig, Consumer, DEFAULT_AMQP_URL, Delivery};
use mixsync_domain::{FieldMapping, ObjectKind, Residency, Source, SyncBehaviour};
use mixsync_state::{
    ActivationOptions, ActivationSpec, Schedule, StateStore, TargetSpec, WarehouseSpec,
};
use secrecy::SecretString;

use super::TestDb;

pub const SECRET_KEY: &str = "extractor-test-secret-key";

/// The state database, migrated.
pub async fn state(db: &TestDb) -> StateStore {
    let store = StateStore::connect(&db.url(), &SECRET_KEY.to_owned().into())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

/// A warehouse (the database `warehouse`), a target and an events activation running `query`;
/// returns `(run_id, activation_id)` of a new run.
pub async fn seed_run(store: &StateStore, warehouse: &str, query: &str) -> (String, String) {
    let w = store
        .create_warehouse(&WarehouseSpec {
            name: "w".into(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: warehouse.into(),
            user: "postgres".into(),
            password: None,
            params: BTreeMap::new(),
        })
        .await
        .unwrap();
    let t = store
        .create_target(&TargetSpec {
            name: "t".into(),
            project_id: 1,
            residency: Residency::Us,
            base_url: Some("http://127.0.0.1:1".into()),
            token: Some(SecretString::from("token".to_owned())),
            service_account_username: "sa".into(),
            service_account_secret: Some(SecretString::from("secret".to_owned())),
        })
        .await
        .unwrap();
    let activation = store
        .create_activation(&ActivationSpec {
            name: "a".into(),
            warehouse_id: w.id,
            target_id: t.id,
            query: query.into(),
            object: ObjectKind::Events,
            sync_behaviour: SyncBehaviour::Insert,
            mapping: FieldMapping {
                event_name: Some(Source::Constant(serde_json::json!("Signed Up"))),
                time: Some(Source::Column("ts".into())),
                distinct_id: Some(Source::Column("user_id".into())),
                insert_id: Some(Source::Derive {
                    columns: vec!["id".into()],
                }),
                ..FieldMapping::default()
            },
            options: ActivationOptions::default(),
            schedule: Schedule::Manual,
        })
        .await
        .unwrap();
    let run = store.create_run(&activation.id, false, None).await.unwrap();
    (run.id, activation.id)
}

/// A bus on a fresh queue prefix.
pub async fn bus() -> Bus {
    Bus::connect(bus_config()).await.unwrap()
}

pub fn bus_config() -> BusConfig {
    BusConfig {
        url: DEFAULT_AMQP_URL.into(),
        prefix: format!("t{:012x}.", rand::random::<u64>() >> 16),
    }
}

/// The next delivery, failing the test after 30 s.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("no message within 30 s")
        .expect("consumer closed")
}
