/// A configuration variable that is missing or cannot be used. Every variant names the variable;
/// none holds a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The value is not valid UTF-8.
    #[error("{var} is not valid UTF-8")]
    NotUnicode {
        /// The variable.
        var: &'static str,
    },
    /// A required variable is unset or blank.
    #[error("{var} is not set: {what}")]
    Missing {
        /// The variable.
        var: &'static str,
        /// What to set it to.
        what: String,
    },
    /// The value does not parse, or is out of range.
    #[error("{var}={value} is invalid: expected {expected}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// Its value (`[REDACTED]` for a secret, a URL without its password).
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// The value parses but what it names cannot be used (a file that cannot be read, say).
    #[error("{var}={value}: {reason}")]
    Unusable {
        /// The variable.
        var: &'static str,
        /// Its value, as for [`ConfigError::Invalid`].
        value: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl ConfigError {
    /// The variable the error is about.
    pub fn var(&self) -> &'static str {
        match self {
            ConfigError::NotUnicode { var }
            | ConfigError::Missing { var, .. }
            | ConfigError::Invalid { var, .. }
            | ConfigError::Unusable { var, .. } => var,
        }
    }

    /// `var`'s `value` is not what is accepted; `expected` says what is.
    pub fn invalid(
        var: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            var,
            value: value.into(),
            expected: expected.into(),
        }
    }

    /// `var`'s `value` parses but cannot be used, for `reason`.
    pub fn unusable(
        var: &'static str,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError::Unusable {
            var,
            value: value.into(),
            reason: reason.into(),
        }
    }
}
