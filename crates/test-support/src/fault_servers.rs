//! The fault-injection tests' own PostgreSQL cluster and RabbitMQ node, of `.ci/fault-servers`:
//! made and started on first use (the script is idempotent and takes a lock, so concurrent tests
//! share them; `.ci/run` starts them before the tests).
//!
//! These servers belong to the fault tests only: those tests stop and restart them, so nothing
//! else may rely on them staying up. The main servers ([`crate::PG_SERVER`] on 5432 and the
//! broker on 5672) that every other test uses are never touched by the script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The running fault-test servers: a PostgreSQL cluster (trust authentication, user
/// `postgres`) and a RabbitMQ node (guest/guest), both on localhost.
#[derive(Debug, Clone)]
pub struct FaultServers {
    pg_port: u16,
    amqp_port: u16,
}

impl FaultServers {
    /// Makes and starts both servers if they are not running (also after a test stopped one).
    ///
    /// # Panics
    ///
    /// When the script fails (it needs root, PostgreSQL's `pg_createcluster` and RabbitMQ's
    /// `rabbitmq-server`).
    #[must_use]
    pub fn ensure() -> Self {
        let stdout = run(None);
        let field = |key: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("{} printed no `{key}=`: {stdout}", script().display()))
                .parse()
                .unwrap_or_else(|e| panic!("{} printed a bad `{key}=`: {e}", script().display()))
        };
        Self {
            pg_port: field("pg_port"),
            amqp_port: field("amqp_port"),
        }
    }

    /// The cluster's port on localhost.
    #[must_use]
    pub fn pg_port(&self) -> u16 {
        self.pg_port
    }

    /// The node's AMQP port on localhost.
    #[must_use]
    pub fn amqp_port(&self) -> u16 {
        self.amqp_port
    }

    /// The cluster as a URL without a database, the `server` of [`crate::TestDb::create_on`].
    #[must_use]
    pub fn pg_server_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.pg_port)
    }

    /// The node's default vhost as an AMQP URL.
    #[must_use]
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// Restarts the cluster (a fast shutdown: its clients are disconnected); returns once it
    /// accepts connections again.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn restart_postgres(&self) {
        run(Some("pg-restart"));
    }

    /// Stops the cluster (a fast shutdown: its clients are disconnected); returns once it has
    /// stopped.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn stop_postgres(&self) {
        run(Some("pg-stop"));
    }

    /// Starts the cluster; returns once it accepts connections.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn start_postgres(&self) {
        run(Some("pg-start"));
    }

    /// Restarts the node, keeping its data (durable queues and persistent messages); returns
    /// once it accepts connections again. Takes about ten seconds.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn restart_rabbitmq(&self) {
        run(Some("amqp-restart"));
    }

    /// Stops the node, keeping its data; returns once it has stopped.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn stop_rabbitmq(&self) {
        run(Some("amqp-stop"));
    }

    /// Starts the node; returns once it has booted and accepts connections.
    ///
    /// # Panics
    ///
    /// When the script fails.
    pub fn start_rabbitmq(&self) {
        run(Some("amqp-start"));
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/fault-servers")
}

/// Runs the script with `subcommand` (none: make and start both) and returns its stdout.
fn run(subcommand: Option<&str>) -> String {
    let script = script();
    let mut command = Command::new(&script);
    command.args(subcommand);
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {} failed ({}):\n{stdout}\n{}",
        script.display(),
        subcommand.unwrap_or_default(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}
