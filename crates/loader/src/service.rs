//! The RabbitMQ side of a loader: consume RecordBatches → batch their records per target → send
//! (bounded concurrency) → when every record of a delivery is resolved, publish its Progress and
//! then ack it. Memory is bounded by the prefetch times the RecordBatch size.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use mixsync_bus::{Bus, BusError, Delivery, PROGRESS, Publisher};
use mixsync_proto::v1::{DeadLetter, MixpanelObject, RecordBatch, Stage};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::batcher::Batcher;
use crate::objects::Object;
use crate::retry::Backoff;
use crate::sender::{RecordOutcome, Sender};
use crate::target::{TargetCache, TargetError, TargetSource};
use crate::tracker::{Added, Item, Settle, Tracker};

/// Deliveries settled (published and acked) at once.
const SETTLE_CONCURRENCY: usize = 8;

/// How the service consumes and groups.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSettings {
    /// Unacked RecordBatches held at once.
    pub prefetch: u16,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long a request that is not full waits for more records.
    pub linger: Duration,
}

/// One loader: `object` records from `queue`, to targets resolved through `targets`.
pub struct Service<O, S> {
    /// The queue consumed (an unprefixed `mixsync_bus` constant).
    pub queue: &'static str,
    /// The object's protobuf kind; RecordBatches of another kind are dead-lettered.
    pub kind: MixpanelObject,
    /// Sends the records.
    pub sender: Arc<Sender<O>>,
    /// Resolves target ids.
    pub targets: Arc<TargetCache<S>>,
    /// Consumption settings.
    pub settings: ServiceSettings,
}

type SendFuture = Pin<Box<dyn Future<Output = (Vec<Item>, Vec<RecordOutcome>)> + Send>>;

impl<O: Object, S: TargetSource> Service<O, S> {
    /// Runs until `shutdown`: then stops consuming, lets requests in flight finish (no new attempt
    /// starts) and requeues every delivery not fully resolved.
    pub async fn run(self, bus: &Bus, shutdown: CancellationToken) -> Result<(), BusError> {
        let mut consumer = bus.consume(self.queue, self.settings.prefetch).await?;
        let (settle_tx, settle_rx) = mpsc::channel(usize::from(self.settings.prefetch).max(1));
        let settler = tokio::spawn(settle_all(bus.publisher(), settle_rx));
        let mut tracker = Tracker::new();
        let mut batchers: HashMap<String, Batcher<Item>> = HashMap::new();
        let mut ready: VecDeque<(String, Vec<Item>)> = VecDeque::new();
        let mut in_flight: FuturesUnordered<SendFuture> = FuturesUnordered::new();
        let mut consuming = true;
        tracing::info!(
            queue = self.queue,
            object = self.sender.object().name(),
            "loader consuming"
        );
        loop {
            while in_flight.len() < self.settings.concurrency
                && let Some((target_id, items)) = ready.pop_front()
            {
                in_flight.push(Box::pin(send_batch(
                    self.sender.clone(),
                    self.targets.clone(),
                    target_id,
                    items,
                    shutdown.clone(),
                )));
            }
            if !consuming && in_flight.is_empty() {
                break;
            }
            let deadline = batchers.values().filter_map(Batcher::deadline).min();
            tokio::select! {
                () = shutdown.cancelled(), if consuming => consuming = false,
                Some((items, outcomes)) = in_flight.next(), if !in_flight.is_empty() => {
                    for settle in tracker.resolve(items, outcomes) {
                        let _ = settle_tx.send(settle).await;
                    }
                }
                delivery = consumer.next(), if consuming => match delivery {
                    None => consuming = false,
                    Some(delivery) => {
                        if let Some(settle) = self.accept(delivery, &mut tracker, &mut batchers, &mut ready) {
                            let _ = settle_tx.send(settle).await;
                        }
                    }
                },
                () = sleep_until(deadline), if consuming && deadline.is_some() => {
                    let now = Instant::now();
                    for (target_id, batcher) in &mut batchers {
                        if batcher.deadline().is_some_and(|d| d <= now)
                            && let Some(items) = batcher.take()
                        {
                            ready.push_back((target_id.clone(), items));
                        }
                    }
                    batchers.retain(|_, b| !b.is_empty());
                }
            }
        }
        let open = tracker.len();
        for settle in tracker.drain() {
            let _ = settle_tx.send(settle).await;
        }
        drop(settle_tx);
        let _ = settler.await;
        tracing::info!(queue = self.queue, requeued = open, "loader stopped");
        Ok(())
    }

    /// Decodes a delivery and hands its records to the batchers; a settlement when there is
    /// nothing to send.
    fn accept(
        &self,
        delivery: Delivery,
        tracker: &mut Tracker<Delivery>,
        batchers: &mut HashMap<String, Batcher<Item>>,
        ready: &mut VecDeque<(String, Vec<Item>)>,
    ) -> Option<Settle<Delivery>> {
        let batch = match RecordBatch::decode(delivery.body.as_slice()) {
            Ok(batch) => batch,
            Err(error) => {
                let reason =
                    format!("cannot decode the message as a mixsync.v1.RecordBatch: {error}");
                return Some(Settle::DeadLetter { delivery, reason });
            }
        };
        if batch.object() != self.kind || batch.target_id.is_empty() {
            let reason = format!(
                "RecordBatch `{}` is for object {:?} and target `{}`; this loader takes {:?} records with a target",
                batch.batch_id,
                batch.object(),
                batch.target_id,
                self.kind
            );
            return Some(Settle::DeadLetter { delivery, reason });
        }
        let target_id = batch.target_id.clone();
        // A run reads its target afresh: a destination changed since the last run must not be
        // served from the cache (that run's snapshot was emptied for the new destination).
        self.targets.note_run(&target_id, &batch.run_id);
        let object = self.sender.object();
        let items = match tracker.add(delivery, batch, |json| object.check_record(json)) {
            Added::Send(items) => items,
            Added::Settled(settle) => return Some(settle),
        };
        let batcher = batchers
            .entry(target_id.clone())
            .or_insert_with(|| Batcher::new(object.batch_limits(), self.settings.linger));
        let now = Instant::now();
        for item in items {
            let size = object.record_size(&item.json);
            for full in batcher.push(item, size, now) {
                ready.push_back((target_id.clone(), full));
            }
        }
        None
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Resolves the target and sends one request's records.
async fn send_batch<O: Object, S: TargetSource>(
    sender: Arc<Sender<O>>,
    targets: Arc<TargetCache<S>>,
    target_id: String,
    items: Vec<Item>,
    shutdown: CancellationToken,
) -> (Vec<Item>, Vec<RecordOutcome>) {
    let records: Vec<Bytes> = items.iter().map(|item| item.json.clone()).collect();
    let outcomes = deliver(&sender, &targets, &target_id, &records, &shutdown).await;
    (items, outcomes)
}

/// Sends `records` to the target; when Mixpanel refuses the credentials, reads the target again
/// once and, if it changed (credentials rotated since they were cached), resends with the new one.
pub async fn deliver<O: Object, S: TargetSource>(
    sender: &Sender<O>,
    targets: &TargetCache<S>,
    target_id: &str,
    records: &[Bytes],
    shutdown: &CancellationToken,
) -> Vec<RecordOutcome> {
    let target = match resolve(targets, target_id, shutdown).await {
        Ok(target) => target,
        Err(outcome) => return vec![outcome; records.len()],
    };
    let mut outcomes = sender.send(&target, records).await;
    let refused: Vec<usize> = (0..outcomes.len())
        .filter(|&i| matches!(outcomes[i], RecordOutcome::Fatal(_)))
        .collect();
    if refused.is_empty() {
        return outcomes;
    }
    match targets.refresh(target_id).await {
        Ok(fresh) if !fresh.same_as(&target) => {
            tracing::info!(
                target_id,
                "target changed since it was cached; resending with it"
            );
            let again: Vec<Bytes> = refused.iter().map(|&i| records[i].clone()).collect();
            for (i, outcome) in refused.into_iter().zip(sender.send(&fresh, &again).await) {
                outcomes[i] = outcome;
            }
        }
        Ok(_) => {}
        Err(error) => {
            let outcome = target_failure(error);
            for i in refused {
                outcomes[i] = outcome.clone();
            }
        }
    }
    outcomes
}

/// How often to ask again for a target the state store cannot give now.
const TARGET_UNAVAILABLE: Backoff = Backoff {
    initial: Duration::from_millis(500),
    max: Duration::from_secs(30),
};

/// The target, waiting out a state store that cannot answer now.
async fn resolve<S: TargetSource>(
    targets: &TargetCache<S>,
    target_id: &str,
    shutdown: &CancellationToken,
) -> Result<Arc<crate::target::Target>, RecordOutcome> {
    let mut waits = TARGET_UNAVAILABLE.steps();
    loop {
        match targets.get(target_id).await {
            Ok(target) => return Ok(target),
            Err(error @ TargetError::Unavailable { .. }) => {
                // The schedule has no budget: it never ends.
                let wait = waits.next().unwrap_or(TARGET_UNAVAILABLE.max);
                tracing::warn!(target_id, %error, wait_ms = wait.as_millis() as u64, "cannot resolve the target yet");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return Err(RecordOutcome::Deferred),
                }
            }
            Err(error) => return Err(target_failure(error)),
        }
    }
}

fn target_failure(error: TargetError) -> RecordOutcome {
    match error {
        TargetError::Unavailable { .. } => RecordOutcome::Deferred,
        error => RecordOutcome::Fatal(error.to_string().into()),
    }
}

/// Publishes and acks settlements as they come, a few at a time.
async fn settle_all(publisher: Publisher, rx: mpsc::Receiver<Settle<Delivery>>) {
    let mut rx = rx;
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
        .for_each_concurrent(SETTLE_CONCURRENCY, |settle| settle_one(&publisher, settle))
        .await;
}

/// Downstream first, then the ack: a crash in between only causes a redelivery, which Mixpanel
/// deduplicates (`$insert_id`) and control accounts once (per batch id).
async fn settle_one(publisher: &Publisher, settle: Settle<Delivery>) {
    match settle {
        Settle::Report { delivery, progress } => {
            let span = tracing::info_span!("load_batch", run_id = %progress.run_id, batch_id = %progress.batch_id, loaded = progress.loaded, failed = progress.failed);
            let _ = span.set_parent(delivery.span_context());
            // The publisher sends the current span's trace context: run the publish inside it.
            match publisher
                .publish(PROGRESS, &progress)
                .instrument(span)
                .await
            {
                Ok(()) => log_settle(delivery.ack().await, "ack"),
                Err(error) => {
                    tracing::error!(%error, batch_id = %progress.batch_id, "cannot publish progress; requeueing the batch");
                    log_settle(delivery.nack_requeue().await, "requeue");
                }
            }
        }
        Settle::Requeue { delivery } => log_settle(delivery.nack_requeue().await, "requeue"),
        Settle::DeadLetter { delivery, reason } => {
            let letter = DeadLetter {
                stage: Stage::Load.into(),
                reason,
                ..DeadLetter::default()
            };
            if let Err(error) = delivery.dead_letter_with(letter).await {
                tracing::error!(%error, "cannot dead-letter the message; requeueing it");
                log_settle(delivery.nack_requeue().await, "requeue");
            }
        }
    }
}

fn log_settle(result: Result<(), BusError>, what: &'static str) {
    if let Err(error) = result {
        tracing::warn!(%error, what, "cannot settle the delivery");
    }
}
