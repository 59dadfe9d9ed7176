//! Every exchange, queue and binding mixsync uses, declared here and nowhere else.
//!
//! Names are given unprefixed; the bus prepends its configured prefix. Queues are durable
//! quorum queues (classic where the broker refuses quorum) whose rejected messages go to the
//! dead-letter exchange `mixsync.dlx`, which routes everything to [`DEAD_LETTER`].

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::protocol::{AMQPHardError, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, Connection, ExchangeKind};

use crate::BusError;
use crate::error::{is_hard, is_soft};

/// Control → extractor: `ExtractRequest`.
pub const EXTRACT: &str = "mixsync.extract";
/// Extractor → mapper: `RowBatch`.
pub const ROWS: &str = "mixsync.rows";
/// Mapper → events loader: `RecordBatch`.
pub const LOAD_EVENTS: &str = "mixsync.load.events";
/// Mapper → user-profiles loader: `RecordBatch`.
pub const LOAD_USER_PROFILES: &str = "mixsync.load.user_profiles";
/// Mapper → group-profiles loader: `RecordBatch`.
pub const LOAD_GROUP_PROFILES: &str = "mixsync.load.group_profiles";
/// Every stage → control: `Progress`.
pub const PROGRESS: &str = "mixsync.progress";
/// Poison messages: `DeadLetter`, plus messages the broker dead-lettered (see
/// [`crate::Delivery::decode_dead_letter`]).
pub const DEAD_LETTER: &str = "mixsync.dead_letter";
/// The fanout exchange that routes rejected messages to [`DEAD_LETTER`].
pub const DEAD_LETTER_EXCHANGE: &str = "mixsync.dlx";

/// The queues that dead-letter to [`DEAD_LETTER`].
pub const WORK_QUEUES: [&str; 6] = [
    EXTRACT,
    ROWS,
    LOAD_EVENTS,
    LOAD_USER_PROFILES,
    LOAD_GROUP_PROFILES,
    PROGRESS,
];

/// Every queue: the work queues and [`DEAD_LETTER`].
pub const QUEUES: [&str; 7] = [
    EXTRACT,
    ROWS,
    LOAD_EVENTS,
    LOAD_USER_PROFILES,
    LOAD_GROUP_PROFILES,
    PROGRESS,
    DEAD_LETTER,
];

/// How often a quorum work queue delivers one message before the broker dead-letters it
/// (`x-delivery-limit`): a message that makes its consumer crash, or that is handed back
/// again and again, ends in [`DEAD_LETTER`] (and its run fails saying so) instead of being
/// retried for ever. Classic queues (a broker without quorum queues) have no such limit.
pub const DELIVERY_LIMIT: i64 = 20;

/// `name` with `prefix` prepended: the name on the broker.
#[must_use]
pub fn prefixed(prefix: &str, name: &str) -> String {
    format!("{prefix}{name}")
}

/// True when `queue` is one of [`QUEUES`].
#[must_use]
pub fn is_known(queue: &str) -> bool {
    QUEUES.contains(&queue)
}

/// Declares the whole topology on `connection`.
///
/// `quorum` false declares classic queues straight away (a broker that closed the
/// connection when asked for a quorum queue).
pub(crate) async fn declare(
    connection: &Connection,
    prefix: &str,
    quorum: bool,
) -> Result<(), BusError> {
    let dlx = prefixed(prefix, DEAD_LETTER_EXCHANGE);
    let mut channel = open(connection, &dlx).await?;
    channel
        .exchange_declare(
            dlx.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(|source| topology_error(&dlx, source))?;

    for queue in QUEUES {
        let mut arguments = FieldTable::default();
        if queue != DEAD_LETTER {
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(LongString::from(dlx.as_str())),
            );
        }
        let name = prefixed(prefix, queue);
        let limit = (queue != DEAD_LETTER).then_some(DELIVERY_LIMIT);
        channel = declare_queue(connection, channel, &name, arguments, quorum, limit).await?;
    }

    let dead_letter = prefixed(prefix, DEAD_LETTER);
    channel
        .queue_bind(
            dead_letter.as_str().into(),
            dlx.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|source| topology_error(&dead_letter, source))?;
    close(&channel).await;
    Ok(())
}

/// True when the broker closed the connection because it does not implement quorum queues.
pub(crate) fn refuses_quorum_hard(error: &BusError) -> bool {
    matches!(error, BusError::Topology { source, .. }
        if is_hard(source, AMQPHardError::NOTIMPLEMENTED) || is_hard(source, AMQPHardError::COMMANDINVALID))
}

/// Declares one durable queue, quorum first; returns the channel to keep using (a new one
/// when the broker closed the old one to refuse the quorum queue).
async fn declare_queue(
    connection: &Connection,
    channel: Channel,
    name: &str,
    arguments: FieldTable,
    quorum: bool,
    delivery_limit: Option<i64>,
) -> Result<Channel, BusError> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let channel = if quorum {
        let mut quorum_arguments = arguments.clone();
        quorum_arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        let mut limited = quorum_arguments.clone();
        if let Some(limit) = delivery_limit {
            limited.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(limit));
        }
        let channel = match channel.queue_declare(name.into(), options, limited).await {
            Ok(_) => return Ok(channel),
            // A quorum queue declared by an earlier version, without the limit: use it as it
            // is (arguments cannot change), and say how to add the limit.
            Err(source)
                if delivery_limit.is_some()
                    && is_soft(&source, AMQPSoftError::PRECONDITIONFAILED) =>
            {
                let channel = open(connection, name).await?;
                if channel
                    .queue_declare(name.into(), options, quorum_arguments.clone())
                    .await
                    .is_ok()
                {
                    tracing::warn!(
                        queue = name,
                        limit = DELIVERY_LIMIT,
                        "this queue was declared without a delivery limit, so a message that always fails is retried for ever; add one with a policy: rabbitmqctl set_policy mixsync-delivery-limit '^' '{{\"delivery-limit\":20}}' --apply-to quorum_queues"
                    );
                    return Ok(channel);
                }
                open(connection, name).await?
            }
            Err(source) => return Err(topology_error(name, source)),
        };
        match channel
            .queue_declare(name.into(), options, quorum_arguments)
            .await
        {
            Ok(_) => return Ok(channel),
            // An existing classic queue, or a broker that will not make quorum queues:
            // the refusal closed the channel, so continue on a fresh one.
            Err(source) if is_soft(&source, AMQPSoftError::PRECONDITIONFAILED) => {
                tracing::info!(queue = name, error = %source, "quorum queue refused; declaring a classic queue");
                open(connection, name).await?
            }
            Err(source) => return Err(topology_error(name, source)),
        }
    } else {
        channel
    };
    // No `x-queue-type`: an existing classic queue declared without it stays equivalent.
    channel
        .queue_declare(name.into(), options, arguments)
        .await
        .map_err(|source| topology_error(name, source))?;
    Ok(channel)
}

/// Deletes every prefixed queue and the dead-letter exchange.
pub(crate) async fn delete(connection: &Connection, prefix: &str) -> Result<(), BusError> {
    let dlx = prefixed(prefix, DEAD_LETTER_EXCHANGE);
    let channel = open(connection, &dlx).await?;
    for queue in QUEUES {
        let name = prefixed(prefix, queue);
        channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(|source| BusError::Admin {
                operation: "deleting queue",
                name: name.clone(),
                source,
            })?;
    }
    channel
        .exchange_delete(dlx.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .map_err(|source| BusError::Admin {
            operation: "deleting exchange",
            name: dlx.clone(),
            source,
        })?;
    close(&channel).await;
    Ok(())
}

async fn open(connection: &Connection, name: &str) -> Result<Channel, BusError> {
    connection
        .create_channel()
        .await
        .map_err(|source| topology_error(name, source))
}

/// Closes a short-lived channel; a failure only means it is already gone.
async fn close(channel: &Channel) {
    if let Err(error) = channel.close(200, "OK".into()).await {
        tracing::debug!(%error, "closing a topology channel failed");
    }
}

fn topology_error(name: &str, source: lapin::Error) -> BusError {
    BusError::Topology {
        name: name.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed() {
        assert_eq!(prefixed("t42.", ROWS), "t42.mixsync.rows");
        assert_eq!(prefixed("", PROGRESS), "mixsync.progress");
    }

    #[test]
    fn every_queue_is_known_and_nothing_else() {
        assert!(QUEUES.iter().all(|queue| is_known(queue)));
        assert!(WORK_QUEUES.iter().all(|queue| QUEUES.contains(queue)));
        assert!(!is_known(DEAD_LETTER_EXCHANGE));
        assert!(!is_known("t1.mixsync.rows"));
    }
}
