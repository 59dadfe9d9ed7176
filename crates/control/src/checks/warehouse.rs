//! TestWarehouse: connect (over TLS as the `sslmode` says), then open a read-only transaction.

use mixsync_extractor::warehouse::{self, TlsReport};
use mixsync_pg::{PgConfig, Verification};
use mixsync_state::WarehouseConnection;
use secrecy::ExposeSecret as _;

use super::Check;

/// What a warehouse test found.
pub(crate) struct WarehouseReport {
    pub checks: Vec<Check>,
    pub server_version: String,
    /// How the connection was protected, once connected.
    pub tls: Option<TlsReport>,
    /// What is worth knowing but was not refused.
    pub warnings: Vec<String>,
}

/// Connects to the warehouse, reports its TLS, and checks it can open a `READ ONLY`
/// transaction. The first failure ends the list.
pub(crate) async fn test_warehouse(connection: &WarehouseConnection) -> WarehouseReport {
    let mut report = WarehouseReport {
        checks: Vec::new(),
        server_version: String::new(),
        tls: None,
        warnings: Vec::new(),
    };
    let wh = match warehouse::connect(connection).await {
        Ok(wh) => {
            report
                .checks
                .push(Check::pass("connect", "connected and authenticated"));
            wh
        }
        Err(e) => {
            report.checks.push(Check::fail("connect", e.to_string()));
            return report;
        }
    };
    match wh.test().await {
        Ok(test) => {
            report.checks.push(Check::pass("tls", test.tls.describe()));
            if !is_loopback(connection) {
                if test.tls.encrypted == Some(false) {
                    report.warnings.push(format!(
                        "the warehouse connection is {}",
                        test.tls.describe()
                    ));
                } else if test.tls.verification == Verification::None {
                    report.warnings.push(
                        "the warehouse's certificate is not verified, so the connection could be intercepted: use sslmode=verify-full with the server's CA (sslrootcert or ssl_root_cert)".into(),
                    );
                }
            }
            report.tls = Some(test.tls);
            report.server_version = test.server_version;
            if test.read_only_ok {
                report.checks.push(Check::pass(
                    "read_only_transaction",
                    "a READ ONLY transaction opened; activation queries cannot change data",
                ));
            } else {
                report.checks.push(Check::fail(
                    "read_only_transaction",
                    "the transaction did not report itself read-only; this server does not support READ ONLY transactions",
                ));
            }
        }
        Err(e) => {
            report
                .checks
                .push(Check::fail("read_only_transaction", e.to_string()));
        }
    }
    report
}

/// Whether the warehouse is on this machine (where TLS protects nothing a local user could not
/// read anyway).
fn is_loopback(connection: &WarehouseConnection) -> bool {
    let Ok(pg) = PgConfig::parse(connection.dsn.expose_secret()) else {
        return false;
    };
    let host = pg.host();
    host == "localhost"
        || host.starts_with('/')
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
