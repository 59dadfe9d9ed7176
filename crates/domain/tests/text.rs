//! Property tests for truncation and the deny list.

use mixsync_domain::rules::{DENIED_IDS, TruncateUnit, is_denied_id, truncate_str};
use proptest::prelude::*;

fn unit() -> impl Strategy<Value = TruncateUnit> {
    prop_oneof![Just(TruncateUnit::Bytes), Just(TruncateUnit::Chars)]
}

fn len(s: &str, unit: TruncateUnit) -> usize {
    match unit {
        TruncateUnit::Bytes => s.len(),
        TruncateUnit::Chars => s.chars().count(),
    }
}

/// Flips the case of the letters selected by `mask`, and pads with whitespace.
fn disguise(s: &str, mask: u64, pad: usize) -> String {
    let flipped: String = s
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    let ws = [" ", "\t", "\n", "  "][pad % 4];
    format!("{ws}{flipped}{ws}")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn truncation_is_the_longest_fitting_prefix(s in any::<String>(), max in 0usize..64, unit in unit()) {
        let t = truncate_str(&s, max, unit);
        prop_assert!(s.starts_with(t));
        prop_assert!(len(t, unit) <= max);
        // Never splits a character, and never cuts more than needed.
        prop_assert!(s.is_char_boundary(t.len()));
        if let Some(next) = s[t.len()..].chars().next() {
            let longer = &s[..t.len() + next.len_utf8()];
            prop_assert!(len(longer, unit) > max);
        }
    }

    #[test]
    fn short_strings_are_untouched(s in "\\PC{0,20}", unit in unit()) {
        prop_assert_eq!(truncate_str(&s, 80, unit), s.as_str());
    }

    #[test]
    fn deny_list_ignores_case_and_surrounding_whitespace(
        i in 0..DENIED_IDS.len(), mask in any::<u64>(), pad in 0usize..4,
    ) {
        prop_assert!(is_denied_id(&disguise(DENIED_IDS[i], mask, pad)));
    }

    #[test]
    fn other_ids_are_not_denied(s in "[a-zA-Z0-9_-]{1,20}") {
        let listed = DENIED_IDS.iter().any(|d| d.eq_ignore_ascii_case(&s));
        prop_assert_eq!(is_denied_id(&s), listed);
    }
}
