//! Progress accounting: idempotent per batch, serialized per run, and a run ends exactly when
//! its counts add up.

use mixsync_proto::v1::{self, progress::Terminal};
use mixsync_test_support::TestDb;
use mixsync_test_support::fixtures::seeded;
use std::time::Duration;

use mixsync_state::{
    AttemptEnded, Begin, ExpiredExtraction, FailedRecordFilter, PageRequest, ProgressOutcome,
    RunState, Stage, StateError,
};

fn report(run_id: &str, stage: v1::Stage, batch: &str) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        batch_id: format!("{run_id}-{batch}"),
        stage: stage.into(),
        ..Default::default()
    }
}

fn extracted(run_id: &str, batch: &str, rows: u64, finished: Option<u64>) -> v1::Progress {
    v1::Progress {
        extracted: rows,
        terminal: finished.map(|total_rows| {
            Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows,
                batches: 2,
                total_unknown: false,
            })
        }),
        ..report(run_id, v1::Stage::Extract, batch)
    }
}

fn loaded(run_id: &str, batch: &str, loaded: u64) -> v1::Progress {
    v1::Progress {
        loaded,
        ..report(run_id, v1::Stage::Load, batch)
    }
}

fn mapped_with_failure(run_id: &str, activation_id: &str, batch: &str) -> v1::Progress {
    v1::Progress {
        failed: 1,
        activation_id: activation_id.into(),
        columns: vec!["id".into(), "ts".into()],
        failures: vec![v1::FailedRow {
            row_number: 3,
            key: String::new(),
            field: "time".into(),
            rule: "time_range".into(),
            message: "row 3, column `ts`: 1960 is before 1971".into(),
            row: Some(v1::Row {
                values: vec![
                    v1::Value {
                        kind: Some(v1::value::Kind::IntValue(3)),
                    },
                    v1::Value {
                        kind: Some(v1::value::Kind::Text("1960".into())),
                    },
                ],
            }),
            record_json: Vec::new(),
        }],
        ..report(run_id, v1::Stage::Map, batch)
    }
}

#[tokio::test]
async fn a_run_completes_exactly_when_counts_add_up_and_redeliveries_do_not_count() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    assert_eq!(run.state, RunState::Queued);

    let steps = [
        (extracted(&run.id, "0", 2, None), RunState::Running),
        (loaded(&run.id, "0", 2), RunState::Running),
        (extracted(&run.id, "1", 2, Some(4)), RunState::Running),
        (
            mapped_with_failure(&run.id, &activation, "1"),
            RunState::Running,
        ),
    ];
    for (progress, expected) in &steps {
        let outcome = store.apply_progress(progress).await.unwrap();
        assert_eq!(outcome, ProgressOutcome::Applied { state: *expected });
        // Redelivery: recorded once only.
        assert_eq!(
            store.apply_progress(progress).await.unwrap(),
            ProgressOutcome::Duplicate
        );
    }
    let mid = store.get_run(&run.id).await.unwrap();
    assert_eq!(mid.counts.extracted, 4);
    assert_eq!(mid.counts.loaded + mid.counts.failed, 3);
    assert!(mid.started_at.is_some() && mid.finished_at.is_none());

    let last = loaded(&run.id, "1", 1);
    assert_eq!(
        store.apply_progress(&last).await.unwrap(),
        ProgressOutcome::Applied {
            state: RunState::PartiallyFailed
        }
    );
    let done = store.get_run(&run.id).await.unwrap();
    assert_eq!(done.state, RunState::PartiallyFailed);
    assert_eq!(
        done.counts.extracted,
        done.counts.skipped + done.counts.loaded + done.counts.failed
    );
    assert_eq!(done.total_rows, Some(4));
    assert!(done.finished_at.is_some());

    // A late report for the finished run is recorded but does not reopen it.
    let late = loaded(&run.id, "late", 0);
    assert_eq!(
        store.apply_progress(&late).await.unwrap(),
        ProgressOutcome::Applied {
            state: RunState::PartiallyFailed
        }
    );

    let failed = store
        .list_failed_records(
            &FailedRecordFilter {
                run_id: Some(run.id.clone()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .unwrap();
    assert_eq!(failed.total_count, 1);
    for (rule, expected) in [("time_range", 1), ("required", 0)] {
        let by_rule = store
            .list_failed_records(
                &FailedRecordFilter {
                    run_id: Some(run.id.clone()),
                    rule: Some(rule.into()),
                    ..Default::default()
                },
                &PageRequest::default(),
            )
            .await
            .unwrap();
        assert_eq!(by_rule.total_count, expected, "{rule}");
        assert_eq!(by_rule.page.items.len() as u64, expected, "{rule}");
    }
    let record = &failed.page.items[0];
    assert_eq!(record.stage, Stage::Map);
    assert_eq!(
        (record.field.as_str(), record.rule.as_str()),
        ("time", "time_range")
    );
    assert_eq!(record.row, serde_json::json!({"id": 3, "ts": "1960"}));
    assert_eq!(record.activation_id, activation);
    assert_eq!(failed.counts_by_reason[0].count, 1);
    drop(store);
}

#[tokio::test]
async fn concurrent_reports_serialize_and_redeliveries_never_double_count() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();

    let batches = 20u64;
    let mut reports = Vec::new();
    for seq in 0..batches {
        let batch = seq.to_string();
        let finished = (seq == batches - 1).then_some(batches * 10);
        reports.push(extracted(&run.id, &batch, 10, finished));
        reports.push(loaded(&run.id, &batch, 10));
    }
    // Every report delivered three times, all at once.
    let all: Vec<_> = reports.iter().chain(&reports).chain(&reports).collect();
    let outcomes = futures_util::future::join_all(all.iter().map(|p| {
        let store = store.clone();
        async move { store.apply_progress(p).await.unwrap() }
    }))
    .await;
    let duplicates = outcomes
        .iter()
        .filter(|o| **o == ProgressOutcome::Duplicate)
        .count();
    assert_eq!(duplicates, reports.len() * 2);

    let done = store.get_run(&run.id).await.unwrap();
    assert_eq!(done.state, RunState::Succeeded);
    assert_eq!(done.counts.extracted, 200);
    assert_eq!(done.counts.loaded, 200);
    drop(store);
}

#[tokio::test]
async fn a_fatal_report_fails_the_run_with_its_message() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let fatal = v1::Progress {
        terminal: Some(Terminal::Fatal(v1::FatalError {
            message: "relation \"signups\" does not exist".into(),
        })),
        ..report(&run.id, v1::Stage::Extract, "fatal")
    };
    store.apply_progress(&fatal).await.unwrap();
    let failed = store.get_run(&run.id).await.unwrap();
    assert_eq!(failed.state, RunState::Failed);
    assert_eq!(
        failed.error_message.as_deref(),
        Some("relation \"signups\" does not exist")
    );
    // The activation can run again.
    store.create_run(&activation, true, None).await.unwrap();
    assert_eq!(
        store
            .apply_progress(&loaded("no-such-run", "0", 1))
            .await
            .unwrap(),
        ProgressOutcome::UnknownRun
    );
    drop(store);
}

#[tokio::test]
async fn an_empty_result_succeeds_at_once() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let outcome = store
        .apply_progress(&extracted(&run.id, "0", 0, Some(0)))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ProgressOutcome::Applied {
            state: RunState::Succeeded
        }
    );
    drop(store);
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_run_cancelled_while_queued_is_never_extracted() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let cancelled = store.request_cancel(&run.id).await.unwrap();
    assert_eq!(cancelled.state, RunState::Cancelled);
    assert_eq!(
        store.begin_extraction(&run.id, "x1", LEASE).await.unwrap(),
        Begin::Stopped
    );
    assert!(matches!(
        store.begin_extraction("no-such-run", "x1", LEASE).await,
        Err(StateError::NotFound { .. })
    ));

    // Begun first: the run is RUNNING, and cancel marks it instead of ending it.
    let run = store.create_run(&activation, false, None).await.unwrap();
    assert_eq!(
        store.begin_extraction(&run.id, "x1", LEASE).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        store.get_run(&run.id).await.unwrap().state,
        RunState::Running
    );
    let marked = store.request_cancel(&run.id).await.unwrap();
    assert_eq!(marked.state, RunState::Running);
    assert_eq!(
        store.begin_extraction(&run.id, "x2", LEASE).await.unwrap(),
        Begin::Stopped
    );
    drop(store);
}

#[tokio::test]
async fn one_extractor_holds_the_lease_and_an_expired_one_is_queued_again_once() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, true, None).await.unwrap();
    assert_eq!(
        store.begin_extraction(&run.id, "x1", LEASE).await.unwrap(),
        Begin::Started
    );
    // A second request while x1 renews: busy. x1's own redelivery: still its lease.
    assert_eq!(
        store.begin_extraction(&run.id, "x2", LEASE).await.unwrap(),
        Begin::Busy
    );
    assert!(store.renew_extraction(&run.id, "x1", LEASE).await.unwrap());
    let grace = Duration::from_secs(60);
    assert!(
        store
            .expired_extractions(grace, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // x1 stops renewing (its lease runs out): control queues the extraction again, once.
    assert!(
        store
            .renew_extraction(&run.id, "x1", Duration::ZERO)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = store.expired_extractions(grace, 10).await.unwrap();
    assert_eq!(
        expired,
        [ExpiredExtraction {
            run_id: run.id.clone(),
            activation_id: activation.clone(),
            full_resync: true,
            give_up: None,
        }]
    );
    assert!(
        store
            .expired_extractions(grace, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // x2 takes it over; x1, back, has lost it.
    assert_eq!(
        store.begin_extraction(&run.id, "x2", LEASE).await.unwrap(),
        Begin::Started
    );
    assert!(!store.renew_extraction(&run.id, "x1", LEASE).await.unwrap());

    // x2's attempt (the second) ends on a transient failure: the next attempt is queued after
    // a backoff, not at once.
    let ended = AttemptEnded {
        reason: "lost the warehouse connection: connection closed",
        published_rows: Some(0),
    };
    store
        .release_extraction(&run.id, "x2", &ended)
        .await
        .unwrap();
    assert!(
        store
            .expired_extractions(grace, 10)
            .await
            .unwrap()
            .is_empty()
    );
    end_backoff(&db, &run.id).await;
    let expired = store.expired_extractions(grace, 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].give_up, None);

    // x3 takes the third attempt; the run says which attempt it is on and why the last ended.
    assert_eq!(
        store.begin_extraction(&run.id, "x3", LEASE).await.unwrap(),
        Begin::Started
    );
    let now = store.get_run(&run.id).await.unwrap();
    assert_eq!((now.attempt, now.max_attempts), (3, 3));
    assert_eq!(now.attempt_error.as_deref(), Some(ended.reason));
    // Done: never queued again, and a late request finds nothing to do.
    store.end_extraction(&run.id).await.unwrap();
    assert!(!store.renew_extraction(&run.id, "x3", LEASE).await.unwrap());
    assert_eq!(
        store.begin_extraction(&run.id, "x4", LEASE).await.unwrap(),
        Begin::Busy
    );
    store
        .renew_extraction(&run.id, "x3", Duration::ZERO)
        .await
        .unwrap();
    assert!(
        store
            .expired_extractions(Duration::ZERO, 10)
            .await
            .unwrap()
            .is_empty()
    );
    drop(store);
}

#[tokio::test]
async fn a_cancelled_run_with_an_unknown_total_closes_on_what_was_reported() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    assert_eq!(
        store.begin_extraction(&run.id, "x1", LEASE).await.unwrap(),
        Begin::Started
    );
    store
        .apply_progress(&extracted(&run.id, "0", 5, None))
        .await
        .unwrap();
    store.request_cancel(&run.id).await.unwrap();
    // The extractor died; its restart reports an unknown total.
    let stopped = v1::Progress {
        terminal: Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
            total_rows: 0,
            batches: 0,
            total_unknown: true,
        })),
        ..report(&run.id, v1::Stage::Extract, "cancelled")
    };
    let outcome = store.apply_progress(&stopped).await.unwrap();
    assert_eq!(
        outcome,
        ProgressOutcome::Applied {
            state: RunState::Running
        }
    );
    let outcome = store
        .apply_progress(&loaded(&run.id, "0", 5))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        ProgressOutcome::Applied {
            state: RunState::Cancelled
        }
    );
    let ended = store.get_run(&run.id).await.unwrap();
    assert_eq!((ended.counts.extracted, ended.counts.loaded), (5, 5));
    assert_eq!(ended.total_rows, Some(5));
    drop(store);
}

/// Moves a released extraction's backoff into the past, as if it had been waited out.
async fn end_backoff(db: &TestDb, run_id: &str) {
    db.client()
        .await
        .execute(
            "UPDATE runs SET extract_lease_until = now() - interval '1 second' WHERE id = $1",
            &[&run_id],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_run_is_given_up_after_its_last_attempt_and_waits_for_its_rows_before_the_next() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    let grace = Duration::from_secs(60);
    let ended = |reason| AttemptEnded {
        reason,
        published_rows: Some(100),
    };
    assert_eq!(
        store.begin_extraction(&run.id, "a1", LEASE).await.unwrap(),
        Begin::Started
    );
    // Attempt 1 published 100 rows, then lost the warehouse; only 40 are through.
    store
        .apply_progress(&extracted(&run.id, "b0", 100, None))
        .await
        .unwrap();
    store
        .apply_progress(&loaded(&run.id, "b0", 40))
        .await
        .unwrap();
    store
        .release_extraction(&run.id, "a1", &ended("connection lost"))
        .await
        .unwrap();
    end_backoff(&db, &run.id).await;
    assert!(
        store
            .expired_extractions(grace, 10)
            .await
            .unwrap()
            .is_empty(),
        "the next attempt must wait until what the last one published is accounted for"
    );
    store
        .apply_progress(&loaded(&run.id, "b0-rest", 60))
        .await
        .unwrap();
    assert_eq!(store.expired_extractions(grace, 10).await.unwrap().len(), 1);
    for (owner, attempt) in [("a2", 2), ("a3", 3)] {
        assert_eq!(
            store.begin_extraction(&run.id, owner, LEASE).await.unwrap(),
            Begin::Started
        );
        assert_eq!(store.get_run(&run.id).await.unwrap().attempt, attempt);
        store
            .release_extraction(&run.id, owner, &ended("connection lost again"))
            .await
            .unwrap();
        end_backoff(&db, &run.id).await;
        let expired = store.expired_extractions(grace, 10).await.unwrap();
        assert_eq!(expired.len(), 1);
        if attempt < 3 {
            assert_eq!(expired[0].give_up, None);
        } else {
            assert_eq!(
                expired[0].give_up.as_deref(),
                Some("gave up after 3 attempts; the last one ended: connection lost again")
            );
        }
    }
    // A late request cannot start a fourth attempt.
    end_backoff(&db, &run.id).await;
    assert_eq!(
        store.begin_extraction(&run.id, "a4", LEASE).await.unwrap(),
        Begin::Busy
    );
}

#[tokio::test]
async fn a_cancelled_run_whose_extractor_died_is_queued_again_whatever_its_attempts() {
    let db = TestDb::create().await;
    let store = db.state().await;
    let activation = seeded(&store).await;
    let run = store.create_run(&activation, false, None).await.unwrap();
    db.client()
        .await
        .execute("UPDATE runs SET max_attempts = 1 WHERE id = $1", &[&run.id])
        .await
        .unwrap();
    assert_eq!(
        store.begin_extraction(&run.id, "d1", LEASE).await.unwrap(),
        Begin::Started
    );
    store.request_cancel(&run.id).await.unwrap();
    // d1 dies: its lease runs out.
    assert!(
        store
            .renew_extraction(&run.id, "d1", Duration::ZERO)
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let expired = store
        .expired_extractions(Duration::from_secs(60), 10)
        .await
        .unwrap();
    // Queued again (not given up) so that an extractor reports the extraction over.
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].give_up, None);
    assert_eq!(
        store.begin_extraction(&run.id, "d2", LEASE).await.unwrap(),
        Begin::Stopped
    );
}
