//! Identifiers: UUID v7 text, so ids sort by creation time.

/// A new, time-ordered id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
