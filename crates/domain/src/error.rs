//! Errors for values that break one of Mixpanel's field rules, and the umbrella [`DomainError`].

use crate::event_time::TimeError;
use crate::profile::ProfileError;
use crate::rules::LimitError;

/// How many characters of an offending value an error message quotes.
const PREVIEW_CHARS: usize = 64;

/// A field value that breaks one of Mixpanel's rules. Messages name the field, quote the value
/// (shortened, or redacted for secrets) and state the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The value is empty (or only whitespace where that matters).
    #[error("`{field}` is invalid: it is empty; a non-empty value is required")]
    Empty {
        /// The field, as Mixpanel names it (`event`, `$insert_id`, …).
        field: &'static str,
    },
    /// The value is longer than the field allows.
    #[error(
        "`{field}` is invalid: `{value}` is {bytes} bytes long; at most {max} bytes are allowed"
    )]
    TooLong {
        /// The field, as Mixpanel names it.
        field: &'static str,
        /// The start of the value.
        value: String,
        /// The value's length in bytes.
        bytes: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The value is one of the placeholder ids Mixpanel rejects ([`crate::rules::DENIED_IDS`]).
    #[error(
        "`{field}` is invalid: `{value}` is a placeholder id Mixpanel rejects (null, none, anonymous, 0, -1, … in any case)"
    )]
    Denied {
        /// The field, as Mixpanel names it.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The value contains a character the field does not allow.
    #[error("`{field}` is invalid: `{value}` contains `{ch}`; only {allowed} are allowed")]
    InvalidChar {
        /// The field, as Mixpanel names it.
        field: &'static str,
        /// The start of the value.
        value: String,
        /// The first character that is not allowed.
        ch: char,
        /// The allowed characters, in words.
        allowed: &'static str,
    },
    /// The value is not a whole number greater than zero.
    #[error("`{field}` is invalid: `{value}` is not a whole number greater than 0")]
    NotAPositiveInteger {
        /// The field.
        field: &'static str,
        /// The start of the value.
        value: String,
    },
}

impl FieldError {
    /// The field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Empty { field }
            | Self::TooLong { field, .. }
            | Self::Denied { field, .. }
            | Self::InvalidChar { field, .. }
            | Self::NotAPositiveInteger { field, .. } => field,
        }
    }

    /// A stable identifier of the broken rule, for failed-record listings and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Empty { .. } => "required",
            Self::TooLong { .. } => "max_bytes",
            Self::Denied { .. } => "denied_value",
            Self::InvalidChar { .. } => "allowed_characters",
            Self::NotAPositiveInteger { .. } => "positive_integer",
        }
    }
}

/// A string that is not one of an enum's names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`; expected one of: {}", .expected.join(", "))]
pub struct ParseEnumError {
    /// What was being parsed, e.g. `object kind`.
    pub what: &'static str,
    /// The start of the rejected string.
    pub value: String,
    /// The accepted names.
    pub expected: &'static [&'static str],
}

/// Any error that makes a single record unacceptable to Mixpanel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A field value breaks a field rule.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A time is unreadable or outside Mixpanel's window.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A record breaks a size or shape limit.
    #[error(transparent)]
    Limit(#[from] LimitError),
    /// A profile update is malformed.
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

impl DomainError {
    /// The field the error is about, as Mixpanel names it.
    pub fn field(&self) -> &str {
        match self {
            Self::Field(e) => e.field(),
            Self::Time(e) => e.field(),
            Self::Limit(e) => e.field(),
            Self::Profile(e) => e.field(),
        }
    }

    /// A stable identifier of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Field(e) => e.rule(),
            Self::Time(e) => e.rule(),
            Self::Limit(e) => e.rule(),
            Self::Profile(e) => e.rule(),
        }
    }
}

/// The start of `s` for an error message: at most [`PREVIEW_CHARS`] characters, control
/// characters escaped, `…` appended when shortened.
pub(crate) fn preview(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(PREVIEW_CHARS + 8));
    for (i, c) in s.chars().enumerate() {
        if i == PREVIEW_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_shortens_and_escapes() {
        assert_eq!(preview("abc"), "abc");
        assert_eq!(preview("a\nb\u{0}"), "a\\nb\\0");
        let long = "é".repeat(100);
        assert_eq!(preview(&long), format!("{}…", "é".repeat(64)));
    }

    #[test]
    fn messages_say_what_where_and_which_rule() {
        let e = FieldError::InvalidChar {
            field: "$insert_id",
            value: "ab_c".into(),
            ch: '_',
            allowed: "A-Z, a-z, 0-9 and '-'",
        };
        assert_eq!(
            e.to_string(),
            "`$insert_id` is invalid: `ab_c` contains `_`; only A-Z, a-z, 0-9 and '-' are allowed"
        );
        assert_eq!(e.rule(), "allowed_characters");
        let e = ParseEnumError {
            what: "residency",
            value: "mars".into(),
            expected: &["us", "eu", "in"],
        };
        assert_eq!(
            e.to_string(),
            "unknown residency `mars`; expected one of: us, eu, in"
        );
    }

    #[test]
    fn domain_error_forwards_field_and_rule() {
        let e = DomainError::from(FieldError::Empty { field: "event" });
        assert_eq!(e.field(), "event");
        assert_eq!(e.rule(), "required");
        assert_eq!(
            e.to_string(),
            "`event` is invalid: it is empty; a non-empty value is required"
        );
    }
}
