//! `mixsync demo` and `mixsync bench`: seed a sample warehouse, start every service (and an emulator
//! unless a target URL is given), set up the warehouse, target and activation through the gRPC API,
//! run it and print the report. The demo is idempotent: the same `--rows` gives the same data, and the
//! warehouse, target and activation are found again by name, so a second demo is a second run of the
//! same activation. `bench` is the same job timed (rate limits off unless `--cap`), reading each
//! service's peak memory.

use std::time::{Duration, Instant};

use anyhow::Context;
use mixsync_proto::v1 as pb;
use secrecy::ExposeSecret as _;
use serde::Serialize;

use crate::client::{Control, status_error};
use crate::commands::run::follow;
use crate::commands::{find_activation, find_target, find_warehouse};
use crate::output::{Output, table};
use crate::serve::{PIPELINE, Service};
use crate::stack::{self, Stack};
use crate::{seed, views};

const WAREHOUSE: &str = "demo-warehouse";
const TARGET: &str = "demo-target";
const EVENTS: &str = "demo-events";
const USERS: &str = "demo-users";
const COMPANIES: &str = "demo-companies";
/// The demo project of the emulator (`mixsync serve emulator` without a projects file).
const PROJECT_ID: &str = "1";
const PROJECT_TOKEN: &str = "demo-token";
const SERVICE_ACCOUNT: &str = "demo-sa";
const SERVICE_ACCOUNT_SECRET: &str = "demo-secret";

#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Rows in the sample table (about 1.5% of them break a Mixpanel rule on purpose).
    #[arg(long, default_value_t = 10_000)]
    rows: u64,
    /// Send to this Mixpanel API (e.g. a running emulator) instead of starting an emulator.
    #[arg(long)]
    target_url: Option<String>,
    /// The sample warehouse (created when missing).
    #[arg(
        long,
        env = "MIXSYNC_DEMO_WAREHOUSE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/mixsync_demo"
    )]
    warehouse_url: String,
    /// The state database (created when missing).
    #[arg(
        long,
        env = "MIXSYNC_DATABASE_URL",
        default_value = mixsync_config::defaults::DATABASE_URL
    )]
    database_url: String,
    /// RabbitMQ.
    #[arg(
        long,
        env = "MIXSYNC_AMQP_URL",
        default_value = mixsync_config::defaults::AMQP_URL
    )]
    amqp_url: String,
}

/// `mixsync bench`: the demo's job, timed, with rate limits off unless `--cap` is given.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    demo: DemoArgs,
    /// Keep to a cap of N records per second for the project: the emulator enforces it (429s
    /// past it) and the target says it, so every loader shares it. The report says how fully
    /// the cap was used and how many requests were answered 429.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    cap: Option<u32>,
    /// What to sync: `events`, or `all` (events, user profiles and group profiles at once).
    #[arg(long, value_enum, default_value_t = BenchObjects::Events)]
    objects: BenchObjects,
    /// Processes of loader-events and of loader-users each (replicas sharing the cap).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    replicas: u8,
}

/// What `mixsync bench` syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BenchObjects {
    /// The events activation only.
    Events,
    /// Events, user profiles and group profiles, triggered together.
    All,
}

/// The bench's settings, or none for the demo.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bench {
    cap: Option<u32>,
    objects: BenchObjects,
    replicas: u8,
}

impl BenchArgs {
    pub(crate) fn split(self) -> (DemoArgs, Bench) {
        (
            self.demo,
            Bench {
                cap: self.cap,
                objects: self.objects,
                replicas: self.replicas,
            },
        )
    }
}

#[derive(Serialize)]
struct Report {
    /// One entry per activation run: events, then user profiles, then group profiles.
    objects: Vec<ObjectReport>,
    /// What the emulator holds at the end (when the demo started it).
    emulator: Option<EmulatorSummary>,
    seconds: f64,
    services: Vec<ServiceReport>,
    /// CPU-seconds the whole machine spent busy during the runs (`/proc/stat`).
    machine_cpu_seconds: Option<f64>,
    /// How the cap was kept (`bench --cap`).
    cap: Option<CapReport>,
}

/// What the emulator measured of one project under `bench --cap`.
#[derive(Serialize)]
struct CapReport {
    cap_per_second: u32,
    /// Records that reached the emulator (admitted or answered 429).
    records: u64,
    /// From the first arrival to one second after the last: the windows the records used.
    seconds: f64,
    records_per_second: f64,
    /// `records_per_second` as a share of the cap, in percent.
    cap_used_percent: f64,
    /// The most records that arrived within any one second.
    peak_records_per_second: u64,
    requests: u64,
    requests_429: u64,
    requests_429_percent: f64,
}

#[derive(Serialize)]
struct ObjectReport {
    object: &'static str,
    activation: &'static str,
    run: views::Run,
    failed_by_reason: Vec<views::ReasonCount>,
    failed_examples: Vec<views::FailedRecord>,
}

#[derive(Serialize)]
struct EmulatorSummary {
    events: Option<u64>,
    user_profiles: Option<u64>,
    group_profiles: Option<u64>,
}

#[derive(Serialize)]
struct ServiceReport {
    service: String,
    peak_rss_mib: Option<f64>,
    cpu_seconds: Option<f64>,
}

/// Runs the demo (`bench` is `None`) or the bench.
pub(crate) async fn run(
    args: DemoArgs,
    output: Output,
    bench_settings: Option<Bench>,
) -> anyhow::Result<()> {
    let bench = bench_settings.is_some();
    let say = |line: String| {
        if output == Output::Text {
            eprintln!("{line}");
        }
    };
    let state_db = seed::connect_creating(&args.database_url).await?;
    drop(state_db);
    let warehouse_db = seed::connect_creating(&args.warehouse_url).await?;
    say(format!(
        "seeding demo_events with {} rows in {}",
        args.rows,
        seed::redact(&args.warehouse_url)
    ));
    let invalid = seed::seed(&warehouse_db, args.rows).await?;
    say(format!(
        "  {invalid} of them break a Mixpanel rule on purpose"
    ));

    let log_dir = std::env::temp_dir().join(if bench {
        "mixsync-bench"
    } else {
        "mixsync-demo"
    });
    let grpc_port = stack::free_port()?;
    let api_token = random_token();
    // The services get the user's key when one is set, so a demo against a state database that
    // already holds secrets can read them.
    let secret_key = mixsync_config::Env::process()
        .secret(mixsync_config::SECRET_KEY_VAR)?
        .map_or_else(
            || "mixsync-demo-only-secret-key".to_owned(),
            |key| key.expose_secret().to_owned(),
        );
    let mut env: Vec<(String, String)> = vec![
        ("MIXSYNC_DATABASE_URL".into(), args.database_url.clone()),
        ("MIXSYNC_AMQP_URL".into(), args.amqp_url.clone()),
        ("MIXSYNC_GRPC_ADDR".into(), format!("127.0.0.1:{grpc_port}")),
        ("MIXSYNC_API_TOKEN".into(), api_token.clone()),
        ("MIXSYNC_SECRET_KEY".into(), secret_key),
        (
            "MIXSYNC_QUEUE_PREFIX".into(),
            if bench { "bench." } else { "demo." }.into(),
        ),
    ];
    if std::env::var_os("RUST_LOG").is_none() {
        env.push(("RUST_LOG".into(), "info".into()));
    }
    match bench_settings.and_then(|b| b.cap) {
        Some(cap) => {
            env.push(("MIXSYNC_EMULATOR_RATE_LIMIT".into(), "on".into()));
            env.push(("MIXSYNC_EMULATOR_EVENTS_PER_SEC".into(), cap.to_string()));
        }
        None if bench => {
            env.push(("MIXSYNC_LOADER_RATE_LIMIT".into(), "off".into()));
            env.push(("MIXSYNC_EMULATOR_RATE_LIMIT".into(), "off".into()));
        }
        None => {}
    }
    let mut processes = Vec::new();
    let target_url = match &args.target_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let port = if stack::port_in_use(3900) {
                stack::free_port()?
            } else {
                3900
            };
            let mut emulator_env = env.clone();
            emulator_env.push(("MIXSYNC_EMULATOR_ADDR".into(), format!("127.0.0.1:{port}")));
            processes.push(stack::spawn(Service::Emulator, &emulator_env, &log_dir)?);
            format!("http://127.0.0.1:{port}")
        }
    };
    let replicas = bench_settings.map_or(1, |b| usize::from(b.replicas));
    for service in PIPELINE {
        let n = match service {
            Service::LoaderEvents | Service::LoaderUsers => replicas,
            _ => 1,
        };
        for replica in 1..=n {
            processes.push(stack::spawn_replica(service, replica, &env, &log_dir)?);
        }
    }
    let mut stack = Stack {
        processes,
        grpc_url: format!("http://127.0.0.1:{grpc_port}"),
        api_token,
    };
    say(format!(
        "started the emulator and every service: control, extractor, mapper, loader-events, loader-users, loader-groups (logs in {})",
        log_dir.display()
    ));
    let result = drive(&mut stack, &args, &target_url, output, bench_settings).await;
    let services: Vec<ServiceReport> = stack
        .processes
        .iter()
        .map(|p| ServiceReport {
            service: p.name.clone(),
            peak_rss_mib: p
                .child
                .id()
                .and_then(stack::peak_rss_kib)
                .map(|kib| kib as f64 / 1024.0),
            cpu_seconds: p.child.id().and_then(stack::cpu_seconds),
        })
        .collect();
    stack.stop().await;
    let (mut report, ok) = result?;
    report.services = services;
    output.print(&report, || text(&report, bench));
    match ok {
        Ok(()) => Ok(()),
        Err(message) => anyhow::bail!(message),
    }
}

/// Sets up the resources, runs the activations (all three objects for the demo and
/// `bench --objects all`, events only for the bench) and gathers the report; `Ok` when every
/// run ended SUCCEEDED or PARTIALLY_FAILED (the demo's invalid rows are expected failures).
async fn drive(
    stack: &mut Stack,
    args: &DemoArgs,
    target_url: &str,
    output: Output,
    bench_settings: Option<Bench>,
) -> anyhow::Result<(Report, Result<(), String>)> {
    let bench = bench_settings.is_some();
    let cap = bench_settings.and_then(|b| b.cap);
    let mut control = stack.connect(Duration::from_secs(60)).await?;
    let warehouse_id = ensure_warehouse(&mut control, &args.warehouse_url).await?;
    let target_id = ensure_target(&mut control, target_url, cap.unwrap_or(0)).await?;
    let mut specs = vec![("events", EVENTS, events_spec(&warehouse_id, &target_id))];
    if bench_settings.is_none_or(|b| b.objects == BenchObjects::All) {
        specs.push((
            "user_profiles",
            USERS,
            users_spec(&warehouse_id, &target_id),
        ));
        specs.push((
            "group_profiles",
            COMPANIES,
            companies_spec(&warehouse_id, &target_id),
        ));
    }
    let mut activations = Vec::new();
    for (object, name, spec) in specs {
        activations.push((object, name, ensure_activation(&mut control, spec).await?));
    }
    if bench && args.target_url.is_none() {
        reqwest::Client::new()
            .post(format!("{target_url}/_emulator/reset"))
            .send()
            .await
            .context("cannot reset the emulator")?;
    }
    let started = Instant::now();
    let busy_before = stack::machine_busy_seconds();
    let mut runs = Vec::new();
    for (object, name, activation_id) in activations {
        let run = control
            .trigger_run(pb::TriggerRunRequest {
                activation_id,
                // The demo's own emulator starts empty each time: resend everything so it mirrors
                // the warehouse. Against a given target, a run sends only what changed.
                full_resync: args.target_url.is_none(),
            })
            .await
            .map_err(status_error)?
            .into_inner()
            .run
            .unwrap_or_default();
        runs.push((object, name, run));
    }
    let mut objects = Vec::new();
    let mut ok = Ok(());
    for (object, name, run) in runs {
        if output == Output::Text {
            eprintln!("{name}:");
        }
        let run = follow(&mut control, &run.id, output).await?;
        if !matches!(
            pb::RunState::try_from(run.state),
            Ok(pb::RunState::Succeeded | pb::RunState::PartiallyFailed)
        ) && ok.is_ok()
        {
            ok = Err(format!(
                "{name}: run {} ended {}",
                run.id,
                views::state_name(run.state)
            ));
        }
        let (failed_by_reason, failed_examples) = failures(&mut control, &run.id).await;
        objects.push(ObjectReport {
            object,
            activation: name,
            run: views::Run::from(&run),
            failed_by_reason,
            failed_examples,
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    let machine_cpu_seconds = busy_before
        .zip(stack::machine_busy_seconds())
        .map(|(before, after)| after - before);
    let cap = match cap {
        Some(cap) if args.target_url.is_none() => cap_report(target_url, cap).await,
        _ => None,
    };
    let emulator = if args.target_url.is_none() {
        Some(emulator_summary(target_url).await)
    } else {
        None
    };
    Ok((
        Report {
            objects,
            emulator,
            seconds,
            services: Vec::new(),
            machine_cpu_seconds,
            cap,
        },
        ok,
    ))
}

fn random_token() -> String {
    use rand::Rng;
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn ensure_warehouse(control: &mut Control, url: &str) -> anyhow::Result<String> {
    if let Some(w) = find_warehouse(control, WAREHOUSE).await? {
        return Ok(w.id);
    }
    let created = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(pb::WarehouseSpec {
                name: WAREHOUSE.into(),
                dsn: url.into(),
                ..Default::default()
            }),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    Ok(created.warehouse.unwrap_or_default().id)
}

/// The demo target at `base_url` with a cap of `rate_limit_per_second` (0: Mixpanel's 30000).
async fn ensure_target(
    control: &mut Control,
    base_url: &str,
    rate_limit_per_second: u32,
) -> anyhow::Result<String> {
    let spec = pb::TargetSpec {
        name: TARGET.into(),
        project_id: PROJECT_ID.into(),
        residency: pb::Residency::Us as i32,
        base_url: base_url.into(),
        token: PROJECT_TOKEN.into(),
        service_account_username: SERVICE_ACCOUNT.into(),
        service_account_secret: SERVICE_ACCOUNT_SECRET.into(),
        allow_insecure_http: false,
        rate_limit_per_second,
    };
    let cap = if rate_limit_per_second == 0 {
        30_000 // what control stores for 0: Mixpanel's standard cap
    } else {
        rate_limit_per_second
    };
    match find_target(control, TARGET).await? {
        Some(t) if t.base_url == base_url && t.rate_limit_per_second == cap => Ok(t.id),
        Some(t) => {
            let updated = control
                .update_target(pb::UpdateTargetRequest {
                    id: t.id,
                    target: Some(spec),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            Ok(updated.target.unwrap_or_default().id)
        }
        None => {
            let created = control
                .create_target(pb::CreateTargetRequest { target: Some(spec) })
                .await
                .map_err(status_error)?
                .into_inner();
            Ok(created.target.unwrap_or_default().id)
        }
    }
}

fn column(name: &str) -> Option<pb::FieldSource> {
    Some(pb::FieldSource {
        source: Some(pb::field_source::Source::Column(name.into())),
    })
}

fn property(column: &str, name: &str, operation: pb::ProfileOperation) -> pb::PropertyMapping {
    pb::PropertyMapping {
        column: column.into(),
        property: name.into(),
        operation: operation as i32,
        unset_when_null: false,
    }
}

fn spec(
    name: &str,
    warehouse_id: &str,
    target_id: &str,
    query: &str,
    object: pb::MixpanelObject,
    mapping: pb::FieldMapping,
) -> pb::ActivationSpec {
    let behaviour = match object {
        pb::MixpanelObject::Events => pb::SyncBehaviour::Insert,
        _ => pb::SyncBehaviour::Upsert,
    };
    pb::ActivationSpec {
        name: name.into(),
        warehouse_id: warehouse_id.into(),
        target_id: target_id.into(),
        query: query.into(),
        object: object as i32,
        sync_behaviour: behaviour as i32,
        mapping: Some(mapping),
        options: Some(pb::ActivationOptions {
            ip_zero: Some(true),
            ignore_time: false,
            max_attempts: 0,
        }),
        schedule: None,
    }
}

fn events_spec(warehouse_id: &str, target_id: &str) -> pb::ActivationSpec {
    use pb::ProfileOperation::Unspecified as Plain;
    let mapping = pb::FieldMapping {
        event_name: column("event"),
        time: column("occurred_at"),
        distinct_id: column("user_id"),
        insert_id: Some(pb::FieldSource {
            source: Some(pb::field_source::Source::Derive(pb::DerivedSource {
                columns: vec!["id".into()],
            })),
        }),
        properties: ["plan", "amount", "country", "attributes"]
            .map(|c| property(c, c, Plain))
            .to_vec(),
        ..Default::default()
    };
    spec(
        EVENTS,
        warehouse_id,
        target_id,
        seed::QUERY,
        pb::MixpanelObject::Events,
        mapping,
    )
}

fn users_spec(warehouse_id: &str, target_id: &str) -> pb::ActivationSpec {
    use pb::ProfileOperation::{Set, SetOnce, Union};
    let mapping = pb::FieldMapping {
        distinct_id: column("user_id"),
        properties: vec![
            property("email", "$email", Set),
            property("name", "$name", Set),
            property("plan", "plan", Set),
            property("company_id", "company_id", Set),
            property("signed_up_at", "signed_up_at", SetOnce),
            property("tags", "tags", Union),
        ],
        ..Default::default()
    };
    spec(
        USERS,
        warehouse_id,
        target_id,
        seed::USERS_QUERY,
        pb::MixpanelObject::UserProfiles,
        mapping,
    )
}

fn companies_spec(warehouse_id: &str, target_id: &str) -> pb::ActivationSpec {
    use pb::ProfileOperation::Set;
    let mapping = pb::FieldMapping {
        group_key: Some(pb::FieldSource {
            source: Some(pb::field_source::Source::Constant("company_id".into())),
        }),
        group_id: column("company_id"),
        properties: vec![
            property("name", "$name", Set),
            property("industry", "industry", Set),
            property("employees", "employees", Set),
        ],
        ..Default::default()
    };
    spec(
        COMPANIES,
        warehouse_id,
        target_id,
        seed::COMPANIES_QUERY,
        pb::MixpanelObject::GroupProfiles,
        mapping,
    )
}

/// Finds the activation by name and brings it to `spec`, or creates it.
async fn ensure_activation(
    control: &mut Control,
    spec: pb::ActivationSpec,
) -> anyhow::Result<String> {
    match find_activation(control, &spec.name).await? {
        Some(a) => {
            let same = a.query == spec.query
                && a.warehouse_id == spec.warehouse_id
                && a.target_id == spec.target_id
                && a.object == spec.object
                && a.mapping == spec.mapping;
            if !same {
                control
                    .update_activation(pb::UpdateActivationRequest {
                        id: a.id.clone(),
                        activation: Some(spec),
                    })
                    .await
                    .map_err(status_error)?;
            }
            Ok(a.id)
        }
        None => {
            let created = control
                .create_activation(pb::CreateActivationRequest {
                    activation: Some(spec),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            Ok(created.activation.unwrap_or_default().id)
        }
    }
}

/// Failed records of the run: counts by reason and a few examples (empty if the API has none).
async fn failures(
    control: &mut Control,
    run_id: &str,
) -> (Vec<views::ReasonCount>, Vec<views::FailedRecord>) {
    match control
        .list_failed_records(pb::ListFailedRecordsRequest {
            run_id: run_id.into(),
            page_size: 5,
            ..Default::default()
        })
        .await
    {
        Ok(response) => {
            let page = response.into_inner();
            (
                page.counts_by_reason
                    .iter()
                    .map(views::ReasonCount::from)
                    .collect(),
                page.records.iter().map(views::FailedRecord::from).collect(),
            )
        }
        Err(status) => {
            tracing::debug!(%status, "failed records are not available");
            (Vec::new(), Vec::new())
        }
    }
}

/// How the project's cap was kept, from the emulator's stats.
async fn cap_report(base_url: &str, cap: u32) -> Option<CapReport> {
    let stats: serde_json::Value = reqwest::get(format!("{base_url}/_emulator/stats"))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let project = &stats["projects"][PROJECT_ID];
    let records = project["records"].as_u64()?;
    let span_ms = project["last_arrival_ms"]
        .as_u64()?
        .saturating_sub(project["first_arrival_ms"].as_u64()?);
    // The last arrival's records use the second that starts with it.
    let seconds = span_ms as f64 / 1000.0 + 1.0;
    let by_status = |status: Option<&str>| -> u64 {
        stats["requests"]
            .as_object()
            .into_iter()
            .flat_map(|endpoints| endpoints.iter())
            .filter(|(endpoint, _)| *endpoint != "me")
            .flat_map(|(_, statuses)| statuses.as_object().into_iter().flatten())
            .filter(|(s, _)| status.is_none_or(|want| *s == want))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    };
    let requests = by_status(None);
    let requests_429 = by_status(Some("429"));
    let records_per_second = records as f64 / seconds;
    Some(CapReport {
        cap_per_second: cap,
        records,
        seconds,
        records_per_second,
        cap_used_percent: 100.0 * records_per_second / f64::from(cap),
        peak_records_per_second: project["peak_records_per_second"].as_u64()?,
        requests,
        requests_429,
        requests_429_percent: 100.0 * requests_429 as f64 / requests.max(1) as f64,
    })
}

async fn emulator_summary(base_url: &str) -> EmulatorSummary {
    async fn total(url: String) -> Option<u64> {
        let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
        body.get("total").and_then(serde_json::Value::as_u64)
    }
    EmulatorSummary {
        events: emulator_events(base_url).await,
        user_profiles: total(format!(
            "{base_url}/_emulator/profiles?project_id={PROJECT_ID}"
        ))
        .await,
        group_profiles: total(format!(
            "{base_url}/_emulator/groups?project_id={PROJECT_ID}&group_key=company_id"
        ))
        .await,
    }
}

async fn emulator_events(base_url: &str) -> Option<u64> {
    let url = format!("{base_url}/_emulator/events?project_id={PROJECT_ID}&limit=0");
    let body: serde_json::Value = reqwest::get(url).await.ok()?.json().await.ok()?;
    body.get("total").and_then(serde_json::Value::as_u64)
}

fn text(report: &Report, bench: bool) -> String {
    let mut out = String::new();
    for object in &report.objects {
        out.push_str(&format!(
            "\n== {} ({}) ==\n",
            object.activation, object.object
        ));
        out.push_str(&object.run.report());
        if !object.failed_by_reason.is_empty() {
            out.push_str("failed records by reason:\n");
            let rows: Vec<Vec<String>> = object
                .failed_by_reason
                .iter()
                .map(|r| {
                    vec![
                        r.count.to_string(),
                        r.stage.to_owned(),
                        r.field.clone(),
                        r.rule.clone(),
                    ]
                })
                .collect();
            out.push_str(&indent(&table(&["COUNT", "STAGE", "FIELD", "RULE"], &rows)));
            out.push_str("examples:\n");
            for f in &object.failed_examples {
                out.push_str(&format!("  row {}: {}\n", f.row_number, f.message));
            }
        }
    }
    if let Some(emulator) = &report.emulator {
        let n = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |n| n.to_string());
        out.push_str(&format!(
            "\nthe emulator holds {} events, {} user profiles, {} company profiles\n",
            n(emulator.events),
            n(emulator.user_profiles),
            n(emulator.group_profiles)
        ));
    }
    if bench && let Some(events) = report.objects.first() {
        let c = events.run.counts;
        out.push_str(&format!(
            "\nbench: {} rows in {:.2}s end to end = {:.0} events/s loaded\n",
            c.extracted,
            report.seconds,
            c.loaded as f64 / report.seconds.max(0.001)
        ));
    }
    if let Some(cap) = &report.cap {
        out.push_str(&format!(
            "\ncap {} records/s: {} records arrived over {:.2}s = {:.0}/s = {:.1}% of the cap; \
             busiest second {}; {} of {} requests answered 429 ({:.2}%)\n",
            cap.cap_per_second,
            cap.records,
            cap.seconds,
            cap.records_per_second,
            cap.cap_used_percent,
            cap.peak_records_per_second,
            cap.requests_429,
            cap.requests,
            cap.requests_429_percent
        ));
    }
    if bench && let Some(cpu) = report.machine_cpu_seconds {
        out.push_str(&format!(
            "whole machine: {cpu:.1} CPU-seconds busy during the runs (/proc/stat)\n"
        ));
    }
    if bench || !report.services.is_empty() {
        let rows: Vec<Vec<String>> = report
            .services
            .iter()
            .map(|s| {
                vec![
                    s.service.to_owned(),
                    s.peak_rss_mib
                        .map(|m| format!("{m:.1}"))
                        .unwrap_or_else(|| "-".into()),
                    s.cpu_seconds
                        .map(|c| format!("{c:.2}"))
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        out.push_str("\nper service (since it started):\n");
        out.push_str(&indent(&table(
            &["SERVICE", "PEAK RSS (MiB)", "CPU (s)"],
            &rows,
        )));
    }
    out
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}
