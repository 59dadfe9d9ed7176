//! Dates and date-times as text.

use std::fmt::Write as _;

use super::{MS_PER_DAY, civil_from_days};

/// `YYYY-MM-DD` for `days` since 1970-01-01. Years outside 0..=9999 get a `-` sign or more digits.
pub fn format_date(days: i64) -> String {
    let mut out = String::with_capacity(10);
    push_date(&mut out, days);
    out
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC, no zone suffix) for epoch milliseconds: the datetime property
/// format Mixpanel expects. Sub-second digits are dropped (rounding toward the past).
pub fn format_datetime(ms: i64) -> String {
    let mut out = String::with_capacity(19);
    push_datetime(&mut out, ms);
    out
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds: for people reading logs and errors.
pub fn format_datetime_millis(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_datetime(&mut out, ms);
    let _ = write!(out, ".{:03}Z", ms.rem_euclid(1000));
    out
}

fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    // Writing to a String cannot fail.
    let _ = if y < 0 {
        write!(out, "-{:04}-{m:02}-{d:02}", y.unsigned_abs())
    } else {
        write!(out, "{y:04}-{m:02}-{d:02}")
    };
}

fn push_datetime(out: &mut String, ms: i64) {
    push_date(out, ms.div_euclid(MS_PER_DAY));
    let secs = ms.rem_euclid(MS_PER_DAY) / 1000;
    let _ = write!(
        out,
        "T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates_and_datetimes() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(19_782), "2024-02-29");
        assert_eq!(format_date(-719_528), "0000-01-01");
        assert_eq!(format_date(-719_529), "-0001-12-31");
        assert_eq!(format_date(2_932_897), "10000-01-01");
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00");
        assert_eq!(format_datetime(1_700_000_000_123), "2023-11-14T22:13:20");
        assert_eq!(format_datetime(-1), "1969-12-31T23:59:59");
        assert_eq!(format_datetime_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_datetime_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
