//! `time`: when an event happened, in epoch milliseconds (docs/mixpanel-api.md §1.6).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::civil::{MS_PER_DAY, format_datetime_millis, parse_datetime};
use crate::error::preview;
use crate::rules::{MAX_FUTURE_MS, MIN_EVENT_TIME_MS, SECONDS_MS_THRESHOLD, epoch_to_ms};
use crate::value::Value;

/// A time that cannot be an event's `time`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The value is missing (SQL `NULL`).
    #[error("`time` is invalid: it is null; every event needs a time")]
    Missing,
    /// A float is NaN or infinite.
    #[error(
        "`time` is invalid: {value} is not a finite number; expected seconds or milliseconds since the epoch"
    )]
    NotFinite {
        /// The value as text.
        value: String,
    },
    /// A number whose milliseconds do not fit in 64 bits.
    #[error(
        "`time` is invalid: {value} is out of range; expected seconds or milliseconds since the epoch"
    )]
    OutOfRange {
        /// The value as text.
        value: String,
    },
    /// A value of a type, or text in a form, that is not a time.
    #[error(
        "`time` is invalid: {type_name} value `{value}` is not a time; expected seconds or milliseconds since the epoch, an ISO-8601 date-time, a timestamp or a date"
    )]
    NotATime {
        /// The warehouse type, see [`Value::type_name`].
        type_name: &'static str,
        /// The start of the value.
        value: String,
    },
    /// Before 1971-01-01T00:00:00Z.
    #[error(
        "`time` is invalid: {} ({ms} ms since the epoch) is before 1971-01-01T00:00:00Z, the earliest time Mixpanel accepts",
        format_datetime_millis(*.ms)
    )]
    TooEarly {
        /// The time in epoch milliseconds.
        ms: i64,
    },
    /// More than an hour after the current time.
    #[error(
        "`time` is invalid: {} is more than 1 hour after the current time {}; Mixpanel rejects events further in the future",
        format_datetime_millis(*.ms),
        format_datetime_millis(*.now_ms)
    )]
    TooFarInFuture {
        /// The time in epoch milliseconds.
        ms: i64,
        /// The current time it was compared with.
        now_ms: i64,
    },
}

impl TimeError {
    /// The field the error is about: always `time`.
    pub fn field(&self) -> &'static str {
        "time"
    }

    /// A stable identifier of the broken rule.
    pub fn rule(&self) -> &'static str {
        match self {
            Self::Missing => "required",
            Self::NotFinite { .. } | Self::OutOfRange { .. } => "epoch_number",
            Self::NotATime { .. } => "time_type",
            Self::TooEarly { .. } => "min_time",
            Self::TooFarInFuture { .. } => "max_future",
        }
    }
}

/// An event time in milliseconds since 1970-01-01T00:00:00Z, Mixpanel's precision.
///
/// Constructors only convert; [`EventTime::check_window`] applies Mixpanel's accepted window.
/// Serializes as the millisecond number; `Display` is ISO-8601 with milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventTime(i64);

impl EventTime {
    /// Wraps epoch milliseconds as they are.
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Reads an epoch number as seconds or milliseconds by magnitude (see
    /// [`epoch_to_ms`]).
    pub fn from_epoch(v: i64) -> Result<Self, TimeError> {
        epoch_to_ms(v)
            .map(Self)
            .ok_or_else(|| TimeError::OutOfRange {
                value: v.to_string(),
            })
    }

    /// Reads fractional epoch seconds or milliseconds, by magnitude like [`Self::from_epoch`],
    /// rounding to the nearest millisecond.
    pub fn from_epoch_f64(v: f64) -> Result<Self, TimeError> {
        if !v.is_finite() {
            return Err(TimeError::NotFinite {
                value: v.to_string(),
            });
        }
        let ms = if v >= SECONDS_MS_THRESHOLD as f64 {
            v
        } else {
            v * 1000.0
        }
        .round();
        // -2^63 and 2^63 are exact in f64; the cast below is exact inside this range.
        if !(-(2f64.powi(63))..2f64.powi(63)).contains(&ms) {
            return Err(TimeError::OutOfRange {
                value: v.to_string(),
            });
        }
        Ok(Self(ms as i64))
    }

    /// Reads a warehouse value as a time: integers and floats (also as `numeric`, text or JSON)
    /// are epoch seconds or milliseconds by magnitude, text may also be an ISO-8601 date-time
    /// (see [`parse_datetime`]), timestamps are used as they are
    /// and dates mean midnight UTC.
    pub fn from_value(v: &Value) -> Result<Self, TimeError> {
        match v {
            Value::Null => Err(TimeError::Missing),
            Value::Int(i) => Self::from_epoch(*i),
            Value::Float(f) => Self::from_epoch_f64(*f),
            Value::Numeric(s) | Value::Text(s) => Self::from_text(v.type_name(), s),
            Value::Timestamp { ms } => Ok(Self(*ms)),
            Value::Date { days } => Ok(Self(i64::from(*days) * MS_PER_DAY)),
            Value::Json(Json::Number(n)) => match n.as_i64() {
                Some(i) => Self::from_epoch(i),
                None => Self::from_epoch_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::Json(Json::String(s)) => Self::from_text("json", s),
            Value::Json(Json::Null) => Err(TimeError::Missing),
            Value::Bool(_) | Value::Uuid(_) | Value::Json(_) | Value::Array(_) => {
                Err(TimeError::NotATime {
                    type_name: v.type_name(),
                    value: v.to_text().map(|t| preview(&t)).unwrap_or_default(),
                })
            }
        }
    }

    fn from_text(type_name: &'static str, s: &str) -> Result<Self, TimeError> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Self::from_epoch(i);
        }
        // Only plain decimal numbers: `f64::from_str` would also take "inf" and "NaN".
        if t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            && let Ok(f) = t.parse::<f64>()
        {
            return Self::from_epoch_f64(f);
        }
        parse_datetime(t)
            .map(Self)
            .ok_or_else(|| TimeError::NotATime {
                type_name,
                value: preview(s),
            })
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Applies Mixpanel's window: not before 1971-01-01T00:00:00Z and not more than one hour
    /// after `now_ms` (exactly one hour ahead is still accepted).
    pub fn check_window(self, now_ms: i64) -> Result<Self, TimeError> {
        if self.0 < MIN_EVENT_TIME_MS {
            return Err(TimeError::TooEarly { ms: self.0 });
        }
        if self.0 > now_ms.saturating_add(MAX_FUTURE_MS) {
            return Err(TimeError::TooFarInFuture { ms: self.0, now_ms });
        }
        Ok(self)
    }

    /// This time, or `now_ms` if it is later: Mixpanel overwrites slightly-future times with the
    /// ingestion time (docs/mixpanel-api.md §1.6).
    pub fn clamp_to(self, now_ms: i64) -> Self {
        Self(self.0.min(now_ms))
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_datetime_millis(self.0))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn epoch_numbers_are_seconds_or_milliseconds_by_magnitude() {
        assert_eq!(
            EventTime::from_epoch(1_700_000_000).unwrap().as_millis(),
            NOW
        );
        assert_eq!(EventTime::from_epoch(NOW).unwrap().as_millis(), NOW);
        assert_eq!(
            EventTime::from_epoch(i64::MIN).unwrap_err().to_string(),
            "`time` is invalid: -9223372036854775808 is out of range; expected seconds or milliseconds since the epoch"
        );
    }

    #[test]
    fn fractional_epochs_round_to_the_millisecond() {
        let t = |v: f64| EventTime::from_epoch_f64(v).map(EventTime::as_millis);
        assert_eq!(t(1_700_000_000.123), Ok(NOW + 123));
        assert_eq!(t(1_700_000_000_123.4), Ok(NOW + 123));
        assert_eq!(t(1_700_000_000.0), Ok(NOW));
        assert_eq!(
            t(f64::NAN).unwrap_err().to_string(),
            "`time` is invalid: NaN is not a finite number; expected seconds or milliseconds since the epoch"
        );
        assert!(matches!(t(f64::INFINITY), Err(TimeError::NotFinite { .. })));
        assert!(matches!(t(1e20), Err(TimeError::OutOfRange { .. })));
        assert!(matches!(t(-1e17), Err(TimeError::OutOfRange { .. })));
    }

    #[test]
    fn the_window_starts_in_1971_and_ends_an_hour_from_now() {
        let ok = |ms: i64| EventTime::from_millis(ms).check_window(NOW).is_ok();
        assert!(ok(MIN_EVENT_TIME_MS));
        assert!(!ok(MIN_EVENT_TIME_MS - 1));
        assert!(ok(NOW + MAX_FUTURE_MS));
        assert!(!ok(NOW + MAX_FUTURE_MS + 1));
        assert!(
            EventTime::from_millis(i64::MAX)
                .check_window(i64::MAX)
                .is_ok()
        );
    }

    #[test]
    fn window_errors_show_both_times() {
        let err = EventTime::from_millis(-1000).check_window(NOW).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`time` is invalid: 1969-12-31T23:59:59.000Z (-1000 ms since the epoch) is before 1971-01-01T00:00:00Z, the earliest time Mixpanel accepts"
        );
        assert_eq!(err.rule(), "min_time");
        let err = EventTime::from_millis(NOW + 2 * MAX_FUTURE_MS)
            .check_window(NOW)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`time` is invalid: 2023-11-15T00:13:20.000Z is more than 1 hour after the current time 2023-11-14T22:13:20.000Z; Mixpanel rejects events further in the future"
        );
        assert_eq!(err.field(), "time");
    }

    #[test]
    fn slightly_future_times_clamp_to_now() {
        let t = EventTime::from_millis(NOW + 10);
        assert_eq!(t.clamp_to(NOW).as_millis(), NOW);
        assert_eq!(t.clamp_to(NOW + 20), t);
    }

    #[test]
    fn reads_warehouse_values() {
        let t = |v: Value| EventTime::from_value(&v).map(EventTime::as_millis);
        assert_eq!(t(Value::Int(1_700_000_000)), Ok(NOW));
        assert_eq!(t(Value::Float(1_700_000_000.5)), Ok(NOW + 500));
        assert_eq!(t(Value::Numeric("1700000000".into())), Ok(NOW));
        assert_eq!(t(Value::Numeric("1700000000000.0".into())), Ok(NOW));
        assert_eq!(t(Value::Text(" 1700000000 ".into())), Ok(NOW));
        assert_eq!(t(Value::Text("1.7e9".into())), Ok(NOW));
        assert_eq!(t(Value::Text("2023-11-14T22:13:20Z".into())), Ok(NOW));
        assert_eq!(t(Value::Timestamp { ms: NOW }), Ok(NOW));
        assert_eq!(t(Value::Date { days: 1 }), Ok(MS_PER_DAY));
        assert_eq!(t(Value::Json(json!(NOW))), Ok(NOW));
        assert_eq!(t(Value::Json(json!(1_700_000_000.25))), Ok(NOW + 250));
        assert_eq!(t(Value::Json(json!("1700000000"))), Ok(NOW));
    }

    #[test]
    fn rejects_values_that_are_not_times() {
        let e = |v: Value| EventTime::from_value(&v).unwrap_err();
        assert_eq!(e(Value::Null), TimeError::Missing);
        assert_eq!(e(Value::Json(json!(null))), TimeError::Missing);
        assert_eq!(
            e(Value::Text("yesterday".into())).to_string(),
            "`time` is invalid: text value `yesterday` is not a time; expected seconds or milliseconds since the epoch, an ISO-8601 date-time, a timestamp or a date"
        );
        assert!(matches!(
            e(Value::Text("NaN".into())),
            TimeError::NotATime { .. }
        ));
        assert!(matches!(
            e(Value::Bool(true)),
            TimeError::NotATime {
                type_name: "bool",
                ..
            }
        ));
        assert_eq!(e(Value::Json(json!({"t": 1}))).rule(), "time_type");
        assert!(matches!(
            e(Value::Numeric("1e300".into())),
            TimeError::OutOfRange { .. }
        ));
    }

    #[test]
    fn serializes_as_milliseconds_and_displays_iso() {
        let t = EventTime::from_millis(NOW + 5);
        assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000005");
        assert_eq!(
            serde_json::from_str::<EventTime>("1700000000005").unwrap(),
            t
        );
        assert_eq!(t.to_string(), "2023-11-14T22:13:20.005Z");
    }
}
