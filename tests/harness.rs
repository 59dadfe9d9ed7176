//! The end-to-end harness: each test gets its own state database, warehouse database, queue prefix and
//! ports, starts the real `mixsync serve …` processes, and drives them through the gRPC API as a user
//! would. The emulator stands in for Mixpanel.
//!
//! The `mixsync` binary must be built: `cargo nextest run --workspace` builds it with the tests.
//!
//! A [`World`] cleans up when dropped, also when the test fails: it kills its processes, then
//! its guards drop the databases and delete the queues. Logs are kept (and their folder printed)
//! unless the test reached [`World::cleanup`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mixsync_proto::v1 as pb;
use mixsync_proto::v1::control_client::ControlClient;
use mixsync_test_support::{PG_SERVER as PG, TestDb, TestQueues};
use tokio::process::{Child, Command};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The services a test can start.
pub const PIPELINE: [&str; 4] = ["control", "extractor", "mapper", "loader-events"];

/// The profile loaders, started by [`World::start_all_objects`].
pub const PROFILE_LOADERS: [&str; 2] = ["loader-users", "loader-groups"];

/// The `mixsync` binary next to this test binary (`target/<profile>/mixsync`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("unexpected test binary location")?;
    let bin = dir.join("mixsync");
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (`cargo build -p mixsync-cli`, or run the tests with `cargo nextest run --workspace`)",
            bin.display()
        );
    }
    Ok(bin)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Adds the bearer token to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

pub type Control = ControlClient<InterceptedService<Channel, Bearer>>;

/// One test's isolated world.
pub struct World {
    pub name: String,
    /// The PostgreSQL server of the state and warehouse databases (`postgres://…:port`).
    pub pg: String,
    pub state_db: String,
    pub warehouse_db: String,
    pub prefix: String,
    pub grpc_port: u16,
    pub emulator_port: u16,
    pub token: String,
    pub log_dir: PathBuf,
    /// Extra environment for every service (e.g. loader settings).
    pub env: Vec<(String, String)>,
    pub processes: HashMap<String, Child>,
    warehouse: Option<tokio_postgres::Client>,
    /// Set by [`World::cleanup`]: the test got to its end, its logs can go.
    finished: bool,
    // Dropped after `Drop for World` has killed the processes, so nothing declares the
    // queues again or reconnects to the databases.
    queues: TestQueues,
    _state_guard: TestDb,
    _warehouse_guard: TestDb,
}

impl World {
    /// Creates the databases; starts nothing yet.
    pub async fn new(name: &str) -> anyhow::Result<World> {
        Self::new_on(name, PG, &mixsync_test_support::queues::amqp_url()).await
    }

    /// A world whose databases live on the PostgreSQL server `pg` and whose queues on the
    /// broker `amqp_url` (the fault tests' own servers, which they restart).
    pub async fn new_on(name: &str, pg: &str, amqp_url: &str) -> anyhow::Result<World> {
        let id = mixsync_test_support::unique_suffix();
        // One id in every name, to find a failed test's databases, queues and logs together.
        let state = TestDb::create_on(pg, "", format!("e2e_state_{id}")).await;
        let warehouse = TestDb::create_on(pg, "", format!("e2e_wh_{id}")).await;
        let queues = TestQueues::on(amqp_url.to_owned(), format!("e2e{id}."));
        let world = World {
            pg: pg.to_owned(),
            name: name.to_owned(),
            state_db: state.name().to_owned(),
            warehouse_db: warehouse.name().to_owned(),
            prefix: queues.prefix().to_owned(),
            grpc_port: free_port(),
            emulator_port: free_port(),
            token: format!("token-{id}"),
            log_dir: std::env::temp_dir().join(format!("mixsync-e2e-{name}-{id}")),
            env: Vec::new(),
            processes: HashMap::new(),
            warehouse: None,
            finished: false,
            queues,
            _state_guard: state,
            _warehouse_guard: warehouse,
        };
        std::fs::create_dir_all(&world.log_dir)?;
        Ok(world)
    }

    pub fn emulator_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.emulator_port)
    }

    pub fn warehouse_url(&self) -> String {
        format!("{}/{}", self.pg, self.warehouse_db)
    }

    /// The warehouse database, for seeding and checks.
    pub async fn warehouse(&mut self) -> anyhow::Result<&tokio_postgres::Client> {
        if self.warehouse.is_none() {
            self.warehouse = Some(connect(&self.warehouse_url()).await?);
        }
        Ok(self.warehouse.as_ref().expect("just set"))
    }

    /// Closes the test's own connection to the warehouse (e.g. before dropping its database).
    pub fn drop_warehouse_connection(&mut self) {
        self.warehouse = None;
    }

    fn service_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "MIXSYNC_DATABASE_URL".to_owned(),
                format!("{}/{}", self.pg, self.state_db),
            ),
            ("MIXSYNC_AMQP_URL".to_owned(), self.queues.config().url),
            ("MIXSYNC_QUEUE_PREFIX".to_owned(), self.prefix.clone()),
            (
                "MIXSYNC_GRPC_ADDR".to_owned(),
                format!("127.0.0.1:{}", self.grpc_port),
            ),
            ("MIXSYNC_API_TOKEN".to_owned(), self.token.clone()),
            ("MIXSYNC_SECRET_KEY".to_owned(), "e2e-secret-key".to_owned()),
            (
                "MIXSYNC_EMULATOR_ADDR".to_owned(),
                format!("127.0.0.1:{}", self.emulator_port),
            ),
            ("RUST_LOG".to_owned(), "info".to_owned()),
        ];
        env.extend(self.env.iter().cloned());
        env
    }

    /// Starts (or restarts) `mixsync serve <service>`.
    pub fn start(&mut self, service: &str) -> anyhow::Result<()> {
        self.start_as(service, service)
    }

    /// Starts `mixsync serve <service>` as the process `name` (its log `<name>.log`): a second
    /// replica of a service is another name.
    pub fn start_as(&mut self, name: &str, service: &str) -> anyhow::Result<()> {
        let log_path = self.log_dir.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let child = Command::new(binary()?)
            .args(["serve", service])
            .envs(self.service_env())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start mixsync serve {service}"))?;
        self.processes.insert(name.to_owned(), child);
        Ok(())
    }

    /// Starts the emulator and every pipeline service.
    pub async fn start_all(&mut self) -> anyhow::Result<Control> {
        self.start("emulator")?;
        for service in PIPELINE {
            self.start(service)?;
        }
        self.wait_for_emulator().await?;
        self.control().await
    }

    /// Starts the emulator, every pipeline service and the profile loaders.
    pub async fn start_all_objects(&mut self) -> anyhow::Result<Control> {
        for service in PROFILE_LOADERS {
            self.start(service)?;
        }
        self.start_all().await
    }

    /// Kills a service with SIGKILL and waits for it to be gone.
    pub async fn kill(&mut self, service: &str) -> anyhow::Result<()> {
        let mut child = self
            .processes
            .remove(service)
            .context("service not running")?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    async fn wait_for_emulator(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let http = reqwest::Client::new();
        loop {
            if http
                .get(format!("{}/_emulator/stats", self.emulator_url()))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the emulator did not start; log:\n{}", self.log("emulator"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A gRPC client, once control answers.
    pub async fn control(&mut self) -> anyhow::Result<Control> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let bearer = Bearer(format!("Bearer {}", self.token).parse()?);
        loop {
            let mut exited = None;
            for (service, child) in &mut self.processes {
                if let Some(status) = child.try_wait()? {
                    exited = Some((service.clone(), status));
                }
            }
            if let Some((service, status)) = exited {
                bail!(
                    "{service} exited at start ({status}); log:\n{}",
                    self.log(&service)
                );
            }
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!(
                "http://127.0.0.1:{}",
                self.grpc_port
            ))?
            .connect()
            .await
            {
                let mut client = ControlClient::with_interceptor(channel, bearer.clone())
                    .max_decoding_message_size(64 << 20);
                if client
                    .list_warehouses(pb::ListWarehousesRequest::default())
                    .await
                    .is_ok()
                {
                    return Ok(client);
                }
            }
            if Instant::now() > deadline {
                bail!("control did not answer; log:\n{}", self.log("control"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A service's log so far.
    pub fn log(&self, service: &str) -> String {
        std::fs::read_to_string(self.log_dir.join(format!("{service}.log"))).unwrap_or_default()
    }

    /// Fails when any service log of this world holds one of `secrets` (passwords, tokens, keys,
    /// or the lines of a PEM private key).
    pub fn assert_no_secret_in_logs(&self, secrets: &[&str]) {
        let logs: Vec<(String, String)> = std::fs::read_dir(&self.log_dir)
            .map(|dir| {
                dir.filter_map(Result::ok)
                    .map(|e| {
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            std::fs::read_to_string(e.path()).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert!(!logs.is_empty(), "no logs in {}", self.log_dir.display());
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            for (file, text) in &logs {
                assert!(!text.contains(secret), "a secret is in {file}: {secret}");
            }
        }
    }

    /// How many lines of `service`'s log so far contain `needle`.
    pub fn log_lines(&self, service: &str, needle: &str) -> usize {
        self.log(service)
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits until at least `n` lines of `service`'s log contain `needle`.
    pub async fn wait_for_log_lines(
        &self,
        service: &str,
        needle: &str,
        n: usize,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.log_lines(service, needle) < n {
            if Instant::now() > deadline {
                bail!(
                    "fewer than {n} lines with `{needle}` in {within:?}; log:\n{}",
                    self.log(service)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// A bus on this world's queue prefix, to publish or consume as a service would.
    pub async fn bus(&self) -> anyhow::Result<mixsync_bus::Bus> {
        Ok(mixsync_bus::Bus::connect(self.queues.config()).await?)
    }

    /// The depth (ready plus unacknowledged messages) of every queue of this world.
    pub async fn queue_depths(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let prefix = self.prefix.clone();
        Ok(
            tokio::task::spawn_blocking(move || mixsync_test_support::queue_depths(&prefix))
                .await?,
        )
    }

    /// Waits until no queue of this world holds a message, ready or unacknowledged: every
    /// message published so far has been consumed and settled by its service.
    pub async fn wait_until_queues_are_empty(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let depths = self.queue_depths().await?;
            // None at all would make "all empty" vacuously true: the topology must be there.
            if depths.is_empty() {
                bail!("no queue of prefix {} on the broker", self.prefix);
            }
            if depths.values().all(|depth| *depth == 0) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("queues still hold messages after {within:?}: {depths:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops everything, drops the databases and queues, and removes the logs: call at the end
    /// of a test that passed. (Dropping the world does the same but keeps the logs.)
    pub async fn cleanup(mut self) {
        for (_, mut child) in self.processes.drain() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        self.finished = true;
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // Killed and reaped before the guards (fields) drop: a live service would declare the
        // queues again or hold the databases.
        for (service, child) in &mut self.processes {
            if child.start_kill().is_err() {
                continue;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                // Drop cannot await; SIGKILL takes effect within milliseconds.
                std::thread::sleep(Duration::from_millis(10));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("{service} did not exit after SIGKILL");
            }
        }
        self.warehouse = None;
        if self.finished {
            let _ = std::fs::remove_dir_all(&self.log_dir);
        } else {
            eprintln!(
                "test world `{}` did not finish; its logs stay in {}",
                self.name,
                self.log_dir.display()
            );
        }
    }
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Creates the warehouse and the emulator target through the API; returns their ids.
pub async fn warehouse_and_target(
    world: &World,
    control: &mut Control,
) -> anyhow::Result<(String, String)> {
    let warehouse = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(pb::WarehouseSpec {
                name: "wh".into(),
                dsn: world.warehouse_url(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .warehouse
        .context("no warehouse")?;
    let target = create_emulator_target(world, control).await?;
    Ok((warehouse.id, target.id))
}

/// The target `emulator`: this world's emulator, with its demo project's credentials.
pub async fn create_emulator_target(
    world: &World,
    control: &mut Control,
) -> anyhow::Result<pb::Target> {
    control
        .create_target(pb::CreateTargetRequest {
            target: Some(pb::TargetSpec {
                name: "emulator".into(),
                project_id: "1".into(),
                residency: pb::Residency::Us as i32,
                base_url: world.emulator_url(),
                token: "demo-token".into(),
                service_account_username: "demo-sa".into(),
                service_account_secret: "demo-secret".into(),
                allow_insecure_http: false,
                rate_limit_per_second: 0,
            }),
        })
        .await?
        .into_inner()
        .target
        .context("no target")
}

/// Gives the target made by [`create_emulator_target`] a cap of `per_second` records, so a run
/// lasts as long as a test needs whatever the machine's speed. Its secrets are kept.
pub async fn cap_emulator_target(
    world: &World,
    control: &mut Control,
    target_id: &str,
    per_second: u32,
) -> anyhow::Result<pb::Target> {
    control
        .update_target(pb::UpdateTargetRequest {
            id: target_id.into(),
            target: Some(pb::TargetSpec {
                name: "emulator".into(),
                project_id: "1".into(),
                residency: pb::Residency::Us as i32,
                base_url: world.emulator_url(),
                service_account_username: "demo-sa".into(),
                rate_limit_per_second: per_second,
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .target
        .context("no target")
}

pub fn column(name: &str) -> Option<pb::FieldSource> {
    Some(pb::FieldSource {
        source: Some(pb::field_source::Source::Column(name.into())),
    })
}

/// An events activation over `query` with the usual mapping: event, ts, user_id, insert_id derived from id.
pub async fn events_activation(
    control: &mut Control,
    name: &str,
    warehouse_id: &str,
    target_id: &str,
    query: &str,
    properties: &[&str],
) -> Result<pb::Activation, tonic::Status> {
    let spec = pb::ActivationSpec {
        name: name.into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: query.into(),
        object: pb::MixpanelObject::Events as i32,
        sync_behaviour: pb::SyncBehaviour::Insert as i32,
        mapping: Some(pb::FieldMapping {
            event_name: column("event"),
            time: column("ts"),
            distinct_id: column("user_id"),
            insert_id: Some(pb::FieldSource {
                source: Some(pb::field_source::Source::Derive(pb::DerivedSource {
                    columns: vec!["id".into()],
                })),
            }),
            properties: properties
                .iter()
                .map(|c| pb::PropertyMapping {
                    column: (*c).into(),
                    property: (*c).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        options: None,
        schedule: None,
    };
    Ok(control
        .create_activation(pb::CreateActivationRequest {
            activation: Some(spec),
        })
        .await?
        .into_inner()
        .activation
        .unwrap_or_default())
}

pub fn is_terminal(state: i32) -> bool {
    matches!(
        pb::RunState::try_from(state),
        Ok(pb::RunState::Succeeded
            | pb::RunState::PartiallyFailed
            | pb::RunState::Failed
            | pb::RunState::Cancelled)
    )
}

/// Triggers a run and waits (polling GetRun) until it ends.
pub async fn run_to_end(
    control: &mut Control,
    activation_id: &str,
    within: Duration,
) -> anyhow::Result<pb::Run> {
    let run = trigger(control, activation_id).await?;
    wait_for_end(control, &run.id, within).await
}

/// Starts a run of the activation (not a full resync) and returns it as queued.
pub async fn trigger(control: &mut Control, activation_id: &str) -> anyhow::Result<pb::Run> {
    control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation_id.into(),
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .context("no run")
}

/// Waits until a run ends.
pub async fn wait_for_end(
    control: &mut Control,
    run_id: &str,
    within: Duration,
) -> anyhow::Result<pb::Run> {
    let deadline = Instant::now() + within;
    loop {
        let run = get_run(control, run_id).await?;
        if is_terminal(run.state) {
            return Ok(run);
        }
        if Instant::now() > deadline {
            bail!("run {run_id} did not end in {within:?}: {run:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn get_run(control: &mut Control, run_id: &str) -> anyhow::Result<pb::Run> {
    control
        .get_run(pb::GetRunRequest { id: run_id.into() })
        .await?
        .into_inner()
        .run
        .context("no run")
}

pub fn counts(run: &pb::Run) -> pb::RunCounts {
    run.counts.unwrap_or_default()
}

/// Every event the emulator stores for project 1.
pub async fn emulator_events(world: &World) -> anyhow::Result<Vec<serde_json::Value>> {
    let body: serde_json::Value = reqwest::get(format!(
        "{}/_emulator/events?project_id=1",
        world.emulator_url()
    ))
    .await?
    .json()
    .await?;
    Ok(body["events"].as_array().cloned().unwrap_or_default())
}

/// The emulator's counters.
pub async fn emulator_stats(world: &World) -> anyhow::Result<serde_json::Value> {
    Ok(
        reqwest::get(format!("{}/_emulator/stats", world.emulator_url()))
            .await?
            .json()
            .await?,
    )
}

/// Sets the emulator's fault injection.
pub async fn set_faults(world: &World, faults: serde_json::Value) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .put(format!("{}/_emulator/faults", world.emulator_url()))
        .json(&faults)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("faults refused: {}", response.text().await?);
    }
    Ok(())
}

/// Every failed record of a run (all pages).
pub async fn failed_records(
    control: &mut Control,
    run_id: &str,
) -> anyhow::Result<(Vec<pb::FailedRecord>, Vec<pb::FailureReasonCount>)> {
    let mut records = Vec::new();
    let mut counts = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = control
            .list_failed_records(pb::ListFailedRecordsRequest {
                run_id: run_id.into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await?
            .into_inner();
        records.extend(page.records);
        if counts.is_empty() {
            counts = page.counts_by_reason;
        }
        if page.next_page_token.is_empty() {
            return Ok((records, counts));
        }
        page_token = page.next_page_token;
    }
}
