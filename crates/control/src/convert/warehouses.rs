//! Warehouses on the wire.

use std::collections::BTreeMap;
use std::str::FromStr;

use mixsync_proto::v1;
use mixsync_state::{Warehouse, WarehouseSpec};
use secrecy::SecretString;
use tokio_postgres::config::{Host, SslMode};

use super::{required, timestamp};
use crate::errors::{ApiError, ApiResult};

/// The port used when neither the DSN nor the spec gives one.
const DEFAULT_PORT: u16 = 5432;

/// A warehouse spec from the wire: a DSN, host/port/database/user fields, or both (fields win).
pub(crate) fn warehouse_spec(spec: &v1::WarehouseSpec, prefix: &str) -> ApiResult<WarehouseSpec> {
    let field = |name: &str| format!("{prefix}.{name}");
    let name = required(&field("name"), &spec.name)?;
    let mut out = WarehouseSpec {
        name,
        host: String::new(),
        port: DEFAULT_PORT,
        database: String::new(),
        user: String::new(),
        password: None,
        params: BTreeMap::new(),
    };
    if !spec.dsn.trim().is_empty() {
        apply_dsn(&mut out, spec.dsn.trim()).map_err(|m| ApiError::invalid(field("dsn"), m))?;
    }
    override_if_set(&mut out.host, &spec.host);
    override_if_set(&mut out.database, &spec.database);
    override_if_set(&mut out.user, &spec.user);
    if spec.port != 0 {
        out.port = u16::try_from(spec.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| ApiError::invalid(field("port"), "must be between 1 and 65535"))?;
    }
    if !spec.password.is_empty() {
        out.password = Some(SecretString::from(spec.password.clone()));
    }
    if out.host.is_empty() {
        return Err(ApiError::invalid(
            field("host"),
            "is required (give `host` or a `dsn` naming one)",
        ));
    }
    if out.user.is_empty() {
        return Err(ApiError::invalid(
            field("user"),
            "is required (give `user` or a `dsn` naming one)",
        ));
    }
    if out.database.is_empty() {
        // libpq's default: the database named like the user.
        out.database.clone_from(&out.user);
    }
    Ok(out)
}

fn override_if_set(target: &mut String, value: &str) {
    if !value.trim().is_empty() {
        value.trim().clone_into(target);
    }
}

fn apply_dsn(out: &mut WarehouseSpec, dsn: &str) -> Result<(), String> {
    // The parser's message never quotes the DSN, so the password stays out of errors.
    let config = tokio_postgres::Config::from_str(dsn)
        .map_err(|e| format!("does not parse as `postgres://user[:password]@host[:port]/database` or libpq key=value: {e}"))?;
    match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone_into(&mut out.host),
        #[cfg(unix)]
        Some(Host::Unix(path)) => out.host = path.display().to_string(),
        None => {}
    }
    if let Some(port) = config.get_ports().first() {
        out.port = *port;
    }
    if let Some(db) = config.get_dbname() {
        db.clone_into(&mut out.database);
    }
    if let Some(user) = config.get_user() {
        user.clone_into(&mut out.user);
    }
    if let Some(password) = config.get_password() {
        let password = String::from_utf8(password.to_vec())
            .map_err(|_| "the password is not valid UTF-8".to_owned())?;
        out.password = Some(SecretString::from(password));
    }
    let ssl = match config.get_ssl_mode() {
        SslMode::Disable => Some("disable"),
        SslMode::Require => Some("require"),
        _ => None,
    };
    if let Some(ssl) = ssl {
        out.params.insert("sslmode".into(), ssl.into());
    }
    if let Some(timeout) = config.get_connect_timeout() {
        out.params.insert(
            "connect_timeout".into(),
            timeout.as_secs().max(1).to_string(),
        );
    }
    Ok(())
}

/// A stored warehouse on the wire; never the password.
pub(crate) fn warehouse_to_proto(w: &Warehouse) -> v1::Warehouse {
    v1::Warehouse {
        id: w.id.clone(),
        name: w.name.clone(),
        dsn: w.display_dsn(),
        host: w.host.clone(),
        port: u32::from(w.port),
        database: w.database.clone(),
        user: w.user.clone(),
        has_password: w.has_password,
        created_at: Some(timestamp(w.created_at)),
        updated_at: Some(timestamp(w.updated_at)),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn a_dsn_with_overrides() {
        let spec = v1::WarehouseSpec {
            name: "wh".into(),
            dsn: "postgres://ana:p%40ss@db.internal:6543/sales?sslmode=disable".into(),
            database: "other".into(),
            ..Default::default()
        };
        let out = warehouse_spec(&spec, "warehouse").unwrap();
        assert_eq!(
            (
                out.host.as_str(),
                out.port,
                out.database.as_str(),
                out.user.as_str()
            ),
            ("db.internal", 6543, "other", "ana")
        );
        assert_eq!(out.password.unwrap().expose_secret(), "p@ss");
        assert_eq!(out.params["sslmode"], "disable");
    }

    #[test]
    fn fields_alone_and_errors_name_the_field() {
        let spec = v1::WarehouseSpec {
            name: "wh".into(),
            host: "h".into(),
            user: "u".into(),
            ..Default::default()
        };
        let out = warehouse_spec(&spec, "warehouse").unwrap();
        assert_eq!((out.port, out.database.as_str()), (5432, "u"));
        let err = warehouse_spec(
            &v1::WarehouseSpec {
                name: "wh".into(),
                ..Default::default()
            },
            "warehouse",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("warehouse.host: is required"),
            "{err}"
        );
        let err = warehouse_spec(
            &v1::WarehouseSpec {
                name: "wh".into(),
                dsn: "postgres://u:hunter2@h:notaport/db".into(),
                ..Default::default()
            },
            "warehouse",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("warehouse.dsn:"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
