use std::collections::{BTreeMap, HashMap};
use std::fmt;

use lapin::Acker;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use mixsync_proto::v1::{DeadLetter, Stage};
use prost::Message as _;

use crate::publisher::TYPE_HEADER;
use crate::{BusError, DEAD_LETTER, Publisher};

/// One message taken from a queue. Settle it exactly once: [`Delivery::ack`],
/// [`Delivery::nack_requeue`], [`Delivery::reject`] or [`Delivery::dead_letter`].
pub struct Delivery {
    /// The encoded protobuf message.
    pub body: Vec<u8>,
    /// The message headers as strings (W3C trace context, [`crate::TYPE_HEADER`], and for
    /// broker dead-letters `x-death` as JSON).
    pub headers: BTreeMap<String, String>,
    /// True when RabbitMQ delivered this message before (a crash, a requeue, a reconnect).
    pub redelivered: bool,
    /// The unprefixed queue it came from.
    pub queue: String,
    acker: Acker,
    publisher: Publisher,
}

impl Delivery {
    pub(crate) fn new(
        delivery: lapin::message::Delivery,
        queue: &str,
        publisher: Publisher,
    ) -> Self {
        Self {
            headers: crate::headers::from_field_table(delivery.properties.headers().as_ref()),
            body: delivery.data,
            redelivered: delivery.redelivered,
            queue: queue.to_owned(),
            acker: delivery.acker,
            publisher,
        }
    }

    /// Acknowledges the message: RabbitMQ forgets it.
    ///
    /// # Errors
    ///
    /// [`BusError::DeliveryChannelClosed`] when the connection dropped since the message
    /// arrived (RabbitMQ redelivers it; log and carry on), [`BusError::AlreadySettled`].
    pub async fn ack(&self) -> Result<(), BusError> {
        self.settle(self.acker.ack(BasicAckOptions::default()).await)
    }

    /// Puts the message back on its queue for another try (it comes back with
    /// `redelivered = true`).
    ///
    /// # Errors
    ///
    /// As for [`Delivery::ack`].
    pub async fn nack_requeue(&self) -> Result<(), BusError> {
        self.settle(
            self.acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await,
        )
    }

    /// Rejects the message without requeueing: the broker dead-letters it, unchanged, to
    /// [`DEAD_LETTER`] (with `x-death` headers). Prefer [`Delivery::dead_letter`], which
    /// records why.
    ///
    /// # Errors
    ///
    /// As for [`Delivery::ack`].
    pub async fn reject(&self) -> Result<(), BusError> {
        self.settle(self.acker.nack(BasicNackOptions::default()).await)
    }

    /// Publishes a `mixsync.v1.DeadLetter` (original body and headers, `reason`, `stage`,
    /// queue) to [`DEAD_LETTER`] and then acks this message.
    ///
    /// # Errors
    ///
    /// Publishing failed (the message is not acked), or the ack failed after the dead letter
    /// was published (the message is redelivered and may be dead-lettered twice).
    pub async fn dead_letter(&self, stage: Stage, reason: &str) -> Result<(), BusError> {
        self.dead_letter_with(DeadLetter {
            stage: stage.into(),
            reason: reason.to_owned(),
            ..DeadLetter::default()
        })
        .await
    }

    /// Like [`Delivery::dead_letter`] for callers that know the run, activation or batch:
    /// `original`, `headers` and `queue` are filled in from this delivery when left empty.
    ///
    /// # Errors
    ///
    /// As for [`Delivery::dead_letter`].
    pub async fn dead_letter_with(&self, mut letter: DeadLetter) -> Result<(), BusError> {
        if letter.original.is_empty() {
            letter.original.clone_from(&self.body);
        }
        if letter.headers.is_empty() {
            letter.headers = self.headers.clone().into_iter().collect::<HashMap<_, _>>();
        }
        if letter.queue.is_empty() {
            letter.queue.clone_from(&self.queue);
        }
        tracing::warn!(queue = %self.queue, stage = ?letter.stage(), reason = %letter.reason, "dead-lettering a message");
        self.publisher.publish(DEAD_LETTER, &letter).await?;
        self.ack().await
    }

    /// The `DeadLetter` this delivery (from [`DEAD_LETTER`]) carries: the one published by
    /// [`Delivery::dead_letter`], or, for a message the broker dead-lettered (rejected, or
    /// over a queue limit), one built from its `x-first-death-*` headers.
    ///
    /// # Errors
    ///
    /// [`BusError::NotADeadLetter`] when the body does not decode as a `DeadLetter`.
    pub fn decode_dead_letter(&self) -> Result<DeadLetter, BusError> {
        if self
            .headers
            .get(TYPE_HEADER)
            .is_some_and(|t| t == "DeadLetter")
            || !self.headers.contains_key("x-first-death-queue")
        {
            return DeadLetter::decode(self.body.as_slice()).map_err(BusError::NotADeadLetter);
        }
        let header = |name: &str| self.headers.get(name).map_or("", String::as_str);
        let queue = header("x-first-death-queue");
        Ok(DeadLetter {
            reason: match header("x-first-death-reason") {
                "delivery_limit" => format!(
                    "dead-lettered by rabbitmq: delivered {} times without being processed (the queue's delivery limit)",
                    crate::topology::DELIVERY_LIMIT
                ),
                reason => format!("dead-lettered by rabbitmq: {reason}"),
            },
            original: self.body.clone(),
            headers: self.headers.clone().into_iter().collect(),
            queue: queue
                .strip_prefix(self.publisher.prefix())
                .unwrap_or(queue)
                .to_owned(),
            ..DeadLetter::default()
        })
    }

    /// The remote trace context carried in the headers, to make the processing span a child
    /// of the publisher's span (`tracing_opentelemetry::OpenTelemetrySpanExt::set_parent`).
    #[must_use]
    pub fn span_context(&self) -> opentelemetry::Context {
        mixsync_telemetry::extract_context(&self.headers)
    }

    fn settle(&self, result: Result<bool, lapin::Error>) -> Result<(), BusError> {
        match result {
            Ok(true) => Ok(()),
            Ok(false) if self.acker.poisoned() => Err(BusError::DeliveryChannelClosed),
            Ok(false) => Err(BusError::AlreadySettled),
            Err(_) if self.acker.poisoned() => Err(BusError::DeliveryChannelClosed),
            Err(error) => Err(BusError::Ack(error)),
        }
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("body_len", &self.body.len())
            .field("headers", &self.headers)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}
