use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

/// What went wrong talking to RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// `MIXSYNC_AMQP_URL` does not parse. The URL itself is not repeated: it may hold a password.
    #[error(
        "MIXSYNC_AMQP_URL is not a valid AMQP URL (expected amqp://user:password@host:port/vhost)"
    )]
    InvalidUrl,

    /// `MIXSYNC_QUEUE_PREFIX` would make invalid queue names.
    #[error(
        "MIXSYNC_QUEUE_PREFIX `{0}` is invalid: use at most 200 ASCII letters, digits, `.`, `_`, `-` or `:`"
    )]
    InvalidPrefix(String),

    /// The broker could not be reached or refused the connection.
    #[error("cannot connect to RabbitMQ at {endpoint}: {source}")]
    Connect {
        /// `host:port/vhost`, without credentials.
        endpoint: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },

    /// Declaring an exchange, queue or binding failed.
    #[error("declaring `{name}` on RabbitMQ failed: {source}")]
    Topology {
        /// The (prefixed) exchange or queue name.
        name: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },

    /// The queue is not one of the queues declared in [`crate::topology`].
    #[error("unknown queue `{0}`: use one of the mixsync_bus queue constants (without the prefix)")]
    UnknownQueue(String),

    /// A publish failed repeatedly for a reason other than a lost connection.
    #[error("publishing to `{queue}` failed: {source}")]
    Publish {
        /// The unprefixed queue name.
        queue: String,
        /// What lapin reported on the last attempt.
        #[source]
        source: lapin::Error,
    },

    /// The broker negatively confirmed the message on every attempt.
    #[error("RabbitMQ refused to take the message for `{queue}` (negative publisher confirm)")]
    Nacked {
        /// The unprefixed queue name.
        queue: String,
    },

    /// The broker had no queue to route the message to, even after re-declaring the topology.
    #[error("RabbitMQ has no queue `{queue}` to route the message to")]
    Unroutable {
        /// The unprefixed queue name.
        queue: String,
    },

    /// Subscribing to a queue failed.
    #[error("consuming from `{queue}` failed: {source}")]
    Consume {
        /// The unprefixed queue name.
        queue: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },

    /// The channel the delivery arrived on is gone (the connection dropped):
    /// it can no longer be acknowledged, and RabbitMQ redelivers it. Log and move on.
    #[error(
        "the delivery's channel is closed; RabbitMQ will redeliver the message to a live consumer"
    )]
    DeliveryChannelClosed,

    /// The delivery was already acknowledged, rejected or dead-lettered.
    #[error("the delivery was already acknowledged or rejected")]
    AlreadySettled,

    /// Sending an acknowledgement failed.
    #[error("acknowledging the delivery failed: {0}")]
    Ack(#[source] lapin::Error),

    /// A delivery from `mixsync.dead_letter` is neither a `DeadLetter` nor a broker dead-letter.
    #[error("the message on the dead-letter queue is not a mixsync.v1.DeadLetter: {0}")]
    NotADeadLetter(#[source] prost::DecodeError),

    /// An administrative operation (delete, purge) failed.
    #[error("{operation} `{name}` failed: {source}")]
    Admin {
        /// What was attempted.
        operation: &'static str,
        /// The (prefixed) name it was attempted on.
        name: String,
        /// What lapin reported.
        #[source]
        source: lapin::Error,
    },

    /// [`crate::Bus::purge_and_delete_all`] refuses to delete unprefixed (production) queues.
    #[error(
        "refusing to delete queues without a queue prefix: that would be the production topology"
    )]
    NoPrefix,

    /// Connecting took longer than allowed (the broker accepted the socket but did not
    /// answer, or the network drops packets).
    #[error("connecting to RabbitMQ at {endpoint} timed out after {after:?}")]
    ConnectTimeout {
        /// Host and port.
        endpoint: String,
        /// The time allowed.
        after: std::time::Duration,
    },

    /// The broker did not confirm a publish in time, however often it was tried (it may be
    /// blocking publishers under a memory or disk alarm).
    #[error(
        "RabbitMQ did not confirm the message for `{queue}` within {after:?} (is it blocking publishers under a memory or disk alarm?)"
    )]
    ConfirmTimeout {
        /// The unprefixed queue name.
        queue: String,
        /// The time allowed for each attempt.
        after: std::time::Duration,
    },

    /// [`crate::Bus::close`] was called.
    #[error("the RabbitMQ bus is closed")]
    Closed,
}

impl BusError {
    /// True when retrying later may help: the broker is unreachable, not refusing.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, Self::ConnectTimeout { .. })
            || matches!(self, Self::Connect { source, .. } if source.is_io_error())
            || matches!(self, Self::Topology { source, .. } if connection_lost(source))
    }
}

/// True when `error` means the connection (not just the channel) is gone.
pub(crate) fn connection_lost(error: &lapin::Error) -> bool {
    match error.kind() {
        lapin::ErrorKind::IOError(_)
        | lapin::ErrorKind::InvalidConnectionState(_)
        | lapin::ErrorKind::MissingHeartbeatError => true,
        lapin::ErrorKind::ProtocolError(amqp) => matches!(amqp.kind(), AMQPErrorKind::Hard(_)),
        _ => false,
    }
}

/// True for the broker's soft `code` error (the channel is closed, the connection lives).
pub(crate) fn is_soft(error: &lapin::Error, code: AMQPSoftError) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp) if *amqp.kind() == AMQPErrorKind::Soft(code))
}

/// True for the broker's hard `code` error (the whole connection is closed).
pub(crate) fn is_hard(error: &lapin::Error, code: AMQPHardError) -> bool {
    matches!(error.kind(), lapin::ErrorKind::ProtocolError(amqp) if *amqp.kind() == AMQPErrorKind::Hard(code))
}
