//! The HTTP client every object sends through: one pooled `reqwest` client with timeouts, and the
//! object-independent request and reply shapes.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret as _, SecretString};

use crate::retry::parse_retry_after;

/// Timeouts for Mixpanel requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// A whole request, from sending to the end of the answer.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// A request ready to send (and to send again: the body is shared, not copied).
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    /// The full URL, query included.
    pub url: reqwest::Url,
    /// Content type, encoding and such.
    pub headers: HeaderMap,
    /// HTTP Basic credentials, if any.
    pub basic_auth: Option<(String, SecretString)>,
    /// The (compressed) body.
    pub body: Bytes,
    /// Records in the request, for the rate limit.
    pub records: u64,
    /// Uncompressed body bytes, for the rate limit.
    pub uncompressed_bytes: u64,
}

/// Mixpanel's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// `Retry-After`, when present and in seconds.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Bytes,
}

/// No answer came back.
#[derive(Debug, thiserror::Error)]
#[error("no answer from {host}: {detail}")]
pub struct TransportError {
    host: String,
    detail: String,
}

/// The client could not be built (TLS setup).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct ClientError(#[source] reqwest::Error);

/// A pooled client; cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// Builds the client. Redirects are not followed: Mixpanel does not redirect ingestion calls,
    /// and following one would turn a POST into a GET.
    pub fn new(settings: &HttpSettings) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mixsync-loader/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError)?;
        Ok(HttpClient { client })
    }

    /// Sends `request` once and reads the whole answer.
    pub async fn send(&self, request: &PreparedRequest) -> Result<Reply, TransportError> {
        let transport = |e: reqwest::Error| TransportError {
            host: request.url.host_str().unwrap_or("?").to_owned(),
            detail: describe(&e),
        };
        let mut builder = self
            .client
            .post(request.url.clone())
            .headers(request.headers.clone())
            .body(request.body.clone());
        if let Some((user, secret)) = &request.basic_auth {
            builder = builder.basic_auth(user, Some(secret.expose_secret()));
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = response.bytes().await.map_err(transport)?;
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }
}

/// The error and its causes on one line, without the URL (it carries no secret, but the chain is
/// what says what happened: "connection refused", "operation timed out").
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
