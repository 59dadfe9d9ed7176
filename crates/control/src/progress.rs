//! The progress consumer: every stage's reports from `mixsync.progress`, accounted in the state
//! store (idempotently per batch) and acked after they are durable there.

use std::time::Duration;

use mixsync_bus::{Bus, BusError, Delivery, PROGRESS};
use mixsync_proto::v1;
use mixsync_state::{ProgressOutcome, StateStore};
use prost::Message as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Reports applied at once. Reports of one run serialize on its row lock anyway.
const CONCURRENCY: usize = 8;
/// Unacked deliveries the broker sends ahead.
const PREFETCH: u16 = 32;
/// Wait before handing a report back when the state database is unreachable.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Consumes progress reports until `shutdown`, then finishes the reports in hand.
pub(crate) async fn consume(
    state: StateStore,
    bus: Bus,
    shutdown: CancellationToken,
) -> Result<(), BusError> {
    let mut consumer = bus.consume(PROGRESS, PREFETCH).await?;
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.len() >= CONCURRENCY {
            in_flight.join_next().await;
        }
        let delivery = tokio::select! {
            () = shutdown.cancelled() => break,
            delivery = consumer.next() => delivery,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
        };
        let Some(delivery) = delivery else { break };
        let state = state.clone();
        in_flight.spawn(async move { handle(&state, delivery).await });
    }
    while in_flight.join_next().await.is_some() {}
    Ok(())
}

async fn handle(state: &StateStore, delivery: Delivery) {
    let progress = match v1::Progress::decode(delivery.body.as_slice()) {
        Ok(p) => p,
        Err(e) => {
            let reason = format!("undecodable Progress message: {e}");
            tracing::error!(reason, "dead-lettering a progress report");
            settle(delivery.dead_letter(v1::Stage::Unspecified, &reason).await);
            return;
        }
    };
    let span = tracing::info_span!(
        "apply_progress",
        run_id = %progress.run_id,
        batch_id = %progress.batch_id,
        stage = progress.stage().as_str_name(),
    );
    let _ = span.set_parent(delivery.span_context());
    apply(state, &delivery, &progress).instrument(span).await;
}

async fn apply(state: &StateStore, delivery: &Delivery, progress: &v1::Progress) {
    match state.apply_progress(progress).await {
        Ok(ProgressOutcome::Applied { state: run_state }) => {
            tracing::debug!(run_state = %run_state, "progress applied");
            settle(delivery.ack().await);
        }
        Ok(ProgressOutcome::Duplicate) => {
            tracing::debug!("progress report already counted (redelivery)");
            settle(delivery.ack().await);
        }
        Ok(ProgressOutcome::UnknownRun) => {
            tracing::warn!("progress report for an unknown run (deleted?); dropped");
            settle(delivery.ack().await);
        }
        Err(e) if e.is_transient() => {
            tracing::warn!(error = %e, "cannot record progress now; will retry");
            tokio::time::sleep(RETRY_DELAY).await;
            settle(delivery.nack_requeue().await);
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record progress; dead-lettering it");
            settle(
                delivery
                    .dead_letter(progress.stage(), &format!("control cannot record it: {e}"))
                    .await,
            );
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
