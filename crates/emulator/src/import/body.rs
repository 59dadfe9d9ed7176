//! Turning an `/import` body into per-event byte slices: gzip, size limit, JSON array or NDJSON.
//!
//! The body is split into elements without building a JSON tree, so each event can be judged on its own:
//! one event with invalid UTF-8 fails alone instead of failing the whole request.

use std::io::Read;

use flate2::read::GzDecoder;

/// Why a body cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Not valid gzip.
    BadGzip,
    /// More than the byte limit once decompressed.
    TooLarge,
}

/// Decompresses `body` if `gzip`, refusing more than `limit` bytes.
pub(crate) fn decode(
    body: &[u8],
    gzip: bool,
    limit: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, BodyError> {
    if !gzip {
        return if body.len() > limit {
            Err(BodyError::TooLarge)
        } else {
            Ok(body.into())
        };
    }
    let mut out = Vec::with_capacity(body.len().saturating_mul(6).min(limit + 1));
    GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BodyError::BadGzip)?;
    if out.len() > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(out.into())
}

/// One element of the body and where it came from, for error messages.
pub(crate) struct Element<'a> {
    pub(crate) bytes: &'a [u8],
    /// 1-based line for NDJSON, 0 for a JSON array.
    pub(crate) line: usize,
}

/// Splits NDJSON into its non-blank lines.
pub(crate) fn split_ndjson(body: &[u8]) -> Vec<Element<'_>> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .map(|(i, line)| Element {
            bytes: trim(line),
            line: i + 1,
        })
        .filter(|e| !e.bytes.is_empty())
        .collect()
}

/// Splits a JSON array into its elements' byte ranges; structure errors say where.
pub(crate) fn split_array(body: &[u8]) -> Result<Vec<Element<'_>>, String> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'[') {
        return Err(format!("expected a JSON array at byte {i}"));
    }
    i += 1;
    let mut elements = Vec::new();
    i = skip_ws(body, i);
    if body.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            let (end, closed_at) = scan_value(body, i)?;
            let bytes = trim(&body[i..end]);
            if bytes.is_empty() {
                return Err(format!("expected a value at byte {i}"));
            }
            elements.push(Element { bytes, line: 0 });
            i = end + 1;
            if closed_at {
                break;
            }
        }
    }
    let rest = skip_ws(body, i);
    if rest != body.len() {
        return Err(format!(
            "unexpected characters after the array at byte {rest}"
        ));
    }
    Ok(elements)
}

/// Scans one array element from `start`; returns the index of the `,` or `]` that ends it, and whether it
/// was the array's closing `]`.
fn scan_value(body: &[u8], start: usize) -> Result<(usize, bool), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut i = start;
    while i < body.len() {
        let b = body[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b']' => return Ok((i, true)),
                b'}' => return Err(format!("unexpected '}}' at byte {i}")),
                b',' if depth == 0 => return Ok((i, false)),
                _ => {}
            }
        }
        i += 1;
    }
    Err("unexpected end of input: the array is not closed".into())
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while i < body.len() && body[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(elements: &[Element<'_>]) -> Vec<String> {
        elements
            .iter()
            .map(|e| String::from_utf8_lossy(e.bytes).into_owned())
            .collect()
    }

    #[test]
    fn splits_arrays_with_nesting_and_tricky_strings() {
        let body = br#" [ {"a":[1,2],"b":"x,]}\"y"} , 3 ,"s" ,[{}] ] "#;
        let got = split_array(body).unwrap();
        assert_eq!(
            texts(&got),
            [r#"{"a":[1,2],"b":"x,]}\"y"}"#, "3", r#""s""#, "[{}]"]
        );
        assert!(split_array(b"[]").unwrap().is_empty());
        assert!(split_array(b" [ ] ").unwrap().is_empty());
    }

    #[test]
    fn structure_errors_are_reported() {
        for bad in [
            &b""[..],
            b"{}",
            b"[",
            b"[1,",
            b"[1,]",
            b"[1] x",
            b"[}]",
            b"[\"abc]",
        ] {
            assert!(
                split_array(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn ndjson_skips_blank_lines_and_keeps_line_numbers() {
        let got = split_ndjson(b"{\"a\":1}\n\n  {\"b\":2}\r\n");
        assert_eq!(texts(&got), ["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn gzip_is_decoded_and_limited() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(&[b'x'; 1000]).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(decode(&gz, true, 1000).unwrap().len(), 1000);
        assert_eq!(decode(&gz, true, 999).unwrap_err(), BodyError::TooLarge);
        assert_eq!(
            decode(b"not gzip", true, 1000).unwrap_err(),
            BodyError::BadGzip
        );
        assert_eq!(
            decode(&[b'x'; 10], false, 9).unwrap_err(),
            BodyError::TooLarge
        );
    }

    proptest! {
        #[test]
        fn split_agrees_with_serde_on_valid_arrays(values in prop::collection::vec(any_json(), 0..8)) {
            let body = serde_json::to_vec(&values).unwrap();
            let parts = split_array(&body).unwrap();
            prop_assert_eq!(parts.len(), values.len());
            for (part, value) in parts.iter().zip(&values) {
                let parsed: serde_json::Value = serde_json::from_slice(part.bytes).unwrap();
                prop_assert_eq!(&parsed, value);
            }
        }

        #[test]
        fn split_never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = split_array(&body);
            let _ = split_ndjson(&body);
        }
    }

    fn any_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
