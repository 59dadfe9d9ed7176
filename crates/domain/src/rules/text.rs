//! Truncating strings the way Mixpanel does (docs/mixpanel-api.md §1.6).

use serde::{Deserialize, Serialize};

/// The unit in which a string length limit is counted. Mixpanel's docs disagree
/// (docs/mixpanel-api.md §1.6), so the emulator makes it configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TruncateUnit {
    /// UTF-8 bytes; the cut lands on a character boundary at or below the limit.
    #[default]
    Bytes,
    /// Unicode scalar values (`char`s).
    Chars,
}

/// Returns the longest prefix of `s` that is at most `max` units long and never splits a
/// character.
pub fn truncate_str(s: &str, max: usize, unit: TruncateUnit) -> &str {
    match unit {
        TruncateUnit::Bytes => {
            if s.len() <= max {
                return s;
            }
            let mut end = max;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            &s[..end]
        }
        TruncateUnit::Chars => match s.char_indices().nth(max) {
            Some((end, _)) => &s[..end],
            None => s,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cut_on_a_char_boundary() {
        assert_eq!(truncate_str("héllo", 2, TruncateUnit::Bytes), "h");
        assert_eq!(truncate_str("héllo", 3, TruncateUnit::Bytes), "hé");
        assert_eq!(truncate_str("héllo", 100, TruncateUnit::Bytes), "héllo");
        assert_eq!(truncate_str("€", 2, TruncateUnit::Bytes), "");
        assert_eq!(truncate_str("abc", 0, TruncateUnit::Bytes), "");
    }

    #[test]
    fn chars_count_scalar_values() {
        assert_eq!(truncate_str("héllo", 2, TruncateUnit::Chars), "hé");
        assert_eq!(truncate_str("€€€", 3, TruncateUnit::Chars), "€€€");
        assert_eq!(truncate_str("€€€", 0, TruncateUnit::Chars), "");
    }

    #[test]
    fn unit_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&TruncateUnit::Chars).unwrap(),
            r#""chars""#
        );
        let unit: TruncateUnit = serde_json::from_str(r#""bytes""#).unwrap();
        assert_eq!(unit, TruncateUnit::Bytes);
    }
}
