//! `POST /import`: auth, query, body, limits, per-event rules, dedup and the strict answer.

mod body;
mod fast;
mod validate;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;

use crate::auth;
use crate::reply;
use crate::state::{State, now_ms};
use crate::stats::Endpoint;
use body::BodyError;
use validate::{Context, FailedRecord, Outcome};

#[derive(Serialize)]
struct Imported {
    code: u16,
    num_records_imported: usize,
    status: &'static str,
}

#[derive(Serialize)]
struct PartlyImported {
    code: u16,
    error: &'static str,
    failed_records: Vec<FailedRecord>,
    num_records_imported: usize,
    status: &'static str,
}

/// Handles one `/import` request whose faults have been applied.
pub(crate) fn handle(
    state: &State,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let response = respond(state, query, headers, body);
    state
        .stats
        .request(Endpoint::Import, response.status().as_u16());
    response
}

fn respond(state: &State, query: Option<&str>, headers: &HeaderMap, body: &Bytes) -> Response {
    let mut project_id = None;
    let mut strict = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*key {
            "project_id" => project_id = Some(value.into_owned()),
            "strict" => strict = Some(value.into_owned()),
            _ => {}
        }
    }
    let project = match auth::import_project(
        state,
        headers.get(header::AUTHORIZATION),
        project_id.as_deref(),
    ) {
        Ok(project) => project,
        Err(response) => return response,
    };
    let strict = match strict.as_deref() {
        None | Some("1") => true,
        Some("0") => false,
        Some(_) => return bad_request("'strict' is invalid: must be 0 or 1"),
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzip = match encoding.as_deref() {
        None | Some("" | "identity") => false,
        Some("gzip") => true,
        Some(other) => {
            return reply::code_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("unsupported content encoding '{other}'"),
            );
        }
    };
    let limit = state.limits.max_import_bytes;
    let decoded = match body::decode(body, gzip, limit) {
        Ok(decoded) => decoded,
        Err(BodyError::BadGzip) => {
            return bad_request("unable to decompress request body: invalid gzip data");
        }
        Err(BodyError::TooLarge) => {
            return reply::code_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request exceeds max limit of {limit} bytes"),
            );
        }
    };
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-ndjson")
        });
    let elements = if ndjson {
        body::split_ndjson(&decoded)
    } else {
        match body::split_array(&decoded) {
            Ok(elements) => elements,
            Err(detail) => return bad_request(&format!("unable to parse request body: {detail}")),
        }
    };
    if elements.is_empty() {
        return bad_request("no data provided");
    }
    let max = state.limits.max_import_events;
    if elements.len() > max {
        return bad_request(&format!(
            "too many records in request: {} (max {max})",
            elements.len()
        ));
    }
    if let Err(response) = state.admit(project, elements.len() as u64, decoded.len() as u64) {
        return response;
    }

    let ctx = Context {
        now_ms: now_ms(),
        truncate: state.limits.truncate,
    };
    let mut accepted = Vec::with_capacity(elements.len());
    let mut failed = Vec::new();
    for (index, element) in elements.iter().enumerate() {
        match validate::judge(index, element.bytes, &ctx) {
            Outcome::Accepted(event) => accepted.push(event),
            Outcome::Failed(record) => failed.push(record),
            Outcome::Malformed(detail) => {
                let place = if element.line > 0 {
                    format!("line {}", element.line)
                } else {
                    format!("record {index}")
                };
                return bad_request(&format!("unable to parse request body: {place}: {detail}"));
            }
        }
    }
    let imported = accepted.len();
    let deduplicated = state.store.insert_events(project, accepted);
    state
        .stats
        .records(imported as u64, failed.len() as u64, deduplicated);
    if failed.is_empty() || !strict {
        reply::json(
            StatusCode::OK,
            &Imported {
                code: 200,
                num_records_imported: imported,
                status: "OK",
            },
        )
    } else {
        reply::json(
            StatusCode::BAD_REQUEST,
            &PartlyImported {
                code: 400,
                error: "some data points in the request failed validation",
                failed_records: failed,
                num_records_imported: imported,
                status: "Bad Request",
            },
        )
    }
}

fn bad_request(error: &str) -> Response {
    reply::code_error(StatusCode::BAD_REQUEST, error)
}
