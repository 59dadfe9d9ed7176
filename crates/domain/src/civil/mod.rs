//! Proleptic Gregorian calendar arithmetic (Howard Hinnant's `days_from_civil` /
//! `civil_from_days`) and the date-time text Mixpanel expects, without a date-time dependency.
//!
//! Mixpanel reads datetime properties as UTC `YYYY-MM-DDTHH:MM:SS` strings and dates as
//! `YYYY-MM-DD`.

mod format;
mod parse;

pub use format::{format_date, format_datetime, format_datetime_millis};
pub use parse::parse_datetime;

/// Milliseconds in a day.
pub(crate) const MS_PER_DAY: i64 = 86_400_000;
/// Days from 0000-03-01 to 1970-01-01.
const EPOCH_SHIFT: i128 = 719_468;
const DAYS_PER_ERA: i128 = 146_097;

/// Days since 1970-01-01 of the date `year-month-day` (month 1..=12, day 1..=31).
///
/// Exact for every year whose day count fits `i64` (|year| up to about 2.5 × 10^16).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Counting years from March puts the leap day last, so day-of-year is a closed formula.
    let y = i128::from(year) - i128::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i128::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i128::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * DAYS_PER_ERA + doe - EPOCH_SHIFT) as i64
}

/// The date `(year, month, day)` that is `days` days after 1970-01-01 (negative: before).
/// Defined for every `i64`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + EPOCH_SHIFT;
    let era = z.div_euclid(DAYS_PER_ERA);
    let doe = z - era * DAYS_PER_ERA;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    // |year| <= |days| / 365 + 1, so it always fits.
    (year as i64, month, day)
}

/// Whether `year-month-day` is a real calendar date.
pub fn is_valid_date(year: i64, month: u32, day: u32) -> bool {
    (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year.rem_euclid(4) == 0
            && (year.rem_euclid(100) != 0 || year.rem_euclid(400) == 0) =>
        {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (days since 1970-01-01, year, month, day), checked against `date -u -d @…`.
    const KNOWN: &[(i64, i64, u32, u32)] = &[
        (0, 1970, 1, 1),
        (-1, 1969, 12, 31),
        (31, 1970, 2, 1),
        (365, 1971, 1, 1),
        (789, 1972, 2, 29),
        (10_957, 2000, 1, 1),
        (11_016, 2000, 2, 29),
        (11_017, 2000, 3, 1),
        (19_723, 2024, 1, 1),
        (19_782, 2024, 2, 29),
        (20_454, 2026, 1, 1),
        (47_541, 2100, 3, 1),
        (2_932_896, 9999, 12, 31),
        (-719_468, 0, 3, 1),
        (-719_528, 0, 1, 1),
        (-141_427, 1582, 10, 15),
        (-25_567, 1900, 1, 1),
    ];

    #[test]
    fn matches_a_known_table() {
        for &(days, y, m, d) in KNOWN {
            assert_eq!(civil_from_days(days), (y, m, d), "days {days}");
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert!(is_valid_date(y, m, d));
        }
    }

    #[test]
    fn extremes_do_not_overflow() {
        let (y, m, d) = civil_from_days(i64::MAX);
        assert_eq!(days_from_civil(y, m, d), i64::MAX);
        let (y, m, d) = civil_from_days(i64::MIN);
        assert_eq!(days_from_civil(y, m, d), i64::MIN);
    }

    #[test]
    fn validates_dates() {
        assert!(is_valid_date(2024, 2, 29));
        assert!(!is_valid_date(2023, 2, 29));
        assert!(!is_valid_date(1900, 2, 29));
        assert!(is_valid_date(2000, 2, 29));
        assert!(!is_valid_date(2024, 4, 31));
        assert!(!is_valid_date(2024, 13, 1));
        assert!(!is_valid_date(2024, 1, 0));
    }
}
