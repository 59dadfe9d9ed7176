//! Reading ISO-8601 and SQL date-times.

use super::{MS_PER_DAY, days_from_civil, is_valid_date};

/// Parses an ISO-8601 / SQL date or date-time into epoch milliseconds.
///
/// Accepts `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fraction]]`, and
/// an optional zone `Z`, `±HH`, `±HHMM` or `±HH:MM` (Postgres prints `+00`). Without a zone the
/// time is UTC. Fractions beyond milliseconds are dropped. Returns `None` for anything else,
/// including impossible dates such as `2023-02-29`.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let mut p = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let year = i64::from(p.digits(4)?);
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !is_valid_date(year, month, day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day) * MS_PER_DAY;
    if p.done() {
        return Some(ms);
    }
    if !(p.eat(b'T') || p.eat(b't') || p.eat(b' ')) {
        return None;
    }
    let hour = p.digits(2)?;
    p.expect(b':')?;
    let minute = p.digits(2)?;
    let (mut second, mut millis) = (0, 0);
    if p.eat(b':') {
        second = p.digits(2)?;
        if p.eat(b'.') || p.eat(b',') {
            millis = p.fraction_millis()?;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    ms += i64::from((hour * 60 + minute) * 60 + second) * 1000 + i64::from(millis);
    let utc = p.eat(b'Z') || p.eat(b'z');
    if !utc && let Some(sign) = p.sign() {
        let hours = p.digits(2)?;
        let minutes = if p.done() {
            0
        } else {
            p.eat(b':');
            p.digits(2)?
        };
        if hours > 23 || minutes > 59 {
            return None;
        }
        ms -= sign * i64::from(hours * 60 + minutes) * 60_000;
    }
    p.done().then_some(ms)
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    fn sign(&mut self) -> Option<i64> {
        if self.eat(b'+') {
            Some(1)
        } else if self.eat(b'-') {
            Some(-1)
        } else {
            None
        }
    }

    /// Exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let digits = self.b.get(self.i..self.i + n)?;
        let mut v = 0;
        for d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
        }
        self.i += n;
        Some(v)
    }

    /// One to nine fraction digits, as whole milliseconds (truncated).
    fn fraction_millis(&mut self) -> Option<u32> {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let n = self.i - start;
        if !(1..=9).contains(&n) {
            return None;
        }
        let mut millis = 0;
        for k in 0..3 {
            let d = self
                .b
                .get(start + k)
                .filter(|_| k < n)
                .map_or(0, |d| d - b'0');
            millis = millis * 10 + u32::from(d);
        }
        Some(millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_and_sql_datetimes() {
        let base = 1_700_000_000_000;
        assert_eq!(parse_datetime("2023-11-14T22:13:20Z"), Some(base));
        assert_eq!(parse_datetime("2023-11-14 22:13:20"), Some(base));
        assert_eq!(
            parse_datetime(" 2023-11-14T22:13:20.123456Z "),
            Some(base + 123)
        );
        assert_eq!(parse_datetime("2023-11-14T22:13:20.5"), Some(base + 500));
        assert_eq!(parse_datetime("2023-11-14 23:13:20+01"), Some(base));
        assert_eq!(parse_datetime("2023-11-14T23:13:20+01:00"), Some(base));
        assert_eq!(parse_datetime("2023-11-14T17:13:20-0500"), Some(base));
        assert_eq!(parse_datetime("2023-11-14T22:13Z"), Some(base - 20_000));
        assert_eq!(parse_datetime("2024-02-29"), Some(19_782 * MS_PER_DAY));
    }

    #[test]
    fn rejects_malformed_datetimes() {
        for s in [
            "",
            "2023-02-29",
            "2023-1-01",
            "2023-11-14T",
            "2023-11-14T24:00:00",
            "2023-11-14T22:60:00",
            "2023-11-14T22:13:20.",
            "2023-11-14T22:13:20.1234567890",
            "2023-11-14T22:13:20+1",
            "2023-11-14T22:13:20Zjunk",
            "1700000000",
            "２０２３-11-14",
        ] {
            assert_eq!(parse_datetime(s), None, "{s:?}");
        }
    }
}
