//! The impls every validated string newtype shares, and the checks they are built from.

use crate::error::{FieldError, preview};

/// Declares a validated string newtype. The type must provide
/// `fn parse(s: impl Into<String>) -> Result<Self, FieldError>`; this macro adds `as_str`,
/// `into_string`, `AsRef<str>`, `TryFrom<String>`, `FromStr`, comparisons with `str`, and serde
/// (serialized as the plain string, deserialized through `parse`). `Debug` and `Display` are left
/// to the type so that secrets can redact them.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
        #[serde(try_from = "String")]
        $vis struct $name(String);

        impl $name {
            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The value as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::error::FieldError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::error::FieldError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

/// Implements `Debug` as `Name("value")` and `Display` as the plain value.
macro_rules! display_as_str {
    ($name:ident) => {
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub(crate) use {display_as_str, string_newtype};

/// Rejects an empty `s`.
pub(crate) fn check_not_empty(field: &'static str, s: &str) -> Result<(), FieldError> {
    if s.is_empty() {
        return Err(FieldError::Empty { field });
    }
    Ok(())
}

/// Rejects `s` longer than `max` bytes.
pub(crate) fn check_max_bytes(field: &'static str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.len() > max {
        return Err(FieldError::TooLong {
            field,
            value: preview(s),
            bytes: s.len(),
            max,
        });
    }
    Ok(())
}
