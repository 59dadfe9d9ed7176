//! `mixsync serve <service>`: init telemetry, read and validate config, run until SIGINT/SIGTERM.

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    service: Service,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Service {
    /// The local Mixpanel ingestion API (configured by MIXSYNC_EMULATOR_*).
    Emulator,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let name = match args.service {
        Service::Emulator => "emulator",
    };
    let _telemetry = mixsync_telemetry::init(&format!("mixsync-{name}")).context("cannot start telemetry")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    match args.service {
        Service::Emulator => {
            let config = mixsync_emulator::Config::from_env()?;
            mixsync_emulator::run(config, shutdown).await?;
        }
    }
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
    shutdown.cancel();
}
