//! The binary's own surface: help lists every command, bad input is refused with a clear message.
//! (Having an integration test here also makes `cargo nextest run --workspace` build the `mixsync`
//! binary that the end-to-end tests in `tests/` start.)

use std::process::Command;

fn mixsync(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mixsync"))
        .args(args)
        .env_remove("MIXSYNC_API_TOKEN")
        .output()
        .expect("the mixsync binary runs")
}

#[test]
fn help_lists_every_command() {
    let out = mixsync(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "serve",
        "warehouse",
        "target",
        "activation",
        "run",
        "demo",
        "bench",
    ] {
        assert!(text.contains(command), "`{command}` missing from:\n{text}");
    }
    let serve = String::from_utf8_lossy(&mixsync(&["serve", "--help"]).stdout).into_owned();
    for service in [
        "control",
        "extractor",
        "mapper",
        "loader-events",
        "emulator",
        "all",
    ] {
        assert!(
            serve.contains(service),
            "`{service}` missing from:\n{serve}"
        );
    }
}

#[test]
fn unknown_services_and_bad_servers_are_refused_clearly() {
    let out = mixsync(&["serve", "nonsense"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nonsense"));

    let out = mixsync(&["--server", "http://127.0.0.1:1", "run", "list"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the control plane at http://127.0.0.1:1"),
        "{stderr}"
    );
}

#[test]
fn a_missing_activation_file_names_the_path() {
    let out = mixsync(&[
        "--server",
        "http://127.0.0.1:1",
        "activation",
        "create",
        "--from-file",
        "/nonexistent/a.yaml",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The connection is tried first or the file is read first; either way the error is explicit.
    assert!(
        stderr.contains("/nonexistent/a.yaml") || stderr.contains("cannot reach"),
        "{stderr}"
    );
}
