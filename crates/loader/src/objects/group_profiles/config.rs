//! How large one `/groups` request may get. Mixpanel documents 2000 updates (§3), but an older
//! limit of 200 may still apply, so mixsync sends 200 unless told otherwise. Bytes as for `/engage`.

use mixsync_domain::rules::{DEFAULT_MAX_GROUP_UPDATES, LOADER_IMPORT_BYTES};

use crate::config::{ConfigError, Vars};
use crate::objects::user_profiles::max_batch_bytes;

/// The most updates Mixpanel documents for one `/groups` request (§3).
const MAX_GROUP_UPDATES: usize = 2000;

/// Batch limits for `/groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupProfilesConfig {
    /// `MIXSYNC_LOADER_MAX_GROUP_UPDATES` (default 200, maximum 2000): update objects per request.
    /// A record with more updates than this goes alone.
    pub max_batch_updates: usize,
    /// `MIXSYNC_LOADER_MAX_BATCH_BYTES`, as for `/engage`.
    pub max_batch_bytes: usize,
}

impl Default for GroupProfilesConfig {
    fn default() -> Self {
        GroupProfilesConfig {
            max_batch_updates: DEFAULT_MAX_GROUP_UPDATES,
            max_batch_bytes: LOADER_IMPORT_BYTES,
        }
    }
}

impl GroupProfilesConfig {
    /// Reads the variables through `lookup`.
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = GroupProfilesConfig::default();
        let var = Vars(lookup);
        Ok(GroupProfilesConfig {
            max_batch_updates: var.number(
                "MIXSYNC_LOADER_MAX_GROUP_UPDATES",
                defaults.max_batch_updates,
                1..=MAX_GROUP_UPDATES,
            )?,
            max_batch_bytes: max_batch_bytes(&var, defaults.max_batch_bytes)?,
        })
    }
}
