//! Targets on the wire.

use mixsync_domain::{ProjectId, ProjectToken, Residency};
use mixsync_proto::v1;
use mixsync_state::{DEFAULT_RATE_LIMIT_PER_SECOND, Target, TargetSpec};
use secrecy::SecretString;

use super::{required, timestamp};
use crate::errors::{ApiError, ApiResult};

/// Whether secrets may be left empty (UpdateTarget keeps the stored ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secrets {
    Required,
    KeepIfEmpty,
}

/// A target spec from the wire, checked: project id a positive number, token 1–64 bytes of
/// `[A-Za-z0-9_-]`, base URL https (or http on loopback, or with `allow_insecure_http`).
pub(crate) fn target_spec(
    spec: &v1::TargetSpec,
    prefix: &str,
    secrets: Secrets,
) -> ApiResult<TargetSpec> {
    let field = |name: &str| format!("{prefix}.{name}");
    let name = required(&field("name"), &spec.name)?;
    let project_id = ProjectId::parse(&spec.project_id)
        .map_err(|_| {
            ApiError::invalid(
                field("project_id"),
                format!(
                    "`{}` is not a Mixpanel project id (a whole number greater than 0)",
                    spec.project_id
                ),
            )
        })?
        .get();
    let base_url = match spec.base_url.trim() {
        "" => None,
        url => Some(
            base_url(url, spec.allow_insecure_http)
                .map_err(|m| ApiError::invalid(field("base_url"), m))?,
        ),
    };
    let residency = residency(spec.residency(), base_url.is_some(), &field("residency"))?;
    let token = secret(&spec.token, secrets, &field("token"))?;
    if let Some(token) = &token {
        use secrecy::ExposeSecret as _;
        ProjectToken::parse(token.expose_secret())
            .map_err(|e| ApiError::invalid(field("token"), e.to_string()))?;
    }
    Ok(TargetSpec {
        name,
        project_id,
        residency,
        base_url,
        token,
        service_account_username: required(
            &field("service_account_username"),
            &spec.service_account_username,
        )?,
        service_account_secret: secret(
            &spec.service_account_secret,
            secrets,
            &field("service_account_secret"),
        )?,
        allow_insecure_http: spec.allow_insecure_http,
        rate_limit_per_second: rate_limit(
            spec.rate_limit_per_second,
            &field("rate_limit_per_second"),
        )?,
    })
}

/// The highest cap a target may set: far above any Mixpanel project's, low enough that a typo
/// (an extra zero or three) is caught.
const MAX_RATE_LIMIT_PER_SECOND: u32 = 10_000_000;

fn rate_limit(value: u32, field: &str) -> ApiResult<u32> {
    match value {
        0 => Ok(DEFAULT_RATE_LIMIT_PER_SECOND),
        1..=MAX_RATE_LIMIT_PER_SECOND => Ok(value),
        _ => Err(ApiError::invalid(
            field,
            format!(
                "{value} is above {MAX_RATE_LIMIT_PER_SECOND} records per second; give the \
                 project's cap as Mixpanel set it (0 for the standard 30000)"
            ),
        )),
    }
}

fn residency(r: v1::Residency, has_base_url: bool, field: &str) -> ApiResult<Residency> {
    match r {
        v1::Residency::Us => Ok(Residency::Us),
        v1::Residency::Eu => Ok(Residency::Eu),
        v1::Residency::In => Ok(Residency::In),
        v1::Residency::Unspecified if has_base_url => Ok(Residency::Us),
        v1::Residency::Unspecified => Err(ApiError::invalid(
            field,
            "is required: US, EU or IN (or give an explicit base_url)",
        )),
    }
}

fn secret(value: &str, secrets: Secrets, field: &str) -> ApiResult<Option<SecretString>> {
    match (value.is_empty(), secrets) {
        (false, _) => Ok(Some(SecretString::from(value.to_owned()))),
        (true, Secrets::KeepIfEmpty) => Ok(None),
        (true, Secrets::Required) => Err(ApiError::invalid(
            field,
            "is required and must not be empty",
        )),
    }
}

/// An explicit API base URL: https, or http on a loopback host or when `allow_insecure` (every
/// request carries the project's credentials), with a host, no query; without trailing slash.
fn base_url(url: &str, allow_insecure: bool) -> Result<String, String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("`{url}` is not a URL ({e}); e.g. http://127.0.0.1:3900"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` must start with http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() || !parsed.username().is_empty() {
        return Err(format!(
            "`{url}` must not carry credentials, a query or a fragment"
        ));
    }
    if parsed.scheme() == "http" && !allow_insecure && !is_loopback(&parsed) {
        return Err(format!(
            "`{url}` is plain http:// on a host that is not loopback: the project token and \
             service-account secret would cross the network unencrypted. Use https://, or set \
             allow_insecure_http (CLI: --allow-insecure-http) to accept that"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// Whether the URL's host is this machine: `localhost` or a loopback address.
fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// A stored target on the wire; never the token or the secret.
pub(crate) fn target_to_proto(t: &Target) -> v1::Target {
    let residency = match t.residency {
        Residency::Us => v1::Residency::Us,
        Residency::Eu => v1::Residency::Eu,
        Residency::In => v1::Residency::In,
    };
    v1::Target {
        id: t.id.clone(),
        name: t.name.clone(),
        project_id: t.project_id.to_string(),
        residency: residency.into(),
        base_url: t.base_url.clone().unwrap_or_default(),
        service_account_username: t.service_account_username.clone(),
        has_token: t.has_token,
        has_service_account_secret: t.has_service_account_secret,
        allow_insecure_http: t.allow_insecure_http,
        rate_limit_per_second: t.rate_limit_per_second,
        created_at: Some(timestamp(t.created_at)),
        updated_at: Some(timestamp(t.updated_at)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> v1::TargetSpec {
        v1::TargetSpec {
            name: "t".into(),
            project_id: "123".into(),
            residency: v1::Residency::Eu.into(),
            base_url: String::new(),
            token: "0123abcd".into(),
            service_account_username: "sa".into(),
            service_account_secret: "s".into(),
            allow_insecure_http: false,
            rate_limit_per_second: 0,
        }
    }

    #[test]
    fn the_rate_limit_defaults_to_mixpanels_cap_and_is_bounded() {
        let mut s = spec();
        let out = target_spec(&s, "target", Secrets::Required).unwrap();
        assert_eq!(out.rate_limit_per_second, 30_000);
        s.rate_limit_per_second = 120_000;
        let out = target_spec(&s, "target", Secrets::Required).unwrap();
        assert_eq!(out.rate_limit_per_second, 120_000);
        s.rate_limit_per_second = 30_000_000;
        let err = target_spec(&s, "target", Secrets::Required).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("target.rate_limit_per_second: 30000000 is above 10000000"),
            "{err}"
        );
    }

    #[test]
    fn a_valid_spec_and_redacted_debug() {
        let out = target_spec(&spec(), "target", Secrets::Required).unwrap();
        assert_eq!(out.project_id, 123);
        assert_eq!(out.residency, Residency::Eu);
        assert!(!format!("{out:?}").contains("0123abcd"));
    }

    #[test]
    fn errors_name_the_field_and_never_the_secret() {
        let mut s = spec();
        s.project_id = "12a".into();
        let err = target_spec(&s, "target", Secrets::Required).unwrap_err();
        assert!(
            err.to_string().starts_with("target.project_id: `12a`"),
            "{err}"
        );

        let mut s = spec();
        s.token = "bad token!".into();
        let err = target_spec(&s, "target", Secrets::Required).unwrap_err();
        assert!(err.to_string().starts_with("target.token:"), "{err}");
        assert!(!err.to_string().contains("bad token"), "{err}");

        let mut s = spec();
        s.token = "t".repeat(65);
        assert!(target_spec(&s, "target", Secrets::Required).is_err());

        let mut s = spec();
        s.base_url = "ftp://x".into();
        let err = target_spec(&s, "target", Secrets::Required).unwrap_err();
        assert!(err.to_string().starts_with("target.base_url:"), "{err}");

        let mut s = spec();
        s.token.clear();
        assert!(target_spec(&s, "target", Secrets::Required).is_err());
        assert!(
            target_spec(&s, "target", Secrets::KeepIfEmpty)
                .unwrap()
                .token
                .is_none()
        );
    }

    #[test]
    fn base_url_wins_and_loses_its_trailing_slash() {
        let mut s = spec();
        s.residency = v1::Residency::Unspecified.into();
        s.base_url = "http://127.0.0.1:3900/".into();
        let out = target_spec(&s, "target", Secrets::Required).unwrap();
        assert_eq!(out.base_url.as_deref(), Some("http://127.0.0.1:3900"));
    }

    #[test]
    fn plain_http_only_on_loopback_or_when_allowed() {
        let mut s = spec();
        for url in [
            "http://localhost:3900",
            "http://127.0.0.1",
            "http://[::1]:3900",
            "https://mixpanel.internal",
        ] {
            s.base_url = url.into();
            assert!(
                target_spec(&s, "target", Secrets::Required).is_ok(),
                "{url}"
            );
        }
        for url in [
            "http://mixpanel.internal",
            "http://10.0.0.5:8080",
            "http://[::2]",
        ] {
            s.base_url = url.into();
            let err = target_spec(&s, "target", Secrets::KeepIfEmpty).unwrap_err();
            assert!(err.to_string().starts_with("target.base_url:"), "{err}");
            assert!(err.to_string().contains("allow_insecure_http"), "{err}");
            s.allow_insecure_http = true;
            let out = target_spec(&s, "target", Secrets::KeepIfEmpty).unwrap();
            assert!(out.allow_insecure_http, "{url}");
            s.allow_insecure_http = false;
        }
    }
}
