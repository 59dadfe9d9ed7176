use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use tokio::sync::Mutex;

use crate::backoff::Backoff;
use crate::connection::Link;
use crate::error::connection_lost;
use crate::{BusError, headers, topology};

/// The header naming the protobuf message type of the body (e.g. `RowBatch`).
pub const TYPE_HEADER: &str = "x-mixsync-type";
/// The content type of every message: a protobuf-encoded `mixsync.v1` message.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// How often a publish is retried for a reason other than a lost connection (a lost
/// connection is waited out for as long as it takes).
const MAX_FAILED_ATTEMPTS: u32 = 5;

/// How long to wait for the broker's confirm of one publish before publishing again on a
/// new channel. RabbitMQ withholds confirms while it blocks publishers (memory or disk
/// alarm); consuming goes on over the bus's other connection meanwhile.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// Publishes persistent, confirmed messages. Cheap to clone; clones share one channel.
#[derive(Clone)]
pub struct Publisher {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    channel: Mutex<Option<Open>>,
}

/// A confirm-mode channel and the connection it lives on.
#[derive(Clone)]
struct Open {
    channel: Channel,
    connection: Arc<Connection>,
}

enum Outcome {
    TimedOut,
    Confirmed,
    Returned,
    Nacked,
    Failed(lapin::Error),
}

impl Publisher {
    pub(crate) fn new(link: Arc<Link>) -> Self {
        Self {
            inner: Arc::new(Inner {
                link,
                channel: Mutex::new(None),
            }),
        }
    }

    /// Publishes `message` to `queue` (an unprefixed name from [`crate::topology`]) as a
    /// persistent message and waits for the broker's publisher confirm.
    ///
    /// Adds the W3C trace context of the current span and [`TYPE_HEADER`] as headers. When
    /// the connection drops, waits for the reconnect (with backoff) and publishes again, so
    /// a message may arrive twice but is never lost once this returns `Ok`.
    ///
    /// # Errors
    ///
    /// An unknown queue, a message the broker refused or could not route after re-declaring
    /// the topology, repeated channel failures, or [`BusError::Closed`].
    pub async fn publish<M: prost::Message>(
        &self,
        queue: &str,
        message: &M,
    ) -> Result<(), BusError> {
        let mut headers = mixsync_telemetry::inject_context(&tracing::Span::current());
        headers.insert(TYPE_HEADER.to_owned(), type_name::<M>().to_owned());
        self.publish_bytes(queue, &message.encode_to_vec(), &headers)
            .await
    }

    /// Publishes an encoded body with the given headers; see [`Publisher::publish`].
    pub(crate) async fn publish_bytes(
        &self,
        queue: &str,
        body: &[u8],
        headers: &BTreeMap<String, String>,
    ) -> Result<(), BusError> {
        if !topology::is_known(queue) {
            return Err(BusError::UnknownQueue(queue.to_owned()));
        }
        let routing_key = self.inner.link.prefixed(queue);
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(CONTENT_TYPE.into())
            .with_timestamp(now_seconds())
            .with_headers(headers::to_field_table(headers));

        let mut backoff = Backoff::new();
        let mut failed_attempts = 0;
        let mut redeclared = false;
        loop {
            let open = self.channel().await?;
            match publish_once(&open.channel, &routing_key, body, properties.clone()).await {
                Outcome::Confirmed => return Ok(()),
                Outcome::Returned if redeclared => {
                    return Err(BusError::Unroutable {
                        queue: queue.to_owned(),
                    });
                }
                Outcome::Returned => {
                    tracing::warn!(queue = %routing_key, "message unroutable; declaring the topology again");
                    self.inner.link.redeclare().await?;
                    redeclared = true;
                    continue;
                }
                Outcome::TimedOut => {
                    // The channel may hold the confirm for ever: publish again on a new one
                    // (consumers account each batch once, so a late first copy is harmless).
                    self.discard(&open).await;
                    failed_attempts += 1;
                    tracing::warn!(queue = %routing_key, failed_attempts, timeout = ?CONFIRM_TIMEOUT, "no publisher confirm in time; retrying");
                    if failed_attempts >= MAX_FAILED_ATTEMPTS {
                        return Err(BusError::ConfirmTimeout {
                            queue: queue.to_owned(),
                            after: CONFIRM_TIMEOUT,
                        });
                    }
                }
                Outcome::Nacked => {
                    failed_attempts += 1;
                    tracing::warn!(queue = %routing_key, failed_attempts, "message negatively confirmed; retrying");
                    if failed_attempts >= MAX_FAILED_ATTEMPTS {
                        return Err(BusError::Nacked {
                            queue: queue.to_owned(),
                        });
                    }
                }
                Outcome::Failed(error) => {
                    self.discard(&open).await;
                    let lost = connection_lost(&error) || !open.connection.status().connected();
                    if !lost {
                        failed_attempts += 1;
                    }
                    tracing::warn!(queue = %routing_key, %error, connection_lost = lost, "publish failed; retrying");
                    if failed_attempts >= MAX_FAILED_ATTEMPTS {
                        return Err(BusError::Publish {
                            queue: queue.to_owned(),
                            source: error,
                        });
                    }
                }
            }
            self.inner.link.pause(backoff.next_delay()).await?;
        }
    }

    /// The queue prefix of the bus this publisher belongs to.
    pub(crate) fn prefix(&self) -> &str {
        self.inner.link.prefix()
    }

    /// The shared confirm-mode channel, opened (reconnecting first if needed) on demand.
    async fn channel(&self) -> Result<Open, BusError> {
        let mut slot = self.inner.channel.lock().await;
        if let Some(open) = slot
            .as_ref()
            .filter(|open| open.channel.status().connected())
        {
            return Ok(open.clone());
        }
        *slot = None;
        let mut backoff = Backoff::new();
        loop {
            let connection = self.inner.link.connection().await?;
            match open_confirm_channel(&connection).await {
                Ok(channel) => {
                    let open = Open {
                        channel,
                        connection,
                    };
                    *slot = Some(open.clone());
                    return Ok(open);
                }
                Err(error) => {
                    tracing::warn!(%error, "opening a publisher channel failed; retrying");
                    self.inner.link.pause(backoff.next_delay()).await?;
                }
            }
        }
    }

    /// Forgets `open` if it is still the shared channel, so the next publish opens another.
    async fn discard(&self, open: &Open) {
        let mut slot = self.inner.channel.lock().await;
        let same = slot.as_ref().is_some_and(|current| {
            Arc::ptr_eq(&current.connection, &open.connection)
                && current.channel.id() == open.channel.id()
        });
        if same {
            *slot = None;
        }
    }
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("prefix", &self.inner.link.prefix())
            .finish_non_exhaustive()
    }
}

async fn open_confirm_channel(connection: &Connection) -> Result<Channel, lapin::Error> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    Ok(channel)
}

async fn publish_once(
    channel: &Channel,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
) -> Outcome {
    // `mandatory`: a missing queue comes back as a returned message instead of vanishing.
    let options = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    let confirm = match channel
        .basic_publish("".into(), routing_key.into(), options, body, properties)
        .await
    {
        Ok(confirm) => confirm,
        Err(error) => return Outcome::Failed(error),
    };
    let Ok(confirmed) = tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await else {
        return Outcome::TimedOut;
    };
    match confirmed {
        Ok(Confirmation::Ack(None)) => Outcome::Confirmed,
        Ok(Confirmation::Ack(Some(_))) => Outcome::Returned,
        // Confirms are always selected on this channel, so `NotRequested` means it was reset.
        Ok(Confirmation::Nack(_) | Confirmation::NotRequested) => Outcome::Nacked,
        Err(error) => Outcome::Failed(error),
    }
}

/// The last path segment of the Rust type name: `mixsync_proto::v1::RowBatch` → `RowBatch`.
fn type_name<M>() -> &'static str {
    let full = std::any::type_name::<M>();
    full.rsplit("::").next().unwrap_or(full)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_short() {
        assert_eq!(type_name::<mixsync_proto::v1::RowBatch>(), "RowBatch");
        assert_eq!(type_name::<mixsync_proto::v1::DeadLetter>(), "DeadLetter");
    }
}
