//! Profile updates for `/engage` (users) and `/groups` (groups) (docs/mixpanel-api.md §2, §3).

mod error;
mod operation;
mod update;

pub use error::ProfileError;
pub use operation::ProfileOperation;
pub use update::{Modifiers, ProfileTarget, ProfileUpdate};
