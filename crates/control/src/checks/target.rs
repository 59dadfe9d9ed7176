//! TestTarget: the token's format, then the service account against `GET /api/app/me`, whose
//! `results.projects` must list the project.

use std::time::Duration;

use mixsync_domain::ProjectToken;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::Value as Json;

use super::Check;

/// How long TestTarget waits for Mixpanel.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(15);

/// What TestTarget checks.
pub(crate) struct TargetProbe {
    /// Base URL serving `/api/app/me` (the app host of the residency, or the explicit base URL).
    pub app_base_url: String,
    pub project_id: u64,
    pub token: SecretString,
    pub service_account_username: String,
    pub service_account_secret: SecretString,
}

/// Runs the checks in order: `token`, `service_account`, `project_access`. A failed check ends
/// the list, except that a bad token does not stop the service-account checks.
pub(crate) async fn test_target(http: &reqwest::Client, probe: &TargetProbe) -> Vec<Check> {
    let mut checks = vec![token_check(&probe.token)];
    let user = &probe.service_account_username;
    let url = format!("{}/api/app/me", probe.app_base_url);
    let response = http
        .get(&url)
        .basic_auth(user, Some(probe.service_account_secret.expose_secret()))
        .timeout(TIMEOUT)
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            checks.push(Check::fail(
                "service_account",
                format!("cannot reach Mixpanel at {url}: {}", http_failure(&e)),
            ));
            return checks;
        }
    };
    let status = response.status();
    if status.is_redirection() {
        checks.push(Check::fail(
            "service_account",
            format!(
                "{url} answered with a redirect (HTTP {}), which mixsync does not follow with \
                 credentials: give the base URL the API is really served at",
                status.as_u16()
            ),
        ));
        return checks;
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        checks.push(Check::fail(
            "service_account",
            format!(
                "Mixpanel refused service account `{user}` (HTTP {}): the username or secret is wrong, or the account has expired",
                status.as_u16()
            ),
        ));
        return checks;
    }
    let body: Option<Json> = response.json().await.ok();
    let projects = body
        .as_ref()
        .filter(|_| status.is_success())
        .and_then(|b| b.pointer("/results/projects"))
        .and_then(Json::as_object);
    let Some(projects) = projects else {
        checks.push(Check::fail(
            "service_account",
            format!(
                "unexpected answer from {url}: HTTP {}, no `results.projects`; is the base URL a Mixpanel API?",
                status.as_u16()
            ),
        ));
        return checks;
    };
    checks.push(Check::pass(
        "service_account",
        format!("service account `{user}` authenticated"),
    ));
    checks.push(project_check(user, probe.project_id, projects));
    checks
}

fn token_check(token: &SecretString) -> Check {
    match ProjectToken::parse(token.expose_secret()) {
        Ok(_) => Check::pass("token", "the project token is well-formed"),
        Err(e) => Check::fail("token", e.to_string()),
    }
}

fn project_check(user: &str, project_id: u64, projects: &serde_json::Map<String, Json>) -> Check {
    let Some(project) = projects.get(&project_id.to_string()) else {
        let mut ids: Vec<&str> = projects.keys().map(String::as_str).collect();
        ids.sort_unstable();
        let can = if ids.is_empty() {
            "none".to_owned()
        } else {
            ids.join(", ")
        };
        return Check::fail(
            "project_access",
            format!(
                "service account `{user}` cannot access project {project_id} (it can access: {can}); add it to the project in Mixpanel's project settings"
            ),
        );
    };
    let role = project.get("role").and_then(Json::as_str);
    match role {
        Some(r) if !matches!(r.to_ascii_lowercase().as_str(), "owner" | "admin") => Check::pass(
            "project_access",
            format!(
                "service account `{user}` can access project {project_id} as `{r}`; sending data needs the owner or admin role, so runs will fail with 403 until it has one"
            ),
        ),
        Some(r) => Check::pass(
            "project_access",
            format!("service account `{user}` can access project {project_id} as `{r}`"),
        ),
        None => Check::pass(
            "project_access",
            format!("service account `{user}` can access project {project_id}"),
        ),
    }
}

/// What went wrong with a request, in words: refused, timed out, not resolved, TLS (and which
/// certificate problem). Never the addresses a name resolved to, nor a URL other than
/// the one the caller gave (a redirect's target could be an internal address).
pub(crate) fn http_failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s (timed out)", TIMEOUT.as_secs());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut text = String::new();
    while let Some(cause) = source {
        if let Some(tls) = mixsync_pg::as_rustls(cause) {
            return format!("TLS failed: {}", tls_failure(tls));
        }
        text.push_str(&cause.to_string());
        text.push(' ');
        source = cause.source();
    }
    if text.contains("Connection refused") {
        "the connection was refused (nothing listens on that port)".into()
    } else if text.contains("dns error") || text.contains("lookup") {
        "the host name does not resolve".into()
    } else if text.contains("timed out") {
        "the connection timed out".into()
    } else if text.contains("unreachable") {
        "the host is unreachable from here".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "the request failed".into()
    }
}

fn tls_failure(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA".into()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "the server's certificate is not valid for this host name".into(),
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(other) => {
            format!("the server's certificate was refused ({other:?})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn project_access_lists_what_the_account_can_reach() {
        let projects = json!({"7": {"role": "owner"}, "1": {}});
        let check = project_check("sa", 123, projects.as_object().unwrap());
        assert!(!check.ok);
        assert_eq!(
            check.message,
            "service account `sa` cannot access project 123 (it can access: 1, 7); add it to the project in Mixpanel's project settings"
        );
        assert!(project_check("sa", 7, projects.as_object().unwrap()).ok);
    }

    #[test]
    fn token_errors_do_not_quote_the_token() {
        let check = token_check(&SecretString::from("secret.token".to_owned()));
        assert!(!check.ok);
        assert!(!check.message.contains("secret.token"));
    }
}
