//! How large one `/engage` request may get: Mixpanel's 2000 updates (§2.4). Mixpanel documents no
//! byte limit for the request, only 1 MB per update; the body is kept under the same 9.8 MiB as
//! `/import` (as mp-import does for every endpoint), so 2000 large updates go in several requests.

use mixsync_domain::rules::{LOADER_IMPORT_BYTES, MAX_ENGAGE_UPDATES, MAX_IMPORT_BYTES};

use crate::config::{ConfigError, Vars};

/// Batch limits for `/engage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserProfilesConfig {
    /// Update objects per request (default and maximum 2000).
    pub max_batch_updates: usize,
    /// `MIXSYNC_LOADER_MAX_BATCH_BYTES` (default 10276045, maximum 10485760), as for events:
    /// JSON bytes per request.
    pub max_batch_bytes: usize,
}

impl Default for UserProfilesConfig {
    fn default() -> Self {
        UserProfilesConfig {
            max_batch_updates: MAX_ENGAGE_UPDATES,
            max_batch_bytes: LOADER_IMPORT_BYTES,
        }
    }
}

impl UserProfilesConfig {
    /// Reads the variables through `lookup`.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = UserProfilesConfig::default();
        Ok(UserProfilesConfig {
            max_batch_bytes: max_batch_bytes(&Vars(lookup), defaults.max_batch_bytes)?,
            ..defaults
        })
    }
}

/// `MIXSYNC_LOADER_MAX_BATCH_BYTES`, shared by the profile objects.
pub(crate) fn max_batch_bytes<F: Fn(&str) -> Option<String>>(
    var: &Vars<'_, F>,
    default: usize,
) -> Result<usize, ConfigError> {
    var.number(
        "MIXSYNC_LOADER_MAX_BATCH_BYTES",
        default,
        1024..=MAX_IMPORT_BYTES,
    )
}
