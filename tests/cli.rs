//! The `mixsync` CLI as a user drives it: client commands over gRPC against running services, and
//! `mixsync demo` from nothing.

use std::process::Output;

use mixsync_e2e::*;
use mixsync_test_support::TestDb;
use tokio::process::Command;

fn json(output: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mixsync failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

async fn mixsync(world: &World, args: &[&str]) -> anyhow::Result<Output> {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_set_up_and_run_an_activation_from_a_yaml_file() -> anyhow::Result<()> {
    let mut world = World::new("cli").await?;
    world
        .warehouse()
        .await?
        .batch_execute(
            "CREATE TABLE signups AS
             SELECT g AS id, 'user-' || g AS user_id, 1700000000 + g AS ts, 'pro' AS plan
             FROM generate_series(1, 300) AS g",
        )
        .await?;
    world.start_all().await?;

    // Local Postgres trusts loopback, so any password works: one we can look for everywhere.
    let dsn = world
        .warehouse_url()
        .replace("postgres://postgres@", "postgres://postgres:pw-s3cret-42@");
    let wh = json(
        &mixsync(
            &world,
            &[
                "warehouse",
                "create",
                "--name",
                "analytics",
                "--dsn",
                &dsn,
                "-o",
                "json",
            ],
        )
        .await?,
    );
    assert_eq!(wh["name"], "analytics");
    assert!(wh.get("password").is_none());
    let target = json(
        &mixsync(
            &world,
            &[
                "target",
                "create",
                "--name",
                "prod",
                "--project-id",
                "1",
                "--base-url",
                &world.emulator_url(),
                "--token",
                "demo-token",
                "--service-account",
                "demo-sa",
                "--service-account-secret",
                "demo-secret",
                "-o",
                "json",
            ],
        )
        .await?,
    );
    assert_eq!(target["has_token"], true);
    assert!(
        !target.to_string().contains("demo-secret"),
        "no secret in responses: {target}"
    );

    // A wrong secret is refused with the reason.
    let refused = mixsync(
        &world,
        &[
            "target",
            "create",
            "--name",
            "bad",
            "--project-id",
            "1",
            "--base-url",
            &world.emulator_url(),
            "--token",
            "demo-token",
            "--service-account",
            "demo-sa",
            "--service-account-secret",
            "s3cr3t-typo",
        ],
    )
    .await?;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("demo-sa") && !stderr.contains("s3cr3t-typo"),
        "{stderr}"
    );

    let file = world.log_dir.join("activation.yaml");
    std::fs::write(
        &file,
        "name: signups\nwarehouse: analytics\ntarget: prod\nobject: events\n\
         query: SELECT id, user_id, ts, plan FROM signups ORDER BY id\n\
         mapping:\n  event_name: { constant: Signed Up }\n  time: { column: ts }\n\
         \x20 distinct_id: { column: user_id }\n  insert_id: { derive: [id] }\n\
         \x20 properties:\n    - { column: plan, property: plan_name }\n",
    )?;
    let file = file.to_string_lossy().into_owned();
    let activation = json(
        &mixsync(
            &world,
            &["activation", "create", "--from-file", &file, "-o", "json"],
        )
        .await?,
    );
    assert_eq!(activation["object"], "events");

    let preview = json(
        &mixsync(
            &world,
            &[
                "activation",
                "preview",
                "signups",
                "--limit",
                "2",
                "-o",
                "json",
            ],
        )
        .await?,
    );
    assert_eq!(preview["rows"][0]["record"]["event"], "Signed Up");
    assert_eq!(
        preview["rows"][0]["record"]["properties"]["plan_name"],
        "pro"
    );
    assert_eq!(
        json(&mixsync(&world, &["activation", "list", "-o", "json"]).await?)
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let run = json(
        &mixsync(
            &world,
            &["run", "start", "signups", "--watch", "-o", "json"],
        )
        .await?,
    );
    assert_eq!(run["state"], "SUCCEEDED", "{run}");
    assert_eq!(run["counts"]["extracted"], 300);
    assert_eq!(run["counts"]["loaded"], 300);
    let shown = json(
        &mixsync(
            &world,
            &[
                "run",
                "show",
                run["id"].as_str().unwrap_or_default(),
                "-o",
                "json",
            ],
        )
        .await?,
    );
    assert_eq!(shown["counts"], run["counts"]);
    let runs = json(
        &mixsync(
            &world,
            &["run", "list", "--activation", "signups", "-o", "json"],
        )
        .await?,
    );
    assert_eq!(runs.as_array().map(Vec::len), Some(1));
    assert_eq!(emulator_events(&world).await?.len(), 300);

    // No secret in any service's log: warehouse password, project token, service-account secret.
    for service in ["control", "extractor", "mapper", "loader-events"] {
        let log = world.log(service);
        for secret in [
            "pw-s3cret-42",
            "demo-secret",
            "demo-token",
            "s3cr3t-typo",
            world.token.as_str(),
        ] {
            assert!(
                !log.contains(secret),
                "{service}'s log shows a secret ({secret})"
            );
        }
    }
    let listed = json(&mixsync(&world, &["warehouse", "list", "-o", "json"]).await?);
    assert!(!listed.to_string().contains("pw-s3cret-42"), "{listed}");

    // Wrong input gets a clear error naming the field.
    std::fs::write(
        &file,
        "name: broken\nwarehouse: analytics\ntarget: prod\nobject: events\nquery: SELECT id FROM signups\nmapping: {}\n",
    )?;
    let broken = mixsync(&world, &["activation", "create", "--from-file", &file]).await?;
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("mapping."), "{stderr}");
    world.cleanup().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_from_nothing_and_again_as_a_second_run() -> anyhow::Result<()> {
    // Its own databases (created by the demo itself) so it never touches a user's demo state.
    let world = World::new("demo").await?;
    let admin_url = "postgres://postgres@127.0.0.1:5432";
    // The demo creates them; the guards drop them, also when an assertion below fails.
    let state_db = TestDb::adopt(format!("{}_d", world.state_db));
    let warehouse_db = TestDb::adopt(format!("{}_d", world.warehouse_db));
    let (state_url, warehouse_url) = (
        format!("{admin_url}/{}", state_db.name()),
        format!("{admin_url}/{}", warehouse_db.name()),
    );
    let mut reports = Vec::new();
    for _ in 0..2 {
        let output = Command::new(binary()?)
            .args([
                "demo",
                "--rows",
                "500",
                "--database-url",
                &state_url,
                "--warehouse-url",
                &warehouse_url,
                "-o",
                "json",
            ])
            .output()
            .await?;
        reports.push(json(&output));
    }
    for report in &reports {
        let objects = report["objects"].as_array().expect("one report per object");
        assert_eq!(objects.len(), 3, "{report}");
        let events = &objects[0];
        assert_eq!(events["object"], "events");
        assert_eq!(events["run"]["state"], "PARTIALLY_FAILED", "{report}");
        assert_eq!(events["run"]["counts"]["extracted"], 500);
        // Rows 199, 211, 223, 398, 422, 446 break a rule (see the demo's seed).
        assert_eq!(events["run"]["counts"]["failed"], 6);
        assert_eq!(events["run"]["counts"]["loaded"], 494);
        // 500 events come with 100 users in 10 companies, all valid.
        let users = &objects[1];
        assert_eq!(users["object"], "user_profiles");
        assert_eq!(users["run"]["state"], "SUCCEEDED", "{report}");
        assert_eq!(users["run"]["counts"]["loaded"], 100);
        let companies = &objects[2];
        assert_eq!(companies["object"], "group_profiles");
        assert_eq!(companies["run"]["state"], "SUCCEEDED", "{report}");
        assert_eq!(companies["run"]["counts"]["loaded"], 10);
        assert_eq!(report["emulator"]["events"], 494);
        assert_eq!(report["emulator"]["user_profiles"], 100);
        assert_eq!(report["emulator"]["group_profiles"], 10);
    }
    let first = reports[0]["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let second = reports[1]["objects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(
            a["run"]["activation_id"], b["run"]["activation_id"],
            "the same activation"
        );
        assert_ne!(a["run"]["id"], b["run"]["id"], "a second run");
    }
    world.cleanup().await;
    Ok(())
}

/// `mixsync <args>` against this world's control with no token in the environment.
async fn mixsync_without_token(world: &World, args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(binary()?)
        .args(args)
        .env(
            "MIXSYNC_SERVER",
            format!("http://127.0.0.1:{}", world.grpc_port),
        )
        .env_remove("MIXSYNC_API_TOKEN")
        .env_remove("MIXSYNC_API_TOKEN_FILE")
        .output()
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_is_never_open_to_the_network_and_the_cli_reads_its_token_from_a_file()
-> anyhow::Result<()> {
    let mut world = World::new("secure").await?;
    let defaults = world.env.len();

    // No token on an address other machines can reach: control refuses to start, saying what to set.
    world.env.push(("MIXSYNC_API_TOKEN".into(), "  ".into()));
    world.env.push((
        "MIXSYNC_GRPC_ADDR".into(),
        format!("0.0.0.0:{}", world.grpc_port),
    ));
    world.start("control")?;
    let mut control = world.processes.remove("control").expect("started");
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), control.wait()).await??;
    assert!(!status.success(), "control started open to the network");
    let log = world.log("control");
    assert!(
        log.contains(&format!(
            "MIXSYNC_API_TOKEN is not set: control listens on 0.0.0.0:{}",
            world.grpc_port
        )) && log.contains("openssl rand -hex 32"),
        "{log}"
    );

    // On loopback it starts, says the API is open to local callers only, and answers without one.
    world.env.truncate(defaults + 1);
    world.start("control")?;
    world
        .wait_for_log_lines(
            "control",
            "open to local callers only",
            1,
            std::time::Duration::from_secs(60),
        )
        .await?;
    let mut listed = mixsync_without_token(&world, &["warehouse", "list"]).await?;
    for _ in 0..100 {
        if listed.status.success() {
            break;
        }
        // Control logs before it serves: wait until it answers.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        listed = mixsync_without_token(&world, &["warehouse", "list"]).await?;
    }
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    if let Some(mut control) = world.processes.remove("control") {
        control.kill().await?;
    }

    // With a token, the CLI can read it from a file, so it need not sit in `ps`.
    world.env.truncate(defaults);
    world.start("control")?;
    world.control().await?;
    let dir = std::env::temp_dir().join(format!(
        "mixsync-token-{}",
        world.prefix.trim_end_matches('.')
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("token");
    std::fs::write(&file, format!("{}\n", world.token))?;
    let path = file.to_str().unwrap();
    let ok =
        mixsync_without_token(&world, &["warehouse", "list", "--api-token-file", path]).await?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    std::fs::write(&file, "not-the-token-at-all-0123456789\n")?;
    let wrong =
        mixsync_without_token(&world, &["warehouse", "list", "--api-token-file", path]).await?;
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && stderr.contains("unauthenticated"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-token-at-all"), "{stderr}");
    std::fs::write(&file, "\n")?;
    let empty =
        mixsync_without_token(&world, &["warehouse", "list", "--api-token-file", path]).await?;
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert!(
        stderr.contains(&format!("the API token file {path} is empty")),
        "{stderr}"
    );
    let both = mixsync_without_token(
        &world,
        &[
            "warehouse",
            "list",
            "--api-token-file",
            path,
            "--api-token",
            "x",
        ],
    )
    .await?;
    let stderr = String::from_utf8_lossy(&both.stderr);
    assert!(
        stderr.contains("both an API token and an API token file are set"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir)?;
    world.cleanup().await;
    Ok(())
}
