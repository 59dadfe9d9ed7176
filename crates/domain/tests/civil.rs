//! Property tests for the calendar arithmetic against an independent day-counting oracle.

use mixsync_domain::civil::{civil_from_days, days_from_civil, format_date, is_valid_date};
use proptest::prelude::*;

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days since 1970-01-01 by walking years and months one at a time (slow, obviously right).
fn oracle_days(y: i64, m: u32, d: u32) -> i64 {
    let mut days = 0i64;
    if y >= 1970 {
        for year in 1970..y {
            days += if is_leap(year) { 366 } else { 365 };
        }
    } else {
        for year in y..1970 {
            days -= if is_leap(year) { 366 } else { 365 };
        }
    }
    let months = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    days + months[..(m - 1) as usize].iter().sum::<i64>() + i64::from(d) - 1
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn days_round_trip_over_all_of_i64(days in any::<i64>()) {
        let (y, m, d) = civil_from_days(days);
        prop_assert!(is_valid_date(y, m, d));
        prop_assert_eq!(days_from_civil(y, m, d), days);
    }

    #[test]
    fn dates_round_trip_over_a_million_years(y in -1_000_000i64..1_000_000, m in 1u32..=12, d in 1u32..=31) {
        prop_assume!(is_valid_date(y, m, d));
        prop_assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
    }

    #[test]
    fn matches_the_day_counting_oracle(y in 1200i64..2800, m in 1u32..=12, d in 1u32..=31) {
        prop_assume!(is_valid_date(y, m, d));
        prop_assert_eq!(days_from_civil(y, m, d), oracle_days(y, m, d));
    }

    #[test]
    fn consecutive_days_are_consecutive_dates(days in -1_000_000_000i64..1_000_000_000) {
        let (y, m, d) = civil_from_days(days);
        let next = civil_from_days(days + 1);
        let expected = if is_valid_date(y, m, d + 1) {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
        prop_assert_eq!(next, expected);
    }

    #[test]
    fn formatted_dates_are_iso(days in -719_528i64..2_932_897) {
        let (y, m, d) = civil_from_days(days);
        prop_assert_eq!(format_date(days), format!("{y:04}-{m:02}-{d:02}"));
    }
}
