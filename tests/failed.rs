//! Issue 5's failed-records acceptance tests: bad rows listed by reason, fixed by a mapping change
//! and replayed into Mixpanel exactly once; a poison message kept from the dead-letter queue.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mixsync_e2e::*;
use mixsync_proto::v1 as pb;
use tokio::process::Command;

const RUN_TIMEOUT: Duration = Duration::from_secs(300);
const ROWS: i64 = 1000;

/// `src` with 1000 rows. The `*_v1` columns are what a first, wrong mapping reads: rows in every
/// other block of 50 (500 rows) break one rule each there, in five ways by `id % 5`. The plain
/// columns hold the right values for every row.
async fn seed(world: &mut World) -> anyhow::Result<()> {
    let db = world.warehouse().await?;
    db.batch_execute(
        "CREATE TABLE src (
            id bigint PRIMARY KEY, user_id text, event text, ts bigint, meta jsonb,
            user_id_v1 text, event_v1 text, ts_v1 bigint, meta_v1 jsonb)",
    )
    .await?;
    db.execute(
        "INSERT INTO src
         SELECT g, u, e, t, m,
                CASE WHEN bad AND g % 5 = 0 THEN 'undefined' ELSE u END,
                CASE WHEN bad AND g % 5 = 1 THEN '' ELSE e END,
                CASE WHEN bad AND g % 5 = 2 THEN NULL
                     WHEN bad AND g % 5 = 3 THEN 1000 ELSE t END,
                CASE WHEN bad AND g % 5 = 4 THEN '{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}'::jsonb
                     ELSE m END
         FROM (SELECT g, ((g - 1) / 50) % 2 = 1 AS bad, 'user-' || (g % 97) AS u,
                      'Order Placed' AS e, 1700000000 + g AS t, jsonb_build_object('n', g) AS m
               FROM generate_series(1::bigint, $1::bigint) AS g) s",
        &[&ROWS],
    )
    .await?;
    Ok(())
}

const QUERY: &str = "SELECT * FROM src ORDER BY id";

fn mapping(suffix: &str) -> pb::FieldMapping {
    let col = |name: &str| column(&format!("{name}{suffix}"));
    pb::FieldMapping {
        event_name: col("event"),
        time: col("ts"),
        distinct_id: col("user_id"),
        insert_id: Some(pb::FieldSource {
            source: Some(pb::field_source::Source::Derive(pb::DerivedSource {
                columns: vec!["id".into()],
            })),
        }),
        properties: vec![pb::PropertyMapping {
            column: format!("meta{suffix}"),
            property: "meta".into(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn spec(wh: &str, target: &str, suffix: &str) -> pb::ActivationSpec {
    pb::ActivationSpec {
        name: "replayed".into(),
        warehouse_id: wh.into(),
        target_id: target.into(),
        query: QUERY.into(),
        object: pb::MixpanelObject::Events as i32,
        sync_behaviour: pb::SyncBehaviour::Insert as i32,
        mapping: Some(mapping(suffix)),
        ..Default::default()
    }
}

fn assert_adds_up(run: &pb::Run) {
    let c = counts(run);
    assert_eq!(
        c.extracted,
        c.skipped + c.loaded + c.failed,
        "counts do not add up: {c:?}"
    );
}

/// `$insert_id` → how many times the emulator stores it.
async fn stored(world: &World) -> anyhow::Result<HashMap<String, usize>> {
    let mut ids = HashMap::new();
    for e in emulator_events(world).await? {
        if let Some(id) = e["properties"]["$insert_id"].as_str() {
            *ids.entry(id.to_owned()).or_default() += 1;
        }
    }
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_listed_by_reason_and_replayed_after_the_mapping_is_fixed()
-> anyhow::Result<()> {
    let mut world = World::new("replay").await?;
    seed(&mut world).await?;
    let mut control = world.start_all().await?;
    let (wh, target) = warehouse_and_target(&world, &mut control).await?;
    let activation = control
        .create_activation(pb::CreateActivationRequest {
            activation: Some(spec(&wh, &target, "_v1")),
        })
        .await?
        .into_inner()
        .activation
        .context("no activation")?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(
        run.state,
        pb::RunState::PartiallyFailed as i32,
        "{run:?}\n{}",
        world.log("control")
    );
    assert_adds_up(&run);
    let c = counts(&run);
    assert_eq!((c.extracted, c.loaded, c.failed), (1000, 500, 500));

    let (failed, by_reason) = failed_records(&mut control, &run.id).await?;
    assert_eq!(failed.len(), 500);
    assert_eq!(by_reason.len(), 5, "five reasons: {by_reason:?}");
    assert!(by_reason.iter().all(|r| r.count == 100), "{by_reason:?}");
    assert!(failed.iter().all(|f| ((f.row_number - 1) / 50) % 2 == 1));
    let one = control
        .get_failed_record(pb::GetFailedRecordRequest {
            id: failed[0].id.clone(),
        })
        .await?
        .into_inner()
        .record
        .context("no record")?;
    assert_eq!(one.row_number, failed[0].row_number);
    assert!(one.row.is_some_and(|r| r.fields.contains_key("ts_v1")));

    // The same through the CLI.
    let listed = mixsync(&world, &["failed", "list", &run.id, "-o", "json"]).await?;
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    assert_eq!(listed["total_count"], 500);
    assert_eq!(listed["reasons"].as_array().map(Vec::len), Some(5));
    for reason in listed["reasons"].as_array().into_iter().flatten() {
        // Each reason's example is a record of that reason.
        let id = reason["example_record_id"].as_str().unwrap_or_default();
        let example = failed
            .iter()
            .find(|f| f.id == id)
            .with_context(|| format!("example {id} of {reason}"))?;
        assert_eq!(
            (example.field.as_str(), example.rule.as_str()),
            (
                reason["field"].as_str().unwrap_or_default(),
                reason["rule"].as_str().unwrap_or_default()
            ),
            "{reason}"
        );
    }
    let table = mixsync(&world, &["failed", "list", &run.id]).await?;
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("500 failed records"), "{table}");
    let shown = mixsync(&world, &["failed", "show", &one.id, "-o", "json"]).await?;
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout)?;
    assert_eq!(shown["row_number"], one.row_number);
    assert!(shown["row"]["ts_v1"].is_number() || shown["row"]["ts_v1"].is_null());

    // Fix the mapping and replay.
    control
        .update_activation(pb::UpdateActivationRequest {
            id: activation.id.clone(),
            activation: Some(spec(&wh, &target, "")),
        })
        .await?;
    let replay = control
        .replay_failed_records(pb::ReplayFailedRecordsRequest {
            selection: Some(pb::replay_failed_records_request::Selection::RunId(
                run.id.clone(),
            )),
        })
        .await?
        .into_inner();
    assert_eq!(replay.record_count, 500);
    let replay_run = replay.run.context("no replay run")?;
    assert_eq!(replay_run.replay_of_run_id, run.id);
    let done = wait_for_end(&mut control, &replay_run.id, RUN_TIMEOUT).await?;
    assert_eq!(
        done.state,
        pb::RunState::Succeeded as i32,
        "{done:?}\n{}\n{}",
        world.log("control"),
        world.log("mapper")
    );
    assert_adds_up(&done);
    let c = counts(&done);
    assert_eq!((c.extracted, c.loaded, c.failed), (500, 500, 0));

    let ids = stored(&world).await?;
    assert_eq!(ids.len(), 1000, "every row's event is stored");
    assert!(ids.values().all(|n| *n == 1), "each exactly once");

    // The original run's records are marked; nothing is left to replay.
    let (after, _) = failed_records(&mut control, &run.id).await?;
    assert!(after.iter().all(|f| f.replayed_by_run_id == done.id));
    let again = mixsync(&world, &["failed", "replay", &run.id]).await?;
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("no failed records left"), "{stderr}");
    world.cleanup().await;
    Ok(())
}

/// Runs the `mixsync` CLI against this world's control.
async fn mixsync(world: &World, args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(Command::new(binary()?)
        .args(args)
        .env(
            "MIXSYNC_SERVER",
            format!("http://127.0.0.1:{}", world.grpc_port),
        )
        .env("MIXSYNC_API_TOKEN", &world.token)
        .output()
        .await?)
}

/// An activation with the fixed mapping, and a run of it just queued (the extractor is down:
/// the test plays its part).
async fn queued_run(
    world: &World,
    control: &mut Control,
) -> anyhow::Result<(pb::Activation, pb::Run)> {
    let (wh, target) = warehouse_and_target(world, control).await?;
    let activation = control
        .create_activation(pb::CreateActivationRequest {
            activation: Some(spec(&wh, &target, "")),
        })
        .await?
        .into_inner()
        .activation
        .context("no activation")?;
    let run = control
        .trigger_run(pb::TriggerRunRequest {
            activation_id: activation.id.clone(),
            full_resync: false,
        })
        .await?
        .into_inner()
        .run
        .context("no run")?;
    Ok((activation, run))
}

/// Every dead letter control kept.
async fn dead_letters(control: &mut Control) -> anyhow::Result<Vec<pb::DeadLetterEntry>> {
    Ok(control
        .list_dead_letters(pb::ListDeadLettersRequest {
            page_size: 100,
            ..Default::default()
        })
        .await?
        .into_inner()
        .dead_letters)
}

/// Waits until control has kept at least `n` dead letters; returns every one kept.
async fn wait_for_dead_letters(
    world: &World,
    control: &mut Control,
    n: usize,
) -> anyhow::Result<Vec<pb::DeadLetterEntry>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let kept = dead_letters(control).await?;
        if kept.len() >= n {
            return Ok(kept);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {n} dead letters kept: {kept:?}\n{}\n{}",
            kept.len(),
            world.log("mapper"),
            world.log("control")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_kept_from_the_dead_letter_queue_not_lost_or_looped()
-> anyhow::Result<()> {
    let mut world = World::new("poison").await?;
    seed(&mut world).await?;
    let mut control = world.start_all().await?;
    let bus = world.bus().await?;
    // Field 5 of a RowBatch is a string: these bytes are not UTF-8, so no service can decode it.
    let poison = pb::DeadLetter {
        original: vec![0xff, 0xfe, 0xfd],
        ..Default::default()
    };
    bus.publisher().publish(mixsync_bus::ROWS, &poison).await?;
    let kept = wait_for_dead_letters(&world, &mut control, 1).await?;
    let letter = &kept[0];
    assert_eq!(letter.queue, mixsync_bus::ROWS);
    assert_eq!(letter.stage, pb::Stage::Map as i32);
    assert!(letter.run_id.is_empty());
    assert!(letter.reason.contains("RowBatch"), "{letter:?}");
    assert_eq!(letter.original, prost::Message::encode_to_vec(&poison));
    // Not looped: once no queue holds a message, ready or unacknowledged, no copy of it is
    // left anywhere to be dead-lettered again (the mapper acks after its dead letter is
    // confirmed, control after keeping it), and it is still one dead letter.
    world
        .wait_until_queues_are_empty(Duration::from_secs(60))
        .await?;
    let kept = dead_letters(&mut control).await?;
    assert_eq!(kept.len(), 1, "{kept:?}");
    let names: HashSet<&str> = kept.iter().map(|k| k.queue.as_str()).collect();
    assert_eq!(names.len(), 1);
    // The CLI lists it.
    let listed = mixsync(&world, &["failed", "dead-letters"]).await?;
    assert!(listed.status.success(), "{listed:?}");
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.starts_with("1 dead letters"), "{text}");
    assert!(
        text.contains("mixsync.rows") && text.contains("RowBatch"),
        "{text}"
    );

    // A run whose extraction request is dead-lettered cannot add up: it ends FAILED, saying so.
    world.kill("extractor").await?;
    let (activation, run) = queued_run(&world, &mut control).await?;
    let request = pb::ExtractRequest {
        run_id: run.id.clone(),
        activation_id: activation.id.clone(),
        full_resync: false,
    };
    let letter = pb::DeadLetter {
        stage: pb::Stage::Extract as i32,
        reason: "the extractor gave up".into(),
        original: prost::Message::encode_to_vec(&request),
        queue: mixsync_bus::EXTRACT.into(),
        ..Default::default()
    };
    bus.publisher()
        .publish(mixsync_bus::DEAD_LETTER, &letter)
        .await?;
    let ended = wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    assert_eq!(ended.state, pb::RunState::Failed as i32, "{ended:?}");
    assert!(
        ended
            .error_message
            .contains("extraction request was dead-lettered")
            && ended.error_message.contains("the extractor gave up"),
        "{ended:?}"
    );
    let listed = mixsync(
        &world,
        &["failed", "dead-letters", "--run", &run.id, "-o", "json"],
    )
    .await?;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    assert_eq!(listed["total_count"], 1, "{listed}");
    assert_eq!(listed["dead_letters"][0]["queue"], mixsync_bus::EXTRACT);
    bus.close().await;
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_batch_becomes_failed_records_of_its_run_and_can_be_replayed()
-> anyhow::Result<()> {
    let mut world = World::new("deadbatch").await?;
    seed(&mut world).await?;
    let mut control = world.start_all().await?;
    // No extractor: the test plays its part, and loses a batch to the dead-letter queue.
    world.kill("extractor").await?;
    let (activation, run) = queued_run(&world, &mut control).await?;
    let bus = world.bus().await?;
    let text = |s: &str| pb::Value {
        kind: Some(pb::value::Kind::Text(s.into())),
    };
    let int = |i: i64| pb::Value {
        kind: Some(pb::value::Kind::IntValue(i)),
    };
    let rows = (0..10)
        .map(|i| pb::Row {
            values: vec![
                int(100 + i),
                text(&format!("user-{i}")),
                text("Order Placed"),
                int(1_700_000_000 + i),
                pb::Value {
                    kind: Some(pb::value::Kind::Json(format!("{{\"n\":{i}}}"))),
                },
            ],
        })
        .collect();
    let batch_id = format!("{}-0", run.id);
    let batch = pb::RowBatch {
        run_id: run.id.clone(),
        activation_id: activation.id.clone(),
        batch_id: batch_id.clone(),
        columns: vec![
            "id".into(),
            "user_id".into(),
            "event".into(),
            "ts".into(),
            "meta".into(),
        ],
        rows,
        first_row_number: 1,
        last: true,
        total_rows: 10,
        ..Default::default()
    };
    let original = prost::Message::encode_to_vec(&batch);
    let letter = pb::DeadLetter {
        run_id: run.id.clone(),
        batch_id: batch_id.clone(),
        stage: pb::Stage::Map as i32,
        reason: "the mapper gave up".into(),
        original,
        queue: mixsync_bus::ROWS.into(),
        ..Default::default()
    };
    let extracted = pb::Progress {
        run_id: run.id.clone(),
        batch_id,
        stage: pb::Stage::Extract as i32,
        extracted: 10,
        activation_id: activation.id.clone(),
        terminal: Some(pb::progress::Terminal::ExtractionFinished(
            pb::ExtractionFinished {
                total_rows: 10,
                batches: 1,
                total_unknown: false,
            },
        )),
        ..Default::default()
    };
    let publisher = bus.publisher();
    publisher.publish(mixsync_bus::PROGRESS, &extracted).await?;
    // Twice: a redelivered dead letter is kept again but not counted again.
    publisher.publish(mixsync_bus::DEAD_LETTER, &letter).await?;
    publisher.publish(mixsync_bus::DEAD_LETTER, &letter).await?;
    wait_for_end(&mut control, &run.id, RUN_TIMEOUT).await?;
    // The run ends on the first copy; the second must not count again. Control accounts a
    // dead letter before it lists it: once both are listed, the counts are final.
    let kept = wait_for_dead_letters(&world, &mut control, 2).await?;
    let ended = get_run(&mut control, &run.id).await?;
    assert_eq!(
        ended.state,
        pb::RunState::PartiallyFailed as i32,
        "{ended:?}\n{}",
        world.log("control")
    );
    assert_adds_up(&ended);
    assert_eq!((counts(&ended).extracted, counts(&ended).failed), (10, 10));
    let (failed, by_reason) = failed_records(&mut control, &run.id).await?;
    assert_eq!(failed.len(), 10);
    assert_eq!(by_reason.len(), 1);
    assert_eq!(
        (by_reason[0].rule.as_str(), by_reason[0].stage),
        ("dead_letter", pb::Stage::Map as i32)
    );
    assert!(failed.iter().all(|f| f.message == "the mapper gave up"));
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.iter().all(|k| k.run_id == run.id));
    assert_eq!(kept.iter().map(|k| k.failed_records).sum::<u64>(), 10);

    // The kept rows go through the pipeline in a replay.
    let replay = control
        .replay_failed_records(pb::ReplayFailedRecordsRequest {
            selection: Some(pb::replay_failed_records_request::Selection::Ids(
                pb::FailedRecordIds {
                    ids: failed.iter().map(|f| f.id.clone()).collect(),
                },
            )),
        })
        .await?
        .into_inner();
    assert_eq!(replay.record_count, 10);
    let done = wait_for_end(&mut control, &replay.run.context("no run")?.id, RUN_TIMEOUT).await?;
    assert_eq!(
        done.state,
        pb::RunState::Succeeded as i32,
        "{done:?}\n{:?}",
        failed_records(&mut control, &done.id).await?
    );
    assert_eq!(counts(&done).loaded, 10);
    assert_eq!(stored(&world).await?.len(), 10);
    bus.close().await;
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_its_delivery_limit_is_dead_lettered_and_its_run_fails_saying_so()
-> anyhow::Result<()> {
    let mut world = World::new("deliverylimit").await?;
    seed(&mut world).await?;
    let mut control = world.start_all().await?;
    // The test plays the extractor and a mapper that crashes on every delivery of a batch.
    world.kill("extractor").await?;
    world.kill("mapper").await?;
    let (activation, run) = queued_run(&world, &mut control).await?;
    let bus = world.bus().await?;
    let batch_id = format!("{}-0", run.id);
    let batch = pb::RowBatch {
        run_id: run.id.clone(),
        activation_id: activation.id.clone(),
        batch_id: batch_id.clone(),
        columns: vec!["id".into()],
        rows: vec![pb::Row {
            values: vec![pb::Value {
                kind: Some(pb::value::Kind::IntValue(1)),
            }],
        }],
        first_row_number: 1,
        last: true,
        total_rows: 1,
        attempt: 1,
        ..Default::default()
    };
    let extracted = pb::Progress {
        run_id: run.id.clone(),
        batch_id,
        stage: pb::Stage::Extract as i32,
        extracted: 1,
        activation_id: activation.id.clone(),
        terminal: Some(pb::progress::Terminal::ExtractionFinished(
            pb::ExtractionFinished {
                total_rows: 1,
                batches: 1,
                total_unknown: false,
            },
        )),
        ..Default::default()
    };
    bus.publisher().publish(mixsync_bus::ROWS, &batch).await?;
    bus.publisher()
        .publish(mixsync_bus::PROGRESS, &extracted)
        .await?;
    // Every delivery is handed back, as a mapper that crashes on it would leave it.
    let mut rows = bus.consume(mixsync_bus::ROWS, 1).await?;
    let crasher = tokio::spawn(async move {
        let mut deliveries = 0u32;
        while let Some(delivery) = rows.next().await {
            deliveries += 1;
            let _ = delivery.nack_requeue().await;
        }
        deliveries
    });
    let ended = wait_for_end(&mut control, &run.id, Duration::from_secs(120)).await?;
    crasher.abort();
    assert_eq!(ended.state, pb::RunState::Failed as i32, "{ended:?}");
    assert!(
        ended.error_message.contains("delivery limit")
            && ended.error_message.contains(&format!("{}-0", run.id)),
        "the run says which batch went past the delivery limit: {}",
        ended.error_message
    );
    let c = counts(&ended);
    assert_eq!((c.extracted, c.failed), (1, 1), "{ended:?}");
    let kept = dead_letters(&mut control).await?;
    assert!(
        kept.iter()
            .any(|d| d.run_id == run.id && d.reason.contains("delivery limit")),
        "{kept:?}"
    );
    world.cleanup().await;
    Ok(())
}
