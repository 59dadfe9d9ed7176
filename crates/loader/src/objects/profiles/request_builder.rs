//! `POST {base_url}/{engage|groups}?verbose=1` with a plain JSON body: these endpoints take no gzip
//! (docs/mixpanel-api.md §2.3) and no credentials but the `$token` in each update
//! (docs/mixpanel-api.md §2.1), so no service account is sent. Without `ip=0` in the query: each
//! update carries its own `$ip` (the activation's option).

use bytes::Bytes;
use mixsync_domain::ProjectToken;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::ExposeSecret as _;

use super::encoder;
use crate::http::PreparedRequest;
use crate::objects::{BuildError, endpoint};
use crate::target::Target;

/// The URL of `path` (`engage` or `groups`) at `target`.
pub(crate) fn url(target: &Target, path: &str) -> Result<reqwest::Url, BuildError> {
    let mut url = endpoint(target, path)?;
    url.query_pairs_mut().append_pair("verbose", "1");
    Ok(url)
}

/// The request for `records` to `path`. A target whose token is not a project token cannot load
/// anything (every update would be refused), so it is an error of the target, not of the records.
pub(crate) fn build(
    target: &Target,
    path: &str,
    records: &[Bytes],
) -> Result<PreparedRequest, BuildError> {
    let url = url(target, path)?;
    let token = ProjectToken::parse(target.token.expose_secret())
        .map_err(|e| BuildError(format!("the target's project token cannot be used: {e}")))?;
    let (body, updates) = encoder::encode(records, token.as_str());
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(PreparedRequest {
        url,
        headers,
        basic_auth: None,
        uncompressed_bytes: body.len() as u64,
        body: Bytes::from(body),
        records: updates as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(token: &str) -> Target {
        Target {
            base_url: "https://api-eu.mixpanel.com/".into(),
            project_id: 7,
            token: token.into(),
            service_account_username: "sa".into(),
            service_account_secret: "s".into(),
            rate_limit_per_second: 30_000,
        }
    }

    #[test]
    fn plain_json_to_the_endpoint_with_verbose_and_no_credentials() {
        let records = [Bytes::from_static(
            br#"[{"$group_key":"company","$group_id":"c1","$set":{}},{"$group_key":"company","$group_id":"c1","$unset":["a"]}]"#,
        )];
        let request = build(&target("0123abcd"), "groups", &records).unwrap();
        assert_eq!(
            request.url.as_str(),
            "https://api-eu.mixpanel.com/groups?verbose=1"
        );
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert!(request.headers.get("content-encoding").is_none());
        assert!(request.basic_auth.is_none());
        assert_eq!(request.records, 2);
        assert_eq!(request.uncompressed_bytes, request.body.len() as u64);
        assert!(
            request
                .body
                .starts_with(br#"[{"$token":"0123abcd","$group_key""#)
        );
        assert_eq!(
            url(&target("t"), "engage").unwrap().as_str(),
            "https://api-eu.mixpanel.com/engage?verbose=1"
        );
    }

    #[test]
    fn a_target_without_a_usable_token_cannot_build_requests() {
        let records = [Bytes::from_static(br#"[{"$distinct_id":"u","$set":{}}]"#)];
        for token in ["", "has space", &"x".repeat(65)] {
            let error = build(&target(token), "engage", &records).unwrap_err();
            assert!(
                error
                    .0
                    .starts_with("the target's project token cannot be used"),
                "{error}"
            );
            assert!(token.is_empty() || !error.0.contains(token), "{error}");
        }
    }
}
