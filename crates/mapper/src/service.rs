//! The service loop: `RowBatch`es in, `RecordBatch`es and `Progress` reports out.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mixsync_bus::{Bus, BusError, Delivery, PROGRESS, Publisher, ROWS};
use mixsync_proto::v1::{DeadLetter, RowBatch, Stage};
use mixsync_state::{RIDE_OUT, StateError, StateStore, ride_out};
use prost::Message as _;
use secrecy::ExposeSecret as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::batch::map_batch;
use crate::config::Config;
use crate::internal_events::{BatchMapped, BatchRequeued};
use crate::plans::PlanCache;

/// How long to wait before requeueing a batch that hit a transient failure, so an outage
/// does not become a hot loop.
const REQUEUE_DELAY: Duration = Duration::from_secs(2);
/// How long in-flight batches may take to finish at shutdown before they are abandoned
/// (unacked, so RabbitMQ redelivers them).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the mapper stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state database could not be reached at start.
    #[error("cannot start the mapper: {0}")]
    State(#[from] StateError),
    /// RabbitMQ could not be reached, or consuming failed.
    #[error("cannot start the mapper: {0}")]
    Bus(#[from] BusError),
}

/// Runs the mapper until `shutdown` is cancelled or the bus closes, mapping up to
/// `config.prefetch` batches at once.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    // Waits for PostgreSQL and RabbitMQ, which may start after the mapper.
    let keys = mixsync_state::SecretKeys::new(&config.secret_key)?;
    let Some(state) =
        StateStore::connect_patiently(config.database_url.expose_secret(), keys, &shutdown).await?
    else {
        return Ok(());
    };
    let Some(bus) = Bus::connect_patiently(config.bus.clone(), &shutdown).await? else {
        return Ok(());
    };
    let prefetch = config.prefetch.max(1);
    let mut rows = bus.consume(ROWS, prefetch).await?;
    let mapper = Arc::new(Mapper {
        plans: PlanCache::new(state.clone()),
        state,
        publisher: bus.publisher(),
    });
    tracing::info!(prefetch, "mapper started");
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() >= usize::from(prefetch) {
            reap(tasks.join_next().await);
        }
        let delivery = tokio::select! {
            () = shutdown.cancelled() => break,
            next = rows.next() => match next {
                Some(delivery) => delivery,
                None => break,
            },
        };
        let mapper = Arc::clone(&mapper);
        tasks.spawn(async move { mapper.handle(delivery).await });
        while let Some(done) = tasks.try_join_next() {
            reap(Some(done));
        }
    }
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(done) = tasks.join_next().await {
            reap(Some(done));
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            in_flight = tasks.len(),
            "abandoning batches still in flight"
        );
        tasks.abort_all();
    }
    bus.close().await;
    tracing::info!("mapper stopped");
    Ok(())
}

fn reap(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(e)) = done
        && e.is_panic()
    {
        tracing::error!(error = %e, "mapping a batch panicked; it will be redelivered");
    }
}

struct Mapper {
    plans: PlanCache,
    state: StateStore,
    publisher: Publisher,
}

impl Mapper {
    async fn handle(&self, delivery: Delivery) {
        let batch = match RowBatch::decode(delivery.body.as_slice()) {
            Ok(batch) => batch,
            Err(e) => {
                let reason = format!("cannot decode RowBatch: {e}");
                settle(delivery.dead_letter(Stage::Map, &reason).await);
                return;
            }
        };
        let span = tracing::info_span!("map", run_id = %batch.run_id, batch_id = %batch.batch_id);
        let _ = span.set_parent(delivery.span_context());
        self.map(&delivery, batch).instrument(span).await;
    }

    async fn map(&self, delivery: &Delivery, batch: RowBatch) {
        // A state database away for a moment is waited out with the batch in hand (handing
        // it back counts towards the queue's delivery limit); other errors are not retried.
        let plan = ride_out("run plan", RIDE_OUT, || self.plans.get(&batch.run_id)).await;
        let plan = match plan {
            Ok(plan) => plan,
            Err(e @ (StateError::NotFound { .. } | StateError::Corrupt { .. })) => {
                let letter = DeadLetter {
                    run_id: batch.run_id.clone(),
                    activation_id: batch.activation_id.clone(),
                    batch_id: batch.batch_id.clone(),
                    stage: Stage::Map.into(),
                    reason: e.to_string(),
                    ..DeadLetter::default()
                };
                settle(delivery.dead_letter_with(letter).await);
                return;
            }
            Err(e) if e.is_transient() => {
                return retry(delivery, &batch.run_id, &batch.batch_id, e.to_string()).await;
            }
            Err(e) => return dead_letter(delivery, &batch, Stage::Map, e.to_string()).await,
        };
        let (run_id, batch_id) = (batch.run_id.clone(), batch.batch_id.clone());
        let attempt = batch.attempt.max(1);
        let letter = DeadLetter {
            run_id: batch.run_id.clone(),
            activation_id: batch.activation_id.clone(),
            batch_id: batch.batch_id.clone(),
            stage: Stage::Map.into(),
            ..DeadLetter::default()
        };
        let requeue = |reason: String| retry(delivery, &run_id, &batch_id, reason);
        let mapped = map_batch(&plan, batch, now_ms());
        // Claiming the keys decides, once per key and run, which records are duplicates and
        // which are unchanged; a redelivery gets the same answers, so the counts stay exact.
        let keys = mapped.keys();
        let claims = ride_out("key claims", RIDE_OUT, || {
            self.state
                .claim_keys_in(&plan, attempt, mapped.batch_id(), &keys)
        })
        .await;
        let claims = match claims {
            Ok(claims) => claims,
            Err(e) if e.is_transient() => return requeue(e.to_string()).await,
            Err(e) => {
                let letter = DeadLetter {
                    reason: format!("cannot claim the batch's keys: {e}"),
                    ..letter
                };
                settle(delivery.dead_letter_with(letter).await);
                return;
            }
        };
        let output = mapped.finish(&claims);
        let records = output.records.as_ref().map_or(0, |(_, r)| r.records.len());
        // Both are confirmed before the ack; their order does not matter (control accounts
        // each batch id once, whenever its report arrives).
        let publish_records = async {
            match &output.records {
                Some((queue, records)) => self.publisher.publish(queue, records).await,
                None => Ok(()),
            }
        };
        let published = tokio::try_join!(
            publish_records,
            self.publisher.publish(PROGRESS, &output.progress)
        );
        if let Err(e) = published {
            return requeue(e.to_string()).await;
        }
        BatchMapped {
            run_id: &run_id,
            batch_id: &batch_id,
            records,
            skipped: output.progress.skipped,
            failed: output.progress.failed,
        }
        .emit();
        settle(delivery.ack().await);
    }
}

async fn dead_letter(delivery: &Delivery, batch: &RowBatch, stage: Stage, reason: String) {
    let letter = DeadLetter {
        run_id: batch.run_id.clone(),
        activation_id: batch.activation_id.clone(),
        batch_id: batch.batch_id.clone(),
        stage: stage.into(),
        reason,
        ..DeadLetter::default()
    };
    settle(delivery.dead_letter_with(letter).await);
}

async fn retry(delivery: &Delivery, run_id: &str, batch_id: &str, reason: String) {
    BatchRequeued {
        run_id,
        batch_id,
        reason: &reason,
    }
    .emit();
    tokio::time::sleep(REQUEUE_DELAY).await;
    settle(delivery.nack_requeue().await);
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Logs a failed ack/nack: the broker redelivers the message, nothing else to do.
fn settle(result: Result<(), BusError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot settle a row batch; it will be redelivered");
    }
}
