//! How fast an extraction may read: a bounded window of publishes awaiting the broker's
//! confirms, and a gate between batches that stops on cancellation and holds reading back while
//! too many rows are still on their way downstream.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mixsync_bus::BusError;
use mixsync_state::StateStore;
use tokio::task::JoinHandle;

/// Batches whose publishes may await the broker's confirms while the next rows are read.
pub(crate) const PUBLISH_WINDOW: usize = 4;

/// How often, at most, the extraction asks the state store whether its run was cancelled and how
/// far downstream has got (one indexed row read, between batches).
pub(crate) const CANCEL_CHECK_EVERY: Duration = Duration::from_millis(250);

/// A publish task: it ends when the broker confirmed the batch and its report.
pub(crate) type Publish = JoinHandle<Result<(), BusError>>;

/// Why reading stopped between batches.
#[derive(Debug)]
pub(crate) enum Stop {
    /// A publish failed.
    Bus(BusError),
    /// The run was cancelled: stop reading.
    Cancelled,
}

/// Publishes not yet confirmed, oldest first. Reading goes on while the broker confirms the last
/// few batches; it waits only when [`PUBLISH_WINDOW`] batches are unconfirmed, so memory stays
/// bounded.
#[derive(Default)]
pub(crate) struct PublishWindow {
    tasks: VecDeque<Publish>,
}

impl PublishWindow {
    /// Adds a batch's publish; returns the oldest one when the window overflows, for the caller
    /// to await before reading on.
    pub(crate) fn push(&mut self, task: Publish) -> Option<Publish> {
        self.tasks.push_back(task);
        if self.tasks.len() > PUBLISH_WINDOW {
            self.tasks.pop_front()
        } else {
            None
        }
    }

    /// Waits for every publish still in the window (all of them, even after a failure, so none
    /// is left running); the last failure, if any.
    pub(crate) async fn drain(self) -> Result<(), BusError> {
        let mut result = Ok(());
        for task in self.tasks {
            if let Err(e) = confirmed(task).await {
                result = Err(e);
            }
        }
        result
    }
}

/// Waits for a publish task; a panic in it is a bug and propagates.
pub(crate) async fn confirmed(task: Publish) -> Result<(), BusError> {
    match task.await {
        Ok(result) => result,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Decides, batch by batch, when to ask the state store about cancellation and backpressure.
pub(crate) struct PressureGate {
    /// Rows in flight (sent, not yet accounted for downstream) above which reading waits; `0`:
    /// no bound.
    max_in_flight: u64,
    last_check: Instant,
    /// Rows accounted for downstream, as of the last check (written by the check, which runs
    /// after the batch callback returned).
    resolved: Arc<AtomicU64>,
}

impl PressureGate {
    pub(crate) fn new(max_in_flight: u64, now: Instant) -> Self {
        Self {
            max_in_flight,
            last_check: now,
            resolved: Arc::default(),
        }
    }

    /// The check to make after a batch, with `sent` rows sent in all: every
    /// [`CANCEL_CHECK_EVERY`], and at once when the rows in flight may be over the bound; never
    /// after the last batch (there is nothing left to stop or hold back).
    pub(crate) fn due(&mut self, sent: u64, last: bool, now: Instant) -> Option<PressureCheck> {
        let check = PressureCheck {
            max_in_flight: self.max_in_flight,
            sent,
            resolved: self.resolved.clone(),
        };
        let due = !last
            && (check.over(self.resolved.load(Ordering::Relaxed))
                || now.duration_since(self.last_check) >= CANCEL_CHECK_EVERY);
        due.then(|| {
            self.last_check = now;
            check
        })
    }
}

/// One check between batches, `sent` rows in.
pub(crate) struct PressureCheck {
    max_in_flight: u64,
    sent: u64,
    resolved: Arc<AtomicU64>,
}

impl PressureCheck {
    /// Asks the state store until the run may read on: `Err(Cancelled)` when it was cancelled,
    /// and while more than the bound is in flight, again every [`CANCEL_CHECK_EVERY`]. An
    /// unreadable state store is not a reason to stop: the next check asks again.
    pub(crate) async fn wait(self, state: &StateStore, run_id: &str) -> Result<(), Stop> {
        while let Ok((stop, resolved)) = state.extraction_pressure(run_id).await {
            self.resolved.store(resolved, Ordering::Relaxed);
            if stop {
                return Err(Stop::Cancelled);
            }
            if !self.over(resolved) {
                break;
            }
            tokio::time::sleep(CANCEL_CHECK_EVERY).await;
        }
        Ok(())
    }

    fn over(&self, resolved: u64) -> bool {
        self.max_in_flight > 0 && self.sent.saturating_sub(resolved) > self.max_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Publish {
        tokio::spawn(async { Ok(()) })
    }

    #[tokio::test]
    async fn the_window_hands_back_the_oldest_publish_once_full() {
        let mut window = PublishWindow::default();
        for _ in 0..PUBLISH_WINDOW {
            assert!(window.push(done()).is_none());
        }
        let oldest = window.push(done()).expect("the window overflowed");
        assert!(confirmed(oldest).await.is_ok());
        assert_eq!(window.tasks.len(), PUBLISH_WINDOW);
        assert!(window.drain().await.is_ok());
    }

    #[tokio::test]
    async fn draining_reports_a_failed_publish() {
        let mut window = PublishWindow::default();
        window.push(done());
        window.push(tokio::spawn(async { Err(BusError::Closed) }));
        window.push(done());
        assert!(window.drain().await.is_err());
    }

    #[test]
    fn the_gate_checks_now_and_then_and_never_after_the_last_batch() {
        let start = Instant::now();
        let mut gate = PressureGate::new(0, start);
        assert!(gate.due(100, false, start).is_none());
        let later = start + CANCEL_CHECK_EVERY;
        assert!(gate.due(200, true, later).is_none(), "the last batch");
        assert!(gate.due(200, false, later).is_some());
        assert!(gate.due(300, false, later).is_none(), "checked just now");
    }

    #[test]
    fn the_gate_checks_at_once_when_over_the_bound() {
        let start = Instant::now();
        let mut gate = PressureGate::new(150, start);
        assert!(gate.due(150, false, start).is_none(), "at the bound");
        assert!(gate.due(151, false, start).is_some(), "over the bound");
        gate.resolved.store(100, Ordering::Relaxed);
        assert!(
            gate.due(250, false, start).is_none(),
            "100 accounted for downstream"
        );
        assert!(gate.due(251, false, start).is_some());
    }
}
