//! The bus survives the broker dropping its connection (closed with `rabbitmqctl`).

mod common;

use common::{TestBus, next};
use mixsync_bus::{BusError, ROWS};
use mixsync_proto::v1::RowBatch;
use prost::Message as _;

fn batch(batch_id: &str) -> RowBatch {
    RowBatch {
        batch_id: batch_id.to_owned(),
        ..RowBatch::default()
    }
}

fn batch_id(body: &[u8]) -> String {
    RowBatch::decode(body).unwrap().batch_id
}

#[tokio::test]
async fn a_consumer_resubscribes_and_gets_its_unacked_message_again() {
    let test = TestBus::new().await;
    let publisher = test.bus.publisher();
    let mut consumer = test.bus.consume(ROWS, 2).await.unwrap();
    publisher.publish(ROWS, &batch("b-1")).await.unwrap();
    let before = next(&mut consumer).await;

    test.force_close_connection().await;

    let again = next(&mut consumer).await;
    assert_eq!(batch_id(&again.body), "b-1");
    assert!(again.redelivered);
    // The old delivery's channel died with the connection.
    assert!(matches!(
        before.ack().await,
        Err(BusError::DeliveryChannelClosed)
    ));
    again.ack().await.unwrap();

    publisher.publish(ROWS, &batch("b-2")).await.unwrap();
    let after = next(&mut consumer).await;
    assert_eq!(batch_id(&after.body), "b-2");
    assert!(!after.redelivered);
    after.ack().await.unwrap();
}

#[tokio::test]
async fn a_publish_after_the_connection_dropped_reconnects_and_is_confirmed() {
    let test = TestBus::new().await;
    let publisher = test.bus.publisher();
    publisher.publish(ROWS, &batch("b-1")).await.unwrap();

    test.force_close_connection().await;

    publisher.publish(ROWS, &batch("b-2")).await.unwrap();
    let mut consumer = test.bus.consume(ROWS, 2).await.unwrap();
    let ids = [next(&mut consumer).await, next(&mut consumer).await].map(|d| batch_id(&d.body));
    assert_eq!(ids, ["b-1", "b-2"]);
}

#[tokio::test]
async fn publishes_in_flight_when_the_connection_drops_are_not_lost() {
    let test = TestBus::new().await;
    let publisher = test.bus.publisher();
    let stop = tokio_util::sync::CancellationToken::new();
    let publishing = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut sent = 0_u32;
            // Keep publishing through the drop, and a little after it.
            while !stop.is_cancelled() || !sent.is_multiple_of(20) {
                publisher
                    .publish(ROWS, &batch(&format!("b-{sent}")))
                    .await
                    .unwrap();
                sent += 1;
            }
            sent
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    test.force_close_connection().await;
    stop.cancel();
    let sent = publishing.await.unwrap();

    let mut consumer = test.bus.consume(ROWS, 100).await.unwrap();
    let mut missing: std::collections::BTreeSet<String> =
        (0..sent).map(|n| format!("b-{n}")).collect();
    while !missing.is_empty() {
        let delivery = next(&mut consumer).await;
        // A publish retried after the drop may arrive twice; none may be missing.
        missing.remove(&batch_id(&delivery.body));
        delivery.ack().await.unwrap();
    }
}
