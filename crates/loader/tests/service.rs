//! The loader services over the real RabbitMQ on this machine (own queue prefix per test) against
//! the emulator: RecordBatch in, Progress out, acks, dead letters, fatal
//! refusals, rotated credentials, requeue on shutdown, and the profile loaders.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use mixsync_bus::{
    Bus, Consumer, DEAD_LETTER, LOAD_EVENTS, LOAD_GROUP_PROFILES, LOAD_USER_PROFILES, PROGRESS,
};
use mixsync_loader::{
    Config, Object, Service, Target, TargetError, TargetSource, events_service,
    group_profiles_service, user_profiles_service,
};
use mixsync_proto::v1::{
    MixpanelObject, Progress, Record, RecordBatch, Row, Stage, Value, progress, value,
};
use mixsync_test_support::TestQueues;
use parking_lot::Mutex;
use prost::Message as _;
use serde_json::json;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

/// Targets a test can change while the service runs.
#[derive(Clone, Default)]
struct Targets(Arc<Mutex<HashMap<String, Target>>>);

impl Targets {
    fn set(&self, id: &str, target: Target) {
        self.0.lock().insert(id.to_owned(), target);
    }
}

impl TargetSource for Targets {
    async fn target(&self, id: &str) -> Result<Target, TargetError> {
        self.0
            .lock()
            .get(id)
            .cloned()
            .ok_or_else(|| TargetError::NotFound(id.to_owned()))
    }
}

struct Harness {
    bus: Bus,
    config: Config,
    progress: Consumer,
    /// Every loader started, stopped when the harness drops (a failing test) before the guard
    /// deletes the queues: a consumer whose queue is deleted declares it again.
    started: Mutex<Vec<(CancellationToken, AbortHandle)>>,
    _queues: TestQueues,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for (shutdown, task) in self.started.lock().drain(..) {
            shutdown.cancel();
            task.abort();
        }
    }
}

impl Harness {
    async fn new(extra: &[(&str, &str)]) -> Harness {
        let queues = TestQueues::new();
        let prefix = queues.prefix().to_owned();
        let mut vars: HashMap<String, String> = [
            ("MIXSYNC_SECRET_KEY", "test-key"),
            ("MIXSYNC_QUEUE_PREFIX", prefix.as_str()),
            ("MIXSYNC_LOADER_RATE_LIMIT", "off"),
            ("MIXSYNC_LOADER_RETRY_INITIAL_MS", "10"),
            ("MIXSYNC_LOADER_RETRY_MAX_MS", "200"),
            ("MIXSYNC_LOADER_LINGER_MS", "50"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        vars.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let config = Config::read(&mixsync_config::Env::from_pairs(vars)).unwrap();
        let bus = queues.bus().await;
        let progress = bus.consume(PROGRESS, 64).await.unwrap();
        Harness {
            bus,
            config,
            progress,
            started: Mutex::new(Vec::new()),
            _queues: queues,
        }
    }

    fn start(&self, targets: Targets) -> (CancellationToken, JoinHandle<()>) {
        self.start_with(targets, |config, targets, shutdown| {
            events_service(config, targets, shutdown).unwrap()
        })
    }

    /// Runs the loader `build` makes.
    fn start_with<O: Object>(
        &self,
        targets: Targets,
        build: impl FnOnce(&Config, Targets, CancellationToken) -> Service<O, Targets>,
    ) -> (CancellationToken, JoinHandle<()>) {
        let shutdown = CancellationToken::new();
        let service = build(&self.config, targets, shutdown.clone());
        let bus = self.bus.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { service.run(&bus, token).await.unwrap() });
        self.started
            .lock()
            .push((shutdown.clone(), task.abort_handle()));
        (shutdown, task)
    }

    async fn publish(&self, batch: &RecordBatch) {
        self.publish_to(LOAD_EVENTS, batch).await;
    }

    async fn publish_to(&self, queue: &str, batch: &RecordBatch) {
        self.bus.publisher().publish(queue, batch).await.unwrap();
    }

    /// The next `n` LOAD progress reports, by batch id.
    async fn progress(&mut self, n: usize) -> BTreeMap<String, Progress> {
        let mut reports = BTreeMap::new();
        while reports.len() < n {
            let delivery = tokio::time::timeout(Duration::from_secs(60), self.progress.next())
                .await
                .expect("progress within 60 s")
                .unwrap();
            let progress = Progress::decode(delivery.body.as_slice()).unwrap();
            delivery.ack().await.unwrap();
            assert_eq!(progress.stage(), Stage::Load);
            reports.insert(progress.batch_id.clone(), progress);
        }
        reports
    }

    async fn finish(self, running: (CancellationToken, JoinHandle<()>)) {
        running.0.cancel();
        running.1.await.unwrap();
        self.bus.close().await;
    }
}

/// A record whose `row_hash` is its key's bytes (so a test can tell them apart).
fn record(row_number: u64, json: Vec<u8>, key: &str) -> Record {
    Record {
        row_number,
        key: key.into(),
        json,
        row_hash: key.as_bytes().to_vec(),
        source: Some(Row {
            values: vec![Value {
                kind: Some(value::Kind::Text(key.into())),
            }],
        }),
    }
}

/// A RecordBatch of `n` events for target `t1`; rows in `bad` get an invalid `$insert_id`.
fn batch(run: &str, seq: u64, n: u64, bad: &[u64]) -> RecordBatch {
    let records = (0..n)
        .map(|i| {
            let row = seq * 1000 + i + 1;
            let key = format!("{run}-{row}");
            let mut event = event(&key);
            if bad.contains(&i) {
                event["properties"]["$insert_id"] = json!(format!("{key}!"));
            }
            record(row, serde_json::to_vec(&event).unwrap(), &key)
        })
        .collect();
    RecordBatch {
        run_id: run.into(),
        activation_id: "act".into(),
        batch_id: format!("{run}-{seq}"),
        object: MixpanelObject::Events.into(),
        records,
        columns: vec!["key".into()],
        target_id: "t1".into(),
    }
}

#[tokio::test]
async fn record_batches_become_progress_reports_through_503s() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"error_rate": 0.2, "error_statuses": [503], "fail_next": 2, "endpoints": ["import"]}),
    )
    .await;
    // Requests of 60 events mix records of several RecordBatches.
    let mut h = Harness::new(&[("MIXSYNC_LOADER_MAX_BATCH_EVENTS", "60")]).await;
    let targets = Targets::default();
    targets.set("t1", target(&emulator));
    let running = h.start(targets);

    for seq in 0..6 {
        h.publish(&batch("run", seq, 100, &[3, 50])).await;
    }
    let mut not_json = batch("run", 6, 3, &[]);
    not_json.records[1].json = b"{\"event\":".to_vec();
    h.publish(&not_json).await;

    let reports = h.progress(7).await;
    for seq in 0..6 {
        let p = &reports[&format!("run-{seq}")];
        assert_eq!((p.loaded, p.failed), (98, 2), "batch {seq}");
        assert_eq!(
            (p.run_id.as_str(), p.activation_id.as_str()),
            ("run", "act")
        );
        assert_eq!(p.columns, ["key"]);
        assert!(p.terminal.is_none());
        let rows: Vec<u64> = p.failures.iter().map(|f| f.row_number).collect();
        assert_eq!(rows, [seq * 1000 + 4, seq * 1000 + 51]);
        let f = &p.failures[0];
        assert_eq!(f.key, format!("run-{}", seq * 1000 + 4));
        assert_eq!(f.field, "$insert_id");
        assert_eq!(f.rule, "mixpanel_rejected");
        assert_eq!(
            f.message,
            "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters"
        );
        assert_eq!(f.row.as_ref().unwrap().values.len(), 1);
        let sent: serde_json::Value = serde_json::from_slice(&f.record_json).unwrap();
        assert_eq!(
            sent["properties"]["$insert_id"],
            json!(format!("{}!", f.key))
        );
    }
    let p = &reports["run-6"];
    assert_eq!((p.loaded, p.failed), (2, 1));
    assert_eq!(p.failures[0].rule, "invalid_record");
    assert_eq!(p.failures[0].row_number, 6002);
    assert_eq!(p.failures[0].key, "run-6002");

    // Exactly the valid events, once each.
    let ids = stored_ids(&emulator).await;
    assert_eq!(ids.len(), 6 * 98 + 2);
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());
    assert!(import_requests(&emulator, 503).await > 0);
    h.finish(running).await;
}

#[tokio::test]
async fn undecodable_and_misrouted_messages_are_dead_lettered() {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Garbage {
        #[prost(bytes = "vec", tag = "5")]
        records: Vec<u8>,
    }
    let emulator = start(emulator_config()).await;
    let h = Harness::new(&[]).await;
    let mut dead = h.bus.consume(DEAD_LETTER, 8).await.unwrap();
    let targets = Targets::default();
    targets.set("t1", target(&emulator));
    let running = h.start(targets);

    let publisher = h.bus.publisher();
    publisher
        .publish(
            LOAD_EVENTS,
            &Garbage {
                records: vec![0xff; 8],
            },
        )
        .await
        .unwrap();
    let mut profiles = batch("run", 0, 1, &[]);
    profiles.object = MixpanelObject::UserProfiles.into();
    h.publish(&profiles).await;

    let mut reasons = Vec::new();
    for _ in 0..2 {
        let delivery = tokio::time::timeout(Duration::from_secs(30), dead.next())
            .await
            .unwrap()
            .unwrap();
        let letter = delivery.decode_dead_letter().unwrap();
        delivery.ack().await.unwrap();
        assert_eq!(letter.stage(), Stage::Load);
        assert_eq!(letter.queue, LOAD_EVENTS);
        reasons.push(letter.reason);
    }
    reasons.sort();
    assert!(
        reasons[0].starts_with("RecordBatch `run-0` is for object UserProfiles"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("cannot decode the message"),
        "{reasons:?}"
    );
    assert!(stored_ids(&emulator).await.is_empty());
    h.finish(running).await;
}

#[tokio::test]
async fn refused_credentials_fail_the_run_and_rotated_ones_are_picked_up() {
    let emulator = start(emulator_config()).await;
    let mut h = Harness::new(&[]).await;
    let targets = Targets::default();
    targets.set("t1", target_as(&emulator, "demo-sa", "old-secret"));
    let running = h.start(targets.clone());

    h.publish(&batch("run", 0, 5, &[])).await;
    let reports = h.progress(1).await;
    let p = &reports["run-0"];
    // The refused records count as failed, with the run's reason, so the failing run's counts
    // add up once it has drained.
    assert_eq!((p.loaded, p.failed), (0, 5));
    assert!(p.failures.iter().all(|f| f.rule == "run_failed"), "{p:?}");
    let Some(progress::Terminal::Fatal(fatal)) = &p.terminal else {
        panic!("{p:?}")
    };
    assert_eq!(
        fatal.message,
        "Mixpanel refused the service account `demo-sa` for project 1: Invalid credentials"
    );

    // The secret is rotated in the state store; the loader still has the old one cached, is
    // refused once, reads the target again and resends.
    targets.set("t1", target(&emulator));
    h.publish(&batch("run", 1, 5, &[])).await;
    let reports = h.progress(1).await;
    let p = &reports["run-1"];
    assert_eq!((p.loaded, p.failed), (5, 0));
    assert!(p.terminal.is_none());
    assert_eq!(import_requests(&emulator, 401).await, 2);
    assert_eq!(stored_ids(&emulator).await.len(), 5);
    h.finish(running).await;
}

#[tokio::test]
async fn unfinished_batches_are_requeued_on_shutdown_and_loaded_after_restart() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"error_rate": 1.0, "error_statuses": [503], "endpoints": ["import"]}),
    )
    .await;
    let mut h = Harness::new(&[]).await;
    let targets = Targets::default();
    targets.set("t1", target(&emulator));
    let first = h.start(targets.clone());
    h.publish(&batch("run", 0, 10, &[])).await;
    // Let it fail a few times, then stop the loader while it is still retrying.
    while import_requests(&emulator, 503).await < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0.cancel();
    first.1.await.unwrap();
    assert!(stored_ids(&emulator).await.is_empty());

    set_faults(&emulator, json!({})).await;
    let second = h.start(targets);
    let reports = h.progress(1).await;
    assert_eq!(reports["run-0"].loaded, 10);
    assert_eq!(stored_ids(&emulator).await.len(), 10);
    h.finish(second).await;
}

/// A RecordBatch of profile records (`json` per row, keys `{run}-{row}`) for target `t1`.
fn profile_batch(
    run: &str,
    seq: u64,
    object: MixpanelObject,
    records: impl IntoIterator<Item = (String, bytes::Bytes)>,
) -> RecordBatch {
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, json))| record(seq * 1000 + i as u64 + 1, json.to_vec(), &key))
        .collect();
    RecordBatch {
        run_id: run.into(),
        activation_id: "act".into(),
        batch_id: format!("{run}-{seq}"),
        object: object.into(),
        records,
        columns: vec!["key".into()],
        target_id: "t1".into(),
    }
}

#[tokio::test]
async fn the_user_profiles_loader_reports_the_refused_record_and_syncs_the_others() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"fail_next": 2, "fail_next_status": 503, "endpoints": ["engage"]}),
    )
    .await;
    let mut h = Harness::new(&[]).await;
    let targets = Targets::default();
    targets.set("t1", target(&emulator));
    let running = h.start_with(targets, |config, targets, shutdown| {
        user_profiles_service(config, targets, shutdown).unwrap()
    });

    let users = |seq: u64, bad: Option<usize>| {
        (0..30).map(move |i| {
            let logins = if Some(i) == bad { json!("x") } else { json!(1) };
            let key = format!("u{seq}-{i}");
            let json = user_record(
                &key,
                &[
                    ("$set", json!({"i": i})),
                    ("$add", json!({"logins": logins})),
                ],
            );
            (key, json)
        })
    };
    h.publish_to(
        LOAD_USER_PROFILES,
        &profile_batch("run", 0, MixpanelObject::UserProfiles, users(0, Some(7))),
    )
    .await;
    let mut no_hash = profile_batch("run", 1, MixpanelObject::UserProfiles, users(1, None));
    no_hash.records[4].row_hash.clear();
    h.publish_to(LOAD_USER_PROFILES, &no_hash).await;
    let mut not_updates = profile_batch("run", 2, MixpanelObject::UserProfiles, users(2, None));
    not_updates.records[0].json = br#"{"$distinct_id":"u2-0","$set":{}}"#.to_vec();
    h.publish_to(LOAD_USER_PROFILES, &not_updates).await;

    let reports = h.progress(3).await;
    let p = &reports["run-0"];
    assert_eq!((p.loaded, p.failed), (29, 1));
    let f = &p.failures[0];
    assert_eq!((f.row_number, f.key.as_str()), (8, "u0-7"));
    assert_eq!(f.rule, "mixpanel_rejected");
    assert_eq!(
        f.message,
        "1 of 2 updates failed: [1] $add, invalid value: 'logins' must be a number"
    );

    let p = &reports["run-1"];
    assert_eq!((p.loaded, p.failed), (30, 0));

    let p = &reports["run-2"];
    assert_eq!((p.loaded, p.failed), (29, 1));
    assert_eq!(p.failures[0].rule, "invalid_record");

    let profiles = profiles(&emulator).await;
    assert_eq!(profiles.len(), 30 + 30 + 29);
    assert_eq!(profiles["u1-29"]["i"], json!(29));
    // Records that shared a request with the refused one were bisected with it and their `$add`
    // applied more than once; the others once.
    assert!(profiles["u1-0"]["logins"].as_i64().unwrap() >= 1);
    h.finish(running).await;
}

#[tokio::test]
async fn the_group_profiles_loader_sends_requests_of_the_configured_size() {
    let mut config = emulator_config();
    config.limits.max_group_updates = 10;
    let emulator = start(config).await;
    let mut h = Harness::new(&[("MIXSYNC_LOADER_MAX_GROUP_UPDATES", "10")]).await;
    let targets = Targets::default();
    targets.set("t1", target(&emulator));
    let running = h.start_with(targets, |config, targets, shutdown| {
        group_profiles_service(config, targets, shutdown).unwrap()
    });

    // 3 updates a record, 3 records a request; records of both batches share requests.
    for seq in 0..2 {
        let records = (0..25).map(|i| {
            let id = format!("c{seq}-{i}");
            let json = group_record(
                "company",
                &id,
                &[
                    ("$set", json!({"name": id})),
                    ("$set_once", json!({"first": seq})),
                    ("$union", json!({"tags": ["x"]})),
                ],
            );
            (format!("company/{id}"), json)
        });
        h.publish_to(
            LOAD_GROUP_PROFILES,
            &profile_batch("run", seq, MixpanelObject::GroupProfiles, records),
        )
        .await;
    }
    let reports = h.progress(2).await;
    for seq in 0..2 {
        let p = &reports[&format!("run-{seq}")];
        assert_eq!((p.loaded, p.failed), (25, 0));
    }
    assert_eq!(groups(&emulator, "company").await.len(), 50);
    assert_eq!(stats(&emulator).await["records"]["rejected"], json!(0));
    // 50 records of 3 updates, 3 a request (batches may close early on the linger): at least 17.
    assert!(requests(&emulator, "groups", 200).await >= 17);
    h.finish(running).await;
}
