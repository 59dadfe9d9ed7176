//! Property tests for `$insert_id` parsing and derivation.

use mixsync_domain::InsertId;
use proptest::prelude::*;

/// The deny list, typed again from docs/mixpanel-api.md §1.6 so the test does not trust the crate.
const DENIED: [&str; 17] = [
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

/// `^[A-Za-z0-9-]{1,36}$` and not denied (ASCII case-insensitively), without a regex.
fn oracle(s: &str) -> bool {
    let allowed = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'
    };
    !s.is_empty()
        && s.len() <= 36
        && s.chars().all(allowed)
        && !DENIED.iter().any(|d| d.eq_ignore_ascii_case(s))
}

/// Strings near the boundary: mostly allowed characters, some forbidden ones, some denied values.
fn candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9-]{0,40}",
        2 => "[A-Za-z0-9_ .é€/-]{0,40}",
        1 => proptest::sample::select(DENIED.to_vec()).prop_map(String::from),
        1 => proptest::sample::select(DENIED.to_vec())
            .prop_map(|d| d.to_uppercase()),
        1 => any::<String>(),
    ]
}

fn layout_ok(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_accepts_exactly_what_the_rule_allows(s in candidate()) {
        prop_assert_eq!(InsertId::parse(s.as_str()).is_ok(), oracle(&s), "{:?}", s);
    }

    #[test]
    fn parse_keeps_the_value(s in "[A-Za-z0-9-]{1,36}") {
        prop_assume!(oracle(&s));
        let id = InsertId::parse(s.as_str()).unwrap();
        prop_assert_eq!(id.as_str(), s.as_str());
    }

    #[test]
    fn derive_is_stable_valid_and_uuid_shaped(parts in proptest::collection::vec(any::<Vec<u8>>(), 0..6)) {
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let id = InsertId::derive(&refs);
        prop_assert_eq!(&id, &InsertId::derive(&refs));
        prop_assert_eq!(id.as_str().len(), 36);
        prop_assert!(layout_ok(id.as_str()), "{}", id);
        prop_assert_eq!(InsertId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn derive_tells_distinct_inputs_apart(
        a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..4),
        b in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..4), 0..4),
    ) {
        let ra: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
        let rb: Vec<&[u8]> = b.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(a == b, InsertId::derive(&ra) == InsertId::derive(&rb));
    }

    #[test]
    fn derive_separates_every_split_of_the_same_bytes(bytes in proptest::collection::vec(any::<u8>(), 2..32), at in any::<proptest::sample::Index>()) {
        let cut = 1 + at.index(bytes.len() - 1);
        let whole = InsertId::derive(&[&bytes]);
        let split = InsertId::derive(&[&bytes[..cut], &bytes[cut..]]);
        prop_assert_ne!(whole, split);
    }
}
