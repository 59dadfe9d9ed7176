//! A throwaway state database with one events run, and a bus on its own queue prefix.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use mixsync_bus::{Bus, BusConfig, Consumer, DEFAULT_AMQP_URL, Delivery};
use mixsync_domain::{FieldMapping, ObjectKind, Residency, Source, SyncBehaviour};
use mixsync_proto::v1::{Progress, RecordBatch};
use mixsync_state::{
    ActivationOptions, ActivationSpec, Schedule, StateStore, TargetSpec, WarehouseSpec,
};
use prost::Message as _;
use secrecy::SecretString;
use tokio_postgres::NoTls;

const ADMIN_DSN: &str = "host=127.0.0.1 port=5432 user=postgres dbname=postgres";

/// A database `mixsync_t_<random>`, dropped (with its connections) when this is dropped.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("mixsync_t_{:016x}", rand::random::<u64>());
        admin(&format!("CREATE DATABASE {name}")).await;
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// The state store on this database, migrated.
    pub async fn state(&self) -> StateStore {
        let store = StateStore::connect(&self.url(), &SecretString::from("k".to_owned()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop is synchronous: use a private runtime on another thread.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin(&sql));
        })
        .join();
    }
}

async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(ADMIN_DSN, NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
}

/// Creates a warehouse, a target and an activation of `object` with `mapping`, and a run;
/// returns `(run_id, activation_id, target_id)`.
pub async fn seed_run(
    store: &StateStore,
    object: ObjectKind,
    mapping: FieldMapping,
) -> (String, String, String) {
    let w = store
        .create_warehouse(&WarehouseSpec {
            name: "w".into(),
            host: "127.0.0.1".into(),
            port: 5432,
            database: "unused".into(),
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
            target_id: t.id.clone(),
            query: "SELECT 1".into(),
            object,
            sync_behaviour: if object == ObjectKind::Events {
                SyncBehaviour::Insert
            } else {
                SyncBehaviour::Upsert
            },
            mapping,
            options: ActivationOptions::default(),
            schedule: Schedule::Manual,
        })
        .await
        .unwrap();
    let run = store.create_run(&activation.id, false, None).await.unwrap();
    (run.id, activation.id, t.id)
}

/// An events mapping: constant name, `ts` time, `user_id`, `$insert_id` derived from `id`.
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

pub fn bus_config() -> BusConfig {
    BusConfig {
        url: DEFAULT_AMQP_URL.into(),
        prefix: format!("t{:012x}.", rand::random::<u64>() >> 16),
    }
}

pub async fn bus(config: &BusConfig) -> Bus {
    Bus::connect(config.clone()).await.unwrap()
}

/// The next delivery, failing the test after 30 s.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), consumer.next())
        .await
        .expect("no message within 30 s")
        .expect("consumer closed")
}

/// The next delivery within `wait`, if any.
pub async fn try_next(consumer: &mut Consumer, wait: Duration) -> Option<Delivery> {
    tokio::time::timeout(wait, consumer.next())
        .await
        .ok()
        .flatten()
}

/// The next RecordBatch, acked.
pub async fn records(consumer: &mut Consumer) -> RecordBatch {
    let delivery = next(consumer).await;
    delivery.ack().await.unwrap();
    RecordBatch::decode(delivery.body.as_slice()).unwrap()
}

/// The next Progress report, acked.
pub async fn report(consumer: &mut Consumer) -> Progress {
    let delivery = next(consumer).await;
    delivery.ack().await.unwrap();
    Progress::decode(delivery.body.as_slice()).unwrap()
}
