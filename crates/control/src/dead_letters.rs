//! The dead-letter consumer: every message on `mixsync.dead_letter` — a `DeadLetter` a service
//! published, or a raw message the broker dead-lettered — is kept in the state store, decodable
//! or not. When the original is a run's RowBatch or RecordBatch, its rows become failed records
//! of that run (rule `dead_letter`) and are accounted like that batch's progress report, so the
//! run still ends with `extracted = skipped + loaded + failed`. When it is a run's
//! ExtractRequest or one of its progress reports, the run can never add up: it ends FAILED with
//! the reason (its rows are not lost: the run can be triggered again). Acked once durable.

use std::time::Duration;

use mixsync_bus::{Bus, BusError, DEAD_LETTER, Delivery, EXTRACT, PROGRESS, ROWS};
use mixsync_proto::v1;
use mixsync_state::{NewDeadLetter, ProgressOutcome, Stage, StateError, StateStore};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

/// Unacked dead letters the broker sends ahead.
const PREFETCH: u16 = 16;
/// Wait before handing a dead letter back when the state database is unreachable.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// The rule of failed records made from dead-lettered batches.
pub(crate) const RULE: &str = mixsync_state::DEAD_LETTER_RULE;

/// Consumes dead letters until `shutdown`.
pub(crate) async fn consume(
    state: StateStore,
    bus: Bus,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let mut consumer = bus.consume(DEAD_LETTER, PREFETCH).await?;
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => break,
            delivery = consumer.next() => delivery,
        };
        let Some(delivery) = delivery else { break };
        let kept = mixsync_state::ride_out("dead letter", mixsync_state::RIDE_OUT, || {
            keep(&state, &delivery)
        })
        .await;
        match kept {
            Ok(()) => settle(delivery.ack().await),
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep a dead letter now; will retry");
                tokio::time::sleep(RETRY_DELAY).await;
                settle(delivery.nack_requeue().await);
            }
        }
    }
    Ok(())
}

/// Accounts the dead letter's rows (when it has a run) and keeps it.
async fn keep(state: &StateStore, delivery: &Delivery) -> Result<(), StateError> {
    let mut letter = match delivery.decode_dead_letter() {
        Ok(letter) => letter,
        Err(e) => v1::DeadLetter {
            reason: format!("not a mixsync.v1.DeadLetter ({e}); kept raw"),
            original: delivery.body.clone(),
            headers: delivery.headers.clone().into_iter().collect(),
            queue: delivery
                .headers
                .get("x-first-death-queue")
                .cloned()
                .unwrap_or_default(),
            ..v1::DeadLetter::default()
        },
    };
    let mut failed_records = 0;
    // A batch past its delivery limit fails its run, once its rows (these included) are
    // accounted for: marked failing before they are.
    let past_limit = letter.reason.contains("delivery limit");
    let failure = run_failure(&mut letter);
    if past_limit && let Some((run_id, message)) = &failure {
        match state.fail_run_when_drained(run_id, message).await {
            Ok(()) => tracing::error!(
                run_id,
                message,
                "a batch past its delivery limit fails its run"
            ),
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => tracing::warn!(run_id, error = %e, "cannot fail the run of a dead letter"),
        }
    }
    if let Some(progress) = as_progress(&mut letter) {
        match state.apply_progress(&progress).await {
            Ok(ProgressOutcome::Applied { .. }) => failed_records = progress.failed,
            Ok(ProgressOutcome::Duplicate) => {
                tracing::info!(run_id = %progress.run_id, batch_id = %progress.batch_id,
                    "dead-lettered batch already accounted; kept only");
            }
            Ok(ProgressOutcome::UnknownRun) => {
                tracing::warn!(run_id = %progress.run_id, "dead-lettered batch of an unknown run; kept only");
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                letter.reason =
                    format!("{} (and control could not account it: {e})", letter.reason);
            }
        }
    }
    if let Some((run_id, message)) = failure.filter(|_| !past_limit) {
        match state.fail_run(&run_id, &message).await {
            Ok(run) => {
                tracing::error!(run_id, state = %run.state, message, "a dead letter ends its run")
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(run_id, error = %e, "cannot fail the run of a dead letter; kept only")
            }
        }
    }
    if letter.run_id.is_empty() {
        tracing::error!(queue = %letter.queue, reason = %letter.reason, bytes = letter.original.len(),
            "a dead-lettered message names no run; kept raw in dead_letters");
    }
    let opt = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    state
        .insert_dead_letter(&NewDeadLetter {
            run_id: opt(&letter.run_id),
            activation_id: opt(&letter.activation_id),
            batch_id: opt(&letter.batch_id),
            stage: Stage::from_proto(letter.stage()),
            queue: letter.queue.clone(),
            reason: letter.reason.clone(),
            headers: letter.headers.clone().into_iter().collect(),
            original: letter.original.clone(),
            failed_records,
        })
        .await?;
    Ok(())
}

/// The progress report that accounts a dead-lettered RowBatch (stage MAP) or RecordBatch
/// (stage LOAD) as failed; fills the letter's run, activation and batch from it. `None` when
/// the original is neither, or names no run.
fn as_progress(letter: &mut v1::DeadLetter) -> Option<v1::Progress> {
    let failure = |row_number, key: String, row, record_json| v1::FailedRow {
        row_number,
        key,
        field: String::new(),
        rule: RULE.to_owned(),
        message: letter.reason.clone(),
        row,
        record_json,
    };
    let progress = if letter.queue == ROWS {
        let batch = v1::RowBatch::decode(letter.original.as_slice()).ok()?;
        let failures: Vec<_> = batch
            .rows
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                failure(
                    batch.first_row_number + i as u64,
                    String::new(),
                    Some(row),
                    Vec::new(),
                )
            })
            .collect();
        v1::Progress {
            run_id: batch.run_id,
            batch_id: batch.batch_id,
            stage: v1::Stage::Map.into(),
            failed: failures.len() as u64,
            failures,
            columns: batch.columns,
            activation_id: batch.activation_id,
            ..v1::Progress::default()
        }
    } else if letter.queue.starts_with("mixsync.load.") {
        let batch = v1::RecordBatch::decode(letter.original.as_slice()).ok()?;
        let failures: Vec<_> = batch
            .records
            .into_iter()
            .map(|r| failure(r.row_number, r.key, r.source, r.json))
            .collect();
        v1::Progress {
            run_id: batch.run_id,
            batch_id: batch.batch_id,
            stage: v1::Stage::Load.into(),
            failed: failures.len() as u64,
            failures,
            columns: batch.columns,
            activation_id: batch.activation_id,
            ..v1::Progress::default()
        }
    } else {
        return None;
    };
    if progress.run_id.is_empty() || progress.batch_id.is_empty() {
        return None;
    }
    letter.run_id.clone_from(&progress.run_id);
    if letter.activation_id.is_empty() {
        letter.activation_id.clone_from(&progress.activation_id);
    }
    if letter.batch_id.is_empty() {
        letter.batch_id.clone_from(&progress.batch_id);
    }
    if letter.stage() == v1::Stage::Unspecified {
        letter.set_stage(progress.stage());
    }
    Some(progress)
}

/// The run a dead-lettered ExtractRequest or progress report leaves unable to finish, and why
/// it fails; fills the letter's run, activation and batch from it.
fn run_failure(letter: &mut v1::DeadLetter) -> Option<(String, String)> {
    let (run_id, activation_id, batch_id, message) = if letter.queue == EXTRACT {
        let request = v1::ExtractRequest::decode(letter.original.as_slice()).ok()?;
        let message = format!(
            "its extraction request was dead-lettered: {}; trigger the run again",
            letter.reason
        );
        (
            request.run_id,
            request.activation_id,
            String::new(),
            message,
        )
    } else if letter.queue == PROGRESS {
        let progress = v1::Progress::decode(letter.original.as_slice()).ok()?;
        let message = format!(
            "the progress report of batch `{}` could not be recorded ({}), so the run's counts \
             cannot add up; trigger the run again",
            progress.batch_id, letter.reason
        );
        (
            progress.run_id,
            progress.activation_id,
            progress.batch_id,
            message,
        )
    } else if letter.reason.contains("delivery limit") {
        // A batch redelivered until the broker gave up: its rows are failed records (above),
        // and the run fails, since something keeps failing that retrying did not fix.
        let (run_id, activation_id, batch_id) = batch_of(letter)?;
        let message = format!(
            "batch `{batch_id}` on `{}` was {}; its rows are failed records (rule `{RULE}`); fix the cause and replay them or trigger the run again",
            letter.queue,
            letter
                .reason
                .strip_prefix("dead-lettered by rabbitmq: ")
                .unwrap_or(&letter.reason)
        );
        (run_id, activation_id, batch_id, message)
    } else {
        return None;
    };
    if run_id.is_empty() {
        return None;
    }
    letter.run_id.clone_from(&run_id);
    if letter.activation_id.is_empty() {
        letter.activation_id = activation_id;
    }
    if letter.batch_id.is_empty() {
        letter.batch_id = batch_id;
    }
    Some((run_id, message))
}

/// Run, activation and batch of a dead-lettered RowBatch or RecordBatch.
fn batch_of(letter: &v1::DeadLetter) -> Option<(String, String, String)> {
    if letter.queue == ROWS {
        let batch = v1::RowBatch::decode(letter.original.as_slice()).ok()?;
        Some((batch.run_id, batch.activation_id, batch.batch_id))
    } else if letter.queue.starts_with("mixsync.load.") {
        let batch = v1::RecordBatch::decode(letter.original.as_slice()).ok()?;
        Some((batch.run_id, batch.activation_id, batch.batch_id))
    } else {
        None
    }
}

fn settle(result: Result<(), BusError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot settle a dead letter; it will be redelivered");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(queue: &str, original: Vec<u8>) -> v1::DeadLetter {
        v1::DeadLetter {
            queue: queue.into(),
            reason: "poison".into(),
            original,
            ..v1::DeadLetter::default()
        }
    }

    #[test]
    fn a_dead_row_batch_fails_its_rows_at_map() {
        let batch = v1::RowBatch {
            run_id: "r".into(),
            activation_id: "a".into(),
            batch_id: "r-3".into(),
            columns: vec!["c".into()],
            rows: vec![v1::Row::default(), v1::Row::default()],
            first_row_number: 11,
            ..v1::RowBatch::default()
        };
        let mut l = letter(ROWS, batch.encode_to_vec());
        let p = as_progress(&mut l).expect("a progress report");
        assert_eq!(
            (p.stage(), p.failed, p.batch_id.as_str()),
            (v1::Stage::Map, 2, "r-3")
        );
        let numbers: Vec<u64> = p.failures.iter().map(|f| f.row_number).collect();
        assert_eq!(numbers, [11, 12]);
        assert!(
            p.failures
                .iter()
                .all(|f| f.rule == RULE && f.message == "poison")
        );
        assert_eq!((l.run_id.as_str(), l.stage()), ("r", v1::Stage::Map));
    }

    #[test]
    fn a_dead_record_batch_fails_its_records_at_load() {
        let batch = v1::RecordBatch {
            run_id: "r".into(),
            batch_id: "r-0".into(),
            records: vec![v1::Record {
                row_number: 4,
                key: "k".into(),
                json: b"{}".to_vec(),
                ..v1::Record::default()
            }],
            ..v1::RecordBatch::default()
        };
        let mut l = letter("mixsync.load.events", batch.encode_to_vec());
        let p = as_progress(&mut l).expect("a progress report");
        assert_eq!((p.stage(), p.failed), (v1::Stage::Load, 1));
        assert_eq!(p.failures[0].record_json, b"{}");
    }

    #[test]
    fn a_dead_extract_request_or_progress_report_fails_its_run() {
        let request = v1::ExtractRequest {
            run_id: "r".into(),
            activation_id: "a".into(),
            full_resync: false,
        };
        let mut l = letter(EXTRACT, request.encode_to_vec());
        let (run, message) = run_failure(&mut l).expect("a run to fail");
        assert_eq!(run, "r");
        assert!(
            message.contains("extraction request was dead-lettered: poison"),
            "{message}"
        );
        assert_eq!(l.activation_id, "a");

        let report = v1::Progress {
            run_id: "r".into(),
            batch_id: "r-7".into(),
            ..v1::Progress::default()
        };
        let mut l = letter(PROGRESS, report.encode_to_vec());
        let (run, message) = run_failure(&mut l).expect("a run to fail");
        assert_eq!(run, "r");
        assert!(
            message.contains("batch `r-7`") && message.contains("poison"),
            "{message}"
        );
        assert_eq!(l.batch_id, "r-7");

        let mut l = letter(EXTRACT, b"\xff\xfe".to_vec());
        assert!(run_failure(&mut l).is_none());
        let mut l = letter(ROWS, Vec::new());
        assert!(run_failure(&mut l).is_none());
    }

    #[test]
    fn garbage_names_no_run() {
        let mut l = letter(ROWS, b"\xff\xfe not protobuf".to_vec());
        assert!(as_progress(&mut l).is_none());
        assert!(l.run_id.is_empty());
        let mut l = letter("mixsync.progress", Vec::new());
        assert!(as_progress(&mut l).is_none());
    }
}
