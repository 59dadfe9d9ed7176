//! Resolving one send's records request by request. A request Mixpanel finds too large (413) is split
//! in half; a request it refused without saying which records (`/engage`'s `status: 0`) is bisected
//! the same way, down to single records, whose refusal is then theirs. Independent of HTTP: the
//! caller sends each range, so the splitting is tested on its own.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use crate::internal_events::RequestSplit;
use crate::objects::{RULE_REJECTED, RULE_TOO_LARGE, RecordFailure};
use crate::sender::RecordOutcome;

/// How one request (or a part of a split one) ended.
#[derive(Debug)]
pub(crate) enum Sent {
    /// One outcome per record of the request.
    Done(Vec<RecordOutcome>),
    /// 413, with Mixpanel's message: split it.
    TooLarge(String),
    /// At least one record was refused, none named, with Mixpanel's message: bisect it.
    Refused(String),
    /// The credentials were refused: nothing more is sent.
    Fatal(Arc<str>),
    /// Not resolved (shutting down, retry budget spent).
    Deferred,
}

/// Sends `requests` (ranges of `len` records, last first: they are popped from the end) through
/// `send`, splitting as the answers say, and returns one outcome per record. Records never sent
/// (shutdown) stay [`RecordOutcome::Deferred`]; after a fatal answer the rest are not sent and share
/// its outcome.
pub(crate) async fn resolve<F, Fut>(
    object: &'static str,
    len: usize,
    mut requests: Vec<Range<usize>>,
    mut send: F,
) -> Vec<RecordOutcome>
where
    F: FnMut(Range<usize>) -> Fut,
    Fut: Future<Output = Sent>,
{
    let mut outcomes = vec![RecordOutcome::Deferred; len];
    let mut fatal: Option<Arc<str>> = None;
    while let Some(range) = requests.pop() {
        if range.is_empty() {
            continue;
        }
        if let Some(reason) = &fatal {
            outcomes[range].fill(RecordOutcome::Fatal(reason.clone()));
            continue;
        }
        let (reason, rule, message) = match send(range.clone()).await {
            Sent::Done(done) => {
                for (slot, outcome) in outcomes[range].iter_mut().zip(done) {
                    *slot = outcome;
                }
                continue;
            }
            Sent::Fatal(reason) => {
                outcomes[range].fill(RecordOutcome::Fatal(reason.clone()));
                fatal = Some(reason);
                continue;
            }
            Sent::Deferred => continue,
            Sent::TooLarge(message) => ("too large", RULE_TOO_LARGE, message),
            Sent::Refused(message) => ("some records refused", RULE_REJECTED, message),
        };
        if range.len() == 1 {
            outcomes[range].fill(RecordOutcome::Failed(RecordFailure {
                field: String::new(),
                rule,
                message,
            }));
            continue;
        }
        RequestSplit {
            object,
            records: range.len(),
            reason,
        }
        .emit();
        let middle = range.start + range.len() / 2;
        // Last in, first out: the first half goes first.
        requests.push(middle..range.end);
        requests.push(range.start..middle);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    use futures_util::FutureExt as _;
    use proptest::prelude::*;

    use super::*;

    /// Runs `resolve` over fake answers (they are ready at once, so no runtime is needed) and
    /// returns the outcomes and the ranges sent, in order.
    fn run(
        len: usize,
        requests: Vec<Range<usize>>,
        answer: impl Fn(&Range<usize>) -> Sent,
    ) -> (Vec<RecordOutcome>, Vec<Range<usize>>) {
        let sent = RefCell::new(Vec::new());
        let outcomes = resolve("test", len, requests, |range| {
            sent.borrow_mut().push(range.clone());
            std::future::ready(answer(&range))
        })
        .now_or_never()
        .expect("fake answers are ready at once");
        (outcomes, sent.into_inner())
    }

    fn all_loaded(range: &Range<usize>) -> Sent {
        Sent::Done(vec![RecordOutcome::Loaded; range.len()])
    }

    fn refused(message: &str) -> RecordOutcome {
        RecordOutcome::Failed(RecordFailure {
            field: String::new(),
            rule: RULE_REJECTED,
            message: message.into(),
        })
    }

    #[test]
    fn bisects_down_to_the_refused_record() {
        let (outcomes, sent) = run(8, std::iter::once(0..8).collect(), |range| {
            if range.contains(&5) {
                Sent::Refused(format!("refused in {range:?}"))
            } else {
                all_loaded(range)
            }
        });
        for (i, outcome) in outcomes.iter().enumerate() {
            if i == 5 {
                assert_eq!(*outcome, refused("refused in 5..6"));
            } else {
                assert_eq!(*outcome, RecordOutcome::Loaded, "{i}");
            }
        }
        assert_eq!(sent, [0..8, 0..4, 4..8, 4..6, 4..5, 5..6, 6..8]);
    }

    #[test]
    fn a_single_record_too_large_fails_as_such() {
        let (outcomes, sent) = run(3, std::iter::once(0..3).collect(), |range| {
            if range.contains(&1) {
                Sent::TooLarge("too big".into())
            } else {
                all_loaded(range)
            }
        });
        assert_eq!(outcomes[0], RecordOutcome::Loaded);
        assert_eq!(outcomes[2], RecordOutcome::Loaded);
        let RecordOutcome::Failed(failure) = &outcomes[1] else {
            panic!("{outcomes:?}")
        };
        assert_eq!(failure.rule, RULE_TOO_LARGE);
        assert_eq!(sent, [0..3, 0..1, 1..3, 1..2, 2..3]);
    }

    #[test]
    fn fatal_stops_sending_and_deferred_stays_deferred() {
        // Requests are popped from the end: 0..2 goes first.
        let (outcomes, sent) = run(6, vec![4..6, 2..4, 0..2], |range| match range.start {
            0 => Sent::Deferred,
            _ => Sent::Fatal("refused".into()),
        });
        assert_eq!(sent, [0..2, 2..4]);
        assert_eq!(
            outcomes[..2],
            [RecordOutcome::Deferred, RecordOutcome::Deferred]
        );
        for outcome in &outcomes[2..] {
            assert_eq!(*outcome, RecordOutcome::Fatal("refused".into()));
        }
    }

    proptest! {
        /// Whatever records are refused and however the records were cut into requests, exactly the
        /// refused ones fail (each with the answer to it alone), the others load, and the requests
        /// stay within 2·b·⌈log2 m⌉ beyond the first ones (b refused, m records per request).
        #[test]
        fn bisection_finds_exactly_the_refused_records(
            len in 1usize..300,
            per_request in 1usize..80,
            refused_at in proptest::collection::btree_set(0usize..300, 0..12),
        ) {
            let bad: BTreeSet<usize> = refused_at.into_iter().filter(|i| *i < len).collect();
            let requests: Vec<Range<usize>> = (0..len)
                .step_by(per_request)
                .map(|start| start..(start + per_request).min(len))
                .rev()
                .collect();
            let first = requests.len();
            let (outcomes, sent) = run(len, requests, |range| {
                match bad.range(range.clone()).next() {
                    Some(_) if range.len() == 1 => Sent::Refused(format!("record {}", range.start)),
                    Some(_) => Sent::Refused("some failed".into()),
                    None => all_loaded(range),
                }
            });
            for (i, outcome) in outcomes.iter().enumerate() {
                if bad.contains(&i) {
                    prop_assert_eq!(outcome, &refused(&format!("record {i}")));
                } else {
                    prop_assert_eq!(outcome, &RecordOutcome::Loaded);
                }
            }
            let depth = per_request.next_power_of_two().trailing_zeros() as usize;
            prop_assert!(sent.len() <= first + 2 * bad.len() * depth, "{} requests", sent.len());
            // Every record was in a request that settled it, and no range went out twice.
            let unique: BTreeSet<(usize, usize)> = sent.iter().map(|r| (r.start, r.end)).collect();
            prop_assert_eq!(unique.len(), sent.len());
        }
    }
}
