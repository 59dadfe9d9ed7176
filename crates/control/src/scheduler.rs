//! The scheduler: every tick (`MIXSYNC_SCHEDULER_TICK`, default 5 s) it gives new or edited
//! schedules their first slot, then claims due slots in the state store (`FOR UPDATE SKIP
//! LOCKED`, so several control replicas never run a slot twice) and queues their runs through
//! the same path as TriggerRun. A slot whose activation still has a run going is skipped and
//! logged; paused activations' slots pass without a run.

use std::time::{Duration, SystemTime};

use mixsync_state::{ScheduledRun, StateError};

use crate::services::{Context, runs};

/// Slots claimed per transaction.
const CLAIM_LIMIT: i64 = 32;
/// How long a re-queued extraction has to be taken by an extractor before it is queued again.
const REQUEUE_GRACE: Duration = Duration::from_secs(60);
/// How long a queued run's ExtractRequest may stay unconfirmed before the scheduler publishes
/// it (the first publish normally happens right after the run is committed).
const RELAY_AFTER: Duration = Duration::from_secs(10);

/// How the scheduler runs: read with the rest of control's configuration.
pub(crate) type Settings = crate::config::SchedulerConfig;

/// Runs the scheduler until control shuts down.
pub(crate) async fn run(ctx: Context, settings: Settings) {
    tracing::info!(
        tick_ms = settings.tick.as_millis() as u64,
        minute_s = settings.minute.as_secs(),
        "scheduler started"
    );
    let mut ticks = tokio::time::interval(settings.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut passes: u64 = 0;
    loop {
        tokio::select! {
            () = ctx.shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        if let Err(e) = tick(&ctx, settings).await {
            tracing::warn!(error = %e, "scheduler tick failed; retrying next tick");
        }
        // Numbered, so a test can wait until the scheduler has looked again instead of sleeping.
        passes += 1;
        tracing::debug!(pass = passes, "scheduler pass done");
    }
}

/// One pass: unpublished requests, extractions whose attempt ended or whose extractor died,
/// first slots for new schedules, then every due slot.
async fn tick(ctx: &Context, settings: Settings) -> Result<(), StateError> {
    relay_unpublished(ctx).await?;
    requeue_expired(ctx).await?;
    let now = SystemTime::now();
    ctx.state.sync_schedules(now, settings.minute).await?;
    loop {
        let claimed = ctx
            .state
            .claim_due_runs(now, settings.minute, CLAIM_LIMIT)
            .await?;
        let full = claimed.len() as i64 == CLAIM_LIMIT;
        for outcome in claimed {
            handle(ctx, outcome).await;
        }
        if !full {
            return Ok(());
        }
    }
}

/// Queues again every running extraction whose lease expired: its extractor stopped renewing
/// it (it died, or lost the state database for longer than the lease). The next extractor
/// reads the query again from the start; batches already accounted count once.
async fn requeue_expired(ctx: &Context) -> Result<(), StateError> {
    for expired in ctx
        .state
        .expired_extractions(REQUEUE_GRACE, CLAIM_LIMIT)
        .await?
    {
        if let Some(message) = &expired.give_up {
            let run = ctx.state.fail_run(&expired.run_id, message).await?;
            tracing::error!(run_id = %run.id, state = %run.state, message, "a run had all its attempts");
            continue;
        }
        let published = runs::publish_request(
            ctx,
            &expired.run_id,
            &expired.activation_id,
            expired.full_resync,
        )
        .await;
        match published {
            Ok(()) => tracing::warn!(
                run_id = %expired.run_id,
                "the run's last attempt ended or its extractor stopped; extraction queued again"
            ),
            // The lease stays expired after the grace period: tried again then.
            Err(e) => tracing::error!(
                run_id = %expired.run_id,
                error = %e,
                "cannot queue the extraction again"
            ),
        }
    }
    Ok(())
}

/// The outbox relay: publishes the ExtractRequest of every queued run whose request the
/// broker has not confirmed [`RELAY_AFTER`] after it was committed (control died between the
/// commit and the publish, or RabbitMQ was away).
async fn relay_unpublished(ctx: &Context) -> Result<(), StateError> {
    for run in ctx
        .state
        .unpublished_requests(RELAY_AFTER, CLAIM_LIMIT)
        .await?
    {
        match runs::publish_request(ctx, &run.run_id, &run.activation_id, run.full_resync).await {
            Ok(()) => tracing::warn!(run_id = %run.run_id,
                "the run's extraction request had not been published; published it now"),
            Err(e) => tracing::error!(run_id = %run.run_id, error = %e,
                "cannot publish the run's extraction request; trying again later"),
        }
    }
    Ok(())
}

async fn handle(ctx: &Context, outcome: ScheduledRun) {
    match outcome {
        ScheduledRun::Queued { run, slot } => {
            let late_ms = SystemTime::now()
                .duration_since(slot)
                .unwrap_or_default()
                .as_millis() as u64;
            match runs::queue(ctx, &run).await {
                Ok(()) => tracing::info!(
                    run_id = %run.id,
                    activation_id = %run.activation_id,
                    late_ms,
                    "scheduled run queued"
                ),
                Err(e) => tracing::error!(
                    run_id = %run.id,
                    activation_id = %run.activation_id,
                    error = %e,
                    "scheduled run could not be queued"
                ),
            }
        }
        ScheduledRun::Overlapping {
            activation_id,
            running_run_id,
            ..
        } => tracing::warn!(
            activation_id = %activation_id,
            running_run_id = %running_run_id,
            "scheduled run skipped: the previous run is still going"
        ),
        ScheduledRun::Paused { activation_id, .. } => tracing::info!(
            activation_id = %activation_id,
            "scheduled run skipped: the activation is paused"
        ),
    }
}
