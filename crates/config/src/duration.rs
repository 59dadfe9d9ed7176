use std::time::Duration;

/// What a bare number (no unit) means for a duration variable. Most durations take a bare number
/// as seconds; the older `…_MS` and `…_SECS` variables keep the unit their name gives, so existing
/// deployments read the same (the README documents each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareUnit {
    /// A bare number is milliseconds.
    Millis,
    /// A bare number is seconds.
    Secs,
}

impl BareUnit {
    fn name(self) -> &'static str {
        match self {
            BareUnit::Millis => "milliseconds",
            BareUnit::Secs => "seconds",
        }
    }

    pub(crate) fn expected(self) -> String {
        format!(
            "a duration such as 500ms, 30s, 5m or 1h 30m (a bare number is {})",
            self.name()
        )
    }
}

/// Parses the one duration grammar: a bare whole number in `bare` units, or anything
/// [`humantime::parse_duration`] takes (`500ms`, `30s`, `5m`, `2h`, `1h 30m`, `1day`).
pub fn parse_duration(text: &str, bare: BareUnit) -> Option<Duration> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = text.parse().ok()?;
        return Some(match bare {
            BareUnit::Millis => Duration::from_millis(n),
            BareUnit::Secs => Duration::from_secs(n),
        });
    }
    humantime::parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_numbers_take_the_variables_unit() {
        assert_eq!(
            parse_duration("1800", BareUnit::Secs),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(
            parse_duration(" 250 ", BareUnit::Millis),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("0", BareUnit::Secs), Some(Duration::ZERO));
    }

    #[test]
    fn units_are_humantimes() {
        let d = |t| parse_duration(t, BareUnit::Millis);
        assert_eq!(d("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(d("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(d("1h 30m"), Some(Duration::from_secs(5400)));
        assert_eq!(d("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(d("5s"), Some(Duration::from_secs(5)));
        assert_eq!(d("1day"), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn nonsense_is_refused() {
        for text in [
            "",
            "m",
            "-1",
            "1.5.h",
            "soon",
            "10 parsecs",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_duration(text, BareUnit::Secs), None, "{text}");
        }
    }
}
