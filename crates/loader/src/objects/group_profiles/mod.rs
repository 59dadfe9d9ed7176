//! Group profiles, sent to `POST /groups` (docs/mixpanel-api.md §3) by [`super::Profiles::groups`]:
//! their batch limits.

mod config;

pub use config::GroupProfilesConfig;
