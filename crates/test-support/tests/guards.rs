//! The guards remove what a test made even when the test panics: the database is gone from
//! `pg_database` and no queue of the prefix is left on the broker.

use std::sync::mpsc;

use mixsync_test_support::{TestDb, TestQueues, database_exists, queue_depths};

/// Runs `body` like a failing `#[tokio::test]` does: on its own thread and runtime, panicking
/// after it sent what it made. Returns what it sent.
fn in_a_test_that_panics<T: Send + 'static>(
    body: impl AsyncFnOnce(mpsc::Sender<T>) + Send + 'static,
) -> T {
    let (sent, made) = mpsc::channel();
    let test = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body(sent));
    });
    assert!(test.join().is_err(), "the test body was meant to panic");
    made.recv().expect("the test body sent what it made")
}

#[test]
fn a_panicking_test_still_drops_its_database() {
    let name = in_a_test_that_panics(async |sent: mpsc::Sender<String>| {
        let db = TestDb::create().await;
        // Something holds a connection, as a test's state store would.
        let client = db.client().await;
        client
            .batch_execute("CREATE TABLE t (x int)")
            .await
            .unwrap();
        assert!(database_exists(db.name()).await);
        sent.send(db.name().to_owned()).unwrap();
        panic!("the test fails while its database is in use");
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    assert!(
        !runtime.block_on(database_exists(&name)),
        "{name} was left behind"
    );
}

#[test]
fn a_panicking_test_still_deletes_its_queues() {
    let prefix = in_a_test_that_panics(async |sent: mpsc::Sender<String>| {
        let queues = TestQueues::new();
        let bus = queues.bus().await;
        bus.publisher()
            .publish(
                mixsync_bus::PROGRESS,
                &mixsync_proto::v1::Progress::default(),
            )
            .await
            .unwrap();
        assert!(
            !queue_depths(queues.prefix()).is_empty(),
            "connecting declared the topology"
        );
        sent.send(queues.prefix().to_owned()).unwrap();
        panic!("the test fails with a message still queued");
    });
    let left = queue_depths(&prefix);
    assert!(left.is_empty(), "queues left behind: {left:?}");
}

#[tokio::test]
async fn a_passing_test_drops_its_database_when_the_guard_goes() {
    let db = TestDb::with_setup("CREATE TABLE signups (id bigint)").await;
    let name = db.name().to_owned();
    let _store = db.state().await;
    drop(db);
    assert!(!database_exists(&name).await);
}
