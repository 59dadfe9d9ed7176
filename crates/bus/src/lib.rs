//! mixsync's RabbitMQ layer.
//!
//! A [`Bus`] holds two connections (publishing, consuming) and declares the whole [`topology`] on every (re)connect.
//! [`Publisher::publish`] sends a persistent protobuf message with W3C trace context headers
//! and waits for the publisher confirm; [`Bus::consume`] gives a [`Consumer`] with bounded
//! prefetch and manual acks. Both reconnect with backoff (100 ms doubling to 5 s) when the
//! broker goes away: publishes are retried after the reconnect, consumers resubscribe and
//! unacked messages are redelivered.
//!
//! Queue names passed in are the unprefixed constants ([`ROWS`], …); the bus prepends
//! `MIXSYNC_QUEUE_PREFIX`.
//!
//! Which service publishes and consumes each queue, and when each consumer acks, nacks or
//! dead-letters: docs/architecture.md ("Queues").
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mixsync_bus::{Bus, BusConfig, ROWS};
//! use mixsync_proto::v1::RowBatch;
//!
//! let bus = Bus::connect(BusConfig::read(&mixsync_config::Env::process())?).await?;
//! bus.publisher().publish(ROWS, &RowBatch::default()).await?;
//! let mut rows = bus.consume(ROWS, 8).await?;
//! while let Some(delivery) = rows.next().await {
//!     // ... decode `delivery.body`, do the work, publish downstream, then:
//!     delivery.ack().await?;
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod config;
mod connection;
mod consumer;
mod delivery;
mod error;
mod headers;
mod publisher;
pub mod topology;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use config::{AMQP_URL_VAR, BusConfig, DEFAULT_AMQP_URL, QUEUE_PREFIX_VAR};
pub use consumer::Consumer;
pub use delivery::Delivery;
pub use error::BusError;
pub use publisher::{CONTENT_TYPE, Publisher, TYPE_HEADER};
pub use topology::{
    DEAD_LETTER, EXTRACT, LOAD_EVENTS, LOAD_GROUP_PROFILES, LOAD_USER_PROFILES, PROGRESS, ROWS,
};

use connection::Link;

/// How long [`Bus::connect`] keeps retrying an unreachable broker before giving up.
const INITIAL_PATIENCE: Duration = Duration::from_secs(30);

/// Connections to RabbitMQ with mixsync's topology declared: one for publishing and one for
/// consuming, because RabbitMQ blocks a publishing connection as a whole under a memory or
/// disk alarm, and acks sent on a blocked connection would stall with it. Cheap to clone;
/// clones share the connections and the publisher channel.
#[derive(Clone)]
pub struct Bus {
    /// Consumers' connection.
    link: Arc<Link>,
    /// The publisher's connection.
    publish_link: Arc<Link>,
    publisher: Publisher,
}

impl Bus {
    /// Connects and declares every exchange and queue of [`topology`].
    ///
    /// An unreachable broker is retried with backoff for up to 30 seconds; after that, and
    /// for refused credentials, it fails. Services use [`Bus::connect_patiently`].
    ///
    /// # Errors
    ///
    /// An invalid configuration, a broker that cannot be reached or refuses the login, or a
    /// topology the broker will not declare.
    pub async fn connect(config: BusConfig) -> Result<Self, BusError> {
        Self::open(&config, Some(INITIAL_PATIENCE)).await
    }

    /// [`Bus::connect`], waiting for an unreachable broker for as long as it takes (logging
    /// that it waits): how services start, since `docker compose up` or a Kubernetes rollout
    /// may start them before RabbitMQ. `None` when `shutdown` is cancelled first.
    ///
    /// # Errors
    ///
    /// As [`Bus::connect`], except that an unreachable broker is not an error.
    pub async fn connect_patiently(
        config: BusConfig,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<Self>, BusError> {
        tokio::select! {
            () = shutdown.cancelled() => Ok(None),
            bus = Self::open(&config, None) => bus.map(Some),
        }
    }

    async fn open(config: &BusConfig, patience: Option<Duration>) -> Result<Self, BusError> {
        let publish_link = Link::open(config, "publish", patience).await?;
        let link = match Link::open(config, "consume", patience).await {
            Ok(link) => link,
            Err(error) => {
                publish_link.close().await;
                return Err(error);
            }
        };
        Ok(Self {
            publisher: Publisher::new(Arc::clone(&publish_link)),
            publish_link,
            link,
        })
    }

    /// The bus's publisher (shared by every clone of this bus).
    #[must_use]
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// Subscribes to `queue` (an unprefixed constant) with at most `prefetch` unacked
    /// messages in flight (0 is taken as 1).
    ///
    /// # Errors
    ///
    /// An unknown queue, or the first subscription failing (later failures are retried by
    /// the consumer itself).
    pub async fn consume(&self, queue: &str, prefetch: u16) -> Result<Consumer, BusError> {
        Consumer::subscribe(Arc::clone(&self.link), self.publisher(), queue, prefetch).await
    }

    /// The queue prefix this bus prepends.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.link.prefix()
    }

    /// Closes the connection for every clone: consumers then return `None` and publishes
    /// fail with [`BusError::Closed`].
    pub async fn close(&self) {
        self.link.close().await;
        self.publish_link.close().await;
    }

    /// For tests: deletes every prefixed queue (with its messages) and the dead-letter
    /// exchange. Refuses an empty prefix, which would delete the production topology.
    ///
    /// # Errors
    ///
    /// [`BusError::NoPrefix`], [`BusError::Closed`], or a delete the broker refused.
    pub async fn purge_and_delete_all(&self) -> Result<(), BusError> {
        if self.prefix().is_empty() {
            return Err(BusError::NoPrefix);
        }
        let connection = self.link.connection().await?;
        topology::delete(&connection, self.prefix()).await
    }
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("prefix", &self.prefix())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared_across_tasks<T: Send + Sync>() {}
    fn moved_across_tasks<T: Send>(_: &T) {}

    #[test]
    fn handles_and_their_futures_can_go_to_other_tasks() {
        shared_across_tasks::<Bus>();
        shared_across_tasks::<Publisher>();
        shared_across_tasks::<Delivery>();
        shared_across_tasks::<BusError>();
        fn consumer_future(consumer: &mut Consumer) {
            moved_across_tasks(&consumer.next());
        }
        fn publish_future(publisher: &Publisher, batch: &mixsync_proto::v1::RowBatch) {
            moved_across_tasks(&publisher.publish(ROWS, batch));
        }
        fn ack_future(delivery: &Delivery) {
            moved_across_tasks(&delivery.ack());
            moved_across_tasks(&delivery.dead_letter(mixsync_proto::v1::Stage::Load, "x"));
        }
        let _ = (consumer_future, publish_future, ack_future);
    }
}
