//! The service loop: `ExtractRequest` in, `RowBatch`es and `Progress` reports out.

use std::time::{Duration, Instant};

use mixsync_bus::{Bus, BusError, Delivery, EXTRACT, PROGRESS, Publisher, ROWS};
use mixsync_proto::convert::from_domain_values;
use mixsync_proto::v1::{self, ExtractRequest, RowBatch, Stage, progress::Terminal};
use mixsync_state::{AttemptEnded, Begin, RIDE_OUT, RunPlan, StateError, StateStore, ride_out};
use prost::Message as _;
use secrecy::ExposeSecret as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::config::Config;
use crate::internal_events::{
    BatchPublished, ExtractionCancelled, ExtractionFailed, ExtractionFinished, RequestRequeued,
};
use crate::pacing::{PressureGate, Publish, PublishWindow, Stop, confirmed};
use crate::warehouse::{self, Batch, StreamError, StreamOptions, StreamSummary, Warehouse};

/// How long to wait before requeueing a request whose state could not be read, so a state
/// database outage does not become a hot loop.
const REQUEUE_DELAY: Duration = Duration::from_secs(2);

/// How long an extraction lease lasts unless renewed: control queues the extraction again when
/// it expires (the extractor died).
const LEASE: Duration = Duration::from_secs(30);
/// How often the lease is renewed while the extraction goes on.
const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Why the extractor stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state database could not be reached at start.
    #[error("cannot start the extractor: {0}")]
    State(#[from] StateError),
    /// RabbitMQ could not be reached, or consuming failed.
    #[error("cannot start the extractor: {0}")]
    Bus(#[from] BusError),
}

/// Runs the extractor until `shutdown` is cancelled or the bus closes. An extraction in progress
/// at shutdown is abandoned: its lease expires and control queues it again.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let keys = mixsync_state::SecretKeys::new(&config.secret_key)?
        .with_previous(config.secret_key_previous.as_ref());
    // Waits for PostgreSQL and RabbitMQ, which may start after the extractor.
    let Some(state) =
        StateStore::connect_patiently(config.database_url.expose_secret(), keys, &shutdown).await?
    else {
        return Ok(());
    };
    // A wrong key stops the extractor now, not the first run that needs a password.
    if let mixsync_state::KeyCheck::Usable { secrets } = state.check_secret_key().await? {
        tracing::debug!(secrets, "the secret key matches the stored secrets");
    }
    let Some(bus) = Bus::connect_patiently(config.bus.clone(), &shutdown).await? else {
        return Ok(());
    };
    let mut requests = bus.consume(EXTRACT, 1).await?;
    let extractor = Extractor {
        state,
        publisher: bus.publisher(),
        options: StreamOptions {
            statement_timeout: config.statement_timeout,
            batch_rows: config.batch_rows,
        },
        max_in_flight_rows: config.max_in_flight_rows,
    };
    tracing::info!(
        batch_rows = config.batch_rows,
        statement_timeout_s = config.statement_timeout.as_secs(),
        "extractor started"
    );
    loop {
        let delivery = tokio::select! {
            () = shutdown.cancelled() => break,
            next = requests.next() => match next {
                Some(delivery) => delivery,
                None => break,
            },
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = extractor.handle(&delivery) => {}
        }
    }
    bus.close().await;
    tracing::info!("extractor stopped");
    Ok(())
}

struct Extractor {
    state: StateStore,
    publisher: Publisher,
    options: StreamOptions,
    max_in_flight_rows: u64,
}

/// Rows and batches handed to the publisher so far.
#[derive(Debug, Default, Clone, Copy)]
struct Sent {
    rows: u64,
    batches: u64,
}

/// How an extraction ended (the request was acked when its lease was taken).
enum Outcome {
    /// Everything is published.
    Done,
    /// The run cannot be extracted: report `fatal` with this message.
    Fatal(String),
    /// A transient failure: give the lease back, so control starts the next attempt (or fails
    /// the run when it had them all). `published`: rows this attempt published, when known.
    Retry {
        /// Why.
        reason: String,
        /// Rows published and confirmed before it ended; `None` when a publish failed.
        published: Option<u64>,
    },
    /// The lease expired and another extractor took it over: stop, it carries on.
    LeaseLost,
}

impl Extractor {
    async fn handle(&self, delivery: &Delivery) {
        let request = match ExtractRequest::decode(delivery.body.as_slice()) {
            Ok(request) => request,
            Err(e) => {
                let reason = format!("cannot decode ExtractRequest: {e}");
                settle(delivery.dead_letter(Stage::Extract, &reason).await);
                return;
            }
        };
        let span = tracing::info_span!("extract", run_id = %request.run_id);
        let _ = span.set_parent(delivery.span_context());
        self.handle_request(delivery, &request)
            .instrument(span)
            .await;
    }

    /// Takes the run's extraction lease, acks the request, and extracts; or settles the request
    /// when the run needs no extraction.
    async fn handle_request(&self, delivery: &Delivery, request: &ExtractRequest) {
        let owner = lease_owner();
        let begun = ride_out("begin extraction", RIDE_OUT, || {
            self.state.begin_extraction(&request.run_id, &owner, LEASE)
        })
        .await;
        match begun {
            Ok(Begin::Started) => {
                // The lease, not the unacked delivery, now stands for "being extracted": an
                // extraction may outlast the broker's ack timeout.
                settle(delivery.ack().await);
                self.extract_leased(request, &owner).await;
            }
            Ok(Begin::Busy) => {
                tracing::info!(run_id = %request.run_id,
                    "another extractor holds this run's extraction (or it is done); request dropped");
                settle(delivery.ack().await);
            }
            Ok(Begin::Stopped) => match self.cancelled_before_start(request).await {
                Ok(()) => settle(delivery.ack().await),
                Err(reason) => self.retry(delivery, request, &reason).await,
            },
            Err(e @ StateError::NotFound { .. }) => {
                settle(delivery.dead_letter(Stage::Extract, &e.to_string()).await);
            }
            Err(e) => self.retry(delivery, request, &e.to_string()).await,
        }
    }

    /// Extracts under the lease `owner` holds, renewing it meanwhile, then settles the lease:
    /// done, or given back for control to queue the extraction again.
    async fn extract_leased(&self, request: &ExtractRequest, owner: &str) {
        let lost = CancellationToken::new();
        // Renewal stops with this future, also when it is dropped at shutdown (the lease then
        // expires and control queues the extraction again).
        let renewer = AbortOnDrop(tokio::spawn(renew(
            self.state.clone(),
            request.run_id.clone(),
            owner.to_owned(),
            lost.clone(),
        )));
        let outcome = tokio::select! {
            outcome = self.extract(request) => outcome,
            () = lost.cancelled() => Outcome::LeaseLost,
        };
        drop(renewer);
        let retry = match outcome {
            Outcome::Done => None,
            Outcome::Fatal(message) => {
                ExtractionFailed {
                    run_id: &request.run_id,
                    message: &message,
                }
                .emit();
                let progress = fatal_progress(request, message);
                self.publisher
                    .publish(PROGRESS, &progress)
                    .await
                    .err()
                    .map(|e| (e.to_string(), None))
            }
            Outcome::Retry { reason, published } => Some((reason, published)),
            Outcome::LeaseLost => {
                tracing::warn!(run_id = %request.run_id,
                    "the extraction lease was taken over (this extractor was too slow to renew it); stopping");
                return;
            }
        };
        // Waits out a state database that is away for a moment (the warehouse and the state
        // may be one server that restarted): an unsettled lease would cost the run a lease
        // period and the count of rows this attempt published.
        let settled = match &retry {
            None => {
                ride_out("end extraction", RIDE_OUT, || {
                    self.state.end_extraction(&request.run_id)
                })
                .await
            }
            Some((reason, published)) => {
                RequestRequeued {
                    run_id: &request.run_id,
                    reason,
                }
                .emit();
                let ended = AttemptEnded {
                    reason,
                    published_rows: *published,
                };
                ride_out("release extraction", RIDE_OUT, || {
                    self.state
                        .release_extraction(&request.run_id, owner, &ended)
                })
                .await
            }
        };
        if let Err(e) = settled {
            // The lease expires on its own; control then queues the extraction again (a done
            // extraction is re-read, and its batches are accounted once).
            tracing::warn!(run_id = %request.run_id, error = %e, "cannot settle the extraction lease");
        }
    }

    /// Reads the run's query and publishes its rows: open the warehouse, stream and publish
    /// (paced by the publish window and the pressure gate), then report how it ended.
    async fn extract(&self, request: &ExtractRequest) -> Outcome {
        let (plan, warehouse) = match self.open(request).await {
            Ok(opened) => opened,
            Err(outcome) => return outcome,
        };
        let started = Instant::now();
        let (result, sent) = self.stream_and_publish(&plan, &warehouse).await;
        self.conclude(request, &plan, result, sent, started.elapsed())
            .await
    }

    /// The run's plan and a connection to its warehouse; or the outcome when either cannot be
    /// had (fatal when retrying cannot help).
    async fn open(&self, request: &ExtractRequest) -> Result<(RunPlan, Warehouse), Outcome> {
        let plan = match self.state.run_plan(&request.run_id).await {
            Ok(plan) => plan,
            Err(e @ (StateError::NotFound { .. } | StateError::Corrupt { .. })) => {
                return Err(Outcome::Fatal(e.to_string()));
            }
            Err(e) => return Err(retry_before_reading(e.to_string())),
        };
        let connection = match self.state.warehouse_connection(&plan.warehouse_id).await {
            Ok(connection) => connection,
            Err(
                e @ (StateError::NotFound { .. }
                | StateError::Decrypt { .. }
                | StateError::WrongSecretKey { .. }
                | StateError::Corrupt { .. }),
            ) => return Err(Outcome::Fatal(e.to_string())),
            Err(e) => return Err(retry_before_reading(e.to_string())),
        };
        let warehouse = warehouse::connect(&connection).await.map_err(|e| {
            if e.is_transient() {
                retry_before_reading(e.to_string())
            } else {
                Outcome::Fatal(e.to_string())
            }
        })?;
        if connection.require_read_only_role {
            // Grants change: a role that was read-only when the warehouse was created is
            // checked again before every run.
            let role = warehouse
                .role()
                .await
                .map_err(|e| Outcome::Fatal(format!("cannot check the warehouse role, which this warehouse requires to be read-only: {e}")))?;
            let problems = role.problems();
            if !problems.is_empty() {
                return Err(Outcome::Fatal(format!(
                    "the warehouse requires a read-only role (require_read_only_role): {}",
                    problems.join("; ")
                )));
            }
        }
        Ok((plan, warehouse))
    }

    /// Streams the query in batches and publishes each; between batches, waits for the oldest
    /// publish when the window is full and checks for cancellation and backpressure when due.
    /// Returns once every publish started is confirmed (or failed), with what was sent.
    async fn stream_and_publish(
        &self,
        plan: &RunPlan,
        warehouse: &Warehouse,
    ) -> (Result<StreamSummary, StreamError<Stop>>, Sent) {
        let mut window = PublishWindow::default();
        let mut gate = PressureGate::new(self.max_in_flight_rows, Instant::now());
        let mut sent = Sent::default();
        let (state, run_id) = (&self.state, plan.run_id.as_str());
        let streamed = warehouse
            .stream(&plan.query, &self.options, |batch| {
                sent.rows += batch.rows.len() as u64;
                sent.batches += 1;
                let check = gate.due(sent.rows, batch.last, Instant::now());
                let oldest = window.push(self.publish_batch(plan, batch));
                async move {
                    if let Some(task) = oldest {
                        confirmed(task).await.map_err(Stop::Bus)?;
                    }
                    if let Some(check) = check {
                        check.wait(state, run_id).await?;
                    }
                    Ok(())
                }
            })
            .await;
        // Every batch read must be confirmed before the extraction is settled: a publish that
        // failed after reading stopped makes a finished or cancelled extraction a retry.
        let result = match (streamed, window.drain().await) {
            (Ok(_) | Err(StreamError::Sink(Stop::Cancelled)), Err(e)) => {
                Err(StreamError::Sink(Stop::Bus(e)))
            }
            (streamed, _) => streamed,
        };
        (result, sent)
    }

    /// Reports how streaming ended and turns it into the extraction's outcome.
    async fn conclude(
        &self,
        request: &ExtractRequest,
        plan: &RunPlan,
        result: Result<StreamSummary, StreamError<Stop>>,
        sent: Sent,
        elapsed: Duration,
    ) -> Outcome {
        match result {
            Err(StreamError::Sink(Stop::Cancelled)) => {
                ExtractionCancelled {
                    run_id: &plan.run_id,
                    rows: sent.rows,
                    batches: sent.batches,
                }
                .emit();
                self.publish_cancelled(request, Some((sent.rows, sent.batches)))
                    .await
            }
            Ok(summary) => {
                ExtractionFinished {
                    run_id: &plan.run_id,
                    total_rows: summary.total_rows,
                    batches: summary.batches,
                    elapsed,
                }
                .emit();
                Outcome::Done
            }
            // Every publish was confirmed before streaming returned: the rows are known.
            Err(StreamError::Warehouse(e)) if e.is_transient() => Outcome::Retry {
                reason: e.to_string(),
                published: Some(sent.rows),
            },
            Err(StreamError::Warehouse(e)) => Outcome::Fatal(e.to_string()),
            // A publish failed: its rows may or may not have arrived.
            Err(StreamError::Sink(Stop::Bus(e))) => Outcome::Retry {
                reason: e.to_string(),
                published: None,
            },
        }
    }

    /// The run may not be extracted: it ended (a run cancelled while queued ends at once), or
    /// it was cancelled while an extractor that died was extracting it. A run that ended needs
    /// nothing; a running one is told extraction is over with an unknown total — what the dead
    /// extractor published is on the progress queue ahead of this report, and the run closes
    /// once those rows are accounted for. `Err` carries why the request must be retried.
    async fn cancelled_before_start(&self, request: &ExtractRequest) -> Result<(), String> {
        let run = match self.state.get_run(&request.run_id).await {
            Ok(run) => run,
            Err(StateError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        };
        if run.state.is_terminal() {
            return Ok(());
        }
        match self.publish_cancelled(request, None).await {
            Outcome::Done => {}
            Outcome::Retry { reason, .. } | Outcome::Fatal(reason) => return Err(reason),
            Outcome::LeaseLost => return Ok(()),
        }
        self.state
            .end_extraction(&request.run_id)
            .await
            .map_err(|e| e.to_string())
    }

    /// Reports that extraction of a cancelled run ended after `sent` = (rows, batches), or after
    /// an unknown number of rows, so its accounting closes once they are through (batch id
    /// `<run_id>-cancelled`).
    async fn publish_cancelled(
        &self,
        request: &ExtractRequest,
        sent: Option<(u64, u64)>,
    ) -> Outcome {
        let (rows, batches) = sent.unwrap_or_default();
        let progress = v1::Progress {
            run_id: request.run_id.clone(),
            activation_id: request.activation_id.clone(),
            batch_id: format!("{}-cancelled", request.run_id),
            stage: Stage::Extract.into(),
            terminal: Some(Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows: rows,
                batches,
                total_unknown: sent.is_none(),
            })),
            ..v1::Progress::default()
        };
        match self.publisher.publish(PROGRESS, &progress).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Retry {
                reason: e.to_string(),
                published: None,
            },
        }
    }

    /// Starts publishing one batch to ROWS and its EXTRACT progress report; the task ends when
    /// the broker confirmed both.
    fn publish_batch(&self, plan: &RunPlan, batch: Batch) -> Publish {
        let batch_id = batch_id(plan, batch.seq);
        let rows = batch.rows.len();
        let terminal = batch.last.then(|| {
            Terminal::ExtractionFinished(v1::ExtractionFinished {
                total_rows: batch.total_rows,
                batches: batch.seq + 1,
                total_unknown: false,
            })
        });
        let message = RowBatch {
            run_id: plan.run_id.clone(),
            activation_id: plan.activation_id.clone(),
            batch_id: batch_id.clone(),
            seq: batch.seq,
            columns: batch.columns.to_vec(),
            rows: batch.rows.into_iter().map(from_domain_values).collect(),
            first_row_number: batch.first_row_number,
            last: batch.last,
            total_rows: batch.total_rows,
            attempt: plan.attempt,
        };
        let progress = v1::Progress {
            run_id: plan.run_id.clone(),
            activation_id: plan.activation_id.clone(),
            batch_id,
            stage: Stage::Extract.into(),
            extracted: rows as u64,
            terminal,
            ..v1::Progress::default()
        };
        // Their order, and the order of batches, does not matter: control accounts each batch id
        // once, whenever its report arrives, and ends a run only when every row is accounted for.
        let publisher = self.publisher.clone();
        let run_id = plan.run_id.clone();
        let seq = batch.seq;
        tokio::spawn(async move {
            tokio::try_join!(
                publisher.publish(ROWS, &message),
                publisher.publish(PROGRESS, &progress)
            )?;
            BatchPublished {
                run_id: &run_id,
                seq,
                rows,
            }
            .emit();
            Ok(())
        })
    }

    async fn retry(&self, delivery: &Delivery, request: &ExtractRequest, reason: &str) {
        RequestRequeued {
            run_id: &request.run_id,
            reason,
        }
        .emit();
        tokio::time::sleep(REQUEUE_DELAY).await;
        settle(delivery.nack_requeue().await);
    }
}

/// Renews the lease every [`RENEW_EVERY`] until aborted; cancels `lost` when another extractor
/// took it over. A state store that cannot be reached is tried again at the next renewal.
async fn renew(state: StateStore, run_id: String, owner: String, lost: CancellationToken) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match state.renew_extraction(&run_id, &owner, LEASE).await {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                return;
            }
            Err(e) => tracing::warn!(run_id, error = %e, "cannot renew the extraction lease"),
        }
    }
}

/// A batch's id: `<run_id>-<seq>` for the first attempt, `<run_id>-a<attempt>-<seq>` after, so
/// each attempt's batches are accounted on their own.
fn batch_id(plan: &RunPlan, seq: u64) -> String {
    if plan.attempt <= 1 {
        format!("{}-{seq}", plan.run_id)
    } else {
        format!("{}-a{}-{seq}", plan.run_id, plan.attempt)
    }
}

/// An attempt that ended before reading a row: nothing was published.
fn retry_before_reading(reason: String) -> Outcome {
    Outcome::Retry {
        reason,
        published: Some(0),
    }
}

/// Aborts the task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// This extraction's lease owner: process and start time, unique across extractors.
fn lease_owner() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("extractor-{}-{nanos:x}", std::process::id())
}

/// The report that ends a run: `fatal`, with the batch id `<run_id>-fatal`.
fn fatal_progress(request: &ExtractRequest, message: String) -> v1::Progress {
    v1::Progress {
        run_id: request.run_id.clone(),
        activation_id: request.activation_id.clone(),
        batch_id: format!("{}-fatal", request.run_id),
        stage: Stage::Extract.into(),
        terminal: Some(Terminal::Fatal(v1::FatalError { message })),
        ..v1::Progress::default()
    }
}

/// Logs a failed ack/nack: the broker redelivers the message, nothing else to do.
fn settle(result: Result<(), BusError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot settle the extract request; it will be redelivered");
    }
}
