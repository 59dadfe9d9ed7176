//! Bearer-token authentication: every call but health carries
//! `authorization: Bearer $MIXSYNC_API_TOKEN` when a token is configured.

use std::sync::Arc;

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use tonic::{Request, Status};

/// A tonic interceptor checking the bearer token.
#[derive(Clone)]
pub(crate) struct BearerAuth {
    /// SHA-256 of the expected token; `None` when the API is open.
    expected: Option<Arc<[u8; 32]>>,
}

impl BearerAuth {
    pub(crate) fn new(token: Option<&SecretString>) -> Self {
        Self {
            expected: token.map(|t| Arc::new(digest(t.expose_secret()))),
        }
    }

    /// Lets the request through when the token matches.
    pub(crate) fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(request);
        };
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| {
                Status::unauthenticated(
                    "missing `authorization: Bearer <token>` metadata; use the MIXSYNC_API_TOKEN the server was started with",
                )
            })?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization metadata is not text"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("the authorization metadata must be `Bearer <token>`")
            })?;
        if constant_time_eq(&digest(token.trim()), expected) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "the bearer token is wrong; use the MIXSYNC_API_TOKEN the server was started with",
            ))
        }
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.check(request)
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares digests (so lengths never differ) without an early exit.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        request
    }

    #[test]
    fn open_without_a_token() {
        assert!(BearerAuth::new(None).check(request(None)).is_ok());
    }

    #[test]
    fn checks_the_bearer_token() {
        let auth = BearerAuth::new(Some(&SecretString::from("s3cret".to_owned())));
        assert!(auth.check(request(Some("Bearer s3cret"))).is_ok());
        let missing = auth.check(request(None)).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().contains("missing"));
        let wrong = auth.check(request(Some("Bearer nope"))).unwrap_err();
        assert!(wrong.message().contains("wrong"));
        assert!(!wrong.message().contains("s3cret"));
        assert!(auth.check(request(Some("Basic s3cret"))).is_err());
    }
}
