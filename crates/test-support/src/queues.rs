//! A throwaway queue prefix on the local RabbitMQ, whose queues and dead-letter exchange are
//! deleted when its guard is dropped.

use std::collections::BTreeMap;
use std::process::Command;

use mixsync_bus::{Bus, BusConfig, DEFAULT_AMQP_URL};

use crate::cleanup::block_on_fresh_thread;

/// A queue prefix `t<random>.`; dropping the guard deletes every queue of the bus topology
/// under it and its dead-letter exchange, also when the test panics.
///
/// Stop the consumers of the prefix first (cancel the service, kill the process): a consumer
/// whose queue is deleted under it declares the topology again.
#[derive(Debug)]
pub struct TestQueues {
    config: BusConfig,
}

impl Default for TestQueues {
    fn default() -> Self {
        Self::new()
    }
}

impl TestQueues {
    /// A fresh `t<random>.` prefix on the local broker (`MIXSYNC_AMQP_URL` when set).
    #[must_use]
    pub fn new() -> Self {
        Self::with_prefix(format!("t{}.", crate::unique_suffix()))
    }

    /// The guard of `prefix`, which must be unique to the test.
    ///
    /// # Panics
    ///
    /// On an empty prefix: deleting it would delete the production topology.
    #[must_use]
    pub fn with_prefix(prefix: String) -> Self {
        assert!(!prefix.is_empty(), "a test queue prefix cannot be empty");
        Self {
            config: BusConfig {
                url: amqp_url(),
                prefix,
            },
        }
    }

    /// The guard of `prefix` on the broker at `url` (the fault tests' own node).
    ///
    /// # Panics
    ///
    /// On an empty prefix.
    #[must_use]
    pub fn on(url: String, prefix: String) -> Self {
        let mut queues = Self::with_prefix(prefix);
        queues.config.url = url;
        queues
    }

    /// The bus configuration of this prefix.
    #[must_use]
    pub fn config(&self) -> BusConfig {
        self.config.clone()
    }

    /// The prefix, e.g. `t0123456789abcdef.`.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.config.prefix
    }

    /// A new bus connection on this prefix (declares its topology).
    ///
    /// # Panics
    ///
    /// When the broker cannot be reached.
    pub async fn bus(&self) -> Bus {
        Bus::connect(self.config())
            .await
            .expect("connect to the local RabbitMQ")
    }
}

impl Drop for TestQueues {
    fn drop(&mut self) {
        let config = self.config.clone();
        let what = format!("queues {}*", config.prefix);
        // Its own connection: the test's may be closed or owned by a runtime that is unwinding.
        block_on_fresh_thread(&what, move || async move {
            let bus = Bus::connect(config).await.map_err(|e| e.to_string())?;
            let deleted = bus.purge_and_delete_all().await.map_err(|e| e.to_string());
            bus.close().await;
            deleted
        });
    }
}

/// The broker the tests use: `MIXSYNC_AMQP_URL`, or the local default.
#[must_use]
pub fn amqp_url() -> String {
    std::env::var(mixsync_bus::AMQP_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned())
}

/// What a queue holds, as the broker counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueMessages {
    /// Waiting to be delivered.
    pub ready: u64,
    /// Delivered to a consumer and not yet acknowledged.
    pub unacked: u64,
}

impl QueueMessages {
    /// Ready plus unacknowledged: zero means the queue holds no message at all.
    #[must_use]
    pub fn depth(&self) -> u64 {
        self.ready + self.unacked
    }
}

/// Every queue whose name starts with `prefix`, with what it holds. Asks `rabbitmqctl` (on the
/// PATH, run by a user it accepts), because AMQP only reports the ready messages.
///
/// # Panics
///
/// When `rabbitmqctl` cannot be run or fails.
#[must_use]
pub fn queue_messages(prefix: &str) -> BTreeMap<String, QueueMessages> {
    let listing = Command::new("rabbitmqctl")
        .args([
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
            "messages_unacknowledged",
        ])
        .output()
        .expect("rabbitmqctl on the PATH, to read queue depths");
    assert!(listing.status.success(), "rabbitmqctl failed: {listing:?}");
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.next()?;
            let ready = fields.next()?.parse().ok()?;
            let unacked = fields.next()?.parse().ok()?;
            name.starts_with(prefix)
                .then(|| (name.to_owned(), QueueMessages { ready, unacked }))
        })
        .collect()
}

/// Every queue whose name starts with `prefix`, with its depth (see [`QueueMessages::depth`]).
///
/// # Panics
///
/// When `rabbitmqctl` cannot be run or fails.
#[must_use]
pub fn queue_depths(prefix: &str) -> BTreeMap<String, u64> {
    queue_messages(prefix)
        .into_iter()
        .map(|(name, messages)| (name, messages.depth()))
        .collect()
}
