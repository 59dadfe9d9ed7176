//! `mixsync serve <service> --print-config`: the effective configuration, secrets redacted, read
//! through the one configuration module.

use std::process::{Command, Output};

fn serve(args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mixsync"))
        .arg("serve")
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .expect("mixsync runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn print_config_shows_every_setting_once_with_secrets_redacted() {
    let out = serve(
        &["all", "--print-config"],
        &[
            ("MIXSYNC_SECRET_KEY", "key-hunter2"),
            ("MIXSYNC_API_TOKEN", "token-hunter2-0123456789"),
            (
                "MIXSYNC_DATABASE_URL",
                "postgres://u:db-hunter2@db.internal:5432/state",
            ),
            ("MIXSYNC_AMQP_URL", "amqp://mq:mq-hunter2@rabbit:5672/%2f"),
            ("MIXSYNC_LOADER_LINGER_MS", "1s"),
            ("MIXSYNC_LOADER_RATE_LIMIT", "No"),
            ("MIXSYNC_MAPPER_PREFETCH", "  "),
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(!stdout.contains("hunter2"), "{stdout}");
    for line in [
        "MIXSYNC_SECRET_KEY=[REDACTED]  # set",
        "MIXSYNC_API_TOKEN=[REDACTED]  # set",
        "MIXSYNC_DATABASE_URL=postgres://u:[REDACTED]@db.internal:5432/state  # set",
        "MIXSYNC_AMQP_URL=amqp://mq:[REDACTED]@rabbit:5672/%2f  # set",
        "MIXSYNC_LOADER_LINGER_MS=1s  # set",
        "MIXSYNC_LOADER_RATE_LIMIT=No  # set",
        // Blank is unset: the default applies and says so.
        "MIXSYNC_MAPPER_PREFETCH=4  # default",
        "MIXSYNC_GRPC_ADDR=127.0.0.1:50051  # default",
        "MIXSYNC_STATEMENT_TIMEOUT=30m  # default",
        "MIXSYNC_SCHEDULER_TICK=5s  # default",
        "MIXSYNC_LOG_FORMAT=text  # default",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "no `{line}` in:\n{stdout}"
        );
    }
    // Each variable once, however many services of the process read it.
    let mut names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    let total = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), total, "{stdout}");
    // `serve all` runs the pipeline, not the emulator.
    assert!(!stdout.contains("MIXSYNC_EMULATOR_"), "{stdout}");
}

#[test]
fn print_config_of_one_service_shows_its_own_variables() {
    let out = serve(&["emulator", "--print-config"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l == "MIXSYNC_EMULATOR_ADDR=127.0.0.1:3900  # default"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l == "MIXSYNC_EMULATOR_RATE_LIMIT=on  # default"),
        "{stdout}"
    );
    assert!(!stdout.contains("MIXSYNC_DATABASE_URL"), "{stdout}");
}

#[test]
fn an_invalid_value_fails_naming_the_variable_and_what_is_accepted() {
    let out = serve(
        &["loader-events", "--print-config"],
        &[
            ("MIXSYNC_SECRET_KEY", "key-hunter2"),
            ("MIXSYNC_LOADER_RETRY_MAX_MS", "soon"),
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("loader-events: invalid configuration"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "MIXSYNC_LOADER_RETRY_MAX_MS=soon is invalid: expected a duration such as 500ms"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");

    let out = serve(&["control", "--print-config"], &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("MIXSYNC_SECRET_KEY is not set"), "{stderr}");
}
