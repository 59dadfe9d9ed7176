//! `/import` authentication: service account + `project_id`, project token, or legacy API secret.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;

use crate::config::ServiceAccountConfig;
use crate::reply;
use crate::state::State;

/// Basic credentials: `base64(user:pass)`, or the plain `user:pass` Mixpanel also accepts.
pub(crate) fn basic_credentials(header: Option<&HeaderValue>) -> Option<(String, String)> {
    let value = header?.to_str().ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let credential = credential.trim();
    let decoded = if credential.contains(':') {
        credential.to_owned()
    } else {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(credential)
            .ok()?;
        String::from_utf8(bytes).ok()?
    };
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

pub(crate) const INVALID_CREDENTIALS: &str = "Invalid credentials";
const LEGACY_SECRET: &str = "Unauthorized, invalid project secret. See docs for more information: https://developer.mixpanel.com/reference/authentication";

pub(crate) fn unauthorized() -> Response {
    reply::code_error(StatusCode::UNAUTHORIZED, INVALID_CREDENTIALS)
}

/// The service account with these credentials, if any (a revoked one has none).
pub(crate) fn service_account<'a>(
    state: &'a State,
    user: &str,
    pass: &str,
) -> Option<&'a ServiceAccountConfig> {
    state
        .service_accounts
        .iter()
        .find(|a| a.username == user && a.secret == pass)
        .filter(|a| !state.revoked.lock().contains(&a.username))
}

/// Decides which project an `/import` request writes to, or the error answer.
pub(crate) fn import_project(
    state: &State,
    header: Option<&HeaderValue>,
    project_id: Option<&str>,
) -> Result<u64, Response> {
    let (user, pass) = basic_credentials(header).ok_or_else(unauthorized)?;
    if let Some(account) = service_account(state, &user, &pass) {
        let Some(raw_id) = project_id else {
            return Err(reply::code_error(StatusCode::UNAUTHORIZED, LEGACY_SECRET));
        };
        let pid = parse_project_id(raw_id)?;
        let role = account
            .roles
            .get(&pid.to_string())
            .filter(|_| state.projects.iter().any(|p| p.id == pid));
        return match role {
            None => Err(reply::code_error(
                StatusCode::FORBIDDEN,
                &format!("service account '{user}' does not have access to project {pid}"),
            )),
            Some(role) if !role.can_import() => Err(reply::code_error(
                StatusCode::FORBIDDEN,
                &format!(
                    "service account '{user}' needs the Owner or Admin role on project {pid} to import data"
                ),
            )),
            Some(_) => Ok(pid),
        };
    }
    if !pass.is_empty() {
        return Err(unauthorized());
    }
    let project = state
        .projects
        .iter()
        .find(|p| p.token == user || p.api_secret == user)
        .ok_or_else(unauthorized)?;
    match project_id {
        // With a token or API secret, any project_id other than the project's own (even one
        // that is not a number) is a credentials mismatch.
        Some(raw_id) if raw_id.parse::<u64>().ok() != Some(project.id) => Err(unauthorized()),
        _ => Ok(project.id),
    }
}

fn parse_project_id(raw: &str) -> Result<u64, Response> {
    raw.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        reply::code_error(
            StatusCode::BAD_REQUEST,
            "'project_id' is invalid: must be a positive integer",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_accepts_base64_and_plain_text() {
        let b64 = HeaderValue::from_static("Basic ZGVtby1zYTpkZW1vLXNlY3JldA==");
        assert_eq!(
            basic_credentials(Some(&b64)),
            Some(("demo-sa".into(), "demo-secret".into()))
        );
        let plain = HeaderValue::from_static("basic demo-sa:demo-secret");
        assert_eq!(
            basic_credentials(Some(&plain)),
            Some(("demo-sa".into(), "demo-secret".into()))
        );
        let token = HeaderValue::from_static("Basic ZGVtby10b2tlbjo=");
        assert_eq!(
            basic_credentials(Some(&token)),
            Some(("demo-token".into(), String::new()))
        );
        for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic Zm9v"] {
            assert_eq!(
                basic_credentials(Some(&HeaderValue::from_static(bad))),
                None,
                "{bad}"
            );
        }
    }
}
