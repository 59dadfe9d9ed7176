//! Issue 3's acceptance tests: events end to end through the real `mixsync serve …` processes, the real
//! Postgres and RabbitMQ, with the emulator as Mixpanel.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mixsync_e2e::*;
use mixsync_proto::v1 as pb;

const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// `events_src` with `rows` rows; `id` is the row number (the query orders by it). Rows whose
/// `id % 500` is 1..=5 break one Mixpanel rule each, in five different ways, when `with_invalid`.
async fn seed(world: &mut World, rows: i64, with_invalid: bool) -> anyhow::Result<()> {
    let invalid = if with_invalid { "true" } else { "false" };
    let db = world.warehouse().await?;
    db.batch_execute(
        "CREATE TABLE events_src (
            id bigint PRIMARY KEY, user_id text, event text, ts bigint, plan text, meta jsonb)",
    )
    .await?;
    db.execute(
        &format!(
            "INSERT INTO events_src
             SELECT g,
                    CASE WHEN {invalid} AND g % 500 = 1 THEN 'undefined' ELSE 'user-' || (g % 997) END,
                    CASE WHEN {invalid} AND g % 500 = 4 THEN '' ELSE 'Order Placed' END,
                    CASE WHEN {invalid} AND g % 500 = 2 THEN NULL
                         WHEN {invalid} AND g % 500 = 3 THEN 1000
                         ELSE 1700000000 + g END,
                    (ARRAY['free','pro','team'])[1 + g % 3],
                    CASE WHEN {invalid} AND g % 500 = 5 THEN '{{\"a\":{{\"b\":{{\"c\":{{\"d\":{{\"e\":1}}}}}}}}}}'::jsonb
                         ELSE jsonb_build_object('n', g) END
             FROM generate_series(1::bigint, $1::bigint) AS g"
        ),
        &[&rows],
    )
    .await?;
    Ok(())
}

const QUERY: &str = "SELECT id, user_id, event, ts, plan, meta FROM events_src ORDER BY id";

/// Distinct `$insert_id`s the emulator stores, and the total stored.
async fn stored(world: &World) -> anyhow::Result<(HashSet<String>, usize)> {
    let events = emulator_events(world).await?;
    let ids = events
        .iter()
        .filter_map(|e| e["properties"]["$insert_id"].as_str().map(str::to_owned))
        .collect();
    Ok((ids, events.len()))
}

fn assert_adds_up(run: &pb::Run) {
    let c = counts(run);
    assert_eq!(
        c.extracted,
        c.skipped + c.loaded + c.failed,
        "counts do not add up: {c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_rows_with_one_percent_invalid() -> anyhow::Result<()> {
    let mut world = World::new("100k").await?;
    seed(&mut world, 100_000, true).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation = events_activation(
        &mut control,
        "orders",
        &wh,
        &target,
        QUERY,
        &["plan", "meta"],
    )
    .await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;

    assert_eq!(
        run.state,
        pb::RunState::PartiallyFailed as i32,
        "{run:?}\n{}",
        world.log("control")
    );
    assert_adds_up(&run);
    let c = counts(&run);
    assert_eq!((c.extracted, c.loaded, c.failed), (100_000, 99_000, 1_000));

    let (ids, total) = stored(&world).await?;
    assert_eq!(
        (ids.len(), total),
        (99_000, 99_000),
        "each valid event exactly once"
    );

    let (failed, by_reason) = failed_records(&mut control, &run.id).await?;
    assert_eq!(failed.len(), 1_000);
    let expected_column = |row: u64| match row % 500 {
        1 => "user_id",
        2 | 3 => "ts",
        4 => "event",
        5 => "meta",
        other => panic!("row {row} (kind {other}) should not have failed"),
    };
    let mut kinds: HashMap<(String, String), usize> = HashMap::new();
    for f in &failed {
        let column = expected_column(f.row_number);
        assert!(!f.rule.is_empty(), "failed record without a rule: {f:?}");
        assert!(
            f.message.contains(column),
            "row {}: the message should name column `{column}`: {}",
            f.row_number,
            f.message
        );
        *kinds.entry((f.field.clone(), f.rule.clone())).or_default() += 1;
    }
    assert_eq!(kinds.len(), 5, "five kinds of failure: {kinds:?}");
    assert!(kinds.values().all(|n| *n == 200), "{kinds:?}");
    assert_eq!(
        by_reason.iter().map(|r| r.count).sum::<u64>(),
        1_000,
        "{by_reason:?}"
    );
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_an_activation_twice_leaves_no_duplicates() -> anyhow::Result<()> {
    let mut world = World::new("twice").await?;
    seed(&mut world, 5_000, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation =
        events_activation(&mut control, "orders", &wh, &target, QUERY, &["plan"]).await?;
    for round in 0..2 {
        let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
        assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
        assert_adds_up(&run);
        // The second run finds every row unchanged in the sync snapshot: nothing is sent.
        let c = counts(&run);
        let expected = if round == 0 { (0, 5_000) } else { (5_000, 0) };
        assert_eq!((c.skipped, c.loaded), expected, "run {round}: {c:?}");
        let (ids, total) = stored(&world).await?;
        assert_eq!((ids.len(), total), (5_000, 5_000));
    }
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_pointed_at_another_project_starts_afresh() -> anyhow::Result<()> {
    let mut world = World::new("destination").await?;
    seed(&mut world, 4_930, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation =
        events_activation(&mut control, "orders", &wh, &target, QUERY, &["plan"]).await?;
    let first = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(counts(&first).loaded, 4_930, "{first:?}");
    assert!(
        first.full_sync_reason.is_empty(),
        "a first sync needs no reason: {first:?}"
    );

    // A second emulator stands for another Mixpanel project; the target now points there.
    let port = free_port();
    let other = format!("http://127.0.0.1:{port}");
    let mut second = tokio::process::Command::new(binary()?)
        .args(["serve", "emulator"])
        .env("MIXSYNC_EMULATOR_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{other}/_emulator/stats"))
        .await
        .is_err()
    {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the second emulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    control
        .update_target(pb::UpdateTargetRequest {
            id: target.clone(),
            target: Some(pb::TargetSpec {
                name: "emulator".into(),
                project_id: "1".into(),
                residency: pb::Residency::Us as i32,
                base_url: other.clone(),
                token: "demo-token".into(),
                service_account_username: "demo-sa".into(),
                service_account_secret: "demo-secret".into(),
                allow_insecure_http: false,
                rate_limit_per_second: 0,
            }),
        })
        .await?;
    let again = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(again.state, pb::RunState::Succeeded as i32, "{again:?}");
    assert_adds_up(&again);
    assert_eq!(
        (counts(&again).skipped, counts(&again).loaded),
        (0, 4_930),
        "{again:?}"
    );
    assert!(
        again.full_sync_reason.contains("destination changed"),
        "{again:?}"
    );
    let body: serde_json::Value = reqwest::get(format!("{other}/_emulator/events?project_id=1"))
        .await?
        .json()
        .await?;
    let events = body["events"].as_array().cloned().unwrap_or_default();
    let ids: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["properties"]["$insert_id"].as_str())
        .collect();
    assert_eq!((ids.len(), events.len()), (4_930, 4_930));
    // The next run is incremental again, against the new project.
    let third = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(
        (counts(&third).skipped, counts(&third).loaded),
        (4_930, 0),
        "{third:?}"
    );
    assert!(third.full_sync_reason.is_empty(), "{third:?}");
    second.start_kill()?;
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_slow_the_run_but_lose_and_duplicate_nothing() -> anyhow::Result<()> {
    let mut world = World::new("faults").await?;
    // The emulator's own rate limit is low and the loader's is off, so Mixpanel may answer 429s of
    // its own; small requests (200 events, ~100 of them) make the injected faults below — 20% of
    // requests, a quarter of those 429s, the rest 503s — certain to include both kinds.
    world
        .env
        .push(("MIXSYNC_EMULATOR_EVENTS_PER_SEC".into(), "4000".into()));
    world
        .env
        .push(("MIXSYNC_LOADER_RATE_LIMIT".into(), "off".into()));
    world
        .env
        .push(("MIXSYNC_LOADER_MAX_BATCH_EVENTS".into(), "200".into()));
    seed(&mut world, 20_000, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    set_faults(
        &world,
        serde_json::json!({
            "error_rate": 0.2,
            "error_statuses": [503, 503, 503, 429],
            "endpoints": ["import"]
        }),
    )
    .await?;
    let activation =
        events_activation(&mut control, "orders", &wh, &target, QUERY, &["plan"]).await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(
        run.state,
        pb::RunState::Succeeded as i32,
        "{run:?}\n{}",
        world.log("loader-events")
    );
    assert_adds_up(&run);
    assert_eq!(counts(&run).loaded, 20_000);
    let (ids, total) = stored(&world).await?;
    assert_eq!((ids.len(), total), (20_000, 20_000));
    let stats = emulator_stats(&world).await?;
    let text = stats.to_string();
    assert!(
        text.contains("503"),
        "the emulator should have answered 503s: {text}"
    );
    assert!(
        text.contains("429"),
        "the emulator should have answered 429s: {text}"
    );
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loader_killed_mid_run_and_restarted_completes_the_run() -> anyhow::Result<()> {
    let mut world = World::new("sigkill").await?;
    // Slow Mixpanel down so the kill lands mid-run.
    world
        .env
        .push(("MIXSYNC_EMULATOR_EVENTS_PER_SEC".into(), "5000".into()));
    seed(&mut world, 50_000, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation =
        events_activation(&mut control, "orders", &wh, &target, QUERY, &["plan"]).await?;
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation.id.clone(),
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .expect("a run");
    loop {
        let now = get_run(&mut control, &run.id).await?;
        assert!(
            !is_terminal(now.state),
            "the run ended before the kill: {now:?}"
        );
        if counts(&now).loaded >= 5_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.kill("loader-events").await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    world.start("loader-events")?;
    let run = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    assert_adds_up(&run);
    assert_eq!(counts(&run).loaded, 50_000);
    let (ids, total) = stored(&world).await?;
    assert_eq!((ids.len(), total), (50_000, 50_000));
    world.cleanup().await;
    Ok(())
}

/// The extractor acks its request when it takes the run's extraction lease, so a killed
/// extractor leaves nothing in the queue: control sees the lease expire (30 s) and queues the
/// extraction again; the new extractor reads from the start and every row counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extractor_killed_mid_extraction_is_replaced_and_the_run_completes() -> anyhow::Result<()>
{
    let mut world = World::new("extractor-kill").await?;
    // Slow Mixpanel down and keep few rows in flight, so extraction is still going at the kill.
    world.env.extend([
        ("MIXSYNC_EMULATOR_EVENTS_PER_SEC".into(), "5000".into()),
        ("MIXSYNC_EXTRACT_MAX_IN_FLIGHT_ROWS".into(), "5000".into()),
        ("MIXSYNC_SCHEDULER_TICK".into(), "1s".into()),
    ]);
    seed(&mut world, 50_000, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation =
        events_activation(&mut control, "orders", &wh, &target, QUERY, &["plan"]).await?;
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation.id.clone(),
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .expect("a run");
    loop {
        let now = get_run(&mut control, &run.id).await?;
        assert!(
            counts(&now).extracted < 50_000,
            "extraction ended before the kill: {now:?}"
        );
        if counts(&now).loaded >= 5_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    world.kill("extractor").await?;
    world.start("extractor")?;
    let run = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_eq!(
        run.state,
        pb::RunState::Succeeded as i32,
        "{run:?}\n{}",
        world.log("control")
    );
    assert_adds_up(&run);
    // The second attempt read the query again: the rows the first one had read count again as
    // extracted, and those it loaded as skipped; every row is loaded once.
    let c = counts(&run);
    assert_eq!(c.loaded, 50_000, "{run:?}");
    assert_eq!(c.extracted, 50_000 + c.skipped, "{run:?}");
    assert!(c.skipped >= 5_000, "{run:?}");
    assert_eq!(run.attempt, 2, "{run:?}");
    assert!(
        run.attempt_error.contains("stopped renewing its lease"),
        "{run:?}"
    );
    assert!(
        world.log("control").contains("extraction queued again"),
        "control should say it queued the extraction again"
    );
    let (ids, total) = stored(&world).await?;
    assert_eq!((ids.len(), total), (50_000, 50_000));
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_queries_are_refused_by_the_read_only_transaction() -> anyhow::Result<()> {
    let mut world = World::new("readonly").await?;
    seed(&mut world, 100, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    for (name, query) in [
        (
            "delete",
            "DELETE FROM events_src RETURNING id, user_id, event, ts",
        ),
        (
            "update",
            "UPDATE events_src SET plan = 'x' RETURNING id, user_id, event, ts",
        ),
    ] {
        match events_activation(&mut control, name, &wh, &target, query, &[]).await {
            Err(status) => {
                assert!(
                    status.message().contains("read-only"),
                    "{name}: the refusal should say why: {status:?}"
                );
            }
            Ok(activation) => {
                let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
                assert_eq!(run.state, pb::RunState::Failed as i32, "{name}: {run:?}");
                assert!(
                    run.error_message.contains("read-only transaction"),
                    "{name}: the run should carry the database's message: {}",
                    run.error_message
                );
            }
        }
    }
    let db = world.warehouse().await?;
    let row = db
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE plan = 'x') FROM events_src",
            &[],
        )
        .await?;
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (100, 0),
        "the table is untouched"
    );
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_an_unreachable_warehouse_fail_the_run_with_the_reason()
-> anyhow::Result<()> {
    let mut world = World::new("refused").await?;
    seed(&mut world, 1_000, false).await?;
    let mut control = world.start_all().await?;
    let (wh, _) = warehouse_and_target(&world, &mut control).await?;
    // The viewer account passes TestTarget (it can read the project) but may not import: 403.
    let viewer = control
        .create_target(pb::CreateTargetRequest {
            target: Some(pb::TargetSpec {
                name: "viewer".into(),
                project_id: "1".into(),
                residency: pb::Residency::Us as i32,
                base_url: world.emulator_url(),
                token: "demo-token".into(),
                service_account_username: "demo-viewer".into(),
                service_account_secret: "demo-viewer-secret".into(),
                allow_insecure_http: false,
                rate_limit_per_second: 0,
            }),
        })
        .await?
        .into_inner()
        .target
        .expect("a target");
    let activation =
        events_activation(&mut control, "refused", &wh, &viewer.id, QUERY, &[]).await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::Failed as i32, "{run:?}");
    assert!(
        run.error_message.contains("demo-viewer") && run.error_message.contains("Owner or Admin"),
        "the reason names the account and Mixpanel's answer: {}",
        run.error_message
    );
    // The failing run drained what was in flight: its counts add up, nothing was loaded, and
    // the records refused with it are failed records carrying the run's reason (to replay once
    // the credentials are fixed).
    assert_adds_up(&run);
    assert_eq!(counts(&run).loaded, 0, "{run:?}");
    assert_eq!(emulator_events(&world).await?.len(), 0);
    let (failed, _) = failed_records(&mut control, &run.id).await?;
    assert_eq!(failed.len() as u64, counts(&run).failed, "{run:?}");
    assert!(
        failed
            .iter()
            .all(|f| f.rule == "run_failed" && f.message.contains("demo-viewer")),
        "{failed:?}"
    );

    // The warehouse goes away: the run fails with the reason, nothing is sent.
    let target = emulator_target(&mut control).await?;
    let activation = events_activation(&mut control, "gone", &wh, &target, QUERY, &[]).await?;
    let admin = tokio_postgres::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(admin.1);
    world.drop_warehouse_connection();
    admin
        .0
        .batch_execute(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            world.warehouse_db
        ))
        .await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::Failed as i32, "{run:?}");
    assert!(
        run.error_message.contains(&world.warehouse_db)
            || run.error_message.contains("does not exist"),
        "the reason says what is wrong: {}",
        run.error_message
    );
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_revoked_mid_run_fail_it_with_true_counts() -> anyhow::Result<()> {
    const ROWS: i64 = 30_000;
    let mut world = World::new("revoked").await?;
    seed(&mut world, ROWS, false).await?;
    let mut control = world.start_all().await?;
    let (wh, target_id) = warehouse_and_target(&world, &mut control).await?;
    // A low cap, so the run is still sending when the secret is revoked.
    cap_emulator_target(&world, &mut control, &target_id, 3_000).await?;
    let activation =
        events_activation(&mut control, "revoked", &wh, &target_id, QUERY, &[]).await?;
    let run = trigger(&mut control, &activation.id).await?;
    // Once Mixpanel holds some of the run, the service account's secret is revoked.
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stats = emulator_stats(&world).await?;
        if stats["records"]["accepted"].as_u64().unwrap_or(0) >= 3_000 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "nothing reached the emulator: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    http.put(format!("{}/_emulator/revoked", world.emulator_url()))
        .json(&serde_json::json!(["demo-sa"]))
        .send()
        .await?
        .error_for_status()?;

    let run = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::Failed as i32, "{run:?}");
    assert!(
        run.error_message.contains("demo-sa") && run.error_message.contains("Invalid credentials"),
        "{}",
        run.error_message
    );
    // True counts: what Mixpanel accepted is `loaded`, everything else extracted is failed with
    // the run's reason, and it all adds up.
    assert_adds_up(&run);
    let held = emulator_events(&world).await?.len() as u64;
    let c = counts(&run);
    assert_eq!(c.loaded, held, "{run:?}");
    assert!(c.loaded >= 3_000 && c.loaded < ROWS as u64, "{run:?}");
    let (failed, _) = failed_records(&mut control, &run.id).await?;
    assert_eq!(failed.len() as u64, c.failed, "{run:?}");
    assert!(c.failed > 0, "{run:?}");
    assert!(
        failed
            .iter()
            .all(|f| f.rule == "run_failed" && f.message.contains("Invalid credentials")),
        "{:?}",
        failed.first()
    );
    world.cleanup().await;
    Ok(())
}

/// The emulator target created by [`warehouse_and_target`] (by name).
async fn emulator_target(control: &mut Control) -> anyhow::Result<String> {
    let targets = control
        .list_targets(pb::ListTargetsRequest::default())
        .await?
        .into_inner()
        .targets;
    Ok(targets
        .into_iter()
        .find(|t| t.name == "emulator")
        .map(|t| t.id)
        .unwrap_or_default())
}
