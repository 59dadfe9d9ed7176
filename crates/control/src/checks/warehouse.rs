//! TestWarehouse: connect (over TLS as the `sslmode` says), open a read-only transaction, and
//! look at what the role could do besides reading (a warning, or a refusal when the warehouse
//! says `require_read_only_role`).

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

/// Connects to the warehouse, reports its TLS, checks it can open a `READ ONLY` transaction and
/// what the role may do. The first failure ends the list.
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
                return report;
            }
            role_check(&wh, connection.require_read_only_role, &mut report).await;
        }
        Err(e) => {
            report
                .checks
                .push(Check::fail("read_only_transaction", e.to_string()));
        }
    }
    report
}

/// The `role` check: passes with warnings for a role that can do more than read, fails instead
/// when the warehouse requires a read-only role.
async fn role_check(wh: &warehouse::Warehouse, required: bool, report: &mut WarehouseReport) {
    let role = match wh.role().await {
        Ok(role) => role,
        Err(e) => {
            let message = format!("cannot check what the role may do: {e}");
            if required {
                report.checks.push(Check::fail(
                    "role",
                    format!("{message} (require_read_only_role is set)"),
                ));
            } else {
                report.warnings.push(message.clone());
                report.checks.push(Check::pass("role", message));
            }
            return;
        }
    };
    let problems = role.problems();
    if problems.is_empty() {
        report.checks.push(Check::pass(
            "role",
            format!(
                "role `{}` can only read: not a superuser, no table it can write, no function that reaches outside the database",
                role.role
            ),
        ));
    } else if required {
        report.checks.push(Check::fail(
            "role",
            format!(
                "the warehouse requires a read-only role (require_read_only_role): {}",
                problems.join("; ")
            ),
        ));
    } else {
        report.checks.push(Check::pass(
            "role",
            format!(
                "role `{}` can do more than read (see the warnings); set require_read_only_role to refuse such a role",
                role.role
            ),
        ));
        report.warnings.extend(problems);
    }
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
