//! `mixsync run …`

use std::time::{Duration, Instant};

use clap::Subcommand;
use mixsync_proto::v1 as pb;

use super::{find_activation, require};
use crate::client::{Control, status_error};
use crate::output::{Output, table};
use crate::progress::Progress;
use crate::views::{self, Run};

#[derive(Debug, Subcommand)]
pub(crate) enum RunCommand {
    /// Starts a run of an activation now.
    Start {
        /// Activation id or name.
        activation: String,
        /// Follow the run until it ends and print its report.
        #[arg(long)]
        watch: bool,
        /// Send every row, ignoring what earlier runs loaded.
        #[arg(long)]
        full_resync: bool,
    },
    /// Shows one run.
    Show { run_id: String },
    /// Cancels a run: a queued one ends now; a running one stops extracting, finishes what is
    /// in flight and ends CANCELLED with its true counts.
    Cancel {
        run_id: String,
        /// Follow the run until it has ended and print its report.
        #[arg(long)]
        watch: bool,
    },
    /// Follows a run until it ends.
    Watch { run_id: String },
    /// Lists runs, newest first.
    List {
        /// Only this activation's runs (id or name).
        #[arg(long)]
        activation: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

pub(crate) async fn run(
    mut control: Control,
    output: Output,
    command: RunCommand,
) -> anyhow::Result<()> {
    match command {
        RunCommand::Start {
            activation,
            watch,
            full_resync,
        } => {
            let a = require(
                find_activation(&mut control, &activation).await?,
                "activation",
                &activation,
            )?;
            let run = control
                .trigger_run(pb::TriggerRunRequest {
                    activation_id: a.id,
                    full_resync,
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .run
                .unwrap_or_default();
            if watch {
                let last = follow(&mut control, &run.id, output).await?;
                return finish(output, &last);
            }
            let view = Run::from(&run);
            output.print(&view, || {
                format!("started run {} ({})\n", view.id, view.state)
            });
        }
        RunCommand::Show { run_id } => {
            let run = get(&mut control, &run_id).await?;
            let view = Run::from(&run);
            output.print(&view, || view.report());
        }
        RunCommand::Cancel { run_id, watch } => {
            let run = control
                .cancel_run(pb::CancelRunRequest { id: run_id })
                .await
                .map_err(status_error)?
                .into_inner()
                .run
                .unwrap_or_default();
            let run = if watch && !views::is_terminal(run.state) {
                follow(&mut control, &run.id, output).await?
            } else {
                run
            };
            let view = Run::from(&run);
            output.print(&view, || {
                if views::is_terminal(run.state) {
                    view.report()
                } else {
                    format!(
                        "cancelling run {}: extraction stops, what is in flight is finished\n",
                        view.id
                    )
                }
            });
        }
        RunCommand::Watch { run_id } => {
            let last = follow(&mut control, &run_id, output).await?;
            return finish(output, &last);
        }
        RunCommand::List { activation, limit } => {
            let activation_id = match activation {
                Some(key) => {
                    require(
                        find_activation(&mut control, &key).await?,
                        "activation",
                        &key,
                    )?
                    .id
                }
                None => String::new(),
            };
            let runs = control
                .list_runs(pb::ListRunsRequest {
                    activation_id,
                    page_size: limit,
                    ..Default::default()
                })
                .await
                .map_err(status_error)?
                .into_inner()
                .runs;
            let views: Vec<Run> = runs.iter().map(Run::from).collect();
            output.print(&views, || {
                let rows: Vec<Vec<String>> = views
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.state.to_owned(),
                            r.created_at.clone(),
                            r.counts.extracted.to_string(),
                            r.counts.skipped.to_string(),
                            r.counts.loaded.to_string(),
                            r.counts.failed.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "RUN",
                        "STATE",
                        "CREATED",
                        "EXTRACTED",
                        "SKIPPED",
                        "LOADED",
                        "FAILED",
                    ],
                    &rows,
                )
            });
        }
    }
    Ok(())
}

pub(crate) async fn get(control: &mut Control, run_id: &str) -> anyhow::Result<pb::Run> {
    Ok(control
        .get_run(pb::GetRunRequest {
            id: run_id.to_owned(),
        })
        .await
        .map_err(status_error)?
        .into_inner()
        .run
        .unwrap_or_default())
}

/// Prints the final report; a run that did not succeed fully is an error exit.
fn finish(output: Output, run: &pb::Run) -> anyhow::Result<()> {
    let view = Run::from(run);
    output.print(&view, || view.report());
    match pb::RunState::try_from(run.state) {
        Ok(pb::RunState::Succeeded) => Ok(()),
        _ => anyhow::bail!("run {} ended {}", run.id, view.state),
    }
}

/// How long [`follow`] keeps reconnecting to a control plane that went away (restarted, or
/// waiting for its database) before it gives up.
const RECONNECT_FOR: Duration = Duration::from_secs(120);
const FIRST_RECONNECT_WAIT: Duration = Duration::from_millis(500);
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(5);

/// Follows a run with WatchRun until it ends, showing its progress on stderr (see [`Progress`]).
/// When the stream breaks or control is unavailable (a restart, its database away), it says so
/// and reconnects with backoff for up to [`RECONNECT_FOR`], then carries on where the run is.
pub(crate) async fn follow(
    control: &mut Control,
    run_id: &str,
    output: Output,
) -> anyhow::Result<pb::Run> {
    let mut progress = Progress::new(output);
    let mut last = pb::Run::default();
    let mut outage: Option<(Instant, Duration)> = None;
    loop {
        let error = match watch_once(control, run_id, &mut progress, &mut last, &mut outage).await {
            Ok(()) if views::is_terminal(last.state) => break,
            // The stream ended early (e.g. the server is shutting down): read the run as it is.
            Ok(()) => match get(control, run_id).await {
                Ok(run) if views::is_terminal(run.state) => {
                    progress.update(&pb::RunProgress {
                        run: Some(run.clone()),
                        total_rows: None,
                        observed_at: None,
                    });
                    last = run;
                    break;
                }
                Ok(_) => "the progress stream ended before the run".to_owned(),
                Err(e) => e.to_string(),
            },
            Err(status) if reconnectable(&status) => status_error(status).to_string(),
            Err(status) => {
                progress.finish();
                return Err(status_error(status));
            }
        };
        let now = Instant::now();
        let (since, wait) = match outage {
            None => {
                progress.note(&format!(
                    "lost the watch of run {run_id} ({error}); reconnecting for up to {}s",
                    RECONNECT_FOR.as_secs()
                ));
                (now, FIRST_RECONNECT_WAIT)
            }
            Some((since, wait)) => (since, (wait * 2).min(MAX_RECONNECT_WAIT)),
        };
        if now.duration_since(since) + wait > RECONNECT_FOR {
            progress.finish();
            anyhow::bail!(
                "gave up watching run {run_id} after {}s without the control plane: {error}; the run goes on: `mixsync run watch {run_id}`",
                RECONNECT_FOR.as_secs()
            );
        }
        outage = Some((since, wait));
        tokio::time::sleep(wait).await;
    }
    progress.finish();
    Ok(last)
}

/// One WatchRun stream, until it ends, breaks or shows the run ended. A first message after a
/// reconnect ends the outage.
async fn watch_once(
    control: &mut Control,
    run_id: &str,
    progress: &mut Progress,
    last: &mut pb::Run,
    outage: &mut Option<(Instant, Duration)>,
) -> Result<(), tonic::Status> {
    let mut stream = control
        .watch_run(pb::WatchRunRequest {
            id: run_id.to_owned(),
        })
        .await?
        .into_inner();
    while let Some(update) = stream.message().await? {
        if outage.take().is_some() {
            progress.note(&format!("reconnected; watching run {run_id} again"));
        }
        let Some(run) = update.run.clone() else {
            continue;
        };
        progress.update(&update);
        let terminal = views::is_terminal(run.state);
        *last = run;
        if terminal {
            break;
        }
    }
    Ok(())
}

/// Whether a failed watch is worth reconnecting: control unreachable or restarting, the
/// connection broken, or control unable to reach its own database for now.
fn reconnectable(status: &tonic::Status) -> bool {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Aborted => true,
        tonic::Code::Unknown | tonic::Code::Internal => {
            let message = status.message();
            [
                "transport",
                "connection",
                "h2 protocol",
                "stream",
                "broken pipe",
                "reset",
            ]
            .iter()
            .any(|m| message.contains(m))
        }
        _ => false,
    }
}
