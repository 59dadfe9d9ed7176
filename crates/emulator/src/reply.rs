//! Building HTTP answers with Mixpanel's bodies.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

/// The JSON error body of `/import`: `{"code":..,"error":..,"status":..}`.
#[derive(Serialize)]
pub(crate) struct CodeError<'a> {
    pub(crate) code: u16,
    pub(crate) error: &'a str,
    pub(crate) status: &'a str,
}

/// A JSON answer with the given status.
pub(crate) fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    raw(status, "application/json", bytes)
}

/// An answer with a given content type.
pub(crate) fn raw(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `{"code":S,"error":E,"status":"<reason phrase>"}` with the status's reason phrase.
pub(crate) fn code_error(status: StatusCode, error: &str) -> Response {
    json(
        status,
        &CodeError {
            code: status.as_u16(),
            error,
            status: reason_phrase(status),
        },
    )
}

/// The reason phrase Mixpanel puts in `status` (it still says "Request Entity Too Large" for 413).
fn reason_phrase(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        other => other.canonical_reason().unwrap_or("Error"),
    }
}

/// `{"error":E}` for the emulator's own endpoints.
pub(crate) fn plain_error(status: StatusCode, error: &str) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
    }
    json(status, &Body { error })
}

pub(crate) const RATE_LIMITED: &str =
    "Project exceeded rate limits. Please retry the request with exponential backoff.";

/// Mixpanel's 429, with `Retry-After` when given.
pub(crate) fn rate_limited(retry_after_secs: Option<u64>) -> Response {
    let mut response = code_error(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED);
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    response
}

/// The answer to an injected failure.
pub(crate) fn injected(status: u16) -> Response {
    match StatusCode::from_u16(status) {
        Ok(StatusCode::TOO_MANY_REQUESTS) => rate_limited(None),
        Ok(status) => code_error(status, "injected fault"),
        Err(_) => code_error(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
    }
}
