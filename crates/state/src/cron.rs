//! Five-field cron expressions (`minute hour day-of-month month day-of-week`), evaluated in UTC.
//!
//! Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a
//! comma-separated list of those. Day of week is 0–7 (0 and 7 are Sunday). As in classic cron,
//! when both day-of-month and day-of-week are restricted, a day matches if either does.

use mixsync_domain::civil::{civil_from_days, days_from_civil};

/// How far ahead [`Cron::next_after`] looks before deciding an expression never fires
/// (e.g. `0 0 31 2 *`): eight years covers every leap-year and weekday combination.
const HORIZON_DAYS: i64 = 8 * 366;

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

/// Field names, for error messages.
const FIELDS: [(&str, u32, u32); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
];

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
        for (i, (part, (name, lo, hi))) in parts.iter().zip(FIELDS).enumerate() {
            sets[i] = parse_field(part, lo, hi)
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

fn parse_field(field: &str, lo: u32, hi: u32) -> Result<u64, String> {
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
            (number(a)?, number(b)?)
        } else {
            let n = number(range)?;
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
