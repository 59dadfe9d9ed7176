//! Riding out a state database that went away for a moment (a restart, a failover): retry
//! the call with backoff while its error is transient, instead of handing the message that
//! needed it back to the broker, where every return counts towards the queue's delivery
//! limit (see `docs/operations.md`, "Faults").

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::StateError;

/// How long a service keeps retrying one state call before it gives the work back.
pub const RIDE_OUT: Duration = Duration::from_secs(120);

const FIRST_WAIT: Duration = Duration::from_millis(200);
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Runs `call` until it succeeds, fails with a non-transient error, or transient errors have
/// lasted `patience`; then returns the last error. `what` names the call in the log.
pub async fn ride_out<T, F, Fut>(
    what: &str,
    patience: Duration,
    mut call: F,
) -> Result<T, StateError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StateError>>,
{
    let deadline = Instant::now() + patience;
    let mut wait = FIRST_WAIT;
    let mut attempts = 0u32;
    loop {
        match call().await {
            Ok(value) => {
                if attempts > 0 {
                    tracing::info!(what, attempts, "the state database answers again");
                }
                return Ok(value);
            }
            Err(error) if error.is_transient() && Instant::now() + wait < deadline => {
                if attempts < 3 || attempts.is_multiple_of(10) {
                    tracing::warn!(what, %error, attempts, "the state database is unavailable; retrying");
                }
                attempts += 1;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_WAIT);
            }
            Err(error) => return Err(error),
        }
    }
}
