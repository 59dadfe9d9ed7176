//! A Mixpanel project's identity: its token and its numeric id (docs/mixpanel-api.md §1.2, §2.1).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::error::{FieldError, preview};
use crate::newtype::{check_not_empty, string_newtype};

/// The longest project token accepted. Real tokens are 32 hex characters.
pub const MAX_PROJECT_TOKEN_BYTES: usize = 64;
const TOKEN_FIELD: &str = "$token";
const REDACTED: &str = "[REDACTED]";

string_newtype! {
    /// A project token: 1 to 64 bytes of `[A-Za-z0-9_-]`. Real tokens are 32 hex characters; the
    /// emulator's is `demo-token`.
    ///
    /// `Debug` and `Display` print `[REDACTED]` (credentials stay out of logs); use
    /// [`ProjectToken::as_str`] to put the token on the wire.
    pub struct ProjectToken;
}

impl ProjectToken {
    /// Parses a project token. Errors never quote the token.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        check_not_empty(TOKEN_FIELD, &s)?;
        if s.len() > MAX_PROJECT_TOKEN_BYTES {
            return Err(FieldError::TooLong {
                field: TOKEN_FIELD,
                value: REDACTED.into(),
                bytes: s.len(),
                max: MAX_PROJECT_TOKEN_BYTES,
            });
        }
        if let Some(ch) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        {
            return Err(FieldError::InvalidChar {
                field: TOKEN_FIELD,
                value: REDACTED.into(),
                ch,
                allowed: "A-Z, a-z, 0-9, '_' and '-'",
            });
        }
        Ok(Self(s))
    }
}

impl fmt::Debug for ProjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProjectToken").field(&REDACTED).finish()
    }
}

impl fmt::Display for ProjectToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A Mixpanel project id: a whole number greater than 0. Serializes as a number; deserializes
/// from a number or a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProjectId(u64);

impl ProjectId {
    /// Wraps a project id, rejecting 0.
    pub fn new(id: u64) -> Result<Self, FieldError> {
        if id == 0 {
            return Err(FieldError::NotAPositiveInteger {
                field: "project_id",
                value: "0".into(),
            });
        }
        Ok(Self(id))
    }

    /// Parses a decimal project id, ignoring surrounding whitespace.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let err = || FieldError::NotAPositiveInteger {
            field: "project_id",
            value: preview(s),
        };
        let id = s.trim().parse::<u64>().map_err(|_| err())?;
        Self::new(id).map_err(|_| err())
    }

    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for ProjectId {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<u64> for ProjectId {
    type Error = FieldError;
    fn try_from(id: u64) -> Result<Self, Self::Error> {
        Self::new(id)
    }
}

impl From<ProjectId> for u64 {
    fn from(id: ProjectId) -> u64 {
        id.0
    }
}

impl Serialize for ProjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ProjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProjectIdVisitor;

        impl Visitor<'_> for ProjectIdVisitor {
            type Value = ProjectId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Mixpanel project id (a whole number greater than 0)")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ProjectId, E> {
                ProjectId::new(v).map_err(E::custom)
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ProjectId, E> {
                let err = || {
                    E::custom(FieldError::NotAPositiveInteger {
                        field: "project_id",
                        value: v.to_string(),
                    })
                };
                u64::try_from(v)
                    .map_err(|_| err())
                    .and_then(|v| self.visit_u64(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProjectId, E> {
                ProjectId::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(ProjectIdVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_allow_hex_and_the_emulator_token() {
        assert!(ProjectToken::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert_eq!(
            ProjectToken::parse("demo-token").unwrap().as_str(),
            "demo-token"
        );
        assert!(ProjectToken::parse("a_b").is_ok());
    }

    #[test]
    fn token_errors_never_quote_the_token() {
        let err = ProjectToken::parse("secret.value").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`$token` is invalid: `[REDACTED]` contains `.`; only A-Z, a-z, 0-9, '_' and '-' are allowed"
        );
        let err = ProjectToken::parse("s".repeat(65)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`$token` is invalid: `[REDACTED]` is 65 bytes long; at most 64 bytes are allowed"
        );
        assert_eq!(
            ProjectToken::parse("").unwrap_err(),
            FieldError::Empty { field: "$token" }
        );
    }

    #[test]
    fn token_debug_and_display_are_redacted_but_serde_is_not() {
        let token = ProjectToken::parse("abc123").unwrap();
        assert_eq!(
            format!("{token} {token:?}"),
            "[REDACTED] ProjectToken(\"[REDACTED]\")"
        );
        assert_eq!(serde_json::to_string(&token).unwrap(), r#""abc123""#);
    }

    #[test]
    fn project_ids_are_positive() {
        assert_eq!(ProjectId::parse(" 12345 ").unwrap().get(), 12345);
        assert_eq!(
            ProjectId::parse("0").unwrap_err().to_string(),
            "`project_id` is invalid: `0` is not a whole number greater than 0"
        );
        assert!(ProjectId::parse("-3").is_err());
        assert!(ProjectId::parse("12a").is_err());
        assert!(ProjectId::new(0).is_err());
        assert_eq!(ProjectId::new(7).unwrap().to_string(), "7");
    }

    #[test]
    fn project_id_serde_takes_numbers_and_strings() {
        let id: ProjectId = serde_json::from_str("42").unwrap();
        assert_eq!(id.get(), 42);
        let id: ProjectId = serde_json::from_str(r#""42""#).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "42");
        assert!(serde_json::from_str::<ProjectId>("0").is_err());
        assert!(serde_json::from_str::<ProjectId>("-1").is_err());
        assert!(serde_json::from_str::<ProjectId>("1.5").is_err());
    }
}
