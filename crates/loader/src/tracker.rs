//! Bookkeeping from RecordBatch to Progress: records of one delivery may travel in several requests
//! (and one request carries records of several deliveries); when every record of a delivery is
//! resolved, the delivery is settled. Pure: generic over the delivery handle so it is tested without
//! RabbitMQ.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use mixsync_proto::v1::{FailedRow, FatalError, Progress, Record, RecordBatch, Stage, progress};

use crate::objects::{RULE_RUN_FAILED, RecordFailure};
use crate::sender::RecordOutcome;

/// One record on its way: which delivery it belongs to, where, and its JSON.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    slot: u64,
    index: usize,
    /// The exact JSON to send.
    pub json: Bytes,
}

/// What to do with a delivery.
#[derive(Debug)]
pub(crate) enum Settle<D> {
    /// Publish `progress`, then ack.
    Report { delivery: D, progress: Progress },
    /// Not finished (shutting down, retry budget spent): put it back for redelivery.
    Requeue { delivery: D },
    /// It cannot be processed at all.
    DeadLetter { delivery: D, reason: String },
}

/// What [`Tracker::add`] made of a delivery.
#[derive(Debug)]
pub(crate) enum Added<D> {
    /// Records to send.
    Send(Vec<Item>),
    /// Nothing to send: settle it now.
    Settled(Settle<D>),
}

struct Pending<D> {
    delivery: D,
    batch: RecordBatch,
    unresolved: usize,
    /// Indexes (in `batch.records`) of the records Mixpanel accepted.
    loaded: Vec<usize>,
    failures: Vec<FailedRow>,
    fatal: Option<Arc<str>>,
    deferred: bool,
}

/// Deliveries whose records are not all resolved yet.
pub(crate) struct Tracker<D> {
    pending: HashMap<u64, Pending<D>>,
    next_slot: u64,
}

impl<D> Tracker<D> {
    pub(crate) fn new() -> Self {
        Tracker {
            pending: HashMap::new(),
            next_slot: 0,
        }
    }

    /// Deliveries being worked on.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Takes `batch` on: returns the records to send, or the settlement right away when there is
    /// nothing to send (no records, or every record refused by `check`).
    pub(crate) fn add(
        &mut self,
        delivery: D,
        mut batch: RecordBatch,
        check: impl Fn(&[u8]) -> Result<(), RecordFailure>,
    ) -> Added<D> {
        let slot = self.next_slot;
        self.next_slot += 1;
        let mut items = Vec::with_capacity(batch.records.len());
        let mut failures = Vec::new();
        for (index, record) in batch.records.iter_mut().enumerate() {
            match check(&record.json) {
                Ok(()) => items.push(Item {
                    slot,
                    index,
                    json: Bytes::from(std::mem::take(&mut record.json)),
                }),
                Err(failure) => {
                    let json = std::mem::take(&mut record.json);
                    failures.push(failed_row(record, failure, json));
                }
            }
        }
        let pending = Pending {
            delivery,
            batch,
            unresolved: items.len(),
            loaded: Vec::new(),
            failures,
            fatal: None,
            deferred: false,
        };
        if items.is_empty() {
            return Added::Settled(settle(pending));
        }
        self.pending.insert(slot, pending);
        Added::Send(items)
    }

    /// Applies a request's outcomes (one per item) and returns the deliveries now complete.
    pub(crate) fn resolve(
        &mut self,
        items: Vec<Item>,
        outcomes: Vec<RecordOutcome>,
    ) -> Vec<Settle<D>> {
        let mut done = Vec::new();
        for (item, outcome) in items.into_iter().zip(outcomes) {
            let Some(pending) = self.pending.get_mut(&item.slot) else {
                continue;
            };
            match outcome {
                RecordOutcome::Loaded => pending.loaded.push(item.index),
                RecordOutcome::Failed(failure) => {
                    if let Some(record) = pending.batch.records.get_mut(item.index) {
                        pending
                            .failures
                            .push(failed_row(record, failure, item.json.to_vec()));
                    }
                }
                // The run fails, but only once what is in flight is accounted for: the record
                // counts as failed, with the run's reason, and can be replayed.
                RecordOutcome::Fatal(reason) => {
                    if let Some(record) = pending.batch.records.get_mut(item.index) {
                        let failure = RecordFailure {
                            field: String::new(),
                            rule: RULE_RUN_FAILED,
                            message: reason.to_string(),
                        };
                        pending
                            .failures
                            .push(failed_row(record, failure, item.json.to_vec()));
                    }
                    pending.fatal = Some(reason);
                }
                RecordOutcome::Deferred => pending.deferred = true,
            }
            pending.unresolved = pending.unresolved.saturating_sub(1);
            if pending.unresolved == 0
                && let Some(pending) = self.pending.remove(&item.slot)
            {
                done.push(settle(pending));
            }
        }
        done
    }

    /// Every delivery still open, to be requeued (shutdown).
    pub(crate) fn drain(&mut self) -> Vec<Settle<D>> {
        self.pending
            .drain()
            .map(|(_, p)| Settle::Requeue {
                delivery: p.delivery,
            })
            .collect()
    }
}

fn failed_row(record: &mut Record, failure: RecordFailure, json: Vec<u8>) -> FailedRow {
    FailedRow {
        row_number: record.row_number,
        key: record.key.clone(),
        field: failure.field,
        rule: failure.rule.to_owned(),
        message: failure.message,
        row: record.source.take(),
        record_json: json,
    }
}

/// A delivery whose records are all resolved: a fatal refusal ends the run (its records are
/// failed rows with the run's reason); otherwise, if any record was deferred, it goes back to the queue (a redelivery
/// resends the batch; Mixpanel deduplicates by `$insert_id`); else its counts are reported, with
/// every refused record (control puts back their sync snapshot hashes).
fn settle<D>(p: Pending<D>) -> Settle<D> {
    if p.deferred && p.fatal.is_none() {
        return Settle::Requeue {
            delivery: p.delivery,
        };
    }
    let batch = p.batch;
    let mut failures = p.failures;
    // Requests finish in any order; reports list failures in row order.
    failures.sort_by_key(|f| f.row_number);
    let progress = Progress {
        run_id: batch.run_id,
        batch_id: batch.batch_id,
        stage: Stage::Load.into(),
        loaded: p.loaded.len() as u64,
        failed: failures.len() as u64,
        failures,
        columns: batch.columns,
        activation_id: batch.activation_id,
        terminal: p.fatal.map(|reason| {
            progress::Terminal::Fatal(FatalError {
                message: reason.to_string(),
            })
        }),
        ..Progress::default()
    };
    Settle::Report {
        delivery: p.delivery,
        progress,
    }
}

#[cfg(test)]
mod tests {
    use mixsync_proto::v1::{Row, Value, value};

    use super::*;
    use crate::objects::RULE_REJECTED;

    fn batch(n: usize) -> RecordBatch {
        RecordBatch {
            run_id: "run".into(),
            activation_id: "act".into(),
            batch_id: "run-0".into(),
            columns: vec!["id".into()],
            target_id: "t".into(),
            records: (0..n)
                .map(|i| Record {
                    row_number: i as u64 + 1,
                    key: format!("k{i}"),
                    json: format!(r#"{{"i":{i}}}"#).into_bytes(),
                    row_hash: Vec::new(),
                    source: Some(Row {
                        values: vec![Value {
                            kind: Some(value::Kind::IntValue(i as i64)),
                        }],
                    }),
                })
                .collect(),
            ..RecordBatch::default()
        }
    }

    fn ok(_: &[u8]) -> Result<(), RecordFailure> {
        Ok(())
    }

    impl<D: std::fmt::Debug> Added<D> {
        fn unwrap(self) -> Vec<Item> {
            match self {
                Added::Send(items) => items,
                Added::Settled(settle) => panic!("{settle:?}"),
            }
        }
    }

    fn rejected(message: &str) -> RecordOutcome {
        RecordOutcome::Failed(RecordFailure {
            field: "properties.time".into(),
            rule: RULE_REJECTED,
            message: message.into(),
        })
    }

    #[test]
    fn reports_when_the_last_record_resolves_across_requests() {
        let mut tracker = Tracker::new();
        let mut items = tracker.add("d1", batch(3), ok).unwrap();
        let last = items.split_off(2);
        let done = tracker.resolve(items, vec![RecordOutcome::Loaded, rejected("bad time")]);
        assert!(done.is_empty());
        let done = tracker.resolve(last, vec![RecordOutcome::Loaded]);
        let [Settle::Report { delivery, progress }] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(*delivery, "d1");
        assert_eq!((progress.loaded, progress.failed), (2, 1));
        assert_eq!(progress.stage(), Stage::Load);
        assert_eq!(progress.batch_id, "run-0");
        assert_eq!(progress.columns, ["id"]);
        let failure = &progress.failures[0];
        assert_eq!(failure.row_number, 2);
        assert_eq!(failure.key, "k1");
        assert_eq!(failure.field, "properties.time");
        assert_eq!(failure.rule, RULE_REJECTED);
        assert_eq!(failure.message, "bad time");
        assert_eq!(failure.record_json, br#"{"i":1}"#);
        assert!(failure.row.is_some());
        assert_eq!(tracker.len(), 0);
    }

    #[test]
    fn invalid_records_fail_before_sending_and_empty_batches_report_at_once() {
        let mut tracker = Tracker::<&str>::new();
        let check = |json: &[u8]| {
            if json == br#"{"i":0}"# {
                Err(RecordFailure {
                    field: String::new(),
                    rule: "invalid_record",
                    message: "no".into(),
                })
            } else {
                Ok(())
            }
        };
        let items = tracker.add("d", batch(2), check).unwrap();
        assert_eq!(items.len(), 1);
        let done = tracker.resolve(items, vec![RecordOutcome::Loaded]);
        let [Settle::Report { progress, .. }] = &done[..] else {
            panic!()
        };
        assert_eq!((progress.loaded, progress.failed), (1, 1));
        assert_eq!(progress.failures[0].record_json, br#"{"i":0}"#);

        let Added::Settled(Settle::Report { progress, .. }) = tracker.add("e", batch(0), ok) else {
            panic!()
        };
        assert_eq!((progress.loaded, progress.failed), (0, 0));
    }

    #[test]
    fn deferred_records_requeue_and_fatal_ends_the_run() {
        let mut tracker = Tracker::new();
        let items = tracker.add(1, batch(2), ok).unwrap();
        let done = tracker.resolve(items, vec![RecordOutcome::Loaded, RecordOutcome::Deferred]);
        assert!(matches!(done[..], [Settle::Requeue { delivery: 1 }]));

        let items = tracker.add(2, batch(2), ok).unwrap();
        let fatal = RecordOutcome::Fatal("refused".into());
        let done = tracker.resolve(items, vec![RecordOutcome::Loaded, fatal]);
        let [Settle::Report { progress, .. }] = &done[..] else {
            panic!()
        };
        assert_eq!((progress.loaded, progress.failed), (1, 1));
        assert_eq!(progress.failures[0].rule, RULE_RUN_FAILED);
        assert_eq!(progress.failures[0].message, "refused");
        assert_eq!(
            progress.terminal,
            Some(progress::Terminal::Fatal(FatalError {
                message: "refused".into()
            }))
        );
    }

    #[test]
    fn drain_requeues_everything_open() {
        let mut tracker = Tracker::new();
        tracker.add(1, batch(2), ok).unwrap();
        tracker.add(2, batch(1), ok).unwrap();
        let mut drained: Vec<i32> = tracker
            .drain()
            .into_iter()
            .map(|s| match s {
                Settle::Requeue { delivery } => delivery,
                other => panic!("{other:?}"),
            })
            .collect();
        drained.sort();
        assert_eq!(drained, [1, 2]);
    }
}
