//! TestWarehouse: connect, then open a read-only transaction.

use mixsync_extractor::warehouse;
use mixsync_state::WarehouseConnection;

use super::Check;

/// What a warehouse test found.
pub(crate) struct WarehouseReport {
    pub checks: Vec<Check>,
    pub server_version: String,
}

/// Connects to the warehouse and checks it can open a `READ ONLY` transaction. The first
/// failure ends the list.
pub(crate) async fn test_warehouse(connection: &WarehouseConnection) -> WarehouseReport {
    let mut checks = Vec::new();
    let wh = match warehouse::connect(&connection.dsn).await {
        Ok(wh) => {
            checks.push(Check::pass("connect", "connected and authenticated"));
            wh
        }
        Err(e) => {
            checks.push(Check::fail("connect", e.to_string()));
            return WarehouseReport {
                checks,
                server_version: String::new(),
            };
        }
    };
    let server_version = match wh.test().await {
        Ok(report) if report.read_only_ok => {
            checks.push(Check::pass(
                "read_only_transaction",
                "a READ ONLY transaction opened; activation queries cannot change data",
            ));
            report.server_version
        }
        Ok(report) => {
            checks.push(Check::fail(
                "read_only_transaction",
                "the transaction did not report itself read-only; this server does not support READ ONLY transactions",
            ));
            report.server_version
        }
        Err(e) => {
            checks.push(Check::fail("read_only_transaction", e.to_string()));
            String::new()
        }
    };
    WarehouseReport {
        checks,
        server_version,
    }
}
