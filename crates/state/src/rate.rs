//! The shared rate limit: grants and holds per Mixpanel project, kept in the state database so
//! that every loader process, of every object and every replica, spends one budget. The
//! algorithm is in the `mixsync_rate_grant` function (migration `0011_rate_limit.sql`); see
//! `docs/operations.md` ("One cap per project").

use std::time::Duration;

use crate::error::StateError;
use crate::store::StateStore;

/// What a grant asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateRequest {
    /// Records (events or profile updates) in the request.
    pub records: u64,
    /// Uncompressed bytes in the request.
    pub bytes: u64,
    /// The project's cap: records per window of `second`.
    pub per_second: u64,
    /// The project's byte cap per window of `minute`.
    pub bytes_per_minute: u64,
    /// The records window: a second plus the sender's latency margin.
    pub second: Duration,
    /// The bytes window: a minute plus the latency margin.
    pub minute: Duration,
    /// How long the cap takes to come back to whole after a 429.
    pub ramp: Duration,
}

/// A grant: when to send, and how busy the window it lands in is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateGrant {
    /// How long to wait before sending (on the database's clock; zero when at once).
    pub wait: Duration,
    /// Records granted in the records window ending at this grant, this one included.
    pub in_window: u64,
}

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl StateStore {
    /// Takes a grant for `project` (a key naming one Mixpanel project, e.g.
    /// `https://api.mixpanel.com#123`). One short statement; grants of one project are
    /// serialised by the database.
    pub async fn rate_grant(
        &self,
        project: &str,
        request: &RateRequest,
    ) -> Result<RateGrant, StateError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT wait_ms, in_window FROM mixsync_rate_grant($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &project,
                    &signed(request.records),
                    &signed(request.bytes),
                    &signed(request.per_second),
                    &signed(request.bytes_per_minute),
                    &millis(request.second),
                    &millis(request.minute),
                    &millis(request.ramp).max(1),
                ],
            )
            .await?;
        let wait_ms: f64 = row.get(0);
        let in_window: i64 = row.get(1);
        Ok(RateGrant {
            wait: Duration::from_secs_f64(wait_ms.max(0.0) / 1000.0),
            in_window: u64::try_from(in_window).unwrap_or_default(),
        })
    }

    /// Mixpanel answered 429 for `project`: no grant for `hold` (its `Retry-After`, zero when
    /// none), and the cap drops to four fifths of the share in force, coming back to whole over
    /// `ramp`.
    pub async fn rate_throttled(
        &self,
        project: &str,
        hold: Duration,
        ramp: Duration,
    ) -> Result<(), StateError> {
        let client = self.client().await?;
        client
            .execute(
                "SELECT mixsync_rate_throttled($1, $2, $3)",
                &[&project, &millis(hold), &millis(ramp).max(1)],
            )
            .await?;
        Ok(())
    }
}
