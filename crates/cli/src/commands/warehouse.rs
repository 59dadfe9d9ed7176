//! `mixsync warehouse …`

use clap::Subcommand;
use mixsync_proto::v1 as pb;

use super::{find_warehouse, require};
use crate::client::{Control, status_error};
use crate::output::{Output, table};
use crate::views::{self, Warehouse};

#[derive(Debug, Subcommand)]
pub(crate) enum WarehouseCommand {
    /// Creates a warehouse (after checking it can be reached).
    Create(SpecArgs),
    /// Shows one warehouse.
    Get { id_or_name: String },
    /// Lists warehouses.
    List,
    /// Deletes a warehouse.
    Delete { id_or_name: String },
    /// Checks a stored warehouse (by id or name) can be reached read-only.
    Test { id_or_name: String },
}

#[derive(Debug, clap::Args)]
pub(crate) struct SpecArgs {
    /// A unique name.
    #[arg(long)]
    name: String,
    /// A connection string (`postgres://user@host:5432/db` or `host=… dbname=…`); or use the fields below.
    #[arg(long, default_value = "")]
    dsn: String,
    #[arg(long, default_value = "")]
    host: String,
    #[arg(long, default_value_t = 0)]
    port: u32,
    #[arg(long, default_value = "")]
    database: String,
    #[arg(long, default_value = "")]
    user: String,
    /// The password; prefer MIXSYNC_WAREHOUSE_PASSWORD so it stays out of the shell history.
    #[arg(
        long,
        env = "MIXSYNC_WAREHOUSE_PASSWORD",
        hide_env_values = true,
        default_value = ""
    )]
    password: String,
    /// A PEM file with the CA certificate(s) the server's certificate must chain to; sent and
    /// stored encrypted with the warehouse (use `sslrootcert=` in the DSN for a file the
    /// services can read themselves).
    #[arg(long, value_name = "FILE")]
    ssl_root_cert: Option<std::path::PathBuf>,
    /// Refuse the warehouse, instead of warning, when its role is a superuser, may write to
    /// some table, or may call functions that read server files or reach other servers.
    #[arg(long)]
    require_read_only_role: bool,
}

impl SpecArgs {
    fn spec(&self) -> anyhow::Result<pb::WarehouseSpec> {
        let ssl_root_cert = match &self.ssl_root_cert {
            Some(path) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("--ssl-root-cert {}: cannot read it: {e}", path.display())
            })?,
            None => String::new(),
        };
        Ok(pb::WarehouseSpec {
            name: self.name.clone(),
            dsn: self.dsn.clone(),
            host: self.host.clone(),
            port: self.port,
            database: self.database.clone(),
            user: self.user.clone(),
            password: self.password.clone(),
            ssl_root_cert,
            require_read_only_role: self.require_read_only_role,
        })
    }
}

/// Prints each warning on stderr, so `-o json` output on stdout stays parseable.
fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

fn list_text(list: &[Warehouse]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.name.clone(),
                format!("{}:{}/{}", w.host, w.port, w.database),
                w.user.clone(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ADDRESS", "USER"], &rows)
}

pub(crate) async fn run(
    mut control: Control,
    output: Output,
    command: WarehouseCommand,
) -> anyhow::Result<()> {
    match command {
        WarehouseCommand::Create(args) => {
            let created = control
                .create_warehouse(pb::CreateWarehouseRequest {
                    warehouse: Some(args.spec()?),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            warn(&created.warnings);
            let w = Warehouse::from(&created.warehouse.unwrap_or_default());
            output.print(&w, || format!("created warehouse {} ({})\n", w.name, w.id));
        }
        WarehouseCommand::Get { id_or_name } => {
            let w = require(
                find_warehouse(&mut control, &id_or_name).await?,
                "warehouse",
                &id_or_name,
            )?;
            let w = Warehouse::from(&w);
            output.print(&w, || list_text(std::slice::from_ref(&w)));
        }
        WarehouseCommand::List => {
            let all: Vec<Warehouse> = super::all_warehouses(&mut control)
                .await?
                .iter()
                .map(Warehouse::from)
                .collect();
            output.print(&all, || list_text(&all));
        }
        WarehouseCommand::Delete { id_or_name } => {
            let w = require(
                find_warehouse(&mut control, &id_or_name).await?,
                "warehouse",
                &id_or_name,
            )?;
            control
                .delete_warehouse(pb::DeleteWarehouseRequest { id: w.id.clone() })
                .await
                .map_err(status_error)?;
            output.print(&serde_json::json!({"deleted": w.id}), || {
                format!("deleted warehouse {}\n", w.name)
            });
        }
        WarehouseCommand::Test { id_or_name } => {
            let w = require(
                find_warehouse(&mut control, &id_or_name).await?,
                "warehouse",
                &id_or_name,
            )?;
            let report = control
                .test_warehouse(pb::TestWarehouseRequest {
                    warehouse: Some(pb::test_warehouse_request::Warehouse::Id(w.id)),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            warn(&report.warnings);
            let checks: Vec<views::Check> = report.checks.iter().map(views::Check::from).collect();
            let tls = report.tls.as_ref().map(|t| {
                serde_json::json!({
                    "encrypted": t.encrypted,
                    "version": t.version,
                    "cipher": t.cipher,
                    "certificate_verified": t.certificate_verified,
                    "host_name_verified": t.host_name_verified,
                })
            });
            let value = serde_json::json!({
                "ok": report.ok,
                "server_version": report.server_version,
                "checks": checks,
                "tls": tls,
                "warnings": report.warnings,
            });
            output.print(&value, || views::checks_text(&checks));
            if !report.ok {
                anyhow::bail!("warehouse `{id_or_name}` failed its checks");
            }
        }
    }
    Ok(())
}
