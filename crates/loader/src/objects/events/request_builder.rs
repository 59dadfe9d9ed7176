//! `POST {base_url}/import?strict=1&project_id=N` with service-account Basic auth, a gzip'd JSON
//! body (docs/mixpanel-api.md §1.2, §1.3).

use bytes::Bytes;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderValue};

use super::encoder;
use crate::encoder::gzip;
use crate::http::PreparedRequest;
use crate::objects::{BuildError, endpoint};
use crate::target::Target;

/// The `/import` URL of `target`.
pub fn import_url(target: &Target) -> Result<reqwest::Url, BuildError> {
    let mut url = endpoint(target, "import")?;
    url.query_pairs_mut()
        .append_pair("strict", "1")
        .append_pair("project_id", &target.project_id.to_string());
    Ok(url)
}

/// The request for `records`.
pub fn build(target: &Target, records: &[Bytes]) -> Result<PreparedRequest, BuildError> {
    let url = import_url(target)?;
    let body = encoder::encode(records);
    let uncompressed_bytes = body.len() as u64;
    let body = gzip(&body).map_err(|e| BuildError(format!("cannot compress the body: {e}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Ok(PreparedRequest {
        url,
        headers,
        basic_auth: Some((
            target.service_account_username.clone(),
            target.service_account_secret.clone(),
        )),
        body: Bytes::from(body),
        records: records.len() as u64,
        uncompressed_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base_url: &str) -> Target {
        Target {
            base_url: base_url.into(),
            project_id: 123,
            token: "t".into(),
            service_account_username: "sa".into(),
            service_account_secret: "s".into(),
            rate_limit_per_second: 30_000,
        }
    }

    #[test]
    fn url_has_strict_and_project_id() {
        let url = import_url(&target("https://api-eu.mixpanel.com/")).unwrap();
        assert_eq!(
            url.as_str(),
            "https://api-eu.mixpanel.com/import?strict=1&project_id=123"
        );
        let url = import_url(&target("http://127.0.0.1:3900")).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3900/import?strict=1&project_id=123"
        );
    }

    #[test]
    fn bad_base_urls_are_refused() {
        assert!(import_url(&target("api.mixpanel.com")).is_err());
        assert!(import_url(&target("ftp://api.mixpanel.com")).is_err());
    }

    #[test]
    fn body_is_gzipped_json() {
        let request = build(
            &target("https://api.mixpanel.com"),
            &[Bytes::from_static(b"{}")],
        )
        .unwrap();
        assert_eq!(request.headers[CONTENT_ENCODING], "gzip");
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert_eq!(request.uncompressed_bytes, 4);
        assert_eq!(request.records, 1);
        assert_eq!(&request.body[..2], &[0x1f, 0x8b]);
    }
}
