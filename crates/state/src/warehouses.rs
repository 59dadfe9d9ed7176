//! Warehouses: where activation queries run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::SystemTime;

use mixsync_pg::quote;
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::Row;

use crate::crypto::Purpose;
use crate::error::StateError;
use crate::ids::new_id;
use crate::page::{Page, PageRequest, paginate};
use crate::plan::WarehouseConnection;
use crate::store::StateStore;
use crate::unused;

/// What defines a warehouse. `Debug` never prints the password.
#[derive(Clone)]
pub struct WarehouseSpec {
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password, if the server wants one.
    pub password: Option<SecretString>,
    /// Further libpq parameters, e.g. `sslmode` → `verify-full`.
    pub params: BTreeMap<String, String>,
    /// PEM CA certificate(s) the server's certificate must chain to; stored encrypted.
    pub root_cert: Option<SecretString>,
    /// Refuse (instead of warn about) a role that could write or read server files.
    pub require_read_only_role: bool,
}

impl std::fmt::Debug for WarehouseSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarehouseSpec")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("params", &self.params)
            .field("root_cert", &self.root_cert.as_ref().map(|_| "[REDACTED]"))
            .field("require_read_only_role", &self.require_read_only_role)
            .finish()
    }
}

impl WarehouseSpec {
    /// How to connect, password included (for testing a warehouse before storing it).
    pub fn connection(&self) -> WarehouseConnection {
        let mut dsn = format!(
            "host={} port={} dbname={} user={}",
            quote(&self.host),
            self.port,
            quote(&self.database),
            quote(&self.user)
        );
        if let Some(password) = &self.password {
            let _ = write!(dsn, " password={}", quote(password.expose_secret()));
        }
        for (key, value) in &self.params {
            let _ = write!(dsn, " {key}={}", quote(value));
        }
        WarehouseConnection {
            dsn: SecretString::from(dsn),
            root_cert: self.root_cert.clone(),
            require_read_only_role: self.require_read_only_role,
        }
    }

    /// The connection string without the password, e.g.
    /// `postgres://analytics@db.internal:5432/warehouse?sslmode=require`.
    pub fn display_dsn(&self) -> String {
        display_dsn(
            &self.host,
            self.port,
            &self.database,
            &self.user,
            &self.params,
        )
    }
}

/// A stored warehouse. Carries no password, only whether one is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Warehouse {
    /// Id (UUID v7).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// User name.
    pub user: String,
    /// Further libpq parameters.
    pub params: BTreeMap<String, String>,
    /// Whether a password is stored.
    pub has_password: bool,
    /// Whether a CA certificate is stored.
    pub has_root_cert: bool,
    /// Whether a role that could write or read server files is refused.
    pub require_read_only_role: bool,
    /// Creation time.
    pub created_at: SystemTime,
    /// Last change.
    pub updated_at: SystemTime,
}

impl Warehouse {
    /// The connection string without the password.
    pub fn display_dsn(&self) -> String {
        display_dsn(
            &self.host,
            self.port,
            &self.database,
            &self.user,
            &self.params,
        )
    }
}

fn display_dsn(
    host: &str,
    port: u16,
    database: &str,
    user: &str,
    params: &BTreeMap<String, String>,
) -> String {
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut dsn = format!("postgres://{user}@{host}:{port}/{database}");
    for (i, (key, value)) in params.iter().enumerate() {
        dsn.push(if i == 0 { '?' } else { '&' });
        let _ = write!(dsn, "{key}={value}");
    }
    dsn
}

const COLUMNS: &str = "id, name, host, port, database, username, params, password_secret IS NOT NULL, created_at, updated_at, ssl_root_cert_secret IS NOT NULL, require_read_only_role";

fn from_row(row: &Row) -> Result<Warehouse, StateError> {
    let id: String = row.get(0);
    let params: serde_json::Value = row.get(6);
    let params = serde_json::from_value(params)
        .map_err(|e| StateError::corrupt(format!("params of warehouse `{id}`"), e))?;
    let port: i32 = row.get(3);
    Ok(Warehouse {
        name: row.get(1),
        host: row.get(2),
        port: u16::try_from(port)
            .map_err(|e| StateError::corrupt(format!("port of warehouse `{id}`"), e))?,
        database: row.get(4),
        user: row.get(5),
        params,
        has_password: row.get(7),
        has_root_cert: row.get(10),
        require_read_only_role: row.get(11),
        created_at: row.get(8),
        updated_at: row.get(9),
        id,
    })
}

impl StateStore {
    /// Stores a new warehouse; its name must be unused.
    pub async fn create_warehouse(&self, spec: &WarehouseSpec) -> Result<Warehouse, StateError> {
        let id = new_id();
        let secrets = self.secrets().await?;
        let password = secrets.seal_opt(Purpose::WarehousePassword, &id, spec.password.as_ref())?;
        let root_cert =
            secrets.seal_opt(Purpose::WarehouseRootCert, &id, spec.root_cert.as_ref())?;
        let params = serde_json::to_value(&spec.params)
            .map_err(|e| StateError::corrupt("warehouse params", e))?;
        let client = self.client().await?;
        let sql = format!(
            "INSERT INTO warehouses (id, name, host, port, database, username, params, password_secret, ssl_root_cert_secret, require_read_only_role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
        );
        let row = client
            .query_one(
                &sql,
                &[
                    &id,
                    &spec.name,
                    &spec.host,
                    &i32::from(spec.port),
                    &spec.database,
                    &spec.user,
                    &params,
                    &password,
                    &root_cert,
                    &spec.require_read_only_role,
                ],
            )
            .await
            .map_err(|e| {
                if StateError::is_unique_violation(&e) {
                    StateError::NameTaken {
                        kind: "warehouse",
                        name: spec.name.clone(),
                    }
                } else {
                    e.into()
                }
            })?;
        from_row(&row)
    }

    /// One warehouse by id.
    pub async fn get_warehouse(&self, id: &str) -> Result<Warehouse, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM warehouses WHERE id = $1");
        let row = client
            .query_opt(&sql, &[&id])
            .await?
            .ok_or_else(|| StateError::not_found("warehouse", id))?;
        from_row(&row)
    }

    /// One warehouse by name, if there is one.
    pub async fn find_warehouse_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Warehouse>, StateError> {
        let client = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM warehouses WHERE name = $1");
        client
            .query_opt(&sql, &[&name])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Warehouses ordered by name.
    pub async fn list_warehouses(&self, page: &PageRequest) -> Result<Page<Warehouse>, StateError> {
        let client = self.client().await?;
        let sql =
            format!("SELECT {COLUMNS} FROM warehouses WHERE name > $1 ORDER BY name LIMIT $2");
        let rows = client
            .query(&sql, &[&page.page_token, &page.fetch()])
            .await?
            .iter()
            .map(from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paginate(rows, page, |w| w.name.clone()))
    }

    /// Deletes a warehouse no activation uses.
    pub async fn delete_warehouse(&self, id: &str) -> Result<(), StateError> {
        self.delete_unused(unused::WAREHOUSE, id).await
    }

    /// How to connect to a stored warehouse, password decrypted.
    pub async fn warehouse_connection(
        &self,
        warehouse_id: &str,
    ) -> Result<WarehouseConnection, StateError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT host, port, database, username, params, password_secret, ssl_root_cert_secret, require_read_only_role FROM warehouses WHERE id = $1",
                &[&warehouse_id],
            )
            .await?
            .ok_or_else(|| StateError::not_found("warehouse", warehouse_id))?;
        let sealed: Option<Vec<u8>> = row.get(5);
        let sealed_root: Option<Vec<u8>> = row.get(6);
        let secrets = if sealed.is_some() || sealed_root.is_some() {
            Some(self.secrets().await?)
        } else {
            None
        };
        let open = |purpose, sealed: Option<Vec<u8>>| match (sealed, secrets) {
            (Some(s), Some(secrets)) => secrets.open(purpose, warehouse_id, &s).map(Some),
            _ => Ok(None),
        };
        let password = open(Purpose::WarehousePassword, sealed)?;
        let root_cert = open(Purpose::WarehouseRootCert, sealed_root)?;
        let port: i32 = row.get(1);
        let params: serde_json::Value = row.get(4);
        let spec = WarehouseSpec {
            name: String::new(),
            host: row.get(0),
            port: u16::try_from(port).map_err(|e| {
                StateError::corrupt(format!("port of warehouse `{warehouse_id}`"), e)
            })?,
            database: row.get(2),
            user: row.get(3),
            password,
            params: serde_json::from_value(params).map_err(|e| {
                StateError::corrupt(format!("params of warehouse `{warehouse_id}`"), e)
            })?,
            root_cert,
            require_read_only_role: row.get(7),
        };
        Ok(spec.connection())
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn spec(password: Option<&str>) -> WarehouseSpec {
        WarehouseSpec {
            name: "w".into(),
            host: "db.internal".into(),
            port: 5433,
            database: "ware house".into(),
            user: "an'a".into(),
            password: password.map(|p| SecretString::from(p.to_owned())),
            params: BTreeMap::from([("sslmode".to_owned(), "disable".to_owned())]),
            root_cert: None,
            require_read_only_role: false,
        }
    }

    #[test]
    fn connection_dsn_is_understood_by_tokio_postgres() {
        let conn = spec(Some(r"p@ss 'w\d")).connection();
        let config = tokio_postgres::Config::from_str(conn.dsn.expose_secret()).unwrap();
        assert_eq!(config.get_user(), Some("an'a"));
        assert_eq!(config.get_dbname(), Some("ware house"));
        assert_eq!(config.get_password(), Some(br"p@ss 'w\d".as_slice()));
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(
            config.get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn display_dsn_and_debug_hide_the_password() {
        let s = spec(Some("hunter2"));
        assert_eq!(
            s.display_dsn(),
            "postgres://an'a@db.internal:5433/ware house?sslmode=disable"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{:?}", s.connection()).contains("hunter2"));
    }
}
