//! Helpers for the bus tests: each test gets its own queue prefix on the local RabbitMQ and
//! deletes its queues when done, even when it fails.

#![allow(dead_code)]

use std::process::Command;
use std::time::Duration;

use mixsync_bus::{Bus, BusConfig, Consumer, DEFAULT_AMQP_URL, Delivery};

/// Long enough for anything that should happen; only reached when a test fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// A bus on its own random prefix; dropping it deletes the prefixed queues.
pub struct TestBus {
    pub bus: Bus,
    prefix: String,
}

impl TestBus {
    pub async fn new() -> Self {
        Self::with_prefix(random_prefix()).await
    }

    pub async fn with_prefix(prefix: String) -> Self {
        // The bus's own logs, shown when a test fails.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("mixsync_bus=debug")
            .try_init();
        let bus = Bus::connect(BusConfig {
            url: amqp_url(),
            prefix: prefix.clone(),
        })
        .await
        .expect("connect to the local RabbitMQ");
        Self { bus, prefix }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Closes this bus's connection from the broker side, like a broker restart would.
    pub async fn force_close_connection(&self) {
        let marker = format!("prefix={}", self.prefix);
        tokio::task::spawn_blocking(move || force_close(&marker))
            .await
            .unwrap();
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let prefix = self.prefix.clone();
        // Its own connection on its own runtime: this test's runtime is blocked by the join
        // below (and may be unwinding), so the test's own connection cannot make progress.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let fresh = Bus::connect(BusConfig {
                    url: amqp_url(),
                    prefix,
                })
                .await
                .unwrap();
                fresh.purge_and_delete_all().await.unwrap();
                fresh.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A fresh `t<random>.` queue prefix.
pub fn random_prefix() -> String {
    format!("t{:016x}.", rand::random::<u64>())
}

/// The broker the tests use: `MIXSYNC_AMQP_URL` or the local default.
pub fn amqp_url() -> String {
    std::env::var("MIXSYNC_AMQP_URL").unwrap_or_else(|_| DEFAULT_AMQP_URL.to_owned())
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

/// The next delivery, failing the test if none comes.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    tokio::time::timeout(PATIENCE, consumer.next())
        .await
        .expect("a delivery within the timeout")
        .expect("the consumer is open")
}

/// Asserts that no delivery arrives for `wait`.
pub async fn assert_quiet(consumer: &mut Consumer, wait: Duration) {
    if let Ok(delivery) = tokio::time::timeout(wait, consumer.next()).await {
        panic!("unexpected delivery: {delivery:?}");
    }
}
