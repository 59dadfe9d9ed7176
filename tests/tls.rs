//! Issue 11's TLS acceptance tests: warehouses and the state database on the TLS-only
//! PostgreSQL cluster of `.ci/tls-postgres` (plain connections refused by pg_hba.conf, a server
//! certificate for `localhost` signed by a CA made at CI time), through the real services.

use std::time::Duration;

use mixsync_e2e::*;
use mixsync_proto::v1 as pb;
use mixsync_test_support::{TestPki, TlsPostgres};

const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn spec(name: &str, dsn: String) -> pb::WarehouseSpec {
    pb::WarehouseSpec {
        name: name.into(),
        dsn,
        ..Default::default()
    }
}

async fn test_spec(control: &mut Control, spec: pb::WarehouseSpec) -> pb::TestWarehouseResponse {
    control
        .test_warehouse(pb::TestWarehouseRequest {
            warehouse: Some(pb::test_warehouse_request::Warehouse::Spec(spec)),
        })
        .await
        .expect("TestWarehouse answers")
        .into_inner()
}

fn connect_message(report: &pb::TestWarehouseResponse) -> String {
    assert!(!report.ok, "{report:?}");
    let check = &report.checks[0];
    assert_eq!(check.name, "connect", "{report:?}");
    assert!(!check.ok, "{report:?}");
    check.message.clone()
}

#[tokio::test]
async fn a_tls_only_warehouse_and_state_database_sync_with_verify_full() -> anyhow::Result<()> {
    let tls = TlsPostgres::ensure();
    let ca = tls.ca().display().to_string();
    let warehouse = tls.database().await;
    warehouse
        .client()
        .await
        .batch_execute(
            "CREATE TABLE events_src (id bigint PRIMARY KEY, user_id text, event text, ts bigint);
             INSERT INTO events_src
             SELECT g, 'user-' || g, 'Signed Up', 1700000000 + g FROM generate_series(1, 250) g;",
        )
        .await?;
    // The state database too is on the TLS-only cluster, reached with verify-full: every
    // service (control, extractor, mapper, loader) connects to it over verified TLS.
    let state = tls.database().await;
    let mut world = World::new("tls-sync").await?;
    world.env.push((
        "MIXSYNC_DATABASE_URL".into(),
        format!("{}?sslmode=verify-full&sslrootcert={ca}", state.url()),
    ));
    let mut control = world.start_all().await?;

    let dsn = format!("{}?sslmode=verify-full&sslrootcert={ca}", warehouse.url());
    let report = test_spec(&mut control, spec("tls", dsn.clone())).await;
    assert!(report.ok, "{report:?}");
    let t = report.tls.clone().expect("a TLS report");
    assert!(
        t.encrypted && t.certificate_verified && t.host_name_verified,
        "{t:?}"
    );
    assert!(t.version.starts_with("TLSv1."), "{t:?}");
    assert!(
        report.checks.iter().any(|c| c.name == "tls"
            && c.ok
            && c.message
                .contains("verified against the CA and the host name")),
        "{report:?}"
    );

    let created = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(spec("tls", dsn)),
        })
        .await?
        .into_inner();
    let wh = created.warehouse.expect("a warehouse");
    assert!(
        wh.dsn
            .ends_with(&format!("?sslmode=verify-full&sslrootcert={ca}")),
        "{}",
        wh.dsn
    );
    let target = create_emulator_target(&world, &mut control).await?;
    let activation = events_activation(
        &mut control,
        "signups",
        &wh.id,
        &target.id,
        "SELECT id, user_id, event, ts FROM events_src ORDER BY id",
        &[],
    )
    .await?;
    let run = run_to_end(&mut control, &activation.id, RUN_TIMEOUT).await?;
    assert_eq!(run.state, pb::RunState::Succeeded as i32, "{run:?}");
    assert_eq!(counts(&run).loaded, 250, "{run:?}");
    assert_eq!(emulator_events(&world).await?.len(), 250);

    // The same server with the CA given through the API instead of a file path.
    let pem = std::fs::read_to_string(tls.ca())?;
    let report = test_spec(
        &mut control,
        pb::WarehouseSpec {
            ssl_root_cert: pem,
            ..spec("by-api", format!("{}?sslmode=verify-full", warehouse.url()))
        },
    )
    .await;
    assert!(report.ok, "{report:?}");
    assert!(report.tls.expect("a TLS report").host_name_verified);
    // The write-only CA never shows up in a log.
    let pem = std::fs::read_to_string(tls.ca())?;
    let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    world.assert_no_secret_in_logs(&body);
    world.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn certificate_and_mode_problems_are_named() -> anyhow::Result<()> {
    let tls = TlsPostgres::ensure();
    let warehouse = tls.database().await;
    let mut world = World::new("tls-errors").await?;
    world.start("control")?;
    let mut control = world.control().await?;
    let url = warehouse.url();

    // `require`: encrypted, the certificate not checked (and said so, with a warning only
    // for a non-loopback host, which `localhost` is not).
    let report = test_spec(&mut control, spec("req", format!("{url}?sslmode=require"))).await;
    assert!(report.ok, "{report:?}");
    let t = report.tls.expect("a TLS report");
    assert!(
        t.encrypted && !t.certificate_verified && !t.host_name_verified,
        "{t:?}"
    );
    assert!(t.summary.contains("not verified"), "{t:?}");

    // verify-ca accepts the certificate for any name, verify-full does not.
    let ca = tls.ca().display().to_string();
    let by_ip = url.replace("localhost", "127.0.0.1");
    let report = test_spec(
        &mut control,
        spec("ca", format!("{by_ip}?sslmode=verify-ca&sslrootcert={ca}")),
    )
    .await;
    assert!(report.ok, "{report:?}");
    let t = report.tls.expect("a TLS report");
    assert!(t.certificate_verified && !t.host_name_verified, "{t:?}");

    let message = connect_message(
        &test_spec(
            &mut control,
            spec(
                "host",
                format!("{by_ip}?sslmode=verify-full&sslrootcert={ca}"),
            ),
        )
        .await,
    );
    assert!(
        message.contains("not valid for the host name `127.0.0.1`"),
        "{message}"
    );

    let other = tls.other_ca().display().to_string();
    let message = connect_message(
        &test_spec(
            &mut control,
            spec(
                "other",
                format!("{url}?sslmode=verify-full&sslrootcert={other}"),
            ),
        )
        .await,
    );
    assert!(message.contains("not signed by a trusted CA"), "{message}");

    let message = connect_message(
        &test_spec(
            &mut control,
            spec("plain", format!("{url}?sslmode=disable")),
        )
        .await,
    );
    assert!(
        message.contains("the server refused a connection without TLS"),
        "{message}"
    );
    assert!(message.contains("no encryption"), "{message}");

    let message = connect_message(
        &test_spec(
            &mut control,
            spec(
                "missing",
                format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"),
            ),
        )
        .await,
    );
    assert!(
        message.contains("sslrootcert `/nonexistent/ca.pem` cannot be used"),
        "{message}"
    );

    // CreateWarehouse runs the same check and refuses, naming it.
    let err = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(spec(
                "other",
                format!("{url}?sslmode=verify-full&sslrootcert={other}"),
            )),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("not signed by a trusted CA"),
        "{err:?}"
    );

    // A mode libpq does not know is refused before connecting, naming the field.
    let err = control
        .create_warehouse(pb::CreateWarehouseRequest {
            warehouse: Some(spec("typo", format!("{url}?sslmode=verify_full"))),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().starts_with("warehouse.dsn:"), "{err:?}");
    world.cleanup().await;
    Ok(())
}

/// `mixsync warehouse list` against this world's control at `server`, with `args` added.
async fn cli_list(
    world: &World,
    server: &str,
    args: &[&std::path::Path],
    flags: &[&str],
) -> anyhow::Result<(bool, String)> {
    let mut command = tokio::process::Command::new(binary()?);
    command
        .args(["warehouse", "list", "--server", server])
        .env("MIXSYNC_API_TOKEN", &world.token)
        .env_remove("MIXSYNC_CA_CERT")
        .env_remove("MIXSYNC_CLIENT_CERT")
        .env_remove("MIXSYNC_CLIENT_KEY");
    for (flag, path) in flags.iter().zip(args) {
        command.arg(flag).arg(path);
    }
    let out = command.output().await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Starts control with `tls` added to the environment and waits for its "listening" line, then
/// until `server` answers the CLI given `flags`.
async fn start_control(
    world: &mut World,
    tls: &[(&str, std::path::PathBuf)],
    server: &str,
    ok_args: &[&std::path::Path],
    ok_flags: &[&str],
) -> anyhow::Result<()> {
    if let Some(mut old) = world.processes.remove("control") {
        old.kill().await?;
    }
    world
        .env
        .retain(|(k, _)| !k.starts_with("MIXSYNC_GRPC_TLS_"));
    for (k, v) in tls {
        world.env.push(((*k).into(), v.display().to_string()));
    }
    let before = world.log_lines("control", "control listening");
    world.start("control")?;
    world
        .wait_for_log_lines("control", "control listening", before + 1, RUN_TIMEOUT)
        .await?;
    // It logs just before it serves: the first calls may find nothing listening yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, stderr) = cli_list(world, server, ok_args, ok_flags).await?;
        if ok {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "control over TLS did not answer: {stderr}\n{}",
            world.log("control")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_control_over_tls_and_mutual_tls() -> anyhow::Result<()> {
    let pki = TestPki::new();
    let mut world = World::new("grpc-tls").await?;
    let https = format!("https://localhost:{}", world.grpc_port);
    let ca = pki.path("ca.pem");
    let server_tls = [
        ("MIXSYNC_GRPC_TLS_CERT", pki.path("server.pem")),
        ("MIXSYNC_GRPC_TLS_KEY", pki.path("server.key")),
    ];

    // TLS: the CLI trusts control's CA and lists.
    start_control(&mut world, &server_tls, &https, &[&ca], &["--ca-cert"]).await?;
    assert!(
        world.log("control").contains("transport=\"tls\""),
        "{}",
        world.log("control")
    );
    // Without the CA the certificate is not trusted, and it says so.
    let (ok, stderr) = cli_list(&world, &https, &[], &[]).await?;
    assert!(!ok);
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");
    assert!(stderr.contains("--ca-cert"), "{stderr}");
    // Plain HTTP/2 to a TLS port gets nowhere.
    let plain = format!("http://127.0.0.1:{}", world.grpc_port);
    let (ok, _) = cli_list(&world, &plain, &[], &[]).await?;
    assert!(!ok);
    // Certificates for a plain server are a mistake, not a silent downgrade.
    let (ok, stderr) = cli_list(&world, &plain, &[&ca], &["--ca-cert"]).await?;
    assert!(!ok);
    assert!(stderr.contains("give the server as https://"), "{stderr}");
    // The certificate is issued for 127.0.0.1 too.
    let by_ip = format!("https://127.0.0.1:{}", world.grpc_port);
    assert!(cli_list(&world, &by_ip, &[&ca], &["--ca-cert"]).await?.0);

    // Mutual TLS: a client certificate signed by the client CA is required.
    let mut mutual = server_tls.to_vec();
    mutual.push(("MIXSYNC_GRPC_TLS_CLIENT_CA", pki.path("ca.pem")));
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    let with_cert = ["--ca-cert", "--client-cert", "--client-key"];
    start_control(&mut world, &mutual, &https, &[&ca, &cert, &key], &with_cert).await?;
    assert!(world.log("control").contains("transport=\"mutual-tls\""));
    let (ok, stderr) = cli_list(&world, &https, &[&ca], &["--ca-cert"]).await?;
    assert!(!ok, "a client without a certificate was served");
    assert!(
        stderr.contains("client certificate (mutual TLS)")
            && stderr.contains("give --client-cert and --client-key"),
        "{stderr}"
    );
    let (other_cert, other_key) = (pki.path("other-client.pem"), pki.path("other-client.key"));
    let (ok, stderr) =
        cli_list(&world, &https, &[&ca, &other_cert, &other_key], &with_cert).await?;
    assert!(!ok, "a certificate of another CA was accepted: {stderr}");
    assert!(
        stderr.contains("refused this client certificate"),
        "{stderr}"
    );
    // The right certificate is still served after the refusals.
    assert!(
        cli_list(&world, &https, &[&ca, &cert, &key], &with_cert)
            .await?
            .0
    );

    // No private key (the server's, the clients') in any log.
    let mut key_lines = Vec::new();
    for file in ["server.key", "client.key", "other-client.key", "ca.key"] {
        let pem = std::fs::read_to_string(pki.path(file))?;
        key_lines.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    let key_lines: Vec<&str> = key_lines.iter().map(String::as_str).collect();
    world.assert_no_secret_in_logs(&key_lines);
    world.assert_no_secret_in_logs(&[&world.token.clone()]);

    // Half a configuration stops control at start, naming what is missing.
    if let Some(mut old) = world.processes.remove("control") {
        old.kill().await?;
    }
    world
        .env
        .retain(|(k, _)| !k.starts_with("MIXSYNC_GRPC_TLS_"));
    world.env.push((
        "MIXSYNC_GRPC_TLS_CERT".into(),
        pki.path("server.pem").display().to_string(),
    ));
    world.start("control")?;
    let mut control = world.processes.remove("control").expect("started");
    let status = tokio::time::timeout(Duration::from_secs(60), control.wait()).await??;
    assert!(!status.success());
    assert!(
        world
            .log("control")
            .contains("MIXSYNC_GRPC_TLS_KEY is not set"),
        "{}",
        world.log("control")
    );
    world.cleanup().await;
    Ok(())
}
