//! Postgres values in the binary wire format → domain [`Value`]s.
//!
//! Supported types ([`is_supported`]): `bool`, `smallint`, `integer`, `bigint`, `oid`, `real`,
//! `double precision`, `numeric` (exact text), `text`, `varchar`, `char(n)`, `name`, enums,
//! `uuid`, `date`, `timestamp`, `timestamptz`, `json`, `jsonb`, domains over these and arrays of
//! these (any number of dimensions, nested). Every other type is selected as `::text` by the
//! query that reads it (see `select.rs`), so it arrives here as text.
//!
//! Special values without a domain equivalent: `infinity`/`-infinity` dates and timestamps become
//! the text `infinity`/`-infinity`; a `real` becomes the `f64` nearest to its shortest decimal
//! form (`1.1::real` is `1.1`, not `1.100000023841858`).

use std::error::Error;

use mixsync_domain::Value;
use tokio_postgres::types::{FromSql, Kind, Type};

type BoxError = Box<dyn Error + Sync + Send>;

/// Microseconds from 1970-01-01 to 2000-01-01, Postgres' epoch.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from 1970-01-01 to 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
/// Arrays deeper than this are refused (Postgres' own limit is 6).
const MAX_ARRAY_DIMS: i32 = 6;

/// Built-in type OIDs (stable across Postgres versions; checked against `Type` in the tests).
mod oid {
    pub(super) const BOOL: u32 = 16;
    pub(super) const NAME: u32 = 19;
    pub(super) const INT8: u32 = 20;
    pub(super) const INT2: u32 = 21;
    pub(super) const INT4: u32 = 23;
    pub(super) const TEXT: u32 = 25;
    pub(super) const OID: u32 = 26;
    pub(super) const JSON: u32 = 114;
    pub(super) const FLOAT4: u32 = 700;
    pub(super) const FLOAT8: u32 = 701;
    pub(super) const UNKNOWN: u32 = 705;
    pub(super) const BPCHAR: u32 = 1042;
    pub(super) const VARCHAR: u32 = 1043;
    pub(super) const DATE: u32 = 1082;
    pub(super) const TIMESTAMP: u32 = 1114;
    pub(super) const TIMESTAMPTZ: u32 = 1184;
    pub(super) const NUMERIC: u32 = 1700;
    pub(super) const UUID: u32 = 2950;
    pub(super) const JSONB: u32 = 3802;
}

/// One decoded column value.
pub(crate) struct Cell(pub(crate) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw).map(Cell)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }

    fn accepts(ty: &Type) -> bool {
        is_supported(ty)
    }
}

/// Whether values of `ty` are decoded from the binary format (else they are read as text).
pub(crate) fn is_supported(ty: &Type) -> bool {
    use oid::*;
    match ty.oid() {
        BOOL | NAME | INT8 | INT2 | INT4 | TEXT | OID | JSON | FLOAT4 | FLOAT8 | UNKNOWN
        | BPCHAR | VARCHAR | DATE | TIMESTAMP | TIMESTAMPTZ | NUMERIC | UUID | JSONB => true,
        _ => match ty.kind() {
            Kind::Array(inner) | Kind::Domain(inner) => is_supported(inner),
            Kind::Enum(_) => true,
            _ => false,
        },
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    use oid::*;
    Ok(match ty.oid() {
        BOOL => Value::Bool(fixed::<1>(raw)?[0] != 0),
        INT2 => Value::Int(i16::from_be_bytes(fixed(raw)?).into()),
        INT4 => Value::Int(i32::from_be_bytes(fixed(raw)?).into()),
        INT8 => Value::Int(i64::from_be_bytes(fixed(raw)?)),
        OID => Value::Int(u32::from_be_bytes(fixed(raw)?).into()),
        FLOAT4 => Value::Float(shortest_f64(f32::from_be_bytes(fixed(raw)?))),
        FLOAT8 => Value::Float(f64::from_be_bytes(fixed(raw)?)),
        NUMERIC => Value::Numeric(super::numeric::numeric_text(raw)?),
        NAME | TEXT | UNKNOWN | BPCHAR | VARCHAR => Value::Text(text(raw)?),
        UUID => Value::Uuid(fixed(raw)?),
        DATE => date(i32::from_be_bytes(fixed(raw)?)),
        TIMESTAMP | TIMESTAMPTZ => timestamp(i64::from_be_bytes(fixed(raw)?)),
        JSON => Value::Json(serde_json::from_slice(raw)?),
        JSONB => match raw.split_first() {
            Some((1, json)) => Value::Json(serde_json::from_slice(json)?),
            _ => return Err("unsupported jsonb format version".into()),
        },
        _ => match ty.kind() {
            Kind::Array(inner) => array(inner, raw)?,
            Kind::Domain(inner) => decode(inner, raw)?,
            Kind::Enum(_) => Value::Text(text(raw)?),
            _ => return Err(format!("type {} is not read in binary", ty.name()).into()),
        },
    })
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], BoxError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()).into())
}

fn text(raw: &[u8]) -> Result<String, BoxError> {
    Ok(std::str::from_utf8(raw)?.to_owned())
}

/// The `f64` that prints like the `f32` does, so `real` values keep their decimal digits.
fn shortest_f64(f: f32) -> f64 {
    if !f.is_finite() {
        return f64::from(f);
    }
    f.to_string().parse().unwrap_or(f64::from(f))
}

fn date(pg_days: i32) -> Value {
    match pg_days {
        i32::MAX => Value::Text("infinity".into()),
        i32::MIN => Value::Text("-infinity".into()),
        d => match d.checked_add(PG_EPOCH_DAYS) {
            Some(days) => Value::Date { days },
            None => Value::Text("infinity".into()),
        },
    }
}

fn timestamp(pg_micros: i64) -> Value {
    match pg_micros {
        i64::MAX => Value::Text("infinity".into()),
        i64::MIN => Value::Text("-infinity".into()),
        us => match us.checked_add(PG_EPOCH_MICROS) {
            // Round toward the past, as `Value::Timestamp` documents.
            Some(us) => Value::Timestamp {
                ms: us.div_euclid(1000),
            },
            None => Value::Text("infinity".into()),
        },
    }
}

/// A Postgres array (`array_send`): `ndim`, a has-null flag, the element OID, `(length, lower
/// bound)` per dimension, then each element as a length (`-1` for NULL) and its bytes, in
/// row-major order. Multi-dimensional arrays become nested arrays.
fn array(element: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    let mut r = Reader(raw);
    let ndim = r.i32()?;
    let _has_null = r.i32()?;
    let _element_oid = r.i32()?;
    if !(0..=MAX_ARRAY_DIMS).contains(&ndim) {
        return Err(format!("array has {ndim} dimensions").into());
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let len = usize::try_from(r.i32()?).map_err(|_| "negative array dimension")?;
        let _lower_bound = r.i32()?;
        dims.push(len);
    }
    if dims.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    let total = dims
        .iter()
        .try_fold(1usize, |n, d| n.checked_mul(*d))
        .ok_or("array is too large")?;
    // Each element takes at least its 4-byte length.
    if total > r.0.len() / 4 {
        return Err("array is shorter than its dimensions".into());
    }
    let mut items = Vec::with_capacity(total);
    for _ in 0..total {
        let len = r.i32()?;
        items.push(if len < 0 {
            Value::Null
        } else {
            decode(element, r.take(len as usize)?)?
        });
    }
    if !r.0.is_empty() {
        return Err("array has trailing bytes".into());
    }
    Ok(nest(items, &dims))
}

fn nest(items: Vec<Value>, dims: &[usize]) -> Value {
    match dims {
        [] | [_] => Value::Array(items),
        [outer, inner @ ..] => {
            let chunk: usize = inner.iter().product();
            let mut rest = items.into_iter();
            Value::Array(
                (0..*outer)
                    .map(|_| nest(rest.by_ref().take(chunk).collect(), inner))
                    .collect(),
            )
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BoxError> {
        if self.0.len() < n {
            return Err("truncated value".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn i32(&mut self) -> Result<i32, BoxError> {
        Ok(i32::from_be_bytes(fixed(self.take(4)?)?))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn oids_match_the_builtin_types() {
        let pairs = [
            (oid::BOOL, Type::BOOL),
            (oid::NAME, Type::NAME),
            (oid::INT8, Type::INT8),
            (oid::INT2, Type::INT2),
            (oid::INT4, Type::INT4),
            (oid::TEXT, Type::TEXT),
            (oid::OID, Type::OID),
            (oid::JSON, Type::JSON),
            (oid::FLOAT4, Type::FLOAT4),
            (oid::FLOAT8, Type::FLOAT8),
            (oid::UNKNOWN, Type::UNKNOWN),
            (oid::BPCHAR, Type::BPCHAR),
            (oid::VARCHAR, Type::VARCHAR),
            (oid::DATE, Type::DATE),
            (oid::TIMESTAMP, Type::TIMESTAMP),
            (oid::TIMESTAMPTZ, Type::TIMESTAMPTZ),
            (oid::NUMERIC, Type::NUMERIC),
            (oid::UUID, Type::UUID),
            (oid::JSONB, Type::JSONB),
        ];
        for (oid, ty) in pairs {
            assert_eq!(oid, ty.oid(), "{ty}");
            assert!(is_supported(&ty));
        }
        assert!(is_supported(&Type::INT4_ARRAY));
        assert!(!is_supported(&Type::INTERVAL));
        assert!(!is_supported(&Type::INTERVAL_ARRAY));
        assert!(!is_supported(&Type::BYTEA));
    }

    #[test]
    fn scalars() {
        assert_eq!(decode(&Type::BOOL, &[1]).unwrap(), Value::Bool(true));
        assert_eq!(
            decode(&Type::INT2, &(-2i16).to_be_bytes()).unwrap(),
            Value::Int(-2)
        );
        assert_eq!(
            decode(&Type::FLOAT4, &1.1f32.to_be_bytes()).unwrap(),
            Value::Float(1.1)
        );
        assert_eq!(
            decode(&Type::JSONB, b"\x01{\"a\":1}").unwrap(),
            Value::Json(json!({"a": 1}))
        );
        assert!(decode(&Type::JSONB, b"\x02{}").is_err());
        assert!(decode(&Type::INT4, &[0, 1]).is_err());
        assert!(decode(&Type::TEXT, &[0xff]).is_err());
    }

    #[test]
    fn dates_and_timestamps_shift_to_the_unix_epoch() {
        assert_eq!(date(0), Value::Date { days: 10_957 });
        assert_eq!(date(i32::MAX), Value::Text("infinity".into()));
        assert_eq!(date(i32::MIN), Value::Text("-infinity".into()));
        assert_eq!(
            timestamp(0),
            Value::Timestamp {
                ms: 946_684_800_000
            }
        );
        assert_eq!(timestamp(-PG_EPOCH_MICROS - 1), Value::Timestamp { ms: -1 });
        assert_eq!(timestamp(i64::MIN), Value::Text("-infinity".into()));
    }

    fn array_bytes(dims: &[i32], items: &[Option<i32>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(dims.len() as i32).to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&23i32.to_be_bytes());
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
        }
        for item in items {
            match item {
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    out.extend_from_slice(&4i32.to_be_bytes());
                    out.extend_from_slice(&v.to_be_bytes());
                }
            }
        }
        out
    }

    #[test]
    fn arrays_nest_by_dimension() {
        let flat = array(&Type::INT4, &array_bytes(&[3], &[Some(1), None, Some(3)])).unwrap();
        assert_eq!(
            flat,
            Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)])
        );
        let grid = array(
            &Type::INT4,
            &array_bytes(&[2, 2], &[Some(1), Some(2), Some(3), Some(4)]),
        )
        .unwrap();
        let pair = |a, b| Value::Array(vec![Value::Int(a), Value::Int(b)]);
        assert_eq!(grid, Value::Array(vec![pair(1, 2), pair(3, 4)]));
        assert_eq!(
            array(&Type::INT4, &array_bytes(&[], &[])).unwrap(),
            Value::Array(vec![])
        );
        assert!(array(&Type::INT4, &array_bytes(&[3], &[Some(1)])).is_err());
        assert!(array(&Type::INT4, &array_bytes(&[1_000_000, 1_000_000], &[])).is_err());
    }
}
