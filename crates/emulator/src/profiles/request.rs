//! Reading a profile request: JSON or form (`data=` plain or base64), `verbose`, and the list of updates.

use axum::http::{HeaderMap, header};
use base64::Engine;
use serde_json::Value;

/// The answer style asked for with `verbose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbosity {
    /// Text `1` / `0`.
    Plain,
    /// `verbose=1`: `{"error":..,"status":..}` with HTTP 200.
    Json,
    /// `verbose=2`: errors as HTTP 400.
    Errors,
}

/// A request's updates (each with its compact JSON size), or the request-level error.
pub(crate) struct Parsed {
    pub(crate) verbosity: Verbosity,
    pub(crate) updates: Result<Vec<(Value, usize)>, String>,
}

pub(crate) fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Parsed {
    let mut verbose = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key == "verbose" {
            verbose = Some(value.into_owned());
        }
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));

    let mut data: Option<Vec<u8>> = None;
    if is_form && !gzip {
        for (key, value) in form_urlencoded::parse(body) {
            match &*key {
                "data" => data = Some(value.into_owned().into_bytes()),
                "verbose" if verbose.is_none() => verbose = Some(value.into_owned()),
                _ => {}
            }
        }
    }
    let verbosity = match verbose.as_deref().map(str::trim) {
        Some("1") => Verbosity::Json,
        Some("2") => Verbosity::Errors,
        _ => Verbosity::Plain,
    };
    let updates = if gzip {
        Err("gzip encoding is not supported by this API".to_owned())
    } else if is_form {
        match data {
            Some(data) if !data.is_empty() => decode_data(&data),
            _ => Err("data, missing or empty".to_owned()),
        }
    } else {
        parse_json(body)
    };
    Parsed { verbosity, updates }
}

fn decode_data(data: &[u8]) -> Result<Vec<(Value, usize)>, String> {
    let trimmed = data.trim_ascii();
    if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(trimmed)
        && let Ok(updates) = parse_json(&decoded)
    {
        return Ok(updates);
    }
    parse_json(trimmed)
}

fn parse_json(bytes: &[u8]) -> Result<Vec<(Value, usize)>, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|_| "data, could not be parsed as JSON".to_owned())?;
    let list = match value {
        Value::Array(list) => list,
        other => vec![other],
    };
    if list.is_empty() {
        return Err("data, missing or empty".to_owned());
    }
    Ok(list
        .into_iter()
        .map(|v| {
            let size = serde_json::to_vec(&v).map_or(0, |b| b.len());
            (v, size)
        })
        .collect())
}
