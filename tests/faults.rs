//! Riding out faults (issue 12, docs/operations.md "Faults"): PostgreSQL and RabbitMQ
//! restarted mid-run, every service SIGKILLed mid-run and started again, a run whose
//! ExtractRequest was never published. These run against the fault tests' own PostgreSQL
//! cluster and RabbitMQ node (`.ci/fault-servers`, ports 5443 and 5673), which they restart,
//! so no other test is disturbed; nextest runs them one at a time (`.config/nextest.toml`).
//! In every case the run must end on its own with `extracted = skipped + loaded + failed` and
//! the emulator must hold every row exactly once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use mixsync_e2e::*;
use mixsync_proto::v1 as pb;
use mixsync_test_support::FaultServers;

const ROWS: i64 = 20_000;
const QUERY: &str = "SELECT id, user_id, event, ts FROM events_src";
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// A world on the fault servers, with loading slowed (emulator latency) and the extractor's
/// rows in flight bounded, so a run is mid-stream, holding its warehouse query, for a while.
async fn world(name: &str) -> anyhow::Result<(World, FaultServers)> {
    let servers = tokio::task::spawn_blocking(FaultServers::ensure).await?;
    let mut world = World::new_on(name, &servers.pg_server_url(), &servers.amqp_url()).await?;
    for (k, v) in [
        ("MIXSYNC_EXTRACT_BATCH_ROWS", "250"),
        ("MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS", "2000"),
        ("MIXSYNC_LOADER_MAX_BATCH_EVENTS", "250"),
        ("MIXSYNC_SCHEDULER_TICK", "500ms"),
    ] {
        world.env.push((k.into(), v.into()));
    }
    let db = world.warehouse().await?;
    db.batch_execute(&format!(
        "CREATE TABLE events_src (id bigint PRIMARY KEY, user_id text, event text, ts bigint);
         INSERT INTO events_src
         SELECT g, 'user-' || (g % 997), 'Order Placed', 1700000000 + g
         FROM generate_series(1, {ROWS}) AS g"
    ))
    .await?;
    world.drop_warehouse_connection();
    Ok((world, servers))
}

/// Starts everything, creates the activation and triggers a run; returns control and the run.
async fn start_run(world: &mut World) -> anyhow::Result<(Control, String)> {
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(world, &mut control).await?;
    set_faults(world, serde_json::json!({"latency_ms": 40})).await?;
    let activation = events_activation(&mut control, "orders", &wh, &target, QUERY, &[]).await?;
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation.id,
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .context("no run")?;
    Ok((control, run.id))
}

/// Polls the run until `loaded` reaches `at_least` (the run is well under way).
async fn wait_until_loaded(
    control: &mut Control,
    run_id: &str,
    at_least: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let run = get_run(control, run_id).await?;
        if counts(&run).loaded >= at_least {
            if is_terminal(run.state) {
                bail!("the run ended before the fault: {run:?}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("run {run_id} never loaded {at_least} rows: {run:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits for the run to end, reconnecting to control as often as needed (it may be
/// restarting, or waiting for its database).
async fn wait_for_end_through_faults(world: &mut World, run_id: &str) -> anyhow::Result<pb::Run> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Ok(mut control) = world.control().await
            && let Ok(run) = get_run(&mut control, run_id).await
            && is_terminal(run.state)
        {
            return Ok(run);
        }
        if Instant::now() > deadline {
            bail!("run {run_id} did not end in {RUN_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The run ended SUCCEEDED, its counts add up, and the emulator holds every row once.
async fn assert_whole(world: &World, run: &pb::Run) -> anyhow::Result<()> {
    let c = counts(run);
    assert_eq!(
        run.state,
        pb::RunState::Succeeded as i32,
        "{run:?}\ncontrol:\n{}\nextractor:\n{}",
        world.log("control"),
        world.log("extractor")
    );
    assert_eq!(c.extracted, c.skipped + c.loaded + c.failed, "{run:?}");
    assert_eq!(c.failed, 0, "{run:?}");
    let events = emulator_events(world).await?;
    let ids: HashSet<String> = events
        .iter()
        .map(|e| {
            e["properties"]["$insert_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len() as i64, ROWS, "distinct events in the emulator");
    assert_eq!(
        events.len() as i64,
        ROWS,
        "events in the emulator (no duplicate)"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_run_is_ridden_out_by_a_second_attempt() -> anyhow::Result<()> {
    let (mut world, servers) = world("faults-postgres").await?;
    let (mut control, run_id) = start_run(&mut world).await?;
    wait_until_loaded(&mut control, &run_id, 2_000).await?;
    tokio::task::spawn_blocking(move || servers.restart_postgres()).await?;
    let run = wait_for_end_through_faults(&mut world, &run_id).await?;
    assert_whole(&world, &run).await?;
    // The restart cut the extractor's query: a second attempt read it again.
    assert!(run.attempt >= 2, "{run:?}");
    assert!(!run.attempt_error.is_empty(), "{run:?}");
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_mid_run_is_ridden_out() -> anyhow::Result<()> {
    let (mut world, servers) = world("faults-rabbitmq").await?;
    let (mut control, run_id) = start_run(&mut world).await?;
    wait_until_loaded(&mut control, &run_id, 2_000).await?;
    tokio::task::spawn_blocking(move || servers.restart_rabbitmq()).await?;
    let run = wait_for_end_through_faults(&mut world, &run_id).await?;
    assert_whole(&world, &run).await?;
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_killed_mid_run_and_started_again_and_the_watch_survives()
-> anyhow::Result<()> {
    let (mut world, _servers) = world("faults-kill").await?;
    let (mut control, run_id) = start_run(&mut world).await?;
    // The CLI watches the run from start to end, through a control restart.
    let watch = tokio::process::Command::new(binary()?)
        .args(["run", "watch", &run_id])
        .env(
            "MIXSYNC_SERVER",
            format!("http://127.0.0.1:{}", world.grpc_port),
        )
        .env("MIXSYNC_API_TOKEN", &world.token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut loaded = 2_000;
    for service in ["mapper", "loader-events", "control", "extractor"] {
        wait_until_loaded(&mut control, &run_id, loaded).await?;
        world.kill(service).await?;
        world.start(service)?;
        control = world.control().await?;
        loaded += 2_000;
    }
    let run = wait_for_end_through_faults(&mut world, &run_id).await?;
    assert_whole(&world, &run).await?;
    // Killing the extractor cost an attempt.
    assert!(run.attempt >= 2, "{run:?}");
    let output = tokio::time::timeout(Duration::from_secs(60), watch.wait_with_output()).await??;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "watch failed:\n{stderr}");
    assert!(
        stdout.contains("SUCCEEDED"),
        "no final report:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("reconnecting"),
        "the watch never said it reconnected:\n{stderr}"
    );
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_whose_request_was_never_published_is_relayed() -> anyhow::Result<()> {
    let (mut world, _servers) = world("faults-outbox").await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation = events_activation(&mut control, "orders", &wh, &target, QUERY, &[]).await?;
    // As if control died between committing the run and publishing its request: the run is
    // committed straight in the state store, and nothing is published.
    let state = mixsync_state::StateStore::connect(
        &format!("{}/{}", world.pg, world.state_db),
        &"e2e-secret-key".to_owned().into(),
    )
    .await?;
    let run = state.create_run(&activation.id, false, None).await?;
    assert_eq!(run.state, mixsync_state::RunState::Queued);
    let run = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_whole(&world, &run).await?;
    assert!(
        world.log_lines("control", "published it now") >= 1,
        "{}",
        world.log("control")
    );
    world.cleanup().await;
    Ok(())
}
