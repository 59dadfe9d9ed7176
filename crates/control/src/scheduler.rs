//! The scheduler: every tick (`MIXSYNC_SCHEDULER_TICK`, default 5 s) it gives new or edited
//! schedules their first slot, then claims due slots in the state store (`FOR UPDATE SKIP
//! LOCKED`, so several control replicas never run a slot twice) and queues their runs through
//! the same path as TriggerRun. A slot whose activation still has a run going is skipped and
//! logged; paused activations' slots pass without a run.

use std::time::{Duration, SystemTime};

use mixsync_state::{ScheduledRun, StateError};

use crate::services::{Context, runs};

/// `MIXSYNC_SCHEDULER_TICK` when unset.
const DEFAULT_TICK: Duration = Duration::from_secs(5);
/// Slots claimed per transaction.
const CLAIM_LIMIT: i64 = 32;
/// How long a re-queued extraction has to be taken by an extractor before it is queued again.
const REQUEUE_GRACE: Duration = Duration::from_secs(60);

/// How the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settings {
    /// How often it looks for due slots (`MIXSYNC_SCHEDULER_TICK`, e.g. `5s`, `500ms`).
    pub tick: Duration,
    /// How long a minute is for every-N-minutes schedules: 60 s, or
    /// `MIXSYNC_SCHEDULER_MINUTE_SECONDS` — for tests only, so an "every minute" activation can
    /// be watched for several slots in seconds.
    pub minute: Duration,
}

impl Settings {
    /// Reads the settings from the environment; the error names the variable.
    pub(crate) fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let tick = match lookup("MIXSYNC_SCHEDULER_TICK").filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_TICK,
            Some(v) => parse_duration(v.trim())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    format!("MIXSYNC_SCHEDULER_TICK={v} is invalid: a duration such as 5s or 500ms")
                })?,
        };
        let minute = match lookup("MIXSYNC_SCHEDULER_MINUTE_SECONDS")
            .filter(|v| !v.trim().is_empty())
        {
            None => Duration::from_secs(60),
            Some(v) => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| (1..=60).contains(s))
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    format!("MIXSYNC_SCHEDULER_MINUTE_SECONDS={v} is invalid: seconds, 1 to 60 (tests only)")
                })?,
        };
        Ok(Self { tick, minute })
    }
}

/// `5s`, `500ms`, `2m` or a bare number of seconds.
fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "ms" => Some(Duration::from_millis(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

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

/// One pass: extractions whose extractor died, first slots for new schedules, then every due
/// slot.
async fn tick(ctx: &Context, settings: Settings) -> Result<(), StateError> {
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
        let request = mixsync_proto::v1::ExtractRequest {
            run_id: expired.run_id.clone(),
            activation_id: expired.activation_id.clone(),
            full_resync: expired.full_resync,
        };
        match ctx.publisher.publish(mixsync_bus::EXTRACT, &request).await {
            Ok(()) => tracing::warn!(
                run_id = %expired.run_id,
                "the run's extractor stopped renewing its lease; extraction queued again"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::from_lookup(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            settings(&[]).unwrap(),
            Settings {
                tick: Duration::from_secs(5),
                minute: Duration::from_secs(60)
            }
        );
        let s = settings(&[
            ("MIXSYNC_SCHEDULER_TICK", "500ms"),
            ("MIXSYNC_SCHEDULER_MINUTE_SECONDS", "10"),
        ])
        .unwrap();
        assert_eq!(s.tick, Duration::from_millis(500));
        assert_eq!(s.minute, Duration::from_secs(10));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1"), Some(Duration::from_secs(1)));
        assert!(settings(&[("MIXSYNC_SCHEDULER_TICK", "0s")]).is_err());
        assert!(settings(&[("MIXSYNC_SCHEDULER_TICK", "fast")]).is_err());
        assert!(settings(&[("MIXSYNC_SCHEDULER_MINUTE_SECONDS", "0")]).is_err());
    }
}
