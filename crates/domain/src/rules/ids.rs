//! Identifier rules shared by `distinct_id` and `$insert_id` (docs/mixpanel-api.md §1.6).

/// Values Mixpanel rejects as `distinct_id` and `$insert_id` (docs/mixpanel-api.md §1.6),
/// lowercase. Matching is case-insensitive, see [`is_denied_id`].
pub const DENIED_IDS: &[&str] = &[
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// Whether `s` is one of [`DENIED_IDS`], ignoring ASCII case and surrounding whitespace.
pub fn is_denied_id(s: &str) -> bool {
    let s = s.trim();
    DENIED_IDS
        .iter()
        .any(|denied| denied.eq_ignore_ascii_case(s))
}

/// Whether `b` may appear in an `$insert_id`: `[A-Za-z0-9-]` (docs/mixpanel-api.md §1.6).
pub fn is_insert_id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_list_has_the_seventeen_documented_values() {
        assert_eq!(DENIED_IDS.len(), 17);
        assert!(DENIED_IDS.iter().all(|d| *d == d.to_ascii_lowercase()));
    }

    #[test]
    fn denied_ids_match_ignoring_case_and_whitespace() {
        for s in [
            "null",
            "NULL",
            "Null",
            " none ",
            "\tUndefined\n",
            "N/A",
            "<NIL>",
            "-1",
            "[]",
        ] {
            assert!(is_denied_id(s), "{s:?}");
        }
        for s in [
            "nulls",
            "n a",
            "1",
            "",
            "user-1",
            "00000000-0000-0000-0000-000000000001",
        ] {
            assert!(!is_denied_id(s), "{s:?}");
        }
    }

    #[test]
    fn insert_id_chars_are_ascii_alphanumerics_and_hyphen() {
        let allowed: Vec<u8> = (0..=255u8).filter(|b| is_insert_id_char(*b)).collect();
        assert_eq!(allowed.len(), 26 + 26 + 10 + 1);
        for b in [b'_', b' ', b'.', b'/', b'+', 0xC3] {
            assert!(!is_insert_id_char(b));
        }
    }
}
