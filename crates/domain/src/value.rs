//! A typed value read from the warehouse, and how it becomes a Mixpanel property.

use std::borrow::Cow;

use serde_json::{Number, Value as Json};

use crate::civil::{format_date, format_datetime, format_datetime_millis};
use crate::uuid_text::hyphenated;

/// One warehouse cell, typed by what the extractor read.
///
/// The representation keeps what Mixpanel can use and nothing more:
/// - `Numeric` keeps Postgres `numeric`/`decimal` text exactly (`"12.50"`, `"NaN"`);
/// - `Uuid` holds the 16 raw bytes;
/// - `Date` is days since 1970-01-01 (`date`);
/// - `Timestamp` is UTC milliseconds since the epoch (`timestamp`, `timestamptz`), Mixpanel's
///   precision; extractors round sub-millisecond parts toward the past;
/// - `Json` holds `json`/`jsonb` as parsed;
/// - `Array` holds Postgres arrays, elements typed like top-level values.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// SQL `NULL`.
    #[default]
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`, `integer`, `bigint`.
    Int(i64),
    /// `real`, `double precision`.
    Float(f64),
    /// `numeric`/`decimal` as Postgres prints it.
    Numeric(String),
    /// `text`, `varchar`, `char`, and any type the extractor reads as text.
    Text(String),
    /// `uuid`.
    Uuid([u8; 16]),
    /// `date`.
    Date {
        /// Days since 1970-01-01 (negative: before).
        days: i32,
    },
    /// `timestamp` / `timestamptz`, in UTC.
    Timestamp {
        /// Milliseconds since 1970-01-01T00:00:00Z.
        ms: i64,
    },
    /// `json` / `jsonb`.
    Json(Json),
    /// A Postgres array.
    Array(Vec<Value>),
}

impl Value {
    /// A short name of the variant, for error messages: `null`, `bool`, `int`, `float`,
    /// `numeric`, `text`, `uuid`, `date`, `timestamp`, `json` or `array`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Float(_) => "float",
            Self::Numeric(_) => "numeric",
            Self::Text(_) => "text",
            Self::Uuid(_) => "uuid",
            Self::Date { .. } => "date",
            Self::Timestamp { .. } => "timestamp",
            Self::Json(_) => "json",
            Self::Array(_) => "array",
        }
    }

    /// Whether this is SQL `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The value as a Mixpanel property value:
    /// - numbers stay numbers; non-finite floats become `null` (JSON has no NaN);
    /// - `Numeric` becomes a JSON number when it parses as one (Mixpanel stores numbers as
    ///   doubles anyway), else stays text (`"NaN"`, `"Infinity"`);
    /// - `Uuid` becomes its lowercase hyphenated text;
    /// - `Date` becomes `YYYY-MM-DD`, `Timestamp` becomes UTC `YYYY-MM-DDTHH:MM:SS`, the formats
    ///   Mixpanel reads as datetime properties;
    /// - `Json` is sent as is, `Array` element by element.
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Int(i) => Json::from(*i),
            Self::Float(f) => float_json(*f),
            Self::Numeric(s) => numeric_json(s).unwrap_or_else(|| Json::String(s.clone())),
            Self::Text(s) => Json::String(s.clone()),
            Self::Uuid(bytes) => Json::String(hyphenated(bytes)),
            Self::Date { days } => Json::String(format_date(i64::from(*days))),
            Self::Timestamp { ms } => Json::String(format_datetime(*ms)),
            Self::Json(v) => v.clone(),
            Self::Array(items) => Json::Array(items.iter().map(Self::to_json).collect()),
        }
    }

    /// Like [`Value::to_json`], reusing this value's strings instead of copying them.
    pub fn into_json(self) -> Json {
        match self {
            Self::Numeric(s) => numeric_json(&s).unwrap_or(Json::String(s)),
            Self::Text(s) => Json::String(s),
            Self::Json(v) => v,
            Self::Array(items) => Json::Array(items.into_iter().map(Self::into_json).collect()),
            other => other.to_json(),
        }
    }

    /// The value as plain text, for ids and keys (`distinct_id`, `$group_id`, derived
    /// `$insert_id`s); `None` for `NULL`.
    ///
    /// Text and numeric text are returned as is, integers and booleans in their usual spelling,
    /// UUIDs hyphenated, dates as `YYYY-MM-DD`, timestamps to the millisecond as
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (so two events a millisecond apart keep distinct keys), a JSON
    /// string as its content and any other JSON or array as compact JSON.
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Self::Null => return None,
            Self::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Self::Int(i) => Cow::Owned(i.to_string()),
            Self::Float(f) => Cow::Owned(f.to_string()),
            Self::Numeric(s) | Self::Text(s) => Cow::Borrowed(s.as_str()),
            Self::Uuid(bytes) => Cow::Owned(hyphenated(bytes)),
            Self::Date { days } => Cow::Owned(format_date(i64::from(*days))),
            Self::Timestamp { ms } => Cow::Owned(format_datetime_millis(*ms)),
            Self::Json(Json::String(s)) => Cow::Borrowed(s.as_str()),
            Self::Json(v) => Cow::Owned(v.to_string()),
            Self::Array(_) => Cow::Owned(self.to_json().to_string()),
        })
    }

    /// Bytes identifying the value, for [`InsertId::derive`](crate::InsertId::derive): the
    /// [`Value::to_text`] bytes, or a single `0xFF` (never valid UTF-8) for `NULL` so that `NULL`
    /// and `''` differ. Text-based, so a key column keeps its ids when its SQL type changes
    /// (e.g. `int` to `bigint` or `text`).
    pub fn key_bytes(&self) -> Cow<'_, [u8]> {
        match self.to_text() {
            None => Cow::Borrowed(&[0xFF]),
            Some(Cow::Borrowed(s)) => Cow::Borrowed(s.as_bytes()),
            Some(Cow::Owned(s)) => Cow::Owned(s.into_bytes()),
        }
    }
}

fn float_json(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn numeric_json(s: &str) -> Option<Json> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Json::from(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Some(Json::from(u));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Json::Number)
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<Json> for Value {
    fn from(v: Json) -> Self {
        Self::Json(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const UUID: [u8; 16] = [
        0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40,
        0x00,
    ];

    #[test]
    fn scalars_map_to_json_scalars() {
        assert_eq!(Value::Null.to_json(), json!(null));
        assert_eq!(Value::Bool(true).to_json(), json!(true));
        assert_eq!(Value::Int(-7).to_json(), json!(-7));
        assert_eq!(Value::Float(2.5).to_json(), json!(2.5));
        assert_eq!(Value::Float(f64::NAN).to_json(), json!(null));
        assert_eq!(Value::Float(f64::INFINITY).to_json(), json!(null));
        assert_eq!(Value::from("hi").to_json(), json!("hi"));
    }

    #[test]
    fn numerics_become_numbers_when_they_can() {
        let n = |s: &str| Value::Numeric(s.into()).to_json();
        assert_eq!(n("12"), json!(12));
        assert_eq!(n("12.50"), json!(12.5));
        assert_eq!(
            n("18446744073709551615"),
            json!(18_446_744_073_709_551_615u64)
        );
        assert_eq!(n("-1e3"), json!(-1000.0));
        assert_eq!(n("NaN"), json!("NaN"));
        assert_eq!(n("Infinity"), json!("Infinity"));
    }

    #[test]
    fn uuids_dates_and_timestamps_become_text() {
        assert_eq!(
            Value::Uuid(UUID).to_json(),
            json!("123e4567-e89b-12d3-a456-426614174000")
        );
        assert_eq!(Value::Date { days: 19_782 }.to_json(), json!("2024-02-29"));
        assert_eq!(
            Value::Timestamp {
                ms: 1_700_000_000_999
            }
            .to_json(),
            json!("2023-11-14T22:13:20")
        );
    }

    #[test]
    fn json_and_arrays_pass_through() {
        let v = json!({"a": [1, "b"]});
        assert_eq!(Value::Json(v.clone()).to_json(), v);
        let arr = Value::Array(vec![Value::Int(1), Value::Null, Value::from("x")]);
        assert_eq!(arr.to_json(), json!([1, null, "x"]));
        assert_eq!(arr.clone().into_json(), arr.to_json());
    }

    #[test]
    fn into_json_matches_to_json() {
        let values = [
            Value::Numeric("1.5".into()),
            Value::Numeric("NaN".into()),
            Value::Text("t".into()),
            Value::Uuid(UUID),
            Value::Timestamp { ms: -1 },
            Value::Json(json!({"k": 1})),
        ];
        for v in values {
            assert_eq!(v.clone().into_json(), v.to_json(), "{v:?}");
        }
    }

    #[test]
    fn text_form_for_ids_and_keys() {
        assert_eq!(Value::Null.to_text(), None);
        assert_eq!(Value::Int(42).to_text().unwrap(), "42");
        assert_eq!(Value::Bool(false).to_text().unwrap(), "false");
        assert_eq!(Value::Float(1.0).to_text().unwrap(), "1");
        assert_eq!(Value::Numeric("1.50".into()).to_text().unwrap(), "1.50");
        assert_eq!(
            Value::Timestamp {
                ms: 1_700_000_000_123
            }
            .to_text()
            .unwrap(),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(Value::Json(json!("s")).to_text().unwrap(), "s");
        assert_eq!(
            Value::Json(json!({"a": 1})).to_text().unwrap(),
            r#"{"a":1}"#
        );
        assert_eq!(Value::Array(vec![Value::Int(1)]).to_text().unwrap(), "[1]");
    }

    #[test]
    fn key_bytes_tell_null_from_empty_and_ignore_the_sql_type() {
        assert_ne!(Value::Null.key_bytes(), Value::from("").key_bytes());
        assert_eq!(Value::Int(5).key_bytes(), Value::from("5").key_bytes());
        assert_eq!(Value::Null.key_bytes().as_ref(), &[0xFF]);
    }

    #[test]
    fn type_names_and_conversions() {
        assert_eq!(Value::Date { days: 0 }.type_name(), "date");
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some(3i64)), Value::Int(3));
        assert!(Value::default().is_null());
    }
}
