//! The extraction lease: an extractor takes its run's lease before reading, renews it while
//! it reads, and marks the extraction done once its last report is published. Control queues
//! the extraction again when a lease expires, so an extractor that dies is replaced, and the
//! ExtractRequest can be acked at once (an extraction may outlast RabbitMQ's ack timeout).

use std::time::Duration;

use crate::error::StateError;
use crate::store::StateStore;

/// What [`StateStore::begin_extraction`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// The lease is this extractor's: extract.
    Started,
    /// Another extractor holds a live lease, or the extraction is done: nothing to do.
    Busy,
    /// Cancel was requested or the run ended: do not extract.
    Stopped,
}

/// An extraction whose lease expired, queued again by control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredExtraction {
    /// The run.
    pub run_id: String,
    /// Its activation.
    pub activation_id: String,
    /// Whether it is a full resync.
    pub full_resync: bool,
    /// Set when the run has had all its attempts: fail it with this message instead of
    /// queueing it again.
    pub give_up: Option<String>,
}

/// What the extractor of an attempt says when it gives its lease back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptEnded<'a> {
    /// Why it ended (a transient failure), for the run and its report.
    pub reason: &'a str,
    /// Rows this attempt published, when every publish was confirmed (`None`: not known).
    pub published_rows: Option<u64>,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl StateStore {
    /// Takes run `id`'s extraction lease for `owner` (a queued run becomes RUNNING). One row
    /// update, so it serializes with [`StateStore::request_cancel`]: a run is either cancelled
    /// while queued (and never extracted) or cancelled while running (and drained). A lease
    /// another extractor holds and renews is left alone; an expired one is taken over. Taking
    /// the lease after an attempt ended starts the next attempt (never past `max_attempts`:
    /// control fails such a run). An unknown run is [`StateError::NotFound`].
    pub async fn begin_extraction(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Begin, StateError> {
        let client = self.client().await?;
        let taken = client
            .execute(
                "UPDATE runs SET state = 'running', started_at = COALESCE(started_at, now()),
                     updated_at = now(), extract_lease = $2,
                     extract_lease_until = now() + $3 * interval '1 millisecond',
                     attempt = CASE WHEN attempt_started THEN attempt + 1 ELSE attempt END,
                     -- An expired lease taken over directly: its extractor died unheard.
                     prior_rows = CASE WHEN attempt_started AND extract_lease <> 'released'
                                       THEN NULL ELSE prior_rows END,
                     attempt_error = CASE WHEN attempt_started AND extract_lease <> 'released'
                                     THEN 'the extractor stopped renewing its lease (it stopped, or lost the state database)'
                                     ELSE attempt_error END,
                     attempt_started = true,
                     request_published = true
                 WHERE id = $1 AND state IN ('queued', 'running') AND cancel_requested_at IS NULL
                   AND NOT failing AND NOT extract_done
                   AND (NOT attempt_started OR attempt < max_attempts)
                   AND (extract_lease IS NULL OR extract_lease_until < now())",
                &[&id, &owner, &millis(lease)],
            )
            .await?;
        if taken == 1 {
            return Ok(Begin::Started);
        }
        let row = client
            .query_opt(
                "SELECT state IN ('queued', 'running') AND cancel_requested_at IS NULL
                        AND NOT failing
                 FROM runs WHERE id = $1",
                &[&id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("run", id))?;
        Ok(if row.get(0) {
            Begin::Busy
        } else {
            Begin::Stopped
        })
    }

    /// Renews `owner`'s lease on run `id`'s extraction; `false` when it lost it (it expired and
    /// another extractor took it, or the extraction is done): stop reading.
    pub async fn renew_extraction(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let client = self.client().await?;
        let renewed = client
            .execute(
                "UPDATE runs SET extract_lease_until = now() + $3 * interval '1 millisecond'
                 WHERE id = $1 AND extract_lease = $2 AND NOT extract_done",
                &[&id, &owner, &millis(lease)],
            )
            .await?;
        Ok(renewed == 1)
    }

    /// Marks run `id`'s extraction done (its last report is published): its lease no longer
    /// needs renewing and is never taken over.
    pub async fn end_extraction(&self, id: &str) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE runs SET extract_done = true, extract_lease_until = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Gives up `owner`'s lease on run `id` without finishing: the attempt ended on a
    /// transient failure. Control starts the next attempt after a backoff (5 s, doubling with
    /// each attempt, up to 160 s), once what this one published is accounted for (or fails the
    /// run when it had all its attempts).
    pub async fn release_extraction(
        &self,
        id: &str,
        owner: &str,
        ended: &AttemptEnded<'_>,
    ) -> Result<(), StateError> {
        let client = self.client().await?;
        let rows = ended
            .published_rows
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        client
            .execute(
                "UPDATE runs SET extract_lease = 'released',
                     extract_lease_until = now()
                         + power(2, LEAST(attempt - 1, 5)) * interval '5 seconds',
                     attempt_error = $3,
                     prior_rows = prior_rows + $4
                 WHERE id = $1 AND extract_lease = $2 AND NOT extract_done",
                &[&id, &owner, &ended.reason, &rows],
            )
            .await?;
        Ok(())
    }

    /// Claims up to `limit` running extractions whose lease expired, to queue them again: each
    /// is given `grace` for the new request to be taken before it counts as expired again.
    /// `SKIP LOCKED`, so several control replicas never queue one twice.
    pub async fn expired_extractions(
        &self,
        grace: Duration,
        limit: i64,
    ) -> Result<Vec<ExpiredExtraction>, StateError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE runs SET
                     prior_rows = CASE WHEN extract_lease <> 'released' AND attempt_started
                                       THEN NULL ELSE prior_rows END,
                     attempt_error = CASE WHEN extract_lease <> 'released' AND attempt_started
                                     THEN 'the extractor stopped renewing its lease (it stopped, or lost the state database)'
                                     ELSE attempt_error END,
                     extract_lease = NULL,
                     extract_lease_until = now() + $1 * interval '1 millisecond'
                 WHERE id IN (
                     SELECT id FROM runs
                     WHERE state = 'running' AND NOT extract_done AND extract_lease_until < now()
                       -- The next attempt starts once what the last one published is through
                       -- (so its counts are final), or after ten minutes whatever happens.
                       AND (extracted = skipped + loaded + failed
                            OR extract_lease_until < now() - interval '10 minutes')
                     ORDER BY extract_lease_until LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING id, activation_id, full_resync, attempt, max_attempts,
                           attempt_started AND cancel_requested_at IS NULL AND NOT failing,
                           attempt_error",
                &[&millis(grace), &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let (attempt, max_attempts): (i32, i32) = (row.get(3), row.get(4));
                // A cancelled or failing run is queued again whatever its attempts: the next
                // extractor only reports that extraction is over, so the run can close.
                let (retrying, error): (bool, Option<String>) = (row.get(5), row.get(6));
                let give_up = (retrying && attempt >= max_attempts).then(|| {
                    format!(
                        "gave up after {attempt} attempt{}; the last one ended: {}",
                        if attempt == 1 { "" } else { "s" },
                        error.as_deref().unwrap_or("for an unknown reason")
                    )
                });
                ExpiredExtraction {
                    run_id: row.get(0),
                    activation_id: row.get(1),
                    full_resync: row.get(2),
                    give_up,
                }
            })
            .collect())
    }

    /// What the extractor of run `id` needs between batches: whether to stop (cancel
    /// was requested or the run ended) and how many rows are accounted for downstream
    /// (`skipped + loaded + failed`), so it can keep the rows in flight bounded.
    pub async fn extraction_pressure(&self, id: &str) -> Result<(bool, u64), StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT cancel_requested_at IS NOT NULL OR failing
                        OR state NOT IN ('queued', 'running'),
                        skipped + loaded + failed
                 FROM runs WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(row.map_or((false, 0), |row| {
            (row.get(0), u64::try_from(row.get::<_, i64>(1)).unwrap_or(0))
        }))
    }
}
