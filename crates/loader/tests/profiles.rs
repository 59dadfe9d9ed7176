//! The user and group profile objects on the sending pipeline, against the emulator: a refused
//! update is found by bisection and fails alone, requests never carry more updates than allowed nor
//! split a record, 503s are retried without loss, and a target without a usable token stops the run.

mod common;

use bytes::Bytes;
use common::*;
use mixsync_loader::objects::{Object, RULE_REJECTED, RecordFailure};
use mixsync_loader::{Profiles, ProfilesConfig, RecordOutcome, Sender};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn sender<O: Object>(object: O) -> Sender<O> {
    Sender::new(object, &settings(), CancellationToken::new()).unwrap()
}

fn users(max_batch_updates: usize) -> Sender<Profiles> {
    sender(Profiles::users(ProfilesConfig {
        max_batch_updates,
        ..ProfilesConfig::USERS
    }))
}

fn groups_sender(max_batch_updates: usize) -> Sender<Profiles> {
    sender(Profiles::groups(ProfilesConfig {
        max_batch_updates,
        ..ProfilesConfig::GROUPS
    }))
}

/// Requests a greedy packer sends for records of these update counts, a record never split.
fn packed_requests(updates: &[usize], max: usize) -> u64 {
    let (mut requests, mut open) = (0, 0);
    for &n in updates {
        if open > 0 && open + n > max {
            requests += 1;
            open = 0;
        }
        open += n;
        if open >= max {
            requests += 1;
            open = 0;
        }
    }
    requests + u64::from(open > 0)
}

#[tokio::test]
async fn one_refused_update_fails_its_record_alone_and_everything_else_loads() {
    let emulator = start(emulator_config()).await;
    let records: Vec<Bytes> = (0..40)
        .map(|i| {
            let logins = if i == 17 { json!("many") } else { json!(1) };
            user_record(
                &format!("u{i}"),
                &[
                    ("$set", json!({"name": format!("User {i}")})),
                    ("$add", json!({"logins": logins})),
                    ("$union", json!({"tags": ["a"]})),
                ],
            )
        })
        .collect();

    let outcomes = users(2000).send(&target(&emulator), &records).await;

    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if i == 17 {
            RecordOutcome::Failed(RecordFailure {
                field: String::new(),
                rule: RULE_REJECTED,
                message:
                    "1 of 3 updates failed: [1] $add, invalid value: 'logins' must be a number"
                        .into(),
            })
        } else {
            RecordOutcome::Loaded
        };
        assert_eq!(*outcome, expected, "record {i}");
    }
    let profiles = profiles(&emulator).await;
    assert_eq!(profiles.len(), 40);
    for (i, properties) in (0..40).map(|i| (i, &profiles[&format!("u{i}")])) {
        // Idempotent operations end as if sent once; the refused record's valid updates were
        // applied by Mixpanel all the same.
        assert_eq!(properties["name"], json!(format!("User {i}")));
        assert_eq!(properties["tags"], json!(["a"]));
        if i != 17 {
            // `$add` is not idempotent: records bisected with the refused one are counted again
            // (see `RetryAction::Bisect`).
            assert!(properties["logins"].as_i64().unwrap() >= 1);
        }
    }
    // One request, then halves down to the record: at most 1 + 2·⌈log2 40⌉.
    let sent = requests(&emulator, "engage", 200).await;
    assert!((2..=13).contains(&sent), "{sent} requests");
}

#[tokio::test]
async fn group_requests_never_carry_more_updates_than_allowed_nor_split_a_record() {
    const LIMIT: usize = 7;
    let mut config = emulator_config();
    // The emulator refuses a request with more updates than this (`status: 0`), which the loader
    // would have to bisect: every request accepted at once proves none was over.
    config.limits.max_group_updates = LIMIT;
    let emulator = start(config).await;
    // 1 to 5 updates a record; packing by update (splitting records) would send fewer requests.
    let counts: Vec<usize> = (0..60).map(|i| [3, 3, 1, 5, 2, 4][i % 6]).collect();
    let operations = [
        ("$set", json!({"name": "Company"})),
        ("$set_once", json!({"founded": 2001})),
        ("$add", json!({"seats": 2})),
        ("$union", json!({"regions": ["eu"]})),
        ("$unset", json!(["legacy"])),
    ];
    let records: Vec<Bytes> = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| group_record("company", &format!("c{i}"), &operations[..n]))
        .collect();

    let outcomes = groups_sender(LIMIT)
        .send(&target(&emulator), &records)
        .await;

    assert!(
        outcomes.iter().all(|o| *o == RecordOutcome::Loaded),
        "{outcomes:?}"
    );
    assert_eq!(
        requests(&emulator, "groups", 200).await,
        packed_requests(&counts, LIMIT)
    );
    assert!(packed_requests(&counts, LIMIT) > counts.iter().sum::<usize>().div_ceil(LIMIT) as u64);
    assert_eq!(stats(&emulator).await["records"]["rejected"], json!(0));
    let groups = groups(&emulator, "company").await;
    assert_eq!(groups.len(), 60);
    for (i, &n) in counts.iter().enumerate() {
        let properties = &groups[&format!("c{i}")];
        assert_eq!(properties["name"], json!("Company"));
        if n >= 3 {
            // Sent once: no request was refused, so nothing was resent.
            assert_eq!(properties["seats"], json!(2), "c{i}");
        }
    }
}

#[tokio::test]
async fn a_record_with_more_updates_than_a_request_takes_goes_alone_and_fails_alone() {
    let mut config = emulator_config();
    config.limits.max_group_updates = 2;
    let emulator = start(config).await;
    let set = ("$set", json!({"a": 1}));
    let records = [
        group_record("company", "ok-1", std::slice::from_ref(&set)),
        group_record("company", "big", &[set.clone(), set.clone(), set.clone()]),
        group_record("company", "ok-2", &[set.clone(), set]),
    ];
    let outcomes = groups_sender(2).send(&target(&emulator), &records).await;
    assert_eq!(outcomes[0], RecordOutcome::Loaded);
    assert_eq!(outcomes[2], RecordOutcome::Loaded);
    assert_eq!(
        outcomes[1],
        RecordOutcome::Failed(RecordFailure {
            field: String::new(),
            rule: RULE_REJECTED,
            message: "too many updates in request: 3 (max 2)".into(),
        })
    );
    assert_eq!(requests(&emulator, "groups", 200).await, 3);
}

#[tokio::test]
async fn engage_503s_are_retried_without_loss_or_repeats() {
    let emulator = start(emulator_config()).await;
    set_faults(
        &emulator,
        json!({"error_rate": 0.3, "error_statuses": [503], "fail_next": 2, "endpoints": ["engage"]}),
    )
    .await;
    let records: Vec<Bytes> = (0..300)
        .map(|i| {
            user_record(
                &format!("u{i}"),
                &[("$set", json!({"n": i})), ("$add", json!({"logins": 1}))],
            )
        })
        .collect();

    // 2 updates a record, 50 a request: 12 requests, most of them answered 503 at least once.
    let outcomes = users(50).send(&target(&emulator), &records).await;

    assert!(outcomes.iter().all(|o| *o == RecordOutcome::Loaded));
    assert!(requests(&emulator, "engage", 503).await >= 2);
    assert_eq!(requests(&emulator, "engage", 200).await, 12);
    let profiles = profiles(&emulator).await;
    assert_eq!(profiles.len(), 300);
    for i in 0..300 {
        let properties = &profiles[&format!("u{i}")];
        assert_eq!(properties["n"], json!(i));
        // A 503 stores nothing, so the retried `$add` counts once.
        assert_eq!(properties["logins"], json!(1), "u{i}");
    }
}

#[tokio::test]
async fn a_target_without_a_usable_token_stops_the_run() {
    let emulator = start(emulator_config()).await;
    let mut target = target(&emulator);
    target.token = "".into();
    let records = [user_record("u", &[("$set", json!({"a": 1}))])];
    let outcomes = users(2000).send(&target, &records).await;
    let [RecordOutcome::Fatal(reason)] = &outcomes[..] else {
        panic!("{outcomes:?}")
    };
    assert!(
        reason.starts_with("the target's project token cannot be used"),
        "{reason}"
    );
    assert_eq!(requests(&emulator, "engage", 200).await, 0);
}
