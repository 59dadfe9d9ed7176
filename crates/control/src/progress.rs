//! The progress consumer: every stage's reports from `mixsync.progress`, accounted in the state
//! store (idempotently per batch) and acked after they are durable there.

use std::time::Duration;

use mixsync_bus::{Bus, BusError, Delivery, PROGRESS};
use mixsync_proto::v1;
use mixsync_state::{ProgressOutcome, StateStore};
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reports accounted in one transaction at most. One commit per report would cap a run at a few
/// hundred batches a second (each commit waits for the WAL flush); batching lifts that cap.
const MAX_BATCH: usize = 64;
/// How long to wait for more reports once one arrived, to fill a batch.
const GATHER: Duration = Duration::from_millis(5);
/// Unacked deliveries the broker sends ahead (at least one full batch).
const PREFETCH: u16 = 128;
/// Wait before handing reports back when the state database stayed unreachable for
/// [`mixsync_state::RIDE_OUT`].
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Consumes progress reports until `shutdown`, then finishes the batch in hand.
pub(crate) async fn consume(
    state: StateStore,
    bus: Bus,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let mut consumer = bus.consume(PROGRESS, PREFETCH).await?;
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => break,
            delivery = consumer.next() => delivery,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout(GATHER, consumer.next()).await {
                Ok(Some(delivery)) => batch.push(delivery),
                Ok(None) | Err(_) => break,
            }
        }
        handle_batch(&state, batch).await;
    }
    Ok(())
}

/// Decodes a batch of deliveries (dead-lettering what cannot be decoded) and accounts the rest.
async fn handle_batch(state: &StateStore, deliveries: Vec<Delivery>) {
    let mut decoded = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        match v1::Progress::decode(delivery.body.as_slice()) {
            Ok(progress) => decoded.push((delivery, progress)),
            Err(e) => {
                let reason = format!("undecodable Progress message: {e}");
                tracing::error!(reason, "dead-lettering a progress report");
                settle(delivery.dead_letter(v1::Stage::Unspecified, &reason).await);
            }
        }
    }
    if decoded.is_empty() {
        return;
    }
    let span = tracing::info_span!("apply_progress", reports = decoded.len());
    if let Some((delivery, _)) = decoded.first() {
        let _ = span.set_parent(delivery.span_context());
    }
    apply_batch(state, decoded).instrument(span).await;
}

async fn apply_batch(state: &StateStore, decoded: Vec<(Delivery, v1::Progress)>) {
    let reports: Vec<v1::Progress> = decoded.iter().map(|(_, p)| p.clone()).collect();
    // A state database that is away for a moment is waited out with the reports in hand:
    // handing them back would count towards the queue's delivery limit.
    let applied = mixsync_state::ride_out("progress", mixsync_state::RIDE_OUT, || {
        state.apply_progress_batch(&reports)
    })
    .await;
    match applied {
        Ok(outcomes) => {
            for ((delivery, progress), outcome) in decoded.iter().zip(outcomes) {
                log_outcome(progress, outcome);
                settle(delivery.ack().await);
            }
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "cannot record progress now; will retry");
            tokio::time::sleep(RETRY_DELAY).await;
            for (delivery, _) in &decoded {
                settle(delivery.nack_requeue().await);
            }
        }
        Err(e) => {
            // One report the state store refuses must not take the others with it: account them
            // one by one so only the culprit is dead-lettered.
            tracing::warn!(error = %e, "a progress batch was refused; applying its reports one by one");
            for (delivery, progress) in &decoded {
                apply_one(state, delivery, progress).await;
            }
        }
    }
}

async fn apply_one(state: &StateStore, delivery: &Delivery, progress: &v1::Progress) {
    let applied = mixsync_state::ride_out("progress", mixsync_state::RIDE_OUT, || {
        state.apply_progress(progress)
    })
    .await;
    match applied {
        Ok(outcome) => {
            log_outcome(progress, outcome);
            settle(delivery.ack().await);
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "cannot record progress now; will retry");
            tokio::time::sleep(RETRY_DELAY).await;
            settle(delivery.nack_requeue().await);
        }
        Err(e) => {
            tracing::error!(
                run_id = %progress.run_id,
                batch_id = %progress.batch_id,
                error = %e,
                "cannot record progress; dead-lettering it"
            );
            settle(
                delivery
                    .dead_letter(progress.stage(), &format!("control cannot record it: {e}"))
                    .await,
            );
        }
    }
}

fn log_outcome(progress: &v1::Progress, outcome: ProgressOutcome) {
    match outcome {
        ProgressOutcome::Applied { state } => {
            tracing::debug!(run_id = %progress.run_id, batch_id = %progress.batch_id, run_state = %state, "progress applied");
        }
        ProgressOutcome::Duplicate => {
            tracing::debug!(run_id = %progress.run_id, batch_id = %progress.batch_id, "progress report already counted (redelivery)");
        }
        ProgressOutcome::UnknownRun => {
            tracing::warn!(run_id = %progress.run_id, "progress report for an unknown run (deleted?); dropped");
        }
    }
}

/// An ack or nack that fails means the channel is gone: the broker redelivers the message,
/// and accounting is idempotent, so logging is all there is to do.
fn settle(result: Result<(), BusError>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot settle a progress delivery; it will be redelivered");
    }
}
