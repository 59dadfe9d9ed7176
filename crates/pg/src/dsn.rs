//! Taking libpq's TLS parameters out of a connection string.
//!
//! tokio-postgres parses `sslmode` itself but knows only `disable`, `prefer` and `require`, and
//! does not know `sslrootcert`. So the two are lifted out here, from either form libpq accepts
//! (a `postgres://` URL or `key=value` pairs), and the rest is handed to tokio-postgres as it
//! was. See `docs/tls.md`.

use std::path::PathBuf;

use crate::{DsnError, RootCert, SslMode};

/// What [`split`] found: the connection string without the TLS parameters, and those.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Split {
    pub rest: String,
    pub ssl_mode: Option<SslMode>,
    pub root_cert: Option<RootCert>,
}

/// Lifts `sslmode` and `sslrootcert` out of `dsn`.
pub(crate) fn split(dsn: &str) -> Result<Split, DsnError> {
    let dsn = dsn.trim();
    if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
        split_url(dsn)
    } else {
        split_pairs(dsn)
    }
}

fn take(
    key: &str,
    value: String,
    ssl_mode: &mut Option<SslMode>,
    root_cert: &mut Option<RootCert>,
) -> Result<bool, DsnError> {
    match key {
        "sslmode" => {
            *ssl_mode = Some(value.parse()?);
            Ok(true)
        }
        "sslrootcert" => {
            *root_cert = match value.as_str() {
                "" => None,
                "system" => Some(RootCert::System),
                _ => Some(RootCert::File(PathBuf::from(value))),
            };
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn split_url(dsn: &str) -> Result<Split, DsnError> {
    let (base, query) = match dsn.split_once('?') {
        Some((base, query)) => (base, query),
        None => (dsn, ""),
    };
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        let key_plain = percent_decode(key)?;
        if !take(
            &key_plain,
            percent_decode(value)?,
            &mut ssl_mode,
            &mut root_cert,
        )? {
            kept.push(part);
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Split {
        rest,
        ssl_mode,
        root_cert,
    })
}

fn percent_decode(s: &str) -> Result<String, DsnError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    DsnError::Syntax(
                        "a `%` in a URL parameter is not followed by two hex digits".into(),
                    )
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| DsnError::Syntax("a URL parameter is not valid UTF-8".into()))
}

/// libpq's `key = value` grammar: values are bare words (a `\` escapes the next character) or
/// single-quoted (with `\'` and `\\`). Pairs are rebuilt quoted, which tokio-postgres reads the
/// same way.
fn split_pairs(dsn: &str) -> Result<Split, DsnError> {
    let mut ssl_mode = None;
    let mut root_cert = None;
    let mut kept = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(DsnError::Syntax(format!(
                "expected `=` after `{key}` (the connection string is neither a postgres:// URL nor key=value pairs)"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(DsnError::Syntax(format!(
                            "the value of `{key}` has no closing quote"
                        )));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        if !take(&key, value.clone(), &mut ssl_mode, &mut root_cert)? {
            kept.push(format!("{key}={}", quote(&value)));
        }
    }
    Ok(Split {
        rest: kept.join(" "),
        ssl_mode,
        root_cert,
    })
}

/// A libpq key=value value in single quotes, `\` and `'` escaped.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_lifted_and_the_rest_kept() {
        let s = split(
            "postgres://u:p%40ss@db.example:6543/wh?sslmode=verify-full&connect_timeout=5&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            s.rest,
            "postgres://u:p%40ss@db.example:6543/wh?connect_timeout=5"
        );
        assert_eq!(s.ssl_mode, Some(SslMode::VerifyFull));
        assert_eq!(s.root_cert, Some(RootCert::File("/etc/ca.pem".into())));

        let s = split("postgresql://u@h/db?sslmode=require").unwrap();
        assert_eq!(s.rest, "postgresql://u@h/db");
        assert_eq!(s.ssl_mode, Some(SslMode::Require));
        assert_eq!(s.root_cert, None);

        let s = split("postgres://u@h/db").unwrap();
        assert_eq!(s.rest, "postgres://u@h/db");
        assert_eq!(s.ssl_mode, None);
    }

    #[test]
    fn pairs_are_lifted_and_the_rest_requoted() {
        let s = split(
            r"host=h port = 5433 password='it''s' sslmode=verify-ca sslrootcert='/a b/ca.pem' user=a\ b",
        );
        // `''` is not an escape in libpq: the quoted value ends at the second quote.
        assert!(s.is_err(), "{s:?}");

        let s = split(
            r"host=h port = 5433 password='it\'s' sslmode=verify-ca sslrootcert='/a b/ca.pem' user=a\ b",
        )
        .unwrap();
        assert_eq!(s.rest, r"host='h' port='5433' password='it\'s' user='a b'");
        assert_eq!(s.ssl_mode, Some(SslMode::VerifyCa));
        assert_eq!(s.root_cert, Some(RootCert::File("/a b/ca.pem".into())));

        let s = split("host=h sslrootcert=system").unwrap();
        assert_eq!(s.root_cert, Some(RootCert::System));
    }

    #[test]
    fn bad_input_is_named() {
        let e = split("postgres://u@h/db?sslmode=verify_full").unwrap_err();
        assert!(e.to_string().contains("verify_full"), "{e}");
        assert!(e.to_string().contains("verify-full"), "{e}");
        let e = split("host='h").unwrap_err();
        assert!(e.to_string().contains("closing quote"), "{e}");
        let e = split("host").unwrap_err();
        assert!(e.to_string().contains("expected `=`"), "{e}");
        let e = split("postgres://u@h/db?sslrootcert=%zz").unwrap_err();
        assert!(e.to_string().contains("hex"), "{e}");
    }
}
