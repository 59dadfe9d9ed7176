//! Issue 11's security acceptance tests, through the real binaries: rotating
//! `MIXSYNC_SECRET_KEY` with `MIXSYNC_SECRET_KEY_PREVIOUS`, a wrong key refused at start, and a
//! warehouse that requires a read-only role refusing runs once its role can write.

use std::time::Duration;

use mixsync_e2e::*;
use mixsync_proto::v1 as pb;

const KEY_A: &str = "e2e-secret-key";
const KEY_B: &str = "a-brand-new-key-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(60);

fn set_keys(world: &mut World, current: &str, previous: Option<&str>) {
    world
        .env
        .retain(|(k, _)| !k.starts_with("MIXSYNC_SECRET_KEY"));
    world
        .env
        .push(("MIXSYNC_SECRET_KEY".into(), current.into()));
    if let Some(previous) = previous {
        world
            .env
            .push(("MIXSYNC_SECRET_KEY_PREVIOUS".into(), previous.into()));
    }
}

/// Starts `service` and waits for it to exit, which it must, unsuccessfully.
async fn start_and_expect_refusal(world: &mut World, service: &str) -> anyhow::Result<String> {
    world.start(service)?;
    let mut child = world.processes.remove(service).expect("started");
    let status = tokio::time::timeout(WAIT, child.wait()).await??;
    assert!(!status.success(), "{service} started with the wrong key");
    Ok(world.log(service))
}

async fn restart_control(world: &mut World) -> anyhow::Result<Control> {
    if let Some(mut control) = world.processes.remove("control") {
        control.kill().await?;
    }
    world.start("control")?;
    world.control().await
}

async fn target_ok(control: &mut Control, id: &str) -> anyhow::Result<()> {
    let report = control
        .test_target(pb::TestTargetRequest {
            target: Some(pb::test_target_request::Target::Id(id.into())),
        })
        .await?
        .into_inner();
    anyhow::ensure!(report.ok, "{report:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secret_key_rotates_and_a_wrong_one_is_refused_at_start() -> anyhow::Result<()> {
    let mut world = World::new("rotation").await?;
    world.start("emulator")?;
    set_keys(&mut world, KEY_A, None);
    world.start("control")?;
    let mut control = world.control().await?;
    // A warehouse with a password, and a target with a token and a secret: three secrets.
    let warehouse = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(pb::WarehouseSpec {
                name: "wh".into(),
                dsn: world.warehouse_url(),
                password: "warehouse-pass-789".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .warehouse
        .expect("a warehouse");
    assert!(warehouse.has_password);
    let target = create_emulator_target(&world, &mut control).await?;
    drop(control);
    if let Some(mut control) = world.processes.remove("control") {
        control.kill().await?;
    }

    // Key B alone: control refuses to start, saying what to do, and changes nothing.
    set_keys(&mut world, KEY_B, None);
    let log = start_and_expect_refusal(&mut world, "control").await?;
    assert!(
        log.contains("MIXSYNC_SECRET_KEY does not open 3 of the 3 stored secrets")
            && log.contains("MIXSYNC_SECRET_KEY_PREVIOUS"),
        "{log}"
    );
    // So does a loader.
    let log = start_and_expect_refusal(&mut world, "loader-events").await?;
    assert!(
        log.contains("MIXSYNC_SECRET_KEY does not open 3 of the 3 stored secrets"),
        "{log}"
    );

    // B with A as the previous key: every secret is re-encrypted under B, and said so.
    set_keys(&mut world, KEY_B, Some(KEY_A));
    let mut control = restart_control(&mut world).await?;
    world
        .wait_for_log_lines("control", "re-encrypted stored secrets", 1, WAIT)
        .await?;
    let log = world.log("control");
    assert!(
        log.contains("reencrypted=3") && log.contains("from_previous_key=3"),
        "{log}"
    );
    assert!(
        log.contains("MIXSYNC_SECRET_KEY_PREVIOUS any more"),
        "{log}"
    );
    target_ok(&mut control, &target.id).await?;

    // B alone now: A is no longer needed, and everything still reads.
    set_keys(&mut world, KEY_B, None);
    let before = world.log_lines("control", "every stored secret is under");
    let mut control = restart_control(&mut world).await?;
    world
        .wait_for_log_lines("control", "every stored secret is under", before + 1, WAIT)
        .await?;
    target_ok(&mut control, &target.id).await?;
    let report = control
        .test_warehouse(pb::TestWarehouseRequest {
            warehouse: Some(pb::test_warehouse_request::Warehouse::Id(
                warehouse.id.clone(),
            )),
        })
        .await?
        .into_inner();
    assert!(report.ok, "{report:?}");

    // And A alone no longer opens them.
    set_keys(&mut world, KEY_A, None);
    if let Some(mut control) = world.processes.remove("control") {
        control.kill().await?;
    }
    let log = start_and_expect_refusal(&mut world, "control").await?;
    assert!(
        log.contains("stored under another MIXSYNC_SECRET_KEY"),
        "{log}"
    );
    world.assert_no_secret_in_logs(&[
        "warehouse-pass-789",
        "demo-secret",
        "demo-token",
        KEY_A,
        KEY_B,
        &world.token.clone(),
    ]);
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warehouse_requiring_a_read_only_role_refuses_runs_once_the_role_can_write()
-> anyhow::Result<()> {
    let mut world = World::new("ro-role").await?;
    let role = format!("mixsync_e2e_ro_{}", world.prefix.trim_end_matches('.'));
    let db = world.warehouse_db.clone();
    world
        .warehouse()
        .await?
        .batch_execute(&format!(
            "CREATE TABLE events_src (id bigint PRIMARY KEY, user_id text, event text, ts bigint);
             INSERT INTO events_src SELECT g, 'u' || g, 'Signed Up', 1700000000 + g
               FROM generate_series(1, 20) g;
             CREATE ROLE {role} LOGIN;
             GRANT CONNECT ON DATABASE \"{db}\" TO {role};
             GRANT USAGE ON SCHEMA public TO {role};
             GRANT SELECT ON events_src TO {role};"
        ))
        .await?;
    let mut control = world.start_all().await?;
    let warehouse = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(pb::WarehouseSpec {
                name: "ro".into(),
                dsn: format!("postgres://{role}@127.0.0.1:5432/{db}"),
                require_read_only_role: true,
                ..Default::default()
            }),
        })
        .await?
        .into_inner();
    assert!(warehouse.warnings.is_empty(), "{warehouse:?}");
    let warehouse = warehouse.warehouse.expect("a warehouse");
    assert!(warehouse.require_read_only_role);
    let target = create_emulator_target(&world, &mut control).await?;
    let activation = events_activation(
        &mut control,
        "signups",
        &warehouse.id,
        &target.id,
        "SELECT id, user_id, event, ts FROM events_src ORDER BY id",
        &[],
    )
    .await?;
    let run = run_to_end(&mut control, &activation.id, WAIT).await?;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    assert_eq!(counts(&run).loaded, 20);

    // Someone grants the role a write: the next run fails at once, saying why, and sends nothing.
    world
        .warehouse()
        .await?
        .batch_execute(&format!("GRANT DELETE ON events_src TO {role}"))
        .await?;
    let run = run_to_end(&mut control, &activation.id, WAIT).await?;
    assert_eq!(run.state, pb::RunState::Failed as i32, "{run:?}");
    assert!(
        run.error_message
            .contains("the warehouse requires a read-only role (require_read_only_role)")
            && run
                .error_message
                .contains("can write to 1 table(s) (e.g. public.events_src)"),
        "{run:?}"
    );
    assert_eq!(emulator_events(&world).await?.len(), 20);
    world
        .warehouse()
        .await?
        .batch_execute(&format!(
            "DROP TABLE events_src; DROP OWNED BY {role}; DROP ROLE {role};"
        ))
        .await?;
    world.cleanup().await;
    Ok(())
}
