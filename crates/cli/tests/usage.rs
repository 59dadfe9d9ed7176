//! The binary's own surface: the exact command lists of every help, the error each client command
//! gives when an argument is missing, and the connection error naming the server it could not reach.
//! Each check is exact, so it fails when a command or its error goes away or changes.
//! (Having an integration test here also makes `cargo nextest run --workspace` build the `mixsync`
//! binary that the end-to-end tests in `tests/` start.)

use std::net::TcpListener;
use std::process::{Command, Output};

/// Runs `mixsync` with none of the environment variables that stand in for its flags.
fn mixsync(args: &[&str]) -> Output {
    mixsync_with_env(args, &[])
}

fn mixsync_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mixsync"));
    for var in [
        "MIXSYNC_SERVER",
        "MIXSYNC_API_TOKEN",
        "MIXSYNC_PROJECT_TOKEN",
        "MIXSYNC_SERVICE_ACCOUNT_SECRET",
    ] {
        command.env_remove(var);
    }
    command
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the mixsync binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `mixsync ARGS --help`, which must succeed.
fn help(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("--help");
    let out = mixsync(&args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

/// The lines of the section of `text` headed `heading` (e.g. `Commands:`), up to the next heading
/// (the next line that is not indented).
fn section<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = text.lines();
    assert!(
        lines.any(|line| line == heading),
        "no `{heading}` section in:\n{text}"
    );
    lines
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect()
}

/// The names listed under `Commands:` in `mixsync ARGS --help`, in order. Entries are indented by
/// exactly two spaces; anything indented further would be a wrapped description.
fn commands(args: &[&str]) -> Vec<String> {
    let text = help(args);
    section(&text, "Commands:")
        .into_iter()
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect()
}

const GROUPS: [(&str, &[&str]); 5] = [
    ("warehouse", &["create", "get", "list", "delete", "test"]),
    (
        "target",
        &["create", "update", "get", "list", "delete", "test"],
    ),
    (
        "activation",
        &[
            "create", "update", "get", "list", "delete", "pause", "resume", "preview",
        ],
    ),
    ("run", &["start", "show", "cancel", "watch", "list"]),
    ("failed", &["list", "show", "replay", "dead-letters"]),
];

/// With clap's own `help` last, as it lists it.
fn with_help(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .chain(&["help"])
        .map(|name| (*name).to_owned())
        .collect()
}

#[test]
fn mixsync_lists_exactly_its_commands() {
    assert_eq!(
        commands(&[]),
        with_help(&[
            "serve",
            "warehouse",
            "target",
            "activation",
            "run",
            "failed",
            "demo",
            "bench",
        ])
    );
    // Each one has its own help, under its own name.
    for command in ["serve", "demo", "bench"] {
        let text = help(&[command]);
        let usage = format!("Usage: mixsync {command} [OPTIONS]");
        assert!(
            text.lines().any(|line| line.starts_with(&usage)),
            "`{usage}` missing from:\n{text}"
        );
    }
}

#[test]
fn every_client_group_lists_exactly_its_subcommands() {
    for (group, subcommands) in GROUPS {
        assert_eq!(
            commands(&[group]),
            with_help(subcommands),
            "mixsync {group}"
        );
        for subcommand in subcommands {
            let text = help(&[group, subcommand]);
            let usage = format!("Usage: mixsync {group} {subcommand} ");
            assert!(
                text.lines().any(|line| line.starts_with(&usage)),
                "`{usage}` missing from:\n{text}"
            );
        }
    }
}

#[test]
fn serve_lists_exactly_its_services() {
    let text = help(&["serve"]);
    let services: Vec<&str> = section(&text, "Arguments:")
        .into_iter()
        .filter_map(|line| line.trim_start().strip_prefix("- "))
        .map(|entry| entry.split(':').next().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "control",
            "extractor",
            "mapper",
            "loader-events",
            "loader-users",
            "loader-groups",
            "emulator",
            "all",
        ]
    );
}

#[test]
fn unknown_commands_and_services_are_refused_by_name() {
    let out = mixsync(&["serve", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: invalid value 'nonsense' for '<SERVICE>'\n  [possible values: control, extractor, \
         mapper, loader-events, loader-users, loader-groups, emulator, all]\n\nFor more \
         information, try '--help'.\n"
    );

    let out = mixsync(&["nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr(&out);
    assert_eq!(
        stderr.lines().next(),
        Some("error: unrecognized subcommand 'nonsense'"),
        "{stderr}"
    );
}

/// clap's error for missing required arguments: exactly these, and the usage of this command.
fn missing(usage: &str, arguments: &[&str]) -> String {
    let listed: String = arguments
        .iter()
        .map(|argument| format!("  {argument}\n"))
        .collect();
    format!(
        "error: the following required arguments were not provided:\n{listed}\nUsage: {usage}\n\n\
         For more information, try '--help'.\n"
    )
}

#[test]
fn each_command_names_the_arguments_it_is_missing() {
    let id = &["<ID_OR_NAME>"][..];
    let run_id = &["<RUN_ID>"][..];
    let target_flags = [
        "--name <NAME>",
        "--project-id <PROJECT_ID>",
        "--token <TOKEN>",
        "--service-account <SERVICE_ACCOUNT>",
        "--service-account-secret <SERVICE_ACCOUNT_SECRET>",
    ];
    let target_usage = target_flags.join(" ");
    let mut target_update = target_flags.to_vec();
    target_update.push("<ID_OR_NAME>");
    let cases: Vec<(&[&str], String, &[&str])> = vec![
        (&["serve"], "mixsync serve <SERVICE>".into(), &["<SERVICE>"]),
        (
            &["warehouse", "create"],
            "mixsync warehouse create --name <NAME>".into(),
            &["--name <NAME>"],
        ),
        (
            &["warehouse", "get"],
            "mixsync warehouse get <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["warehouse", "delete"],
            "mixsync warehouse delete <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["warehouse", "test"],
            "mixsync warehouse test <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["target", "create"],
            format!("mixsync target create {target_usage}"),
            &target_flags,
        ),
        (
            &["target", "update"],
            format!("mixsync target update {target_usage} <ID_OR_NAME>"),
            &target_update,
        ),
        (
            &["target", "get"],
            "mixsync target get <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["target", "delete"],
            "mixsync target delete <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["target", "test"],
            "mixsync target test <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "update"],
            "mixsync activation update <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "get"],
            "mixsync activation get <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "delete"],
            "mixsync activation delete <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "pause"],
            "mixsync activation pause <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "resume"],
            "mixsync activation resume <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["activation", "preview"],
            "mixsync activation preview <ID_OR_NAME>".into(),
            id,
        ),
        (
            &["run", "start"],
            "mixsync run start <ACTIVATION>".into(),
            &["<ACTIVATION>"],
        ),
        (&["run", "show"], "mixsync run show <RUN_ID>".into(), run_id),
        (
            &["run", "cancel"],
            "mixsync run cancel <RUN_ID>".into(),
            run_id,
        ),
        (
            &["run", "watch"],
            "mixsync run watch <RUN_ID>".into(),
            run_id,
        ),
        (
            &["failed", "list"],
            "mixsync failed list <RUN_ID>".into(),
            run_id,
        ),
        (
            &["failed", "show"],
            "mixsync failed show <ID>".into(),
            &["<ID>"],
        ),
        (
            &["failed", "replay"],
            "mixsync failed replay <RUN_ID>".into(),
            run_id,
        ),
    ];
    // A server that is not there: these errors come before any connection is tried.
    let server = unused_server();
    for (args, usage, arguments) in cases {
        let mut full = vec!["--server", server.as_str()];
        full.extend_from_slice(args);
        let out = mixsync(&full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), missing(&usage, arguments), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }

    // `activation create` takes its definition from a file or from flags, so it checks itself.
    let out = mixsync(&["--server", &server, "activation", "create"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mixsync: --name is required (or use --from-file)\n"
    );
}

#[test]
fn a_missing_activation_file_names_the_path_before_any_connection() {
    let server = unused_server();
    let out = mixsync(&[
        "--server",
        &server,
        "activation",
        "create",
        "--from-file",
        "/nonexistent/a.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mixsync: cannot read /nonexistent/a.yaml: No such file or directory (os error 2)\n"
    );
}

/// `http://127.0.0.1:PORT` where nothing listens: a port the OS just handed out and took back.
fn unused_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// The one-line error of a client command that cannot connect to `server`.
#[track_caller]
fn assert_cannot_reach(out: &Output, server: &str, args: &[&str]) {
    assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(out));
    let stderr = stderr(out);
    let expected = format!(
        "mixsync: cannot reach the control plane at {server} (is `mixsync serve control` running?): "
    );
    assert!(
        stderr.starts_with(&expected) && stderr.ends_with("Connection refused (os error 111)\n"),
        "{args:?}: expected `{expected}…Connection refused`, got: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
}

#[test]
fn every_client_command_names_the_server_it_cannot_reach() {
    let commands: [&[&str]; 17] = [
        &["warehouse", "get", "w"],
        &["warehouse", "list"],
        &["warehouse", "delete", "w"],
        &["warehouse", "test", "w"],
        &["target", "get", "t"],
        &["target", "list"],
        &["target", "delete", "t"],
        &["target", "test", "t"],
        &["activation", "get", "a"],
        &["activation", "list"],
        &["activation", "pause", "a"],
        &["run", "start", "a"],
        &["run", "show", "r"],
        &["run", "list"],
        &["failed", "list", "r"],
        &["failed", "show", "f"],
        &["failed", "dead-letters"],
    ];
    for args in commands {
        // A fresh address each time, so the message is known to name this one.
        let server = unused_server();
        let mut full = vec!["--server", server.as_str()];
        full.extend_from_slice(args);
        assert_cannot_reach(&mixsync(&full), &server, args);
    }
}

#[test]
fn the_server_can_come_from_the_environment() {
    let server = unused_server();
    let args = ["run", "list"];
    let out = mixsync_with_env(&args, &[("MIXSYNC_SERVER", &server)]);
    assert_cannot_reach(&out, &server, &args);
}

#[test]
fn a_malformed_server_address_is_refused_as_such() {
    let out = mixsync(&["--server", "not a url", "run", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mixsync: `not a url` is not a valid server address: invalid URI: invalid uri character\n"
    );
}
