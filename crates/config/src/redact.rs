/// A URL (or libpq key=value string) with its password replaced by `[REDACTED]`: the password
/// of `scheme://user:password@host`, any `password=…` parameter, and, when the value is not a
/// URL at all (a typo in the scheme), everything before an `@`. For URLs shown in logs, errors
/// and `--print-config`.
pub fn redact_url_password(url: &str) -> String {
    let without_userinfo = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_len);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:[REDACTED]@{host}{path}"),
                    None => url.to_owned(),
                },
                None => url.to_owned(),
            }
        }
        None => match url.rsplit_once('@') {
            Some((_, host)) => format!("[REDACTED]@{host}"),
            None => url.to_owned(),
        },
    };
    redact_password_parameters(&without_userinfo)
}

/// `password=secret` (any case, in a query string or a libpq key=value list) → `password=[REDACTED]`.
fn redact_password_parameters(text: &str) -> String {
    const KEY: &str = "password=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find(KEY) {
        let value_start = at + KEY.len();
        out.push_str(&rest[..value_start]);
        out.push_str("[REDACTED]");
        let value_len = rest[value_start..]
            .find(['&', ' ', '#'])
            .unwrap_or(rest.len() - value_start);
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_password_goes() {
        assert_eq!(
            redact_url_password("amqp://guest:hunter2@10.0.0.5:5672/%2f?heartbeat=10"),
            "amqp://guest:[REDACTED]@10.0.0.5:5672/%2f?heartbeat=10"
        );
        assert_eq!(
            redact_url_password("postgres://postgres@127.0.0.1:5432/mixsync"),
            "postgres://postgres@127.0.0.1:5432/mixsync"
        );
        assert_eq!(
            redact_url_password("postgres://u:p%40ss@db/x?sslmode=require&Password=hunter2&a=b"),
            "postgres://u:[REDACTED]@db/x?sslmode=require&Password=[REDACTED]&a=b"
        );
        assert_eq!(
            redact_url_password("host=db user=u password=hunter2 dbname=x"),
            "host=db user=u password=[REDACTED] dbname=x"
        );
        assert_eq!(redact_url_password("not a url"), "not a url");
    }

    #[test]
    fn a_mistyped_scheme_still_hides_the_userinfo() {
        assert_eq!(
            redact_url_password("http//user:hunter2@host"),
            "[REDACTED]@host"
        );
    }
}
