//! What can be wrong with a profile update's value.

/// A profile operation's value has the wrong shape (docs/mixpanel-api.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The value (or one property of it) is not what the operation takes.
    #[error("`{field}` is invalid: expected {expected}, got `{found}`")]
    BadValue {
        /// The operation key, or key and property: `$add`, `$add.visits`.
        field: String,
        /// What the operation takes, in words.
        expected: &'static str,
        /// The start of the value found, as JSON.
        found: String,
    },
}

impl ProfileError {
    /// The field the error is about, e.g. `$add.visits`.
    pub fn field(&self) -> &str {
        match self {
            Self::BadValue { field, .. } => field,
        }
    }

    /// A stable identifier of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::BadValue { .. } => "operation_value",
        }
    }
}
