//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), evaluated in UTC.
//!
//! Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a
//! comma-separated list of those. Day of week is 0–7 (0 and 7 are Sunday). Months and days of
//! the week may also be named by their first three letters (`JAN`–`DEC`, `SUN`–`SAT`, any case). As in classic cron,
//! when both day-of-month and day-of-week are restricted, a day matches if either does.

use mixsync_domain::civil::{civil_from_days, days_from_civil};

/// How far ahead [`Cron::next_after`] looks before deciding an expression never fires
/// (e.g. `0 0 31 2 *`): the Gregorian calendar repeats every 400 years (146,097 days, a whole
/// number of weeks), so what does not fire within them never fires. Shorter is wrong: the 1st
/// of January is a Thursday again only 11 years after 2015, and the 29th of February on a given
/// weekday can be 40 years apart.
const HORIZON_DAYS: i64 = 146_097;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Field names (for error messages), bounds, and the names a field's values may have (the
/// first name is the lowest value).
const FIELDS: [(&str, u32, u32, &[&str]); 5] = [
    ("minute", 0, 59, &[]),
    ("hour", 0, 23, &[]),
    ("day of month", 1, 31, &[]),
    ("month", 1, 12, &MONTHS),
    ("day of week", 0, 7, &WEEKDAYS),
];

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    /// Parses an expression; the error says which field is wrong and why.
    pub fn parse(expr: &str) -> Result<Self, String> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "`{expr}` has {} field(s); a cron expression has 5 (minute hour day month weekday), e.g. `*/15 * * * *`",
                parts.len()
            ));
        }
        let mut sets = [0u64; 5];
        for (i, (part, (name, lo, hi, names))) in parts.iter().zip(FIELDS).enumerate() {
            sets[i] = parse_field(part, lo, hi, names)
                .map_err(|why| format!("{name} field `{part}`: {why} (allowed {lo}-{hi})"))?;
        }
        let mut weekdays = sets[4];
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        let cron = Self {
            minutes: sets[0],
            hours: sets[1],
            days: sets[2],
            months: sets[3],
            weekdays,
            days_restricted: !parts[2].starts_with('*'),
            weekdays_restricted: !parts[4].starts_with('*'),
        };
        if cron.next_after(0).is_none() {
            return Err(format!("`{expr}` never fires (no such date)"));
        }
        Ok(cron)
    }

    /// The first minute strictly after `unix_secs` (seconds since the epoch, UTC) at which the
    /// expression fires, in seconds since the epoch; `None` if it never fires.
    pub fn next_after(&self, unix_secs: i64) -> Option<i64> {
        let mut minute = unix_secs.div_euclid(60) + 1;
        let limit = minute / 1440 + HORIZON_DAYS;
        loop {
            let day = minute.div_euclid(1440);
            if day > limit {
                return None;
            }
            let (_, month, dom) = civil_from_days(day);
            if !has(self.months, month) {
                // First day of the next month.
                let (year, month, _) = civil_from_days(day);
                let (y, m) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                minute = days_from_civil(y, m, 1) * 1440;
                continue;
            }
            // 1970-01-01 was a Thursday (4).
            let weekday = (day + 4).rem_euclid(7) as u32;
            if !self.day_matches(dom, weekday) {
                minute = (day + 1) * 1440;
                continue;
            }
            let in_day = minute.rem_euclid(1440);
            let (hour, min) = ((in_day / 60) as u32, (in_day % 60) as u32);
            if !has(self.hours, hour) {
                minute = day * 1440 + i64::from(hour + 1) * 60;
                continue;
            }
            if !has(self.minutes, min) {
                minute += 1;
                continue;
            }
            return Some(minute * 60);
        }
    }

    fn day_matches(&self, dom: u32, weekday: u32) -> bool {
        let by_day = has(self.days, dom);
        let by_weekday = has(self.weekdays, weekday);
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            _ => by_day && by_weekday,
        }
    }
}

fn has(set: u64, value: u32) -> bool {
    set & (1 << value) != 0
}

fn parse_field(field: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let mut set = 0u64;
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = number(step)?;
                if step == 0 {
                    return Err("a step must be at least 1".into());
                }
                (range, step)
            }
            None => (item, 1),
        };
        let (start, end) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, lo, names)?, value(b, lo, names)?)
        } else {
            let n = value(range, lo, names)?;
            // `a/n` means from a to the end, stepping n.
            (n, if item.contains('/') { hi } else { n })
        };
        if start < lo || end > hi {
            return Err(format!("{start}-{end} is out of range"));
        }
        if start > end {
            return Err(format!("range {start}-{end} is backwards"));
        }
        let mut v = start;
        while v <= end {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

/// A number, or one of `names` (the first is `lo`).
fn value(s: &str, lo: u32, names: &[&str]) -> Result<u32, String> {
    if !names.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()) && !s.is_empty() {
        return names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(s))
            .map(|i| lo + i as u32)
            .ok_or_else(|| format!("`{s}` is not a number or one of {}", names.join(", ")));
    }
    number(s)
}

fn number(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a number"));
    }
    s.parse().map_err(|_| format!("`{s}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Seconds since the epoch of a UTC date and time.
    fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60
    }

    fn next(expr: &str, from: i64) -> i64 {
        Cron::parse(expr).unwrap().next_after(from).unwrap()
    }

    #[test]
    fn every_minute_and_steps() {
        let t = at(2026, 3, 14, 10, 7) + 30;
        assert_eq!(next("* * * * *", t), at(2026, 3, 14, 10, 8));
        assert_eq!(next("*/5 * * * *", t), at(2026, 3, 14, 10, 10));
        assert_eq!(
            next("*/15 * * * *", at(2026, 3, 14, 10, 45)),
            at(2026, 3, 14, 11, 0)
        );
        assert_eq!(next("5/20 * * * *", t), at(2026, 3, 14, 10, 25));
    }

    #[test]
    fn months_and_weekdays_by_name() {
        let t = at(2026, 3, 14, 10, 7); // a Saturday
        assert_eq!(next("0 9 * * MON-FRI", t), at(2026, 3, 16, 9, 0));
        assert_eq!(next("0 9 * * mon-fri", t), next("0 9 * * 1-5", t));
        assert_eq!(next("0 0 1 jan,Jul *", t), at(2026, 7, 1, 0, 0));
        assert_eq!(next("0 0 * * SUN", t), at(2026, 3, 15, 0, 0));
        let err = Cron::parse("0 0 * * FUNDAY").unwrap_err();
        assert!(err.contains("day of week") && err.contains("SUN"), "{err}");
        assert!(
            Cron::parse("0 0 MON * *")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn rare_combinations_are_found_far_ahead() {
        // January the 1st/8th/15th/22nd/29th and a Thursday: from 2015 the next is 2026.
        let t = at(2015, 1, 29, 23, 59);
        assert_eq!(next("* * */7 1 4", t), at(2026, 1, 1, 0, 0));
        // The 29th of February: leap years only, and not 2100.
        assert_eq!(
            next("0 0 29 2 *", at(2016, 3, 1, 0, 0)),
            at(2020, 2, 29, 0, 0)
        );
        assert_eq!(
            next("0 0 29 2 *", at(2096, 3, 1, 0, 0)),
            at(2104, 2, 29, 0, 0)
        );
    }

    #[test]
    fn lists_ranges_and_hours() {
        let t = at(2026, 3, 14, 10, 7);
        assert_eq!(next("0,30 9-17 * * *", t), at(2026, 3, 14, 10, 30));
        assert_eq!(next("0 0 * * *", t), at(2026, 3, 15, 0, 0));
        assert_eq!(next("15 2 1 * *", t), at(2026, 4, 1, 2, 15));
        assert_eq!(next("0 0 1 1 *", t), at(2027, 1, 1, 0, 0));
        assert_eq!(next("0 12 29 2 *", t), at(2028, 2, 29, 12, 0));
    }

    #[test]
    fn weekdays() {
        // 2026-03-14 is a Saturday.
        let t = at(2026, 3, 14, 10, 7);
        assert_eq!(next("0 9 * * 1-5", t), at(2026, 3, 16, 9, 0));
        assert_eq!(next("0 9 * * 0", t), at(2026, 3, 15, 9, 0));
        assert_eq!(next("0 9 * * 7", t), at(2026, 3, 15, 9, 0));
        // Both restricted: the 20th or any Monday.
        assert_eq!(next("0 0 20 * 1", t), at(2026, 3, 16, 0, 0));
    }

    #[test]
    fn invalid_expressions_are_explained() {
        for (expr, says) in [
            ("* * * *", "has 4 field(s)"),
            ("60 * * * *", "minute field `60`"),
            ("* 24 * * *", "hour field"),
            ("* * 0 * *", "day of month field"),
            ("* * * 13 *", "month field"),
            ("* * * * 8", "day of week field"),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "backwards"),
            ("a * * * *", "not a number"),
            ("0 0 31 2 *", "never fires"),
        ] {
            let err = Cron::parse(expr).unwrap_err();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }

    fn expr() -> impl Strategy<Value = String> {
        let field = |lo: u32, hi: u32| {
            prop_oneof![
                Just("*".to_owned()),
                (lo..=hi).prop_map(|n| n.to_string()),
                (1..=hi.max(1)).prop_map(|s| format!("*/{s}")),
                (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
                (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{a},{b}")),
            ]
        };
        (
            field(0, 59),
            field(0, 23),
            field(1, 28),
            field(1, 12),
            field(0, 7),
        )
            .prop_map(|(a, b, c, d, e)| format!("{a} {b} {c} {d} {e}"))
    }

    proptest! {
        #[test]
        fn next_fire_is_later_on_a_minute_and_matches(e in expr(), t in 0i64..4_000_000_000) {
            let cron = Cron::parse(&e).unwrap();
            let n = cron.next_after(t).unwrap();
            prop_assert!(n > t);
            prop_assert_eq!(n % 60, 0);
            // Nothing fires between `t` and `n`: starting anywhere in between gives `n` again.
            prop_assert_eq!(cron.next_after(t + (n - 1 - t) / 2), Some(n));
            // Monotone: a later start never gives an earlier fire.
            let later = cron.next_after(t + 3_600).unwrap();
            prop_assert!(later >= n);
            prop_assert_eq!(cron.next_after(n).map(|m| m > n), Some(true));
        }
    }
}
