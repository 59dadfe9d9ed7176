//! The sending pipeline: records + a target in, one outcome per record out. Rate limit, the retry
//! loop, splitting (413, and bisecting refusals that name no record; see [`crate::split`]) and
//! mapping per-record failures back by index live here, once, for every object. No RabbitMQ here:
//! the service decides what outcomes mean for acknowledgements.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::batcher::Batcher;
use crate::config::SendSettings;
use crate::http::{ClientError, HttpClient, PreparedRequest};
use crate::internal_events::{
    CredentialsRefused, RecordsDeferred, RequestAnswered, RequestRetried,
};
use crate::objects::{Object, ParsedReply, RULE_REJECTED, RecordFailure};
use crate::rate_limit::Limiter;
use crate::retry::{Answer, Backoff, Refusals, RetryAction, classify};
use crate::split::{self, Sent};
use crate::target::Target;

/// What became of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Mixpanel accepted it.
    Loaded,
    /// Mixpanel refused it (or it could not be sent at all); it will not be retried.
    Failed(RecordFailure),
    /// The target refused the credentials (401/403) or cannot be used: the run cannot go on.
    Fatal(Arc<str>),
    /// Not resolved (shutting down, or retried for longer than the retry budget): deliver it again
    /// later. Never dropped.
    Deferred,
}

/// Sends records of one object; share it (`Arc`) between concurrent sends.
#[derive(Debug)]
pub struct Sender<O> {
    object: O,
    http: HttpClient,
    limiter: Option<Limiter>,
    backoff: Backoff,
    retry_budget: Option<Duration>,
    shutdown: CancellationToken,
}

impl<O: Object> Sender<O> {
    /// A sender with `settings`, using this process's rate limiter for those limits (see
    /// [`Sender::share_rate_limit`] for one shared by every process). Once
    /// `shutdown` is cancelled, no new attempt starts: unresolved records come back
    /// [`RecordOutcome::Deferred`].
    pub fn new(
        object: O,
        settings: &SendSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, ClientError> {
        Ok(Sender {
            object,
            http: HttpClient::new(&settings.http)?,
            limiter: settings.rate_limit.map(Limiter::local),
            backoff: settings.backoff,
            retry_budget: settings.retry_budget,
            shutdown,
        })
    }

    /// Takes rate-limit grants from `store`, shared with every other loader process (when the
    /// rate limit is on).
    pub fn share_rate_limit(mut self, store: mixsync_state::StateStore) -> Self {
        self.limiter = self.limiter.map(|l| l.shared_through(store));
        self
    }

    /// The rate limiter, when the limit is on.
    pub fn limiter(&self) -> Option<&Limiter> {
        self.limiter.as_ref()
    }

    /// The object sent.
    pub fn object(&self) -> &O {
        &self.object
    }

    /// Sends `records` to `target` and returns one outcome per record, in order. Records go in as
    /// few requests as the object's batch limits allow (one, when they come from the batcher), each
    /// split further if Mixpanel finds it too large or refuses records without naming them.
    pub async fn send(&self, target: &Target, records: &[Bytes]) -> Vec<RecordOutcome> {
        let started = Instant::now();
        split::resolve(
            self.object.name(),
            records.len(),
            self.requests(records),
            |range| self.send_one(target, &records[range], started),
        )
        .await
    }

    /// Ranges of `records` within the batch limits, last first (they are popped from the end). A
    /// record is never cut: its units (a profile's update objects) go in one request.
    fn requests(&self, records: &[Bytes]) -> Vec<Range<usize>> {
        let mut batcher = Batcher::new(self.object.batch_limits(), Duration::ZERO);
        let now = Instant::now();
        let mut ranges = Vec::new();
        let mut start = 0;
        for (i, record) in records.iter().enumerate() {
            for batch in batcher.push(i, self.object.record_size(record), now) {
                ranges.push(start..start + batch.len());
                start += batch.len();
            }
        }
        if let Some(batch) = batcher.take() {
            ranges.push(start..start + batch.len());
        }
        ranges.reverse();
        ranges
    }

    /// One request for `records`, retried until it has a definite answer.
    async fn send_one(&self, target: &Target, records: &[Bytes], started: Instant) -> Sent {
        let request = match self.object.build_request(target, records) {
            Ok(request) => request,
            Err(error) => return Sent::Fatal(error.0.into()),
        };
        let mut attempt = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return self.deferred(records.len(), "the loader is shutting down");
            }
            if let Some(limiter) = &self.limiter {
                let acquire = limiter.acquire(target, request.records, request.uncompressed_bytes);
                tokio::select! {
                    () = acquire => {}
                    () = self.shutdown.cancelled() => {
                        return self.deferred(records.len(), "the loader is shutting down");
                    }
                }
            }
            let (answer, parsed, reason) = self.attempt(target, &request, records.len()).await;
            match classify(&answer) {
                RetryAction::Successful => {
                    return Sent::Done(vec![RecordOutcome::Loaded; records.len()]);
                }
                RetryAction::RetryPartial => return Sent::Done(partial(parsed, records.len())),
                RetryAction::Bisect => return Sent::Refused(parsed.message),
                RetryAction::Split => return Sent::TooLarge(parsed.message),
                RetryAction::DontRetry => {
                    let failure = RecordFailure {
                        field: String::new(),
                        rule: RULE_REJECTED,
                        message: parsed.message,
                    };
                    return Sent::Done(vec![RecordOutcome::Failed(failure); records.len()]);
                }
                RetryAction::Fatal => {
                    let credentials = match &request.basic_auth {
                        Some((user, _)) => format!("the service account `{user}`"),
                        None => "the project token".to_owned(),
                    };
                    let reason = format!(
                        "Mixpanel refused {credentials} for project {}: {}",
                        target.project_id, parsed.message
                    );
                    CredentialsRefused {
                        object: self.object.name(),
                        reason: &reason,
                    }
                    .emit();
                    return Sent::Fatal(reason.into());
                }
                RetryAction::Retry { after } => {
                    if let (Some(limiter), Answer::Http { status: 429, .. }) =
                        (&self.limiter, &answer)
                    {
                        // Every sender to the project waits, not only this request.
                        limiter.throttled(target, after).await;
                    }
                    let wait = self.backoff.delay(attempt, after, &mut rand::rng());
                    if self
                        .retry_budget
                        .is_some_and(|budget| started.elapsed() + wait > budget)
                    {
                        return self.deferred(records.len(), "retry budget spent");
                    }
                    RequestRetried {
                        object: self.object.name(),
                        project_id: target.project_id,
                        records: records.len(),
                        attempt,
                        wait,
                        reason: &reason,
                    }
                    .emit();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.shutdown.cancelled() => {
                            return self.deferred(records.len(), "the loader is shutting down");
                        }
                    }
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }

    /// Sends once; the answer for [`classify`], the parsed body, and a reason for logs.
    async fn attempt(
        &self,
        target: &Target,
        request: &PreparedRequest,
        records: usize,
    ) -> (Answer, ParsedReply, String) {
        match self.http.send(request).await {
            Err(error) => (Answer::Transport, ParsedReply::default(), error.to_string()),
            Ok(reply) => {
                let parsed = self.object.parse_reply(&reply, records);
                RequestAnswered {
                    object: self.object.name(),
                    project_id: target.project_id,
                    records,
                    status: reply.status,
                    message: &parsed.message,
                }
                .emit();
                let refusals = if !parsed.failures.is_empty() {
                    Refusals::Listed
                } else if parsed.unattributed {
                    Refusals::Unlisted
                } else {
                    Refusals::None
                };
                let answer = Answer::Http {
                    status: reply.status,
                    retry_after: reply.retry_after,
                    refusals,
                };
                let reason = format!("HTTP {}: {}", reply.status, parsed.message);
                (answer, parsed, reason)
            }
        }
    }

    fn deferred(&self, records: usize, reason: &str) -> Sent {
        RecordsDeferred {
            object: self.object.name(),
            records,
            reason,
        }
        .emit();
        Sent::Deferred
    }
}

/// Records listed in `parsed.failures` failed with Mixpanel's field and message; the others were
/// imported.
fn partial(parsed: ParsedReply, records: usize) -> Vec<RecordOutcome> {
    let mut outcomes = vec![RecordOutcome::Loaded; records];
    for failure in parsed.failures {
        if let Some(slot) = outcomes.get_mut(failure.index) {
            *slot = RecordOutcome::Failed(RecordFailure {
                field: failure.field,
                rule: RULE_REJECTED,
                message: failure.message,
            });
        }
    }
    outcomes
}
