//! `$insert_id`: the event deduplication key (docs/mixpanel-api.md §1.6).

use sha2::{Digest, Sha256};

use crate::error::{FieldError, preview};
use crate::newtype::{check_max_bytes, check_not_empty, display_as_str, string_newtype};
use crate::rules::{MAX_INSERT_ID_BYTES, is_denied_id, is_insert_id_char};
use crate::uuid_text::hyphenated;

const FIELD: &str = "$insert_id";
/// Separates derived ids from any other SHA-256 use, and versions the derivation: changing it
/// would change every id and let resent events through Mixpanel's deduplication.
const DERIVE_DOMAIN: &[u8] = b"mixsync/insert_id/v1\0";

string_newtype! {
    /// An `$insert_id`: 1 to 36 bytes of `[A-Za-z0-9-]`, not a placeholder from
    /// [`DENIED_IDS`](crate::rules::DENIED_IDS).
    pub struct InsertId;
}
display_as_str!(InsertId);

impl InsertId {
    /// Parses an `$insert_id`, checking emptiness, length, characters and the deny list in that
    /// order.
    pub fn parse(s: impl Into<String>) -> Result<Self, FieldError> {
        let s = s.into();
        check_not_empty(FIELD, &s)?;
        check_max_bytes(FIELD, &s, MAX_INSERT_ID_BYTES)?;
        if let Some(ch) = s
            .chars()
            .find(|c| !c.is_ascii() || !is_insert_id_char(*c as u8))
        {
            return Err(FieldError::InvalidChar {
                field: FIELD,
                value: preview(&s),
                ch,
                allowed: "A-Z, a-z, 0-9 and '-'",
            });
        }
        if is_denied_id(&s) {
            return Err(FieldError::Denied {
                field: FIELD,
                value: s,
            });
        }
        Ok(Self(s))
    }

    /// Derives a stable id from the values of the columns that make a row unique, for rows
    /// without a natural id.
    ///
    /// The id is the first 122 bits of SHA-256 over the length-prefixed parts, laid out as a
    /// lowercase RFC 9562 version-8 UUID (`xxxxxxxx-xxxx-8xxx-[89ab]xxx-xxxxxxxxxxxx`), so it is
    /// always 36 valid characters and never the all-zero placeholder. Length prefixes keep
    /// `["ab", "c"]` and `["a", "bc"]` apart. The same parts give the same id in every release.
    pub fn derive(parts: &[&[u8]]) -> InsertId {
        let mut hasher = Sha256::new();
        hasher.update(DERIVE_DOMAIN);
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        InsertId(hyphenated(&bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for s in [
            "a",
            "ABC-123",
            "8a66b5a0-2cf4-4d50-9a6d-7c1d0b1f1e2a",
            &"x".repeat(36),
        ] {
            assert_eq!(InsertId::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn rejects_bad_characters_naming_the_first_one() {
        let err = InsertId::parse("ab_c").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`$insert_id` is invalid: `ab_c` contains `_`; only A-Z, a-z, 0-9 and '-' are allowed"
        );
        assert!(matches!(
            InsertId::parse("abé"),
            Err(FieldError::InvalidChar { ch: 'é', .. })
        ));
        assert!(InsertId::parse("a b").is_err());
    }

    #[test]
    fn rejects_empty_and_too_long() {
        assert_eq!(
            InsertId::parse("").unwrap_err().to_string(),
            "`$insert_id` is invalid: it is empty; a non-empty value is required"
        );
        let err = InsertId::parse("x".repeat(37)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "`$insert_id` is invalid: `{}` is 37 bytes long; at most 36 bytes are allowed",
                "x".repeat(37)
            )
        );
    }

    #[test]
    fn rejects_placeholders() {
        for s in [
            "0",
            "-1",
            "NULL",
            "None",
            "00000000-0000-0000-0000-000000000000",
        ] {
            assert!(
                matches!(InsertId::parse(s), Err(FieldError::Denied { .. })),
                "{s}"
            );
        }
    }

    #[test]
    fn derive_is_a_stable_version_8_uuid() {
        // Pinned (checked with Python hashlib): a change here changes every derived id.
        let id = InsertId::derive(&[b"user-1", b"2024-01-01"]);
        assert_eq!(id.as_str(), "bf2fa823-ff6f-8f23-84e7-30587a50dfb8");
        assert_eq!(InsertId::derive(&[]).as_str().len(), 36);
        assert_eq!(InsertId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn derive_length_prefixes_parts() {
        assert_ne!(
            InsertId::derive(&[b"ab", b"c"]),
            InsertId::derive(&[b"a", b"bc"])
        );
        assert_ne!(InsertId::derive(&[b"a"]), InsertId::derive(&[b"a", b""]));
        assert_ne!(InsertId::derive(&[]), InsertId::derive(&[b""]));
    }
}
