//! `mixsync activation …`

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use mixsync_proto::v1 as pb;

use super::{find_activation, find_target, find_warehouse, require};
use crate::activation_file::{
    ActivationFile, MappingFile, OptionsFile, PropertyFile, ScheduleFile, SourceFile,
};
use crate::client::{Control, status_error};
use crate::output::{Output, table};
use crate::views::Activation;

#[derive(Debug, Subcommand)]
pub(crate) enum ActivationCommand {
    /// Creates an activation from a YAML file or from flags (validated against the warehouse).
    Create(DefinitionArgs),
    /// Replaces an activation's settings from a YAML file or flags.
    Update {
        id_or_name: String,
        #[command(flatten)]
        definition: DefinitionArgs,
    },
    /// Shows one activation.
    Get { id_or_name: String },
    /// Lists activations.
    List,
    /// Deletes an activation with its runs.
    Delete { id_or_name: String },
    /// Stops scheduled runs (runs can still be started by hand).
    Pause { id_or_name: String },
    /// Starts scheduled runs again, from the next slot.
    Resume { id_or_name: String },
    /// Maps the first rows of the query into the exact JSON that would be sent; sends nothing.
    Preview {
        id_or_name: String,
        /// Rows to preview.
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

/// An activation, from `--from-file` or from flags.
#[derive(Debug, clap::Args)]
pub(crate) struct DefinitionArgs {
    /// A YAML activation file (see `mixsync activation --help` and the README).
    #[arg(long, short = 'f', conflicts_with_all = ["name", "query"])]
    from_file: Option<PathBuf>,
    #[arg(long)]
    name: Option<String>,
    /// Warehouse id or name.
    #[arg(long)]
    warehouse: Option<String>,
    /// Target id or name.
    #[arg(long)]
    target: Option<String>,
    /// events, user_profiles or group_profiles.
    #[arg(long, default_value = "events")]
    object: String,
    #[arg(long)]
    query: Option<String>,
    /// A constant event name.
    #[arg(long, conflicts_with = "event_name_column")]
    event_name: Option<String>,
    /// The column holding the event name.
    #[arg(long)]
    event_name_column: Option<String>,
    /// The column holding the time (seconds, milliseconds or a timestamp).
    #[arg(long)]
    time_column: Option<String>,
    #[arg(long)]
    distinct_id_column: Option<String>,
    /// The column holding `$insert_id`.
    #[arg(long, conflicts_with = "insert_id_derive")]
    insert_id_column: Option<String>,
    /// Derive `$insert_id` by hashing these key columns (comma-separated).
    #[arg(long, value_delimiter = ',')]
    insert_id_derive: Vec<String>,
    /// A property: `column` or `column:property` (repeatable).
    #[arg(long = "property")]
    properties: Vec<String>,
    /// When it runs: `manual`, `every:N` (minutes) or `cron:"*/5 * * * *"` (UTC); overrides
    /// the file's `schedule:`.
    #[arg(long, value_parser = parse_schedule)]
    schedule: Option<ScheduleFile>,
}

/// `--schedule manual|every:N|cron:EXPR`.
fn parse_schedule(s: &str) -> Result<ScheduleFile, String> {
    let s = s.trim();
    if s == "manual" {
        return Ok(ScheduleFile::Named(s.to_owned()));
    }
    if let Some(n) = s.strip_prefix("every:") {
        return match n.trim().parse::<u32>() {
            Ok(n) if n >= 1 => Ok(ScheduleFile::Every { every_minutes: n }),
            _ => Err(format!(
                "`every:{n}`: the number of minutes must be 1 or more"
            )),
        };
    }
    if let Some(expr) = s.strip_prefix("cron:") {
        let expr = expr.trim().trim_matches('"').trim();
        if expr.is_empty() {
            return Err("`cron:` needs an expression, e.g. cron:\"*/5 * * * *\"".into());
        }
        // The server checks the expression itself and names what is wrong.
        return Ok(ScheduleFile::Cron {
            cron: expr.to_owned(),
        });
    }
    Err(format!(
        "`{s}` is not a schedule: use manual, every:N (minutes) or cron:\"*/5 * * * *\""
    ))
}

impl DefinitionArgs {
    fn file(&self) -> anyhow::Result<ActivationFile> {
        if let Some(path) = &self.from_file {
            let mut file = ActivationFile::read(path)?;
            if let Some(schedule) = &self.schedule {
                file.schedule = Some(schedule.clone());
            }
            return Ok(file);
        }
        let need = |v: &Option<String>, flag: &str| {
            v.clone()
                .with_context(|| format!("--{flag} is required (or use --from-file)"))
        };
        let column = |c: &Option<String>| c.clone().map(SourceFile::column);
        let insert_id = match (&self.insert_id_column, self.insert_id_derive.is_empty()) {
            (Some(c), _) => Some(SourceFile::column(c.clone())),
            (None, false) => Some(SourceFile::derive(self.insert_id_derive.clone())),
            (None, true) => None,
        };
        let properties = self
            .properties
            .iter()
            .map(|p| {
                let (column, property) = match p.split_once(':') {
                    Some((c, n)) => (c.to_owned(), Some(n.to_owned())),
                    None => (p.clone(), None),
                };
                PropertyFile {
                    column,
                    property,
                    operation: None,
                    unset_when_null: false,
                }
            })
            .collect();
        Ok(ActivationFile {
            name: need(&self.name, "name")?,
            warehouse: need(&self.warehouse, "warehouse")?,
            target: need(&self.target, "target")?,
            object: self.object.clone(),
            sync_behaviour: None,
            query: need(&self.query, "query")?,
            mapping: MappingFile {
                event_name: self
                    .event_name
                    .clone()
                    .map(SourceFile::constant)
                    .or_else(|| column(&self.event_name_column)),
                time: column(&self.time_column),
                distinct_id: column(&self.distinct_id_column),
                insert_id,
                group_key: None,
                group_id: None,
                properties,
            },
            options: OptionsFile::default(),
            schedule: self.schedule.clone(),
        })
    }

    /// The API spec, with warehouse and target names resolved to ids.
    pub(crate) async fn spec(&self, control: &mut Control) -> anyhow::Result<pb::ActivationSpec> {
        let file = self.file()?;
        file_spec(control, &file).await
    }
}

/// Resolves a parsed activation file's warehouse and target and builds the API spec.
pub(crate) async fn file_spec(
    control: &mut Control,
    file: &ActivationFile,
) -> anyhow::Result<pb::ActivationSpec> {
    let warehouse = require(
        find_warehouse(control, &file.warehouse).await?,
        "warehouse",
        &file.warehouse,
    )?;
    let target = require(
        find_target(control, &file.target).await?,
        "target",
        &file.target,
    )?;
    file.to_spec(warehouse.id, target.id)
}

impl ActivationCommand {
    /// Checks what can be checked without the server (the activation file), so a typo is reported
    /// before any connection is tried.
    pub(crate) fn preflight(&self) -> anyhow::Result<()> {
        match self {
            ActivationCommand::Create(definition)
            | ActivationCommand::Update { definition, .. } => definition.file().map(|_| ()),
            _ => Ok(()),
        }
    }
}

fn list_text(list: &[Activation]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                a.name.clone(),
                a.object.to_owned(),
                if a.paused { "paused" } else { "active" }.to_owned(),
            ]
        })
        .collect();
    table(&["ID", "NAME", "OBJECT", "STATUS"], &rows)
}

pub(crate) async fn run(
    mut control: Control,
    output: Output,
    command: ActivationCommand,
) -> anyhow::Result<()> {
    match command {
        ActivationCommand::Create(definition) => {
            let spec = definition.spec(&mut control).await?;
            let created = control
                .create_activation(pb::CreateActivationRequest {
                    activation: Some(spec),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let a = Activation::from(&created.activation.unwrap_or_default());
            output.print(&a, || format!("created activation {} ({})\n", a.name, a.id));
        }
        ActivationCommand::Update {
            id_or_name,
            definition,
        } => {
            let existing = require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?;
            let spec = definition.spec(&mut control).await?;
            let updated = control
                .update_activation(pb::UpdateActivationRequest {
                    id: existing.id,
                    activation: Some(spec),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let a = Activation::from(&updated.activation.unwrap_or_default());
            output.print(&a, || format!("updated activation {} ({})\n", a.name, a.id));
        }
        ActivationCommand::Get { id_or_name } => {
            let a = Activation::from(&require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?);
            output.print(&a, || {
                format!(
                    "{}query: {}\n",
                    list_text(std::slice::from_ref(&a)),
                    a.query
                )
            });
        }
        ActivationCommand::List => {
            let all: Vec<Activation> = super::all_activations(&mut control)
                .await?
                .iter()
                .map(Activation::from)
                .collect();
            output.print(&all, || list_text(&all));
        }
        ActivationCommand::Delete { id_or_name } => {
            let a = require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?;
            control
                .delete_activation(pb::DeleteActivationRequest { id: a.id.clone() })
                .await
                .map_err(status_error)?;
            output.print(&serde_json::json!({"deleted": a.id}), || {
                format!("deleted activation {}\n", a.name)
            });
        }
        ActivationCommand::Pause { id_or_name } => {
            let a = require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?;
            let paused = control
                .pause_activation(pb::PauseActivationRequest { id: a.id })
                .await
                .map_err(status_error)?
                .into_inner();
            let a = Activation::from(&paused.activation.unwrap_or_default());
            output.print(&a, || {
                format!(
                    "paused activation {}: no scheduled runs until it is resumed\n",
                    a.name
                )
            });
        }
        ActivationCommand::Resume { id_or_name } => {
            let a = require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?;
            let resumed = control
                .resume_activation(pb::ResumeActivationRequest { id: a.id })
                .await
                .map_err(status_error)?
                .into_inner();
            let a = Activation::from(&resumed.activation.unwrap_or_default());
            output.print(&a, || format!("resumed activation {}\n", a.name));
        }
        ActivationCommand::Preview { id_or_name, limit } => {
            let a = require(
                find_activation(&mut control, &id_or_name).await?,
                "activation",
                &id_or_name,
            )?;
            let preview = control
                .preview_activation(pb::PreviewActivationRequest {
                    activation: Some(pb::preview_activation_request::Activation::Id(a.id)),
                    limit,
                })
                .await
                .map_err(status_error)?
                .into_inner();
            let rows: Vec<serde_json::Value> = preview
                .rows
                .iter()
                .map(|r| {
                    let errors: Vec<serde_json::Value> = r
                        .errors
                        .iter()
                        .map(|e| serde_json::json!({"field": e.field, "column": e.column, "rule": e.rule, "message": e.message}))
                        .collect();
                    let record = serde_json::from_str::<serde_json::Value>(&r.record_json).unwrap_or(serde_json::Value::Null);
                    serde_json::json!({"row_number": r.row_number, "record": record, "errors": errors})
                })
                .collect();
            output.print(
                &serde_json::json!({"columns": preview.columns, "rows": rows}),
                || {
                    let mut text = String::new();
                    for r in &preview.rows {
                        if r.errors.is_empty() {
                            text.push_str(&format!("row {}: {}\n", r.row_number, r.record_json));
                        } else {
                            for e in &r.errors {
                                text.push_str(&format!(
                                    "row {}: INVALID {}\n",
                                    r.row_number, e.message
                                ));
                            }
                        }
                    }
                    text
                },
            );
        }
    }
    Ok(())
}
