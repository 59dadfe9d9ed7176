//! Warehouses on the wire.

use std::collections::BTreeMap;

use mixsync_extractor::warehouse::TlsReport;
use mixsync_pg::{PgConfig, RootCert, Verification};
use mixsync_proto::v1;
use mixsync_state::{Warehouse, WarehouseSpec};
use secrecy::SecretString;
use tokio_postgres::config::Host;

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
        root_cert: None,
        require_read_only_role: spec.require_read_only_role,
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
    if !spec.ssl_root_cert.trim().is_empty() {
        let pem = spec.ssl_root_cert.trim().to_owned();
        mixsync_pg::roots(&RootCert::Pem(pem.clone()))
            .map_err(|e| ApiError::invalid(field("ssl_root_cert"), e.to_string()))?;
        out.root_cert = Some(SecretString::from(pem));
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
    let pg = PgConfig::parse(dsn)
        .map_err(|e| format!("does not parse as `postgres://user[:password]@host[:port]/database` or libpq key=value: {e}"))?;
    let config = pg.config();
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
    // `prefer`, libpq's default and ours, is left implicit so a DSN without TLS settings reads
    // back as it was given.
    if pg.ssl_mode() != mixsync_pg::SslMode::Prefer {
        out.params
            .insert("sslmode".into(), pg.ssl_mode().as_str().into());
    }
    match pg.root_cert() {
        Some(RootCert::File(path)) => {
            let path = path
                .to_str()
                .ok_or_else(|| "the sslrootcert path is not valid UTF-8".to_owned())?;
            out.params.insert("sslrootcert".into(), path.into());
        }
        Some(RootCert::System) => {
            out.params.insert("sslrootcert".into(), "system".into());
        }
        Some(RootCert::Pem(_)) | None => {}
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
        has_ssl_root_cert: w.has_root_cert,
        require_read_only_role: w.require_read_only_role,
        created_at: Some(timestamp(w.created_at)),
        updated_at: Some(timestamp(w.updated_at)),
    }
}

/// How a tested connection was protected, on the wire.
pub(crate) fn tls_to_proto(tls: &TlsReport) -> v1::WarehouseTls {
    let encrypted = tls.encrypted == Some(true);
    v1::WarehouseTls {
        encrypted,
        version: tls.version.clone(),
        cipher: tls.cipher.clone(),
        certificate_verified: encrypted && tls.verification != Verification::None,
        host_name_verified: encrypted && tls.verification == Verification::ChainAndHost,
        summary: tls.describe(),
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

    #[test]
    fn tls_parameters_keep_libpq_names_and_a_bad_ca_is_refused() {
        let spec = v1::WarehouseSpec {
            name: "wh".into(),
            dsn: "postgres://u@h/db?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem".into(),
            ..Default::default()
        };
        let out = warehouse_spec(&spec, "warehouse").unwrap();
        assert_eq!(out.params["sslmode"], "verify-full");
        assert_eq!(out.params["sslrootcert"], "/etc/ssl/rds.pem");
        assert!(
            out.display_dsn()
                .ends_with("?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem")
        );

        let err = warehouse_spec(
            &v1::WarehouseSpec {
                name: "wh".into(),
                dsn: "postgres://u@h/db?sslmode=verify_full".into(),
                ..Default::default()
            },
            "warehouse",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("sslmode `verify_full` is not one of"),
            "{err}"
        );

        let err = warehouse_spec(
            &v1::WarehouseSpec {
                name: "wh".into(),
                dsn: "postgres://u@h/db".into(),
                ssl_root_cert: "not a certificate".into(),
                ..Default::default()
            },
            "warehouse",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("warehouse.ssl_root_cert:"),
            "{err}"
        );
    }
}
