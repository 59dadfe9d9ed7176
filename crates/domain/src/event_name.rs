//! `event`: the event name (docs/mixpanel-api.md §1.6).

use crate::error::FieldError;
use crate::newtype::{check_max_bytes, display_as_str, string_newtype};
use crate::rules::MAX_STRING_BYTES;

string_newtype! {
    /// An event name: not empty or only whitespace, at most 255 bytes. Longer names are rejected,
    /// not truncated, so the mapper can report them.
    pub struct EventName;
}
display_as_str!(EventName);

impl EventName {
    /// Parses an event name, keeping it exactly as given.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        if s.trim().is_empty() {
            return Err(FieldError::Empty { field: "event" });
        }
        check_max_bytes("event", &s, MAX_STRING_BYTES)?;
        Ok(Self(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_as_given() {
        assert_eq!(EventName::parse(" Signed Up ").unwrap(), " Signed Up ");
        assert!(EventName::parse("é".repeat(127)).is_ok());
    }

    #[test]
    fn rejects_blank_names() {
        for s in ["", "   ", "\t\n"] {
            assert_eq!(
                EventName::parse(s).unwrap_err(),
                FieldError::Empty { field: "event" }
            );
        }
    }

    #[test]
    fn rejects_names_over_255_bytes() {
        let err = EventName::parse("n".repeat(256)).unwrap_err();
        assert_eq!(err.rule(), "max_bytes");
        assert!(err.to_string().starts_with("`event` is invalid: `nnn"));
        assert!(
            err.to_string()
                .ends_with("is 256 bytes long; at most 255 bytes are allowed")
        );
    }
}
