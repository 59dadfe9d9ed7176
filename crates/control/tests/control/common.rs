//! An in-process control against its own Postgres database, its own RabbitMQ queue prefix and
//! an emulator, driven through the generated gRPC client.

use std::net::SocketAddr;
use std::time::Duration;

use mixsync_bus::{Bus, Consumer};
use mixsync_control::Config;
use mixsync_proto::v1::{self, control_client::ControlClient, field_source};
use mixsync_test_support::{RunningService, TestDb, TestQueues};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tonic::Request;
use tonic::transport::Channel;

pub use mixsync_test_support::PATIENCE;

pub struct Harness {
    pub db_name: String,
    pub db_url: String,
    pub addr: SocketAddr,
    pub emulator: mixsync_emulator::Emulator,
    /// The test's own bus on control's prefix: reads what control publishes, publishes
    /// progress like the pipeline would.
    pub bus: Bus,
    token: Option<String>,
    // Fields drop in this order: control stops before the guards remove its queues (a
    // consumer whose queue is deleted declares it again) and its database.
    control: RunningService<mixsync_control::Error>,
    _queues: TestQueues,
    _db: TestDb,
}

impl Harness {
    pub async fn start(token: Option<&str>) -> Self {
        let db = TestDb::create().await;
        let queues = TestQueues::new();
        let bus_config = queues.config();
        let (db_name, db_url) = (db.name().to_owned(), db.url());
        seed_warehouse(&db).await;

        let mut emulator_config = mixsync_emulator::Config::demo();
        emulator_config.addr = "127.0.0.1:0".parse().unwrap();
        let emulator = mixsync_emulator::spawn(emulator_config).await.unwrap();

        let config = Config {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            api_token: token.map(|t| SecretString::from(t.to_owned())),
            database_url: SecretString::from(db_url.clone()),
            secret_key: SecretString::from("test-secret-key".to_owned()),
            secret_key_previous: None,
            grpc_tls: None,
            bus: bus_config.clone(),
            scheduler: Default::default(),
        };
        let listener = TcpListener::bind(config.grpc_addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let control = RunningService::spawn(|shutdown| {
            mixsync_control::run_with_listener(config, listener, shutdown)
        });
        let bus = Bus::connect(bus_config).await.unwrap();
        let harness = Self {
            db_name,
            db_url,
            addr,
            emulator,
            bus,
            token: token.map(str::to_owned),
            control,
            _queues: queues,
            _db: db,
        };
        harness.wait_until_serving().await;
        harness
    }

    async fn wait_until_serving(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Ok(channel) = Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
            {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                if health
                    .check(tonic_health::pb::HealthCheckRequest {
                        service: "mixsync.v1.Control".into(),
                    })
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            assert!(
                !self.control.is_finished(),
                "control stopped while starting"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "control did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> ControlClient<Channel> {
        ControlClient::new(self.channel().await)
    }

    /// A request carrying the harness's bearer token.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(token) = &self.token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    }

    pub async fn consume(&self, queue: &str) -> Consumer {
        self.bus.consume(queue, 16).await.unwrap()
    }

    pub fn warehouse_spec(&self, name: &str) -> v1::WarehouseSpec {
        v1::WarehouseSpec {
            name: name.into(),
            dsn: self.db_url.clone(),
            ..Default::default()
        }
    }

    pub fn target_spec(&self, name: &str) -> v1::TargetSpec {
        v1::TargetSpec {
            name: name.into(),
            project_id: "1".into(),
            residency: v1::Residency::Unspecified.into(),
            base_url: self.emulator.base_url(),
            token: "demo-token".into(),
            service_account_username: "demo-sa".into(),
            service_account_secret: "demo-secret".into(),
            allow_insecure_http: false,
            rate_limit_per_second: 0,
        }
    }

    /// A warehouse and a target, created through the API: (warehouse id, target id).
    pub async fn warehouse_and_target(&self) -> (String, String) {
        let mut client = self.client().await;
        let warehouse = client
            .create_warehouse(self.req(v1::CreateWarehouseRequest {
                warehouse: Some(self.warehouse_spec("wh")),
            }))
            .await
            .unwrap()
            .into_inner()
            .warehouse
            .unwrap();
        let target = client
            .create_target(self.req(v1::CreateTargetRequest {
                target: Some(self.target_spec("mp")),
            }))
            .await
            .unwrap()
            .into_inner()
            .target
            .unwrap();
        (warehouse.id, target.id)
    }

    /// An events activation over `signups`, created through the API; returns its id.
    pub async fn activation(&self) -> String {
        let (warehouse_id, target_id) = self.warehouse_and_target().await;
        self.client()
            .await
            .create_activation(self.req(v1::CreateActivationRequest {
                activation: Some(activation_spec(&warehouse_id, &target_id)),
            }))
            .await
            .unwrap()
            .into_inner()
            .activation
            .unwrap()
            .id
    }

    /// Stops control (checking it ends cleanly) and the emulator; the guards then drop the
    /// database and the queues.
    pub async fn stop(self) {
        self.control.stop().await;
        self.bus.close().await;
        self.emulator.shutdown().await;
    }
}

pub fn column(c: &str) -> Option<v1::FieldSource> {
    Some(v1::FieldSource {
        source: Some(field_source::Source::Column(c.into())),
    })
}

pub fn activation_spec(warehouse_id: &str, target_id: &str) -> v1::ActivationSpec {
    v1::ActivationSpec {
        name: "signups".into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: "SELECT id, user_id, ts, plan FROM signups ORDER BY id".into(),
        object: v1::MixpanelObject::Events.into(),
        sync_behaviour: v1::SyncBehaviour::Unspecified.into(),
        mapping: Some(v1::FieldMapping {
            event_name: Some(v1::FieldSource {
                source: Some(field_source::Source::Constant("Signed Up".into())),
            }),
            time: column("ts"),
            distinct_id: column("user_id"),
            insert_id: Some(v1::FieldSource {
                source: Some(field_source::Source::Derive(v1::DerivedSource {
                    columns: vec!["id".into()],
                })),
            }),
            properties: vec![v1::PropertyMapping {
                column: "plan".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        options: None,
        schedule: None,
    }
}

/// The warehouse side: a `signups` table in the test database, row 3 with a placeholder user.
async fn seed_warehouse(db: &TestDb) {
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE signups (id bigint PRIMARY KEY, user_id text, ts timestamptz, plan text);
             INSERT INTO signups VALUES
               (1, 'u1', '2024-01-02 03:04:05+00', 'pro'),
               (2, 'u2', '2024-01-03 00:00:00+00', 'free'),
               (3, 'null', '2024-01-04 00:00:00+00', 'free');",
        )
        .await
        .unwrap();
}
