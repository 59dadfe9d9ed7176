//! The warehouse: a Postgres-protocol database reached by a DSN, queried read-only.
//!
//! Used by the extractor to stream a run's rows, and by control to check warehouses and
//! activations ([`Warehouse::test`], [`Warehouse::describe`], [`Warehouse::preview`]). Every
//! statement that reads rows runs in a `READ ONLY` transaction with a statement timeout, so an
//! activation query can never change the warehouse. How Postgres types become
//! [`Value`]s is documented in `decode.rs`: the common types are decoded from the binary format
//! (numeric exactly, as text), every other type is read as its text.

mod decode;
mod error;
mod numeric;
mod role;
mod select;
mod stream;

use std::time::Duration;

use mixsync_domain::Value;
use mixsync_pg::{PgConfig, RootCert, Verification};
use mixsync_state::WarehouseConnection;
use secrecy::ExposeSecret as _;
use tokio::sync::Mutex;
use tokio_postgres::{Client, Row, Statement, Transaction};

pub use error::WarehouseError;
pub use role::RoleReport;
pub use stream::{Batch, StreamError, StreamOptions, StreamSummary};

use decode::Cell;

/// How long [`connect`] waits for the connection, unless the DSN sets `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The statement timeout of [`Warehouse::preview`] and [`Warehouse::test`].
pub const PREVIEW_STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A column of a query's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name, as the query names it.
    pub name: String,
    /// Its Postgres type, e.g. `int8`, `timestamptz`, `_text` (an array of text).
    pub type_name: String,
}

/// What [`Warehouse::test`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestReport {
    /// The server's `server_version`, e.g. `15.4 (Debian 15.4-1)`.
    pub server_version: String,
    /// Whether a `READ ONLY` transaction could be opened and reports itself read-only.
    pub read_only_ok: bool,
    /// How the connection is protected.
    pub tls: TlsReport,
}

/// How a warehouse connection is protected, as the server reports it (`pg_stat_ssl`) and as
/// the `sslmode` checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    /// Whether the connection is encrypted; `None` when the server does not say (no
    /// `pg_stat_ssl`, e.g. a Postgres-compatible warehouse that lacks it).
    pub encrypted: Option<bool>,
    /// The TLS version, e.g. `TLSv1.3`; empty when not encrypted or not known.
    pub version: String,
    /// The cipher, e.g. `TLS_AES_256_GCM_SHA384`; empty when not encrypted or not known.
    pub cipher: String,
    /// What was checked of the server's certificate.
    pub verification: Verification,
}

impl TlsReport {
    /// One sentence for the user.
    pub fn describe(&self) -> String {
        let checked = match self.verification {
            Verification::ChainAndHost => {
                "the server's certificate was verified against the CA and the host name"
            }
            Verification::Chain => {
                "the server's certificate was verified against the CA (the host name was not checked: use sslmode=verify-full for that)"
            }
            Verification::None => {
                "the server's certificate was not verified (use sslmode=verify-full with the server's CA in sslrootcert)"
            }
        };
        match self.encrypted {
            Some(true) => format!("encrypted with {} ({}); {checked}", self.version, self.cipher),
            Some(false) => "not encrypted: the connection is plain TCP (set sslmode=verify-full, or at least require)".into(),
            None => "the server does not report whether the connection is encrypted".into(),
        }
    }
}

/// One open connection to a warehouse. Calls are serialized: one statement at a time.
#[derive(Debug)]
pub struct Warehouse {
    client: Mutex<Client>,
    verification: Verification,
}

/// Connects to a warehouse: its DSN (a `postgres://` URL or a libpq `key=value` string) with
/// libpq's `sslmode` and `sslrootcert` (see `docs/tls.md`), and the CA certificate given
/// through the API when there is one. Gives up after the DSN's `connect_timeout` or
/// [`CONNECT_TIMEOUT`].
pub async fn connect(connection: &WarehouseConnection) -> Result<Warehouse, WarehouseError> {
    let mut pg = PgConfig::parse(connection.dsn.expose_secret())
        .map_err(|e| WarehouseError::InvalidDsn(e.to_string()))?;
    if let Some(pem) = &connection.root_cert {
        pg.set_root_cert(RootCert::Pem(pem.expose_secret().to_owned()));
    }
    let config = pg.config_mut();
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT);
    config.connect_timeout(timeout);
    if config.get_application_name().is_none() {
        config.application_name("mixsync");
    }
    let (client, connection) = tokio::time::timeout(timeout, pg.connect())
        .await
        .map_err(|_| WarehouseError::ConnectTimeout(timeout))?
        .map_err(WarehouseError::Connect)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %error::chain(&e), "warehouse connection ended");
        }
    });
    Ok(Warehouse {
        client: Mutex::new(client),
        verification: pg.verification(),
    })
}

impl Warehouse {
    /// The columns `query` would return, learned by preparing it: the query is never executed.
    /// Bounded by [`PREVIEW_STATEMENT_TIMEOUT`]: preparing waits on locks (a table being
    /// altered), and a caller must not hang on it.
    pub async fn describe(&self, query: &str) -> Result<Vec<Column>, WarehouseError> {
        self.describe_within(query, PREVIEW_STATEMENT_TIMEOUT).await
    }

    /// [`Warehouse::describe`] bounded by `limit`. The timer is the client's, so it also
    /// covers a server that stopped answering; after a timeout this connection still has the
    /// abandoned request ahead of any other, so callers drop the `Warehouse`.
    pub async fn describe_within(
        &self,
        query: &str,
        limit: Duration,
    ) -> Result<Vec<Column>, WarehouseError> {
        let client = self.client.lock().await;
        let statement = tokio::time::timeout(limit, client.prepare(query))
            .await
            .map_err(|_| WarehouseError::DescribeTimeout(limit))?
            .map_err(pg)?;
        Ok(statement
            .columns()
            .iter()
            .map(|c| Column {
                name: c.name().to_owned(),
                type_name: c.type_().name().to_owned(),
            })
            .collect())
    }

    /// Opens a `READ ONLY` transaction and reads the server version in it.
    pub async fn test(&self) -> Result<TestReport, WarehouseError> {
        let mut client = self.client.lock().await;
        let tls = tls_report(&client, self.verification).await;
        let tx = read_only(&mut client, PREVIEW_STATEMENT_TIMEOUT).await?;
        let row = tx
            .query_one(
                "SELECT current_setting('server_version'), current_setting('transaction_read_only')",
                &[],
            )
            .await
            .map_err(pg)?;
        let server_version: String = row.try_get(0).map_err(pg)?;
        let read_only: String = row.try_get(1).map_err(pg)?;
        tx.rollback().await.map_err(pg)?;
        Ok(TestReport {
            server_version,
            read_only_ok: read_only == "on",
            tls,
        })
    }

    /// The column names and the first `limit` rows of `query`, run read-only with
    /// [`PREVIEW_STATEMENT_TIMEOUT`]. The server stops after `limit` rows.
    pub async fn preview(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<(Vec<String>, Vec<Vec<Value>>), WarehouseError> {
        let mut client = self.client.lock().await;
        let tx = read_only(&mut client, PREVIEW_STATEMENT_TIMEOUT).await?;
        let (columns, statement) = prepare_reading(&tx, query).await?;
        if limit == 0 {
            return Ok((columns, Vec::new()));
        }
        let portal = tx.bind_raw(&statement, no_params()).await.map_err(pg)?;
        let max_rows = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows = tx.query_portal(&portal, max_rows).await.map_err(pg)?;
        let rows = rows
            .iter()
            .take(limit)
            .map(|row| decode_row(row, &columns))
            .collect::<Result<_, _>>()?;
        tx.rollback().await.map_err(pg)?;
        Ok((columns, rows))
    }
}

/// Starts a `READ ONLY` transaction whose statements time out after `statement_timeout`
/// (`0`: never).
async fn read_only(
    client: &mut Client,
    statement_timeout: Duration,
) -> Result<Transaction<'_>, WarehouseError> {
    let tx = client
        .build_transaction()
        .read_only(true)
        .start()
        .await
        .map_err(pg)?;
    let ms = u64::try_from(statement_timeout.as_millis()).unwrap_or(u64::MAX);
    // `SET` takes no parameters; `ms` is a number, so formatting it in is safe.
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {ms}"))
        .await
        .map_err(pg)?;
    Ok(tx)
}

/// Prepares `query` for reading: its column names, and the statement to run (the query itself,
/// or wrapped to read undecodable types as text).
async fn prepare_reading(
    tx: &Transaction<'_>,
    query: &str,
) -> Result<(Vec<String>, Statement), WarehouseError> {
    let statement = tx.prepare(query).await.map_err(pg)?;
    if !statement.params().is_empty() {
        return Err(WarehouseError::Parameters {
            count: statement.params().len(),
        });
    }
    let names = statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let types: Vec<_> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let statement = match select::text_wrapped(query, &types) {
        Some(wrapped) => tx.prepare(&wrapped).await.map_err(pg)?,
        None => statement,
    };
    Ok((names, statement))
}

fn decode_row(row: &Row, names: &[String]) -> Result<Vec<Value>, WarehouseError> {
    (0..row.len())
        .map(|i| {
            row.try_get::<_, Cell>(i)
                .map(|cell| cell.0)
                .map_err(|e| WarehouseError::Decode {
                    column: names.get(i).cloned().unwrap_or_default(),
                    type_name: row.columns()[i].type_().name().to_owned(),
                    message: std::error::Error::source(&e)
                        .map_or_else(|| e.to_string(), ToString::to_string),
                })
        })
        .collect()
}

/// No statement parameters: activation queries take none.
fn no_params() -> std::iter::Empty<&'static str> {
    std::iter::empty()
}

fn pg(e: tokio_postgres::Error) -> WarehouseError {
    WarehouseError::from_postgres(&e)
}

/// What the server says of this connection's TLS (`pg_stat_ssl`, Postgres 9.5 and later).
async fn tls_report(client: &Client, verification: Verification) -> TlsReport {
    let row = client
        .query_opt(
            "SELECT ssl, coalesce(version, ''), coalesce(cipher, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await;
    match row {
        Ok(Some(row)) => {
            let encrypted: bool = row.try_get(0).unwrap_or(false);
            TlsReport {
                encrypted: Some(encrypted),
                version: row.try_get(1).unwrap_or_default(),
                cipher: row.try_get(2).unwrap_or_default(),
                verification: if encrypted {
                    verification
                } else {
                    Verification::None
                },
            }
        }
        _ => TlsReport {
            encrypted: None,
            version: String::new(),
            cipher: String::new(),
            verification,
        },
    }
}
