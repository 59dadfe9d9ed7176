//! Postgres `numeric` in its binary wire format, printed exactly as Postgres prints it.
//!
//! The format (`numeric_send` in Postgres' `numeric.c`): `ndigits: i16`, `weight: i16`,
//! `sign: u16`, `dscale: u16`, then `ndigits` base-10000 digits as `i16`. The value is
//! `Σ digit[i] × 10000^(weight − i)`, shown with `dscale` decimal places.

use std::fmt::Write as _;

const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PLUS_INFINITY: u16 = 0xD000;
const MINUS_INFINITY: u16 = 0xF000;
/// Decimal digits per base-10000 digit.
const DEC_DIGITS: usize = 4;

/// A `numeric` that is not in the binary format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed numeric: {0}")]
pub(crate) struct NumericError(&'static str);

/// The text Postgres' `numeric_out` prints for the binary `raw`: `-12.50`, `0.0001`, `NaN`,
/// `Infinity`, `-Infinity`.
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, NumericError> {
    let word = |i: usize| -> Result<u16, NumericError> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(NumericError("truncated"))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)? & 0x3FFF);
    if raw.len() != 8 + 2 * ndigits {
        return Err(NumericError("length does not match its digit count"));
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<_>, _>>()?;
    if digits.iter().any(|d| *d >= 10_000) {
        return Err(NumericError("a digit is out of range"));
    }
    let digit = |i: i64| -> u16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    match sign {
        NAN => return Ok("NaN".into()),
        PLUS_INFINITY => return Ok("Infinity".into()),
        MINUS_INFINITY => return Ok("-Infinity".into()),
        POSITIVE | NEGATIVE => {}
        _ => return Err(NumericError("unknown sign")),
    }

    let mut out = String::with_capacity(ndigits * DEC_DIGITS + dscale + 3);
    if sign == NEGATIVE {
        out.push('-');
    }
    // Writing to a String cannot fail.
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(0));
        for i in 1..=weight {
            let _ = write!(out, "{:04}", digit(i));
        }
    }
    if dscale > 0 {
        out.push('.');
        let start = out.len();
        let mut i = weight + 1;
        while out.len() - start < dscale {
            let _ = write!(out, "{:04}", digit(i));
            i += 1;
        }
        out.truncate(start + dscale);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [digits.len() as u16, weight as u16, sign, dscale]
            .into_iter()
            .chain(digits.iter().copied())
        {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[test]
    fn prints_like_postgres() {
        let t = |w, s, d, digits: &[u16]| numeric_text(&raw(w, s, d, digits)).unwrap();
        assert_eq!(t(0, POSITIVE, 0, &[]), "0");
        assert_eq!(t(0, POSITIVE, 2, &[]), "0.00");
        assert_eq!(t(0, POSITIVE, 2, &[12, 5000]), "12.50");
        assert_eq!(t(0, NEGATIVE, 2, &[12, 5000]), "-12.50");
        assert_eq!(t(-1, POSITIVE, 4, &[1]), "0.0001");
        assert_eq!(t(-2, POSITIVE, 8, &[1]), "0.00000001");
        assert_eq!(t(1, POSITIVE, 0, &[1]), "10000");
        assert_eq!(t(2, POSITIVE, 0, &[1, 2, 3]), "100020003");
        assert_eq!(t(0, POSITIVE, 1, &[1, 2000]), "1.2");
        assert_eq!(t(0, NAN, 0, &[]), "NaN");
        assert_eq!(t(0, PLUS_INFINITY, 0, &[]), "Infinity");
        assert_eq!(t(0, MINUS_INFINITY, 0, &[]), "-Infinity");
    }

    #[test]
    fn rejects_malformed_input() {
        assert!(numeric_text(&[0, 1]).is_err());
        let mut truncated = raw(0, POSITIVE, 0, &[1, 2]);
        truncated.pop();
        assert!(numeric_text(&truncated).is_err());
        assert!(numeric_text(&raw(0, 0x1234, 0, &[1])).is_err());
        assert!(numeric_text(&raw(0, POSITIVE, 0, &[10_000])).is_err());
    }
}
