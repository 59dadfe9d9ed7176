//! User profiles, sent to `POST /engage` (docs/mixpanel-api.md §2) by [`super::Profiles::users`]:
//! their batch limits.

mod config;

pub use config::UserProfilesConfig;
pub(crate) use config::max_batch_bytes;
