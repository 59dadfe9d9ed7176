//! How large one `/import` request may get: Mixpanel's limits (2000 events, 10 MB uncompressed),
//! configurable lower.

use mixsync_config::{ConfigError, Env};
use mixsync_domain::rules::{LOADER_IMPORT_BYTES, MAX_IMPORT_EVENTS};

/// Batch limits for `/import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventsConfig {
    /// `MIXSYNC_LOADER_MAX_BATCH_EVENTS` (default and maximum 2000).
    pub max_batch_events: usize,
    /// `MIXSYNC_LOADER_MAX_BATCH_BYTES` (default 10276045, a little under Mixpanel's 10 MB so framing
    /// never tips a batch over; maximum 10485760): uncompressed JSON bytes per request.
    pub max_batch_bytes: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            max_batch_events: MAX_IMPORT_EVENTS,
            max_batch_bytes: LOADER_IMPORT_BYTES,
        }
    }
}

impl EventsConfig {
    /// Reads `MIXSYNC_LOADER_MAX_BATCH_EVENTS`; the byte limit is the loader's, read once for
    /// every object.
    pub(crate) fn read(env: &Env, max_batch_bytes: usize) -> Result<Self, ConfigError> {
        Ok(EventsConfig {
            max_batch_events: env.number(
                "MIXSYNC_LOADER_MAX_BATCH_EVENTS",
                MAX_IMPORT_EVENTS,
                1..=MAX_IMPORT_EVENTS,
            )?,
            max_batch_bytes,
        })
    }
}
