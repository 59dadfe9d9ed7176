//! `mixsync target …`

use clap::Subcommand;
use mixsync_proto::v1 as pb;

use super::{find_target, require};
use crate::client::{Control, status_error};
use crate::output::{Output, table};
use crate::views::{self, Target};

#[derive(Debug, Subcommand)]
pub(crate) enum TargetCommand {
    /// Creates a target after testing its credentials against Mixpanel.
    Create(SpecArgs),
    /// Replaces a target's settings (tested first).
    Update {
        id_or_name: String,
        #[command(flatten)]
        spec: SpecArgs,
    },
    /// Shows one target.
    Get { id_or_name: String },
    /// Lists targets.
    List,
    /// Deletes a target.
    Delete { id_or_name: String },
    /// Tests a stored target's credentials.
    Test { id_or_name: String },
}

#[derive(Debug, clap::Args)]
pub(crate) struct SpecArgs {
    /// A unique name.
    #[arg(long)]
    name: String,
    /// The Mixpanel project id.
    #[arg(long)]
    project_id: String,
    /// Data residency: us, eu or in (ignored when --base-url is given).
    #[arg(long, default_value = "us")]
    residency: String,
    /// An explicit API base URL, e.g. the emulator's `http://127.0.0.1:3900`; https:// unless
    /// the host is loopback or --allow-insecure-http is given.
    #[arg(long, default_value = "")]
    base_url: String,
    /// Accept a plain http:// --base-url on another machine: the project token and
    /// service-account secret then cross the network unencrypted.
    #[arg(long)]
    allow_insecure_http: bool,
    /// The project's cap in events (or profile updates) per second, shared by every loader
    /// process; raise it only for a project whose limit Mixpanel raised.
    #[arg(long, default_value_t = 30_000)]
    rate_limit_per_second: u32,
    /// The project token; prefer MIXSYNC_PROJECT_TOKEN.
    #[arg(long, env = "MIXSYNC_PROJECT_TOKEN", hide_env_values = true)]
    token: String,
    /// The service account's username.
    #[arg(long)]
    service_account: String,
    /// The service account's secret; prefer MIXSYNC_SERVICE_ACCOUNT_SECRET.
    #[arg(long, env = "MIXSYNC_SERVICE_ACCOUNT_SECRET", hide_env_values = true)]
    service_account_secret: String,
}

impl SpecArgs {
    fn spec(&self) -> anyhow::Result<pb::TargetSpec> {
        let residency = match self.residency.to_ascii_lowercase().as_str() {
            "us" => pb::Residency::Us,
            "eu" => pb::Residency::Eu,
            "in" => pb::Residency::In,
            other => anyhow::bail!("--residency `{other}` is not one of us, eu, in"),
        };
        Ok(pb::TargetSpec {
            name: self.name.clone(),
            project_id: self.project_id.clone(),
            residency: residency as i32,
            base_url: self.base_url.clone(),
            token: self.token.clone(),
            service_account_username: self.service_account.clone(),
            service_account_secret: self.service_account_secret.clone(),
            allow_insecure_http: self.allow_insecure_http,
            rate_limit_per_second: self.rate_limit_per_second,
        })
    }
}

/// Warnings on stderr (so `-o json` stays parseable) for targets that send credentials in clear.
fn warn_insecure(targets: &[Target]) {
    for warning in targets.iter().filter_map(Target::insecure_warning) {
        eprintln!("{warning}");
    }
}

fn list_text(list: &[Target]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|t| {
            let place = if t.base_url.is_empty() {
                t.residency.clone()
            } else {
                t.base_url.clone()
            };
            vec![
                t.id.clone(),
                t.name.clone(),
                t.project_id.clone(),
                place,
                t.service_account_username.clone(),
                t.rate_limit_per_second.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "NAME",
            "PROJECT",
            "API",
            "SERVICE ACCOUNT",
            "RATE LIMIT/S",
        ],
        &rows,
    )
}

pub(crate) async fn run(
    mut control: Control,
    output: Output,
    command: TargetCommand,
) -> anyhow::Result<()> {
    match command {
        TargetCommand::Create(args) => {
            let created = control
                .create_target(pb::CreateTargetRequest {
                    target: Some(args.spec()?),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let t = Target::from(&created.target.unwrap_or_default());
            warn_insecure(std::slice::from_ref(&t));
            output.print(&t, || format!("created target {} ({})\n", t.name, t.id));
        }
        TargetCommand::Update { id_or_name, spec } => {
            let t = require(
                find_target(&mut control, &id_or_name).await?,
                "target",
                &id_or_name,
            )?;
            let updated = control
                .update_target(pb::UpdateTargetRequest {
                    id: t.id,
                    target: Some(spec.spec()?),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let t = Target::from(&updated.target.unwrap_or_default());
            warn_insecure(std::slice::from_ref(&t));
            output.print(&t, || format!("updated target {} ({})\n", t.name, t.id));
        }
        TargetCommand::Get { id_or_name } => {
            let t = Target::from(&require(
                find_target(&mut control, &id_or_name).await?,
                "target",
                &id_or_name,
            )?);
            warn_insecure(std::slice::from_ref(&t));
            output.print(&t, || list_text(std::slice::from_ref(&t)));
        }
        TargetCommand::List => {
            let all: Vec<Target> = super::all_targets(&mut control)
                .await?
                .iter()
                .map(Target::from)
                .collect();
            warn_insecure(&all);
            output.print(&all, || list_text(&all));
        }
        TargetCommand::Delete { id_or_name } => {
            let t = require(
                find_target(&mut control, &id_or_name).await?,
                "target",
                &id_or_name,
            )?;
            control
                .delete_target(pb::DeleteTargetRequest { id: t.id.clone() })
                .await
                .map_err(status_error)?;
            output.print(&serde_json::json!({"deleted": t.id}), || {
                format!("deleted target {}\n", t.name)
            });
        }
        TargetCommand::Test { id_or_name } => {
            let t = require(
                find_target(&mut control, &id_or_name).await?,
                "target",
                &id_or_name,
            )?;
            let report = control
                .test_target(pb::TestTargetRequest {
                    target: Some(pb::test_target_request::Target::Id(t.id)),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let checks: Vec<views::Check> = report.checks.iter().map(views::Check::from).collect();
            output.print(
                &serde_json::json!({"ok": report.ok, "checks": checks}),
                || views::checks_text(&checks),
            );
            if !report.ok {
                anyhow::bail!("target `{id_or_name}` failed its checks");
            }
        }
    }
    Ok(())
}
