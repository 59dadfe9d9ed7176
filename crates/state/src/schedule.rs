//! Scheduled runs. Each scheduled activation carries its next slot (`next_run_at`) and the
//! schedule that slot was computed from (`scheduled`). Control's scheduler claims due slots with
//! `FOR UPDATE SKIP LOCKED` and, in the same transaction, advances each to the next slot after
//! now and queues the run, so a slot runs at most once however many schedulers there are, and
//! slots missed while control was down run once, not once each.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::activations::Schedule;
use crate::cron::Cron;
use crate::error::StateError;
use crate::runs::Run;
use crate::store::StateStore;

/// What the scheduler did with one due slot.
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledRun {
    /// A run was queued for the slot; its ExtractRequest is still to be published.
    Queued {
        /// The queued run.
        run: Box<Run>,
        /// The slot it is for.
        slot: SystemTime,
    },
    /// The slot was skipped: a run of the activation is still queued or running.
    Overlapping {
        /// The activation.
        activation_id: String,
        /// The run still going.
        running_run_id: String,
        /// The skipped slot.
        slot: SystemTime,
    },
    /// The slot was skipped: the activation is paused.
    Paused {
        /// The activation.
        activation_id: String,
        /// The skipped slot.
        slot: SystemTime,
    },
}

fn secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_secs(s: i64) -> SystemTime {
    if s >= 0 {
        UNIX_EPOCH + Duration::from_secs(s.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(s.unsigned_abs())
    }
}

impl Schedule {
    /// Checks the schedule: every N minutes needs N ≥ 1; a cron expression must parse and fire.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Self::Manual => Ok(()),
            Self::EveryMinutes(0) => Err("every_minutes must be at least 1".into()),
            Self::EveryMinutes(_) => Ok(()),
            Self::Cron(expr) => Cron::parse(expr).map(|_| ()),
        }
    }

    /// The first slot strictly after `now`, or `None` for manual (and invalid) schedules.
    /// Every N minutes counts on from the `previous` slot (or from `now` for the first), so
    /// slots keep their rhythm; cron fires on the minutes it names, in UTC. `minute` is how
    /// long a minute is for every-N-minutes schedules: 60 s, shorter only in tests.
    pub fn next_slot(
        &self,
        previous: Option<SystemTime>,
        now: SystemTime,
        minute: Duration,
    ) -> Option<SystemTime> {
        match self {
            Self::Manual | Self::EveryMinutes(0) => None,
            Self::EveryMinutes(n) => {
                let period = minute.checked_mul(*n)?.max(Duration::from_secs(1));
                let Some(previous) = previous else {
                    return now.checked_add(period);
                };
                let behind = now.duration_since(previous).unwrap_or_default();
                let periods = u32::try_from(behind.as_nanos() / period.as_nanos() + 1).ok()?;
                previous.checked_add(period.checked_mul(periods)?)
            }
            Self::Cron(expr) => {
                let cron = Cron::parse(expr).ok()?;
                cron.next_after(secs(now)).map(from_secs)
            }
        }
    }
}

impl StateStore {
    /// Gives every activation whose schedule changed (or is new) its first slot after `now`,
    /// and clears the slot of manual ones. Returns how many activations it updated.
    pub async fn sync_schedules(
        &self,
        now: SystemTime,
        minute: Duration,
    ) -> Result<u64, StateError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, schedule FROM activations WHERE scheduled IS DISTINCT FROM schedule",
                &[],
            )
            .await?;
        let mut updated = 0;
        for row in rows {
            let id: String = row.get(0);
            let json: serde_json::Value = row.get(1);
            let schedule: Schedule = serde_json::from_value(json.clone())
                .map_err(|e| StateError::corrupt(format!("schedule of activation `{id}`"), e))?;
            let next = schedule.next_slot(None, now, minute);
            // Only if the schedule is still the one read: a concurrent edit is picked up next time.
            updated += client
                .execute(
                    "UPDATE activations SET next_run_at = $2, scheduled = schedule
                     WHERE id = $1 AND schedule = $3",
                    &[&id, &next, &json],
                )
                .await?;
        }
        Ok(updated)
    }

    /// Claims up to `limit` due slots (`next_run_at <= now`), advances each activation to its
    /// next slot after `now` and queues a run for the slot unless the activation is paused or
    /// a run of it is still going — all in one transaction. Slots locked by another scheduler
    /// are skipped, not waited for.
    pub async fn claim_due_runs(
        &self,
        now: SystemTime,
        minute: Duration,
        limit: i64,
    ) -> Result<Vec<ScheduledRun>, StateError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let due = tx
            .query(
                "SELECT id, schedule, next_run_at, paused FROM activations
                 WHERE next_run_at <= $1 AND scheduled = schedule
                 ORDER BY next_run_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                &[&now, &limit],
            )
            .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for row in due {
            let activation_id: String = row.get(0);
            let schedule: Schedule = serde_json::from_value(row.get(1)).map_err(|e| {
                StateError::corrupt(format!("schedule of activation `{activation_id}`"), e)
            })?;
            let slot: SystemTime = row.get(2);
            let paused: bool = row.get(3);
            let next = schedule.next_slot(Some(slot), now, minute);
            tx.execute(
                "UPDATE activations SET next_run_at = $2 WHERE id = $1",
                &[&activation_id, &next],
            )
            .await?;
            if paused {
                claimed.push(ScheduledRun::Paused {
                    activation_id,
                    slot,
                });
                continue;
            }
            match Self::insert_run(&tx, &activation_id, false, None).await {
                Ok(run) => {
                    tx.execute(
                        "UPDATE runs SET scheduled_for = $2 WHERE id = $1",
                        &[&run.id, &slot],
                    )
                    .await?;
                    claimed.push(ScheduledRun::Queued {
                        run: Box::new(run),
                        slot,
                    });
                }
                Err(StateError::RunInProgress { run_id, .. }) => {
                    claimed.push(ScheduledRun::Overlapping {
                        activation_id,
                        running_run_id: run_id,
                        slot,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(claimed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn every_minutes_keeps_its_rhythm_and_runs_a_missed_slot_once() {
        let every = Schedule::EveryMinutes(15);
        let t0 = from_secs(1_000_000);
        assert_eq!(
            every.next_slot(None, t0, MINUTE),
            Some(from_secs(1_000_900))
        );
        // On time: the next slot.
        let slot = from_secs(1_000_900);
        assert_eq!(
            every.next_slot(Some(slot), slot + Duration::from_secs(2), MINUTE),
            Some(from_secs(1_001_800))
        );
        // Three slots late (control was down): one run now, next on the rhythm after now.
        let now = from_secs(1_000_900 + 3 * 900 + 10);
        assert_eq!(
            every.next_slot(Some(slot), now, MINUTE),
            Some(from_secs(1_000_900 + 4 * 900))
        );
        // Shortened minutes (tests).
        assert_eq!(
            Schedule::EveryMinutes(2).next_slot(None, t0, Duration::from_secs(5)),
            Some(from_secs(1_000_010))
        );
    }

    #[test]
    fn manual_and_cron() {
        let t = from_secs(1_000_000);
        assert_eq!(Schedule::Manual.next_slot(None, t, MINUTE), None);
        let cron = Schedule::Cron("*/5 * * * *".into());
        assert_eq!(cron.next_slot(None, t, MINUTE), Some(from_secs(1_000_200)));
        assert!(Schedule::Cron("* * *".into()).validate().is_err());
        assert!(Schedule::EveryMinutes(0).validate().is_err());
        assert!(Schedule::EveryMinutes(5).validate().is_ok());
    }
}
