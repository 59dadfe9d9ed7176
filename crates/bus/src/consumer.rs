use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt as _;
use lapin::Channel;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::protocol::AMQPSoftError;
use lapin::types::FieldTable;

use crate::backoff::Backoff;
use crate::connection::Link;
use crate::error::is_soft;
use crate::{BusError, Delivery, Publisher};

/// A subscription to one queue with bounded prefetch and manual acks.
///
/// When its channel or the connection drops it resubscribes by itself (reconnecting with
/// backoff); messages that were delivered but not yet acked come again, `redelivered`.
pub struct Consumer {
    link: Arc<Link>,
    publisher: Publisher,
    queue: String,
    prefetch: u16,
    subscription: Option<Subscription>,
}

struct Subscription {
    // Kept so the channel lives exactly as long as the consumer stream on it.
    _channel: Channel,
    stream: lapin::Consumer,
}

impl Consumer {
    /// Subscribes to `queue` (unprefixed). A `prefetch` of 0 is taken as 1: AMQP would read
    /// it as unlimited.
    pub(crate) async fn subscribe(
        link: Arc<Link>,
        publisher: Publisher,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, BusError> {
        if !crate::topology::is_known(queue) {
            return Err(BusError::UnknownQueue(queue.to_owned()));
        }
        let mut consumer = Self {
            link,
            publisher,
            queue: queue.to_owned(),
            prefetch: prefetch.max(1),
            subscription: None,
        };
        consumer.subscription = Some(consumer.open().await?);
        Ok(consumer)
    }

    /// The next message. Waits through reconnects; `None` only once the bus is closed.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if self.link.closed().is_cancelled() {
                return None;
            }
            if self.subscription.is_none() {
                self.subscription = Some(self.reopen().await?);
            }
            let subscription = self.subscription.as_mut()?;
            let item = tokio::select! {
                () = self.link.closed().cancelled() => return None,
                item = subscription.stream.next() => item,
            };
            match item {
                Some(Ok(delivery)) => {
                    return Some(Delivery::new(delivery, &self.queue, self.publisher.clone()));
                }
                Some(Err(error)) => {
                    tracing::warn!(queue = %self.queue, %error, "consumer channel failed; resubscribing");
                    self.subscription = None;
                }
                None => {
                    tracing::warn!(queue = %self.queue, "consumer cancelled by rabbitmq; resubscribing");
                    self.subscription = None;
                }
            }
        }
    }

    /// The unprefixed queue this consumer reads.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Subscribes again, with backoff, until it works or the bus is closed.
    async fn reopen(&self) -> Option<Subscription> {
        let mut backoff = Backoff::new();
        loop {
            match self.open().await {
                Ok(subscription) => {
                    tracing::info!(queue = %self.queue, "consumer resubscribed");
                    return Some(subscription);
                }
                Err(BusError::Closed) => return None,
                Err(error) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(queue = %self.queue, %error, ?delay, "resubscribing failed; retrying");
                    if matches!(&error, BusError::Consume { source, .. } if is_soft(source, AMQPSoftError::NOTFOUND))
                    {
                        // The queue was deleted under us: declare it again.
                        if let Err(error) = self.link.redeclare().await {
                            tracing::warn!(%error, "declaring the topology again failed");
                        }
                    }
                    self.link.pause(delay).await.ok()?;
                }
            }
        }
    }

    async fn open(&self) -> Result<Subscription, BusError> {
        let connection = self.link.connection().await?;
        let consume_error = |source| BusError::Consume {
            queue: self.queue.clone(),
            source,
        };
        let channel = connection.create_channel().await.map_err(consume_error)?;
        // Per-consumer prefetch (`global: false`), the only kind quorum queues support.
        channel
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(consume_error)?;
        let stream = channel
            .basic_consume(
                self.link.prefixed(&self.queue).as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(consume_error)?;
        Ok(Subscription {
            _channel: channel,
            stream,
        })
    }
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .field("subscribed", &self.subscription.is_some())
            .finish_non_exhaustive()
    }
}
