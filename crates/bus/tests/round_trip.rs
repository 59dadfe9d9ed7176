//! Publishing and consuming against the local RabbitMQ: bodies, headers, trace context,
//! acks, requeues, prefetch and dead letters.

mod common;

use common::{TestBus, next};
use mixsync_bus::{BusError, DEAD_LETTER, PROGRESS, ROWS, TYPE_HEADER};
use mixsync_proto::v1::{Progress, RowBatch, Stage};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use prost::Message as _;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

fn batch(batch_id: &str) -> RowBatch {
    RowBatch {
        run_id: "run-1".to_owned(),
        batch_id: batch_id.to_owned(),
        columns: vec!["id".to_owned()],
        ..RowBatch::default()
    }
}

fn batch_id(body: &[u8]) -> String {
    RowBatch::decode(body).unwrap().batch_id
}

#[tokio::test]
async fn a_message_round_trips_with_headers_and_trace_context() {
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let test = TestBus::new().await;
    let mut consumer = test.bus.consume(ROWS, 4).await.unwrap();

    let span = tracing::info_span!("extract");
    let trace_id = span.context().span().span_context().trace_id();
    let sent = batch("run-1-0");
    test.bus
        .publisher()
        .publish(ROWS, &sent)
        .instrument(span)
        .await
        .unwrap();

    let delivery = next(&mut consumer).await;
    assert_eq!(RowBatch::decode(delivery.body.as_slice()).unwrap(), sent);
    assert_eq!(delivery.queue, ROWS);
    assert!(!delivery.redelivered);
    assert_eq!(delivery.headers[TYPE_HEADER], "RowBatch");
    let traceparent = &delivery.headers["traceparent"];
    assert!(traceparent.contains(&trace_id.to_string()), "{traceparent}");
    assert_eq!(
        delivery.span_context().span().span_context().trace_id(),
        trace_id
    );
    delivery.ack().await.unwrap();
}

#[tokio::test]
async fn ack_removes_and_nack_requeue_redelivers() {
    let test = TestBus::new().await;
    let publisher = test.bus.publisher();
    publisher.publish(ROWS, &batch("b-1")).await.unwrap();
    let mut consumer = test.bus.consume(ROWS, 1).await.unwrap();

    let first = next(&mut consumer).await;
    assert!(!first.redelivered);
    first.nack_requeue().await.unwrap();
    assert!(matches!(first.ack().await, Err(BusError::AlreadySettled)));

    let again = next(&mut consumer).await;
    assert_eq!(batch_id(&again.body), "b-1");
    assert!(again.redelivered);
    again.ack().await.unwrap();
    drop(consumer);

    // A fresh subscription sees nothing: the ack removed the message.
    let mut fresh = test.bus.consume(ROWS, 1).await.unwrap();
    publisher.publish(ROWS, &batch("b-2")).await.unwrap();
    assert_eq!(batch_id(&next(&mut fresh).await.body), "b-2");
}

#[tokio::test]
async fn prefetch_bounds_unacked_deliveries() {
    let test = TestBus::new().await;
    let publisher = test.bus.publisher();
    for n in 0..5 {
        publisher
            .publish(ROWS, &batch(&format!("b-{n}")))
            .await
            .unwrap();
    }
    let mut consumer = test.bus.consume(ROWS, 2).await.unwrap();

    let first = next(&mut consumer).await;
    let second = next(&mut consumer).await;
    // The broker holds the other three back while two are unacked.
    test.wait_for_messages(ROWS, 3, 2).await;

    first.ack().await.unwrap();
    let third = next(&mut consumer).await;
    assert_eq!(
        [&first, &second, &third].map(|d| batch_id(&d.body)),
        ["b-0", "b-1", "b-2"]
    );
    test.wait_for_messages(ROWS, 2, 2).await;
}

#[tokio::test]
async fn dead_letter_keeps_the_original_message() {
    let test = TestBus::new().await;
    let sent = batch("b-poison");
    test.bus.publisher().publish(ROWS, &sent).await.unwrap();
    let mut rows = test.bus.consume(ROWS, 1).await.unwrap();
    let mut dead = test.bus.consume(DEAD_LETTER, 1).await.unwrap();

    let delivery = next(&mut rows).await;
    delivery
        .dead_letter(Stage::Map, "row 3: bad time")
        .await
        .unwrap();

    let letter = next(&mut dead).await;
    assert_eq!(letter.headers[TYPE_HEADER], "DeadLetter");
    let letter = letter.decode_dead_letter().unwrap();
    assert_eq!(letter.stage(), Stage::Map);
    assert_eq!(letter.reason, "row 3: bad time");
    assert_eq!(letter.original, sent.encode_to_vec());
    assert_eq!(letter.queue, ROWS);
    assert_eq!(letter.headers[TYPE_HEADER], "RowBatch");
    assert!(letter.run_id.is_empty());
    // Acked: the work queue holds nothing, ready or unacked, that could come back.
    test.wait_for_messages(ROWS, 0, 0).await;
}

#[tokio::test]
async fn a_rejected_message_reaches_the_dead_letter_queue_through_the_dlx() {
    let test = TestBus::new().await;
    let sent = Progress {
        run_id: "run-7".to_owned(),
        ..Progress::default()
    };
    test.bus.publisher().publish(PROGRESS, &sent).await.unwrap();
    let mut progress = test.bus.consume(PROGRESS, 1).await.unwrap();
    let mut dead = test.bus.consume(DEAD_LETTER, 1).await.unwrap();

    next(&mut progress).await.reject().await.unwrap();

    let letter = next(&mut dead).await.decode_dead_letter().unwrap();
    assert_eq!(letter.queue, PROGRESS);
    assert!(letter.reason.contains("rejected"), "{}", letter.reason);
    assert_eq!(letter.original, sent.encode_to_vec());
    assert_eq!(letter.stage(), Stage::Unspecified);
}

#[tokio::test]
async fn unknown_queues_are_refused() {
    let test = TestBus::new().await;
    let error = test
        .bus
        .publisher()
        .publish("mixsync.nope", &batch("b"))
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::UnknownQueue(_)), "{error}");
    let prefixed = format!("{}{ROWS}", test.prefix());
    assert!(matches!(
        test.bus.consume(&prefixed, 1).await,
        Err(BusError::UnknownQueue(_))
    ));
}

#[tokio::test]
async fn close_ends_consumers_and_publishes() {
    let test = TestBus::new().await;
    let mut consumer = test.bus.consume(ROWS, 1).await.unwrap();

    test.bus.close().await;

    assert!(consumer.next().await.is_none());
    let error = test
        .bus
        .publisher()
        .publish(ROWS, &batch("b"))
        .await
        .unwrap_err();
    assert!(matches!(error, BusError::Closed), "{error}");
}
