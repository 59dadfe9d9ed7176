//! Runs: a trigger queues an extraction; progress reports drive the run to its end, and
//! WatchRun streams every step.

use mixsync_bus::{EXTRACT, PROGRESS};
use mixsync_proto::v1::{self, progress::Terminal};
use prost::Message as _;
use tonic::Code;

use crate::common::{Harness, PATIENCE};

fn progress(run_id: &str, stage: v1::Stage, batch: &str) -> v1::Progress {
    v1::Progress {
        run_id: run_id.into(),
        batch_id: format!("{run_id}-{batch}"),
        stage: stage.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn trigger_publishes_an_extract_request_and_refuses_a_second_run() {
    let h = Harness::start(None).await;
    let activation_id = h.activation().await;
    let mut extract = h.consume(EXTRACT).await;
    let mut client = h.client().await;
    let run = client
        .trigger_run(v1::TriggerRunRequest {
            activation_id: activation_id.clone(),
            full_resync: true,
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(run.state(), v1::RunState::Queued);

    let delivery = tokio::time::timeout(PATIENCE, extract.next())
        .await
        .unwrap()
        .unwrap();
    let request = v1::ExtractRequest::decode(delivery.body.as_slice()).unwrap();
    delivery.ack().await.unwrap();
    assert_eq!(request.run_id, run.id);
    assert_eq!(request.activation_id, activation_id);
    assert!(request.full_resync);

    let second = client
        .trigger_run(v1::TriggerRunRequest {
            activation_id: activation_id.clone(),
            full_resync: false,
        })
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);
    assert!(second.message().contains(&run.id), "{second:?}");

    let unknown = client
        .trigger_run(v1::TriggerRunRequest {
            activation_id: "nope".into(),
            full_resync: false,
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn progress_drives_a_run_to_its_end_and_watch_streams_it() {
    let h = Harness::start(None).await;
    let activation_id = h.activation().await;
    let mut client = h.client().await;
    let run = client
        .trigger_run(v1::TriggerRunRequest {
            activation_id: activation_id.clone(),
            full_resync: false,
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let mut updates = client
        .watch_run(v1::WatchRunRequest { id: run.id.clone() })
        .await
        .unwrap()
        .into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(first.run.unwrap().state(), v1::RunState::Queued);

    let publisher = h.bus.publisher();
    let reports = [
        v1::Progress {
            extracted: 3,
            terminal: Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows: 3,
                batches: 1,
                total_unknown: false,
            })),
            ..progress(&run.id, v1::Stage::Extract, "0")
        },
        v1::Progress {
            failed: 1,
            activation_id: activation_id.clone(),
            columns: vec!["id".into(), "user_id".into()],
            failures: vec![v1::FailedRow {
                row_number: 3,
                field: "distinct_id".into(),
                rule: "denied_value".into(),
                message: "row 3, column `user_id`: `null` is a placeholder id".into(),
                ..Default::default()
            }],
            ..progress(&run.id, v1::Stage::Map, "0")
        },
        v1::Progress {
            loaded: 2,
            ..progress(&run.id, v1::Stage::Load, "0")
        },
    ];
    for report in &reports {
        publisher.publish(PROGRESS, report).await.unwrap();
        // A redelivered report must not count twice.
        publisher.publish(PROGRESS, report).await.unwrap();
    }

    let mut last = None;
    while let Some(update) = tokio::time::timeout(PATIENCE, updates.message())
        .await
        .expect("the watch ends once the run ends")
        .unwrap()
    {
        last = Some(update);
    }
    let last = last.unwrap();
    let done = last.run.unwrap();
    assert_eq!(done.state(), v1::RunState::PartiallyFailed);
    let counts = done.counts.unwrap();
    assert_eq!(
        (
            counts.extracted,
            counts.skipped,
            counts.loaded,
            counts.failed
        ),
        (3, 0, 2, 1)
    );
    assert_eq!(last.total_rows, Some(3));
    assert!(done.finished_at.is_some());

    let fetched = client
        .get_run(v1::GetRunRequest { id: run.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(fetched.state(), v1::RunState::PartiallyFailed);

    let failed = client
        .list_failed_records(v1::ListFailedRecordsRequest {
            run_id: run.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(failed.total_count, 1);
    assert_eq!(failed.records[0].field, "distinct_id");
    assert_eq!(failed.records[0].stage(), v1::Stage::Map);
    assert_eq!(failed.counts_by_reason[0].rule, "denied_value");

    // The activation is free to run again; runs list newest first.
    let second = client
        .trigger_run(v1::TriggerRunRequest {
            activation_id: activation_id.clone(),
            full_resync: false,
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let runs = client
        .list_runs(v1::ListRunsRequest {
            activation_id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .runs;
    let ids: Vec<_> = runs.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), run.id.as_str()]);

    let unknown = client
        .watch_run(v1::WatchRunRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    h.stop().await;
}

#[tokio::test]
async fn an_undecodable_progress_report_is_dead_lettered() {
    let h = Harness::start(None).await;
    let mut client = h.client().await;
    // A RowBatch's `columns` (field 5, text) cannot be Progress's `skipped` (field 5, a number).
    let wrong = v1::RowBatch {
        columns: vec!["id".into()],
        ..Default::default()
    };
    h.bus.publisher().publish(PROGRESS, &wrong).await.unwrap();
    // Control dead-letters it, then keeps it from the dead-letter queue.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let letter = loop {
        let kept = client
            .list_dead_letters(h.req(v1::ListDeadLettersRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .dead_letters;
        if let Some(letter) = kept.into_iter().next() {
            break letter;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        letter.reason.starts_with("undecodable Progress message"),
        "{letter:?}"
    );
    assert_eq!(letter.queue, PROGRESS);
    assert!(letter.run_id.is_empty());
    assert_eq!(letter.original, wrong.encode_to_vec());
    h.stop().await;
}
