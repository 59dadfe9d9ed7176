//! Declaring the topology on a broker that already has some of it.

mod common;

use common::{TestBus, amqp_url, next, random_prefix};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Connection, ConnectionProperties};
use mixsync_bus::{ROWS, topology};
use mixsync_proto::v1::RowBatch;

#[tokio::test]
async fn an_existing_classic_queue_is_kept_and_used() {
    let prefix = random_prefix();
    let rows = topology::prefixed(&prefix, ROWS);
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from(topology::prefixed(
            &prefix,
            topology::DEAD_LETTER_EXCHANGE,
        ))),
    );
    let classic = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(rows.as_str().into(), classic, arguments)
        .await
        .unwrap();

    // The quorum declaration is refused for this queue; the bus falls back to classic.
    let test = TestBus::with_prefix(prefix).await;
    test.bus
        .publisher()
        .publish(ROWS, &RowBatch::default())
        .await
        .unwrap();
    let mut consumer = test.bus.consume(ROWS, 1).await.unwrap();
    next(&mut consumer).await.ack().await.unwrap();

    // Declaring again (a second service starting) is fine too.
    let again = TestBus::with_prefix(test.prefix().to_owned()).await;
    drop(again);
    connection.close(200, "OK".into()).await.unwrap();
}
