//! Helpers for the bus tests: each test gets its own queue prefix on the local RabbitMQ, whose
//! queues `mixsync-test-support`'s guard deletes when done, even when the test fails.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use mixsync_bus::Bus;
use mixsync_test_support::{QueueMessages, TestQueues, queue_messages};

// Each test binary uses a different subset.
#[allow(unused_imports)]
pub use mixsync_test_support::{next, queues::amqp_url};

/// A bus on its own random prefix; dropping it deletes the prefixed queues.
pub struct TestBus {
    pub bus: Bus,
    queues: TestQueues,
}

impl TestBus {
    pub async fn new() -> Self {
        Self::with_prefix(random_prefix()).await
    }

    /// A bus on `prefix`, which must be this test's own.
    pub async fn with_prefix(prefix: String) -> Self {
        // The bus's own logs, shown when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("mixsync_bus=debug")
            .try_init();
        let queues = TestQueues::with_prefix(prefix);
        let bus = queues.bus().await;
        Self { bus, queues }
    }

    pub fn prefix(&self) -> &str {
        self.queues.prefix()
    }

    /// Waits until the broker counts `ready` messages waiting in `queue` (unprefixed) and
    /// `unacked` delivered but not acknowledged: what the broker holds back or has let go of,
    /// read from the broker instead of inferred from a quiet consumer.
    pub async fn wait_for_messages(&self, queue: &str, ready: u64, unacked: u64) {
        let name = mixsync_bus::topology::prefixed(self.prefix(), queue);
        let prefix = self.prefix().to_owned();
        let deadline = tokio::time::Instant::now() + mixsync_test_support::PATIENCE;
        loop {
            let prefix = prefix.clone();
            let all = tokio::task::spawn_blocking(move || queue_messages(&prefix))
                .await
                .unwrap();
            let now = all.get(&name).copied();
            if now == Some(QueueMessages { ready, unacked }) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: wanted {ready} ready and {unacked} unacked, the broker has {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Closes this bus's connection from the broker side, like a broker restart would.
    pub async fn force_close_connection(&self) {
        let marker = format!("prefix={}", self.prefix());
        tokio::task::spawn_blocking(move || force_close(&marker))
            .await
            .unwrap();
    }
}

/// A fresh `t<random>.` queue prefix.
pub fn random_prefix() -> String {
    format!("t{}.", mixsync_test_support::unique_suffix())
}

fn force_close(marker: &str) {
    let listing = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("these tests need rabbitmqctl on the PATH to drop a connection");
    assert!(listing.status.success(), "{listing:?}");
    let stdout = String::from_utf8(listing.stdout).unwrap();
    let pids: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert!(
        !pids.is_empty(),
        "no connection named `{marker}` in {stdout}"
    );
    for pid in pids {
        let closed = Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by a mixsync-bus test"])
            .output()
            .unwrap();
        assert!(closed.status.success(), "{closed:?}");
    }
}
