//! Conversions between the wire values of `pipeline.proto` ([`v1::Value`], [`v1::Row`]) and the
//! domain's [`Value`] / [`Row`], so generated types stay at the edge of each service.
//!
//! Domain → wire is infallible and wire → domain → wire gives back the same message, except:
//! - timestamps: the wire carries microseconds, the domain milliseconds; wire → domain rounds
//!   toward the past (`-1 µs` is `-1 ms`), as [`Value::Timestamp`] documents. Domain
//!   milliseconds beyond ±292,000 years (no Postgres timestamp reaches them) saturate on the wire;
//! - JSON: the wire carries text; wire → domain parses it, so insignificant whitespace is not kept;
//! - an unset `kind` and `null` both become [`Value::Null`], which goes back as `null`.
//!
//! Wire → domain fails only on malformed messages: a UUID that is not 16 bytes, or JSON text
//! that does not parse.

use std::sync::Arc;

use mixsync_domain::{Row, Value};

use crate::v1::{self, value::Kind};

/// A wire value that cannot be a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A `uuid` value that is not 16 bytes long.
    #[error("a uuid value is {len} bytes long; expected 16")]
    UuidLength {
        /// Its length in bytes.
        len: usize,
    },
    /// A `json` value whose text is not JSON.
    #[error("a json value does not parse: {message}")]
    Json {
        /// The parser's message.
        message: String,
    },
    /// A row value, by column position, that cannot be converted.
    #[error("column {index}: {source}")]
    Column {
        /// 0-based position of the value in the row.
        index: usize,
        /// Why it cannot be converted.
        source: Box<ConvertError>,
    },
}

/// The domain value of a wire value, copying its strings. See the [module docs](self).
pub fn to_domain_value(value: &v1::Value) -> Result<Value, ConvertError> {
    Ok(match &value.kind {
        None | Some(Kind::Null(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::IntValue(i)) => Value::Int(*i),
        Some(Kind::DoubleValue(f)) => Value::Float(*f),
        Some(Kind::Numeric(s)) => Value::Numeric(s.clone()),
        Some(Kind::Text(s)) => Value::Text(s.clone()),
        Some(Kind::Uuid(bytes)) => Value::Uuid(uuid(bytes)?),
        Some(Kind::Date(days)) => Value::Date { days: *days },
        Some(Kind::TimestampMicros(us)) => Value::Timestamp {
            ms: us.div_euclid(1000),
        },
        Some(Kind::Json(text)) => Value::Json(json(text)?),
        Some(Kind::Array(list)) => Value::Array(
            list.values
                .iter()
                .map(to_domain_value)
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// The domain value of a wire value, moving its strings. See the [module docs](self).
pub fn into_domain_value(value: v1::Value) -> Result<Value, ConvertError> {
    Ok(match value.kind {
        Some(Kind::Numeric(s)) => Value::Numeric(s),
        Some(Kind::Text(s)) => Value::Text(s),
        Some(Kind::Array(list)) => Value::Array(
            list.values
                .into_iter()
                .map(into_domain_value)
                .collect::<Result<_, _>>()?,
        ),
        kind => return to_domain_value(&v1::Value { kind }),
    })
}

/// The wire value of a domain value, moving its strings.
pub fn from_domain_value(value: Value) -> v1::Value {
    let kind = match value {
        Value::Null => null_kind(),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Int(i) => Kind::IntValue(i),
        Value::Float(f) => Kind::DoubleValue(f),
        Value::Numeric(s) => Kind::Numeric(s),
        Value::Text(s) => Kind::Text(s),
        Value::Uuid(bytes) => Kind::Uuid(bytes.to_vec()),
        Value::Date { days } => Kind::Date(days),
        Value::Timestamp { ms } => Kind::TimestampMicros(ms.saturating_mul(1000)),
        Value::Json(v) => Kind::Json(v.to_string()),
        Value::Array(items) => Kind::Array(v1::ValueList {
            values: items.into_iter().map(from_domain_value).collect(),
        }),
    };
    v1::Value { kind: Some(kind) }
}

/// The domain values of a wire row, in column order, copying their strings.
pub fn to_domain_values(row: &v1::Row) -> Result<Vec<Value>, ConvertError> {
    row.values
        .iter()
        .enumerate()
        .map(|(index, v)| to_domain_value(v).map_err(|e| in_column(index, e)))
        .collect()
}

/// The domain row of a wire row whose columns are `columns`, moving its strings.
pub fn into_domain_row(row: v1::Row, columns: Arc<[String]>) -> Result<Row, ConvertError> {
    let values = row
        .values
        .into_iter()
        .enumerate()
        .map(|(index, v)| into_domain_value(v).map_err(|e| in_column(index, e)))
        .collect::<Result<_, _>>()?;
    Ok(Row { columns, values })
}

/// The wire row of domain values, in column order.
pub fn from_domain_values(values: Vec<Value>) -> v1::Row {
    v1::Row {
        values: values.into_iter().map(from_domain_value).collect(),
    }
}

impl From<Value> for v1::Value {
    fn from(value: Value) -> Self {
        from_domain_value(value)
    }
}

impl From<Row> for v1::Row {
    fn from(row: Row) -> Self {
        from_domain_values(row.values)
    }
}

impl TryFrom<v1::Value> for Value {
    type Error = ConvertError;

    fn try_from(value: v1::Value) -> Result<Self, Self::Error> {
        into_domain_value(value)
    }
}

fn null_kind() -> Kind {
    Kind::Null(prost_types::NullValue::NullValue.into())
}

fn uuid(bytes: &[u8]) -> Result<[u8; 16], ConvertError> {
    bytes
        .try_into()
        .map_err(|_| ConvertError::UuidLength { len: bytes.len() })
}

fn json(text: &str) -> Result<serde_json::Value, ConvertError> {
    serde_json::from_str(text).map_err(|e| ConvertError::Json {
        message: e.to_string(),
    })
}

fn in_column(index: usize, source: ConvertError) -> ConvertError {
    ConvertError::Column {
        index,
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn wire(kind: Kind) -> v1::Value {
        v1::Value { kind: Some(kind) }
    }

    #[test]
    fn scalars_convert_both_ways() {
        let cases = [
            (Value::Null, null_kind()),
            (Value::Bool(true), Kind::BoolValue(true)),
            (Value::Int(i64::MIN), Kind::IntValue(i64::MIN)),
            (Value::Float(-0.5), Kind::DoubleValue(-0.5)),
            (
                Value::Numeric("12.50".into()),
                Kind::Numeric("12.50".into()),
            ),
            (Value::Text("é".into()), Kind::Text("é".into())),
            (Value::Uuid([7; 16]), Kind::Uuid(vec![7; 16])),
            (Value::Date { days: -3 }, Kind::Date(-3)),
            (
                Value::Timestamp {
                    ms: 1_700_000_000_123,
                },
                Kind::TimestampMicros(1_700_000_000_123_000),
            ),
        ];
        for (domain, kind) in cases {
            assert_eq!(from_domain_value(domain.clone()), wire(kind.clone()));
            assert_eq!(to_domain_value(&wire(kind.clone())), Ok(domain.clone()));
            assert_eq!(into_domain_value(wire(kind)), Ok(domain));
        }
    }

    #[test]
    fn unset_kind_is_null() {
        assert_eq!(to_domain_value(&v1::Value::default()), Ok(Value::Null));
    }

    #[test]
    fn timestamps_round_toward_the_past() {
        let ms = |us: i64| to_domain_value(&wire(Kind::TimestampMicros(us))).unwrap();
        assert_eq!(ms(1_999), Value::Timestamp { ms: 1 });
        assert_eq!(ms(-1), Value::Timestamp { ms: -1 });
        assert_eq!(ms(-1_000), Value::Timestamp { ms: -1 });
        assert_eq!(ms(-1_001), Value::Timestamp { ms: -2 });
        assert_eq!(
            ms(i64::MIN),
            Value::Timestamp {
                ms: i64::MIN / 1000 - 1
            }
        );
        assert_eq!(
            from_domain_value(Value::Timestamp { ms: i64::MAX }),
            wire(Kind::TimestampMicros(i64::MAX))
        );
    }

    #[test]
    fn json_travels_as_text_and_keeps_key_order() {
        let v = json!({"z": 1, "a": [1.5, null, "x"], "m": {"k": true}});
        let on_wire = from_domain_value(Value::Json(v.clone()));
        assert_eq!(
            on_wire,
            wire(Kind::Json(
                r#"{"z":1,"a":[1.5,null,"x"],"m":{"k":true}}"#.into()
            ))
        );
        assert_eq!(to_domain_value(&on_wire), Ok(Value::Json(v)));
        assert_eq!(
            to_domain_value(&wire(Kind::Json(" [ 1 , 2 ] ".into()))),
            Ok(Value::Json(json!([1, 2])))
        );
    }

    #[test]
    fn arrays_nest() {
        let domain = Value::Array(vec![
            Value::Array(vec![Value::Int(1), Value::Null]),
            Value::Array(vec![]),
        ]);
        let on_wire = from_domain_value(domain.clone());
        assert_eq!(into_domain_value(on_wire.clone()), Ok(domain.clone()));
        assert_eq!(to_domain_value(&on_wire), Ok(domain));
    }

    #[test]
    fn malformed_values_are_errors() {
        assert_eq!(
            to_domain_value(&wire(Kind::Uuid(vec![1, 2, 3]))),
            Err(ConvertError::UuidLength { len: 3 })
        );
        let err = to_domain_value(&wire(Kind::Json("{".into()))).unwrap_err();
        assert!(
            err.to_string().starts_with("a json value does not parse: "),
            "{err}"
        );
        let row = v1::Row {
            values: vec![wire(Kind::IntValue(1)), wire(Kind::Uuid(vec![]))],
        };
        let err = to_domain_values(&row).unwrap_err();
        assert_eq!(
            err.to_string(),
            "column 1: a uuid value is 0 bytes long; expected 16"
        );
        assert_eq!(into_domain_row(row, Arc::from(vec![])).unwrap_err(), err);
    }

    #[test]
    fn rows_convert_both_ways() {
        let columns: Arc<[String]> = Arc::from(vec!["id".to_owned(), "name".to_owned()]);
        let row = Row {
            columns: columns.clone(),
            values: vec![Value::Int(1), Value::from("Ada")],
        };
        let on_wire = v1::Row::from(row.clone());
        assert_eq!(to_domain_values(&on_wire), Ok(row.values.clone()));
        assert_eq!(into_domain_row(on_wire, columns), Ok(row));
    }

    /// Domain values that survive the wire exactly: timestamps within the microsecond range.
    fn domain_value() -> impl Strategy<Value = Value> {
        let json_leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            ".*".prop_map(serde_json::Value::from),
        ];
        let json = json_leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec((".*", inner), 0..4)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        });
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            "-?[0-9]{1,30}(\\.[0-9]{0,20})?|NaN|Infinity".prop_map(Value::Numeric),
            ".*".prop_map(Value::Text),
            any::<[u8; 16]>().prop_map(Value::Uuid),
            any::<i32>().prop_map(|days| Value::Date { days }),
            (i64::MIN / 1000..=i64::MAX / 1000).prop_map(|ms| Value::Timestamp { ms }),
            json.prop_map(Value::Json),
        ];
        leaf.prop_recursive(2, 16, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    /// Equality that also holds for NaN floats, which must survive bit for bit.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
            (Value::Array(xs), Value::Array(ys)) => {
                xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y))
            }
            _ => a == b,
        }
    }

    proptest! {
        #[test]
        fn domain_values_survive_the_wire(v in domain_value()) {
            let on_wire = from_domain_value(v.clone());
            let bytes = prost::Message::encode_to_vec(&on_wire);
            let decoded: v1::Value = prost::Message::decode(bytes.as_slice()).unwrap();
            let borrowed = to_domain_value(&decoded).unwrap();
            prop_assert!(same(&borrowed, &v), "{borrowed:?} != {v:?}");
            let owned = into_domain_value(decoded).unwrap();
            prop_assert!(same(&owned, &v), "{owned:?} != {v:?}");
        }

        #[test]
        fn wire_timestamps_floor_to_milliseconds(us in any::<i64>()) {
            let Value::Timestamp { ms } = to_domain_value(&wire(Kind::TimestampMicros(us))).unwrap()
            else {
                panic!("not a timestamp");
            };
            prop_assert!(i128::from(ms) * 1000 <= i128::from(us));
            prop_assert!(i128::from(us) - i128::from(ms) * 1000 < 1000);
        }
    }
}
