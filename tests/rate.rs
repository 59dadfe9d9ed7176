//! Issue 12's shared cap: every loader process of every object, replicas included, keeps one
//! project's cap together. The emulator measures what arrives (the most records within any one
//! second) and the state database holds every grant; both must stay within the target's cap.

use std::time::Duration;

use mixsync_e2e::*;
use mixsync_proto::v1 as pb;

const CAP: u32 = 4_000;
const EVENTS: i64 = 10_000;
const USERS: i64 = 6_000;
const COMPANIES: i64 = 2_000;

fn set(column: &str) -> pb::PropertyMapping {
    pb::PropertyMapping {
        column: column.into(),
        property: column.into(),
        operation: pb::ProfileOperation::Set as i32,
        unset_when_null: false,
    }
}

async fn activation(
    control: &mut Control,
    spec: pb::ActivationSpec,
) -> anyhow::Result<pb::Activation> {
    Ok(control
        .create_activation(pb::CreateActivationRequest {
            activation: Some(spec),
        })
        .await?
        .into_inner()
        .activation
        .unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_loader_and_replica_keeps_one_cap_per_project() -> anyhow::Result<()> {
    let mut world = World::new("rate").await?;
    world.env.extend(
        [
            // The emulator enforces the same cap, so going over it would also show as 429s.
            ("MIXSYNC_EMULATOR_RATE_LIMIT", "on".to_owned()),
            ("MIXSYNC_EMULATOR_EVENTS_PER_SEC", CAP.to_string()),
            // Several requests per window, so the processes compete inside each one.
            ("MIXSYNC_LOADER_MAX_BATCH_EVENTS", "500".to_owned()),
            // A wide margin for when requests arrive on a busy test machine: what is asserted is
            // the limiter's schedule, not this machine's scheduling latency.
            ("MIXSYNC_LOADER_RATE_MARGIN_MS", "250".to_owned()),
            // Each accepted request logged, to see that both replicas sent.
            (
                "RUST_LOG",
                "info,mixsync_loader::internal_events=debug".to_owned(),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    world
        .warehouse()
        .await?
        .batch_execute(&format!(
            "CREATE TABLE events AS
           SELECT g AS id, 'Viewed' AS event, 'u-' || (g % 500) AS user_id,
                  timestamptz '2025-01-01 00:00:00+00' + make_interval(secs => g::int) AS ts
             FROM generate_series(1, {EVENTS}) AS g;
         CREATE TABLE users AS
           SELECT g AS id, 'u-' || g AS user_id, 'User ' || g AS name
             FROM generate_series(1, {USERS}) AS g;
         CREATE TABLE companies AS
           SELECT g AS id, g AS company_id, 'Company ' || g AS name
             FROM generate_series(1, {COMPANIES}) AS g;"
        ))
        .await?;
    // Five loader processes: two replicas each of the events and user loaders, and the groups one.
    world.start("emulator")?;
    for service in PIPELINE {
        world.start(service)?;
    }
    world.start_as("loader-events-2", "loader-events")?;
    world.start("loader-users")?;
    world.start_as("loader-users-2", "loader-users")?;
    world.start("loader-groups")?;
    let mut control = world.control().await?;
    let (warehouse_id, target_id) = warehouse_and_target(&world, &mut control).await?;
    let mut target = control
        .get_target(pb::GetTargetRequest {
            id: target_id.clone(),
        })
        .await?
        .into_inner()
        .target
        .unwrap_or_default();
    assert_eq!(target.rate_limit_per_second, 30_000, "the default cap");
    target = cap_emulator_target(&world, &mut control, &target_id, CAP).await?;
    assert_eq!(target.rate_limit_per_second, CAP);

    let events = events_activation(
        &mut control,
        "events",
        &warehouse_id,
        &target_id,
        "SELECT id, event, user_id, ts FROM events ORDER BY id",
        &[],
    )
    .await?;
    let users = activation(
        &mut control,
        pb::ActivationSpec {
            name: "users".into(),
            warehouse_id: warehouse_id.clone(),
            target_id: target_id.clone(),
            query: "SELECT user_id, name FROM users ORDER BY id".into(),
            object: pb::MixpanelObject::UserProfiles as i32,
            sync_behaviour: pb::SyncBehaviour::Upsert as i32,
            mapping: Some(pb::FieldMapping {
                distinct_id: column("user_id"),
                properties: vec![set("name")],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    let companies = activation(
        &mut control,
        pb::ActivationSpec {
            name: "companies".into(),
            warehouse_id: warehouse_id.clone(),
            target_id: target_id.clone(),
            query: "SELECT company_id, name FROM companies ORDER BY id".into(),
            object: pb::MixpanelObject::GroupProfiles as i32,
            sync_behaviour: pb::SyncBehaviour::Upsert as i32,
            mapping: Some(pb::FieldMapping {
                group_key: Some(pb::FieldSource {
                    source: Some(pb::field_source::Source::Constant("company_id".into())),
                }),
                group_id: column("company_id"),
                properties: vec![set("name")],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;

    // All three at once, as a schedule would start them.
    let mut runs = Vec::new();
    for activation in [&events, &users, &companies] {
        runs.push(trigger(&mut control, &activation.id).await?.id);
    }
    for (run_id, rows) in runs.iter().zip([EVENTS, USERS, COMPANIES]) {
        let run = wait_for_end(&mut control, run_id, Duration::from_secs(300)).await?;
        assert_eq!(
            pb::RunState::try_from(run.state),
            Ok(pb::RunState::Succeeded),
            "{run:?}"
        );
        assert_eq!(counts(&run).loaded, rows as u64, "{run:?}");
    }

    // What arrived: every record once (a 429 is retried), and within any one second at most the
    // cap plus one request that arrived off its grant (a busy CI machine delays some requests by
    // more than the margin; the grant log below is the exact check).
    let stats = emulator_stats(&world).await?;
    let project = &stats["projects"]["1"];
    let throttled = stats["records"]["throttled"].as_u64().unwrap_or(0);
    assert_eq!(
        project["records"].as_u64(),
        Some((EVENTS + USERS + COMPANIES) as u64 + throttled),
        "{stats}"
    );
    let peak = project["peak_records_per_second"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        peak <= u64::from(CAP) + 2_000,
        "{peak} records arrived within one second: {stats}"
    );
    // And what was granted: the grant log the processes share, read window by window.
    let state = connect(&format!("{}/{}", world.pg, world.state_db)).await?;
    let busiest: i64 = state
        .query_one(
            "SELECT max((SELECT sum(b.records) FROM rate_grants b
                          WHERE b.project = a.project
                            AND b.granted_at >= a.granted_at
                            AND b.granted_at < a.granted_at + interval '1 second'))::bigint
               FROM rate_grants a",
            &[],
        )
        .await?
        .get(0);
    assert!(
        busiest <= i64::from(CAP),
        "{busiest} records granted within one second"
    );
    // Both events replicas took part (the queue hands batches to its consumers in turn).
    for name in ["loader-events", "loader-events-2"] {
        assert!(
            world.log_lines(name, "request accepted") > 0,
            "{name} sent nothing:\n{}",
            world.log(name)
        );
    }
    world.cleanup().await;
    Ok(())
}
