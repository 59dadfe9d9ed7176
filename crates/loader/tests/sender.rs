//! The sending pipeline against the Mixpanel emulator: per-index results of strict 400s, 413
//! splitting, retries through injected 503s, resets and 429s, and refused credentials.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures_util::future::join_all;
use mixsync_emulator::ManualClock;
use mixsync_loader::objects::{RULE_REJECTED, RULE_TOO_LARGE, RecordFailure};
use mixsync_loader::rate_limit::RateSettings;
use mixsync_loader::{Events, EventsConfig, RecordOutcome, Sender};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn sender(settings: &mixsync_loader::SendSettings) -> Sender<Events> {
    Sender::new(Events::default(), settings, CancellationToken::new()).unwrap()
}

fn loaded(outcomes: &[RecordOutcome]) -> usize {
    outcomes
        .iter()
        .filter(|o| **o == RecordOutcome::Loaded)
        .count()
}

#[tokio::test]
async fn a_batch_with_invalid_events_is_split_into_loaded_and_failed_by_index() {
    let emulator = start(emulator_config()).await;
    let mut records = events("ok", 10);
    let mut bad_id = event("x");
    bad_id["properties"]["$insert_id"] = json!("not valid!");
    let mut bad_time = event("bad-time");
    bad_time["properties"]["time"] = json!(12);
    let mut bad_user = event("bad-user");
    bad_user["properties"]["distinct_id"] = json!("null");
    records[2] = bytes(&bad_id);
    records[5] = bytes(&bad_time);
    records[9] = bytes(&bad_user);

    let outcomes = sender(&settings()).send(&target(&emulator), &records).await;

    let failure = |field: &str, message: &str| {
        RecordOutcome::Failed(RecordFailure {
            field: field.into(),
            rule: RULE_REJECTED,
            message: message.into(),
        })
    };
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = match i {
            2 => failure(
                "$insert_id",
                "'$insert_id' is invalid: must only contain alphanumeric or hyphen '-' characters",
            ),
            5 => failure(
                "properties.time",
                "'properties.time' is invalid: must be after 1971-01-01",
            ),
            9 => failure(
                "properties.distinct_id",
                "'properties.distinct_id' is invalid: 'null' is not a valid distinct_id",
            ),
            _ => RecordOutcome::Loaded,
        };
        assert_eq!(*outcome, expected, "record {i}");
    }
    let expected: Vec<String> = [0, 1, 3, 4, 6, 7, 8]
        .iter()
        .map(|i| format!("ok-{i}"))
        .collect();
    assert_eq!(stored_ids(&emulator).await, sorted(expected));
    assert_eq!(import_requests(&emulator, 400).await, 1);
}

#[tokio::test]
async fn a_request_too_large_is_split_in_half_until_it_fits() {
    let mut config = emulator_config();
    config.limits.max_import_bytes = 4096;
    let emulator = start(config).await;
    // About 150 bytes each: 100 events are ~15 KB, so the first request and its halves get 413s.
    let records = events("split", 100);
    let outcomes = sender(&settings()).send(&target(&emulator), &records).await;
    assert_eq!(loaded(&outcomes), 100);
    assert!(import_requests(&emulator, 413).await >= 3);
    let expected: Vec<String> = (0..100).map(|i| format!("split-{i}")).collect();
    assert_eq!(stored_ids(&emulator).await, sorted(expected));
}

#[tokio::test]
async fn a_single_event_larger_than_the_server_allows_fails_alone() {
    let mut config = emulator_config();
    config.limits.max_import_bytes = 1024;
    let emulator = start(config).await;
    let mut big = event("big");
    big["properties"]["note"] = json!("x".repeat(250));
    big["properties"]["more"] = json!(["y".repeat(250), "z".repeat(250), "w".repeat(250)]);
    let records = vec![
        bytes(&event("small-0")),
        bytes(&big),
        bytes(&event("small-1")),
    ];
    let outcomes = sender(&settings()).send(&target(&emulator), &records).await;
    assert_eq!(outcomes[0], RecordOutcome::Loaded);
    assert_eq!(outcomes[2], RecordOutcome::Loaded);
    let RecordOutcome::Failed(failure) = &outcomes[1] else {
        panic!("{:?}", outcomes[1])
    };
    assert_eq!(failure.rule, RULE_TOO_LARGE);
    assert_eq!(failure.message, "request exceeds max limit of 1024 bytes");
}

#[tokio::test]
async fn twenty_percent_503s_lose_and_duplicate_nothing() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"error_rate": 0.2, "error_statuses": [503], "endpoints": ["import"]}),
    )
    .await;
    let sender = Arc::new(sender(&settings()));
    let target = target(&emulator);
    let batches: Vec<Vec<Bytes>> = (0..40).map(|b| events(&format!("f{b}"), 50)).collect();
    let results = join_all(batches.iter().map(|records| sender.send(&target, records))).await;
    for outcomes in &results {
        assert_eq!(loaded(outcomes), 50);
    }
    assert!(import_requests(&emulator, 503).await > 0);
    let ids = stored_ids(&emulator).await;
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), 2000);
    assert_eq!(unique.len(), 2000);
    assert_eq!(import_requests(&emulator, 200).await, 40);
}

#[tokio::test]
async fn connection_resets_are_retried() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"reset_rate": 0.3, "endpoints": ["import"]}),
    )
    .await;
    let sender = sender(&settings());
    let target = target(&emulator);
    for b in 0..10 {
        let outcomes = sender.send(&target, &events(&format!("r{b}"), 20)).await;
        assert_eq!(loaded(&outcomes), 20);
    }
    assert_eq!(stored_ids(&emulator).await.len(), 200);
}

/// Waits until the emulator's stats satisfy `ready` (polling them; the sends go on meanwhile).
async fn until_stats(
    emulator: &mixsync_emulator::Emulator,
    what: &str,
    ready: impl Fn(&Value) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = stats(emulator).await;
        if ready(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {stats}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn import_count(stats: &Value, status: u16) -> u64 {
    stats["requests"]["import"][status.to_string()]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn rate_limit_429s_are_retried_honouring_retry_after() {
    let mut config = emulator_config();
    config.rate_limit.enabled = true;
    config.rate_limit.events_per_sec = 1000;
    // The emulator's window moves only when this test moves its clock, so which requests are
    // refused does not depend on how fast this machine is.
    let clock = ManualClock::new();
    let emulator = mixsync_emulator::spawn_with_clock(config, clock.clone())
        .await
        .unwrap();
    let sender = Arc::new(sender(&settings()));
    let target = target(&emulator);
    let started = Instant::now();
    // Three batches of 800 at once: one fits the 1000-event window, the others are refused.
    let sends = tokio::spawn(async move {
        let batches: Vec<Vec<Bytes>> = (0..3).map(|b| events(&format!("t{b}"), 800)).collect();
        let results = join_all(batches.iter().map(|records| sender.send(&target, records))).await;
        results
            .iter()
            .map(|outcomes| loaded(outcomes))
            .collect::<Vec<_>>()
    });
    until_stats(&emulator, "one batch in and two refused", |s| {
        import_count(s, 200) == 1 && import_count(s, 429) >= 2
    })
    .await;
    clock.advance(Duration::from_secs(1));
    until_stats(&emulator, "a second batch in", |s| {
        import_count(s, 200) == 2
    })
    .await;
    clock.advance(Duration::from_secs(1));
    assert_eq!(sends.await.unwrap(), vec![800; 3]);
    // Each refused batch waited the 1 s Retry-After before its next attempt.
    assert!(started.elapsed() >= Duration::from_secs(1));

    let stats = stats(&emulator).await;
    assert_eq!(import_count(&stats, 200), 3);
    let refused = import_count(&stats, 429);
    assert!(refused >= 2, "{stats}");
    assert_eq!(stats["records"]["throttled"], json!(refused * 800));
    let expected: Vec<String> = (0..3)
        .flat_map(|b| (0..800).map(move |i| format!("t{b}-{i}")))
        .collect();
    assert_eq!(stored_ids(&emulator).await, sorted(expected));
}

/// The loader's own limiter is what keeps it under Mixpanel's limit: every request goes through it,
/// and the grants never put more than the limit in one window (a second plus the latency margin).
/// This is read from the limiter's counters, not from the emulator's 429s: when requests arrive is
/// up to the machine and the network, while the schedule the loader keeps is its own.
#[tokio::test]
async fn the_loaders_own_rate_limit_keeps_under_mixpanels() {
    let emulator = start(emulator_config()).await;
    let mut settings = settings();
    // Settings no other test uses, so the process-wide limiter read below is this test's alone.
    let margin = Duration::from_millis(100);
    settings.rate_limit = Some(RateSettings {
        bytes_per_min: 1_999_999_999,
        margin,
    });
    let sender = sender(&settings);
    // The log the sender keeps (no state store here, so this process's own).
    let limiter = sender.limiter().unwrap().local_log().clone();
    let mut target = target(&emulator);
    target.rate_limit_per_second = 1000;
    let started = Instant::now();
    let batches: Vec<Vec<Bytes>> = (0..8).map(|b| events(&format!("l{b}"), 500)).collect();
    let results = join_all(batches.iter().map(|records| sender.send(&target, records))).await;
    let elapsed = started.elapsed();
    for outcomes in &results {
        assert_eq!(loaded(outcomes), 500);
    }
    let expected: Vec<String> = (0..8)
        .flat_map(|b| (0..500).map(move |i| format!("l{b}-{i}")))
        .collect();
    assert_eq!(stored_ids(&emulator).await, sorted(expected), "each once");

    let granted = limiter.stats();
    assert_eq!(granted.requests, import_requests(&emulator, 200).await);
    assert_eq!(granted.events, 4000);
    assert!(granted.peak_events_in_window <= 1000, "{granted:?}");
    // 4000 events at 1000 a window take four windows: the last grant is three after the first.
    let window = Duration::from_secs(1) + margin;
    assert!(granted.span >= 3 * window, "{granted:?}");
    // And the sends waited for their grants rather than only booking them.
    assert!(elapsed >= granted.span, "{elapsed:?} {granted:?}");
}

#[tokio::test]
async fn refused_credentials_are_fatal_with_a_clear_reason() {
    let emulator = start(emulator_config()).await;
    let sender = sender(&settings());
    let records = events("auth", 3);

    let outcomes = sender
        .send(&target_as(&emulator, "demo-sa", "wrong"), &records)
        .await;
    let reason =
        "Mixpanel refused the service account `demo-sa` for project 1: Invalid credentials";
    assert_eq!(outcomes, vec![RecordOutcome::Fatal(reason.into()); 3]);

    let outcomes = sender
        .send(
            &target_as(&emulator, "demo-viewer", "demo-viewer-secret"),
            &records,
        )
        .await;
    let RecordOutcome::Fatal(reason) = &outcomes[0] else {
        panic!("{outcomes:?}")
    };
    assert_eq!(
        &**reason,
        "Mixpanel refused the service account `demo-viewer` for project 1: service account 'demo-viewer' needs the Owner or Admin role on project 1 to import data"
    );
    assert!(stored_ids(&emulator).await.is_empty());
}

#[tokio::test]
async fn a_400_without_failed_records_fails_every_record_with_mixpanels_message() {
    let mut config = emulator_config();
    config.limits.max_import_events = 5;
    let emulator = start(config).await;
    let records = events("many", 8);
    let sender = Sender::new(
        Events::new(EventsConfig::default()),
        &settings(),
        CancellationToken::new(),
    )
    .unwrap();
    let outcomes = sender.send(&target(&emulator), &records).await;
    let expected = RecordOutcome::Failed(RecordFailure {
        field: String::new(),
        rule: RULE_REJECTED,
        message: "too many records in request: 8 (max 5)".into(),
    });
    assert_eq!(outcomes, vec![expected; 8]);
}

#[tokio::test]
async fn records_beyond_the_batch_limits_go_in_several_requests() {
    let emulator = start(emulator_config()).await;
    let sender = Sender::new(
        Events::new(EventsConfig {
            max_batch_events: 7,
            max_batch_bytes: 10_000,
        }),
        &settings(),
        CancellationToken::new(),
    )
    .unwrap();
    let outcomes = sender.send(&target(&emulator), &events("chunk", 30)).await;
    assert_eq!(loaded(&outcomes), 30);
    assert_eq!(import_requests(&emulator, 200).await, 5);
    assert_eq!(stored_ids(&emulator).await.len(), 30);
}

#[tokio::test]
async fn unreachable_mixpanel_defers_after_the_retry_budget_and_on_shutdown() {
    // A port nobody listens on: connection refused, retried until the budget is spent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut target = target_as_url(&format!("http://{addr}"));
    target.project_id = 1;
    let mut settings = settings();
    settings.retry_budget = Some(Duration::from_millis(300));
    let outcomes = sender(&settings).send(&target, &events("down", 2)).await;
    assert_eq!(outcomes, vec![RecordOutcome::Deferred; 2]);

    settings.retry_budget = None;
    let shutdown = CancellationToken::new();
    let sender = Sender::new(Events::default(), &settings, shutdown.clone()).unwrap();
    let stop = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
    });
    let outcomes = sender.send(&target, &events("down", 2)).await;
    assert_eq!(outcomes, vec![RecordOutcome::Deferred; 2]);
    stop.await.unwrap();
}

fn target_as_url(base_url: &str) -> mixsync_loader::Target {
    mixsync_loader::Target {
        base_url: base_url.into(),
        project_id: 1,
        token: "demo-token".into(),
        service_account_username: "demo-sa".into(),
        service_account_secret: "demo-secret".into(),
        rate_limit_per_second: 30_000,
    }
}
