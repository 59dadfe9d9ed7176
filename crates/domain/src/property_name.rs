//! Property names (docs/mixpanel-api.md §1.6, §2.4).

use crate::error::FieldError;
use crate::newtype::{check_max_bytes, check_not_empty, display_as_str, string_newtype};
use crate::rules::MAX_PROPERTY_NAME_BYTES;

string_newtype! {
    /// A property name: non-empty, at most 255 bytes. Mixpanel would truncate longer names;
    /// mixsync rejects them so two long names can never collide silently.
    pub struct PropertyName;
}
display_as_str!(PropertyName);

impl PropertyName {
    /// Parses a property name.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        check_not_empty("property", &s)?;
        check_max_bytes("property", &s, MAX_PROPERTY_NAME_BYTES)?;
        Ok(Self(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_non_empty_and_at_most_255_bytes() {
        assert_eq!(PropertyName::parse("$email").unwrap(), "$email");
        assert_eq!(
            PropertyName::parse("").unwrap_err().to_string(),
            "`property` is invalid: it is empty; a non-empty value is required"
        );
        assert!(PropertyName::parse("p".repeat(255)).is_ok());
        assert_eq!(
            PropertyName::parse("p".repeat(256)).unwrap_err().rule(),
            "max_bytes"
        );
    }
}
