//! `mixsync serve <service>`: init telemetry, read and validate config, run until SIGINT/SIGTERM.
//! `mixsync serve all` runs every pipeline service in one process (the monolithic mode).

use anyhow::Context;
use clap::{Args, ValueEnum};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    service: Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Service {
    /// The gRPC control plane (MIXSYNC_GRPC_ADDR), run accounting and schema migrations.
    Control,
    /// Runs activation queries and publishes row batches.
    Extractor,
    /// Maps rows to Mixpanel records.
    Mapper,
    /// Sends events to Mixpanel's /import.
    LoaderEvents,
    /// Sends user profile updates to Mixpanel's /engage.
    LoaderUsers,
    /// Sends group profile updates to Mixpanel's /groups.
    LoaderGroups,
    /// The local Mixpanel ingestion API (configured by MIXSYNC_EMULATOR_*).
    Emulator,
    /// control, extractor, mapper and the three loaders in one process.
    All,
}

impl Service {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Service::Control => "control",
            Service::Extractor => "extractor",
            Service::Mapper => "mapper",
            Service::LoaderEvents => "loader-events",
            Service::LoaderUsers => "loader-users",
            Service::LoaderGroups => "loader-groups",
            Service::Emulator => "emulator",
            Service::All => "all",
        }
    }
}

/// The pipeline services `serve all` runs.
pub(crate) const PIPELINE: [Service; 6] = [
    Service::Control,
    Service::Extractor,
    Service::Mapper,
    Service::LoaderEvents,
    Service::LoaderUsers,
    Service::LoaderGroups,
];

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let _telemetry = mixsync_telemetry::init(&format!("mixsync-{}", args.service.name()))
        .context("cannot start telemetry")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let services = match args.service {
        Service::All => PIPELINE.to_vec(),
        one => vec![one],
    };
    run_services(&services, shutdown).await
}

/// Starts each service (config read and validated first, so a bad setting stops everything at once),
/// waits until one stops or shutdown is asked, stops the others and reports how each ended.
pub(crate) async fn run_services(
    services: &[Service],
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for &service in services {
        let token = shutdown.child_token();
        match service {
            Service::Control => {
                let config = mixsync_control::Config::from_env()
                    .context("control: invalid configuration")?;
                tasks.spawn(async move {
                    (
                        service,
                        mixsync_control::run(config, token)
                            .await
                            .map_err(anyhow::Error::from),
                    )
                });
            }
            Service::Extractor => {
                let config = mixsync_extractor::Config::from_env()
                    .context("extractor: invalid configuration")?;
                tasks.spawn(async move {
                    (
                        service,
                        mixsync_extractor::run(config, token)
                            .await
                            .map_err(anyhow::Error::from),
                    )
                });
            }
            Service::Mapper => {
                let config =
                    mixsync_mapper::Config::from_env().context("mapper: invalid configuration")?;
                tasks.spawn(async move {
                    (
                        service,
                        mixsync_mapper::run(config, token)
                            .await
                            .map_err(anyhow::Error::from),
                    )
                });
            }
            Service::LoaderEvents | Service::LoaderUsers | Service::LoaderGroups => {
                let config = mixsync_loader::Config::from_env()
                    .with_context(|| format!("{}: invalid configuration", service.name()))?;
                tasks.spawn(async move {
                    let result = match service {
                        Service::LoaderUsers => {
                            mixsync_loader::run_user_profiles(config, token).await
                        }
                        Service::LoaderGroups => {
                            mixsync_loader::run_group_profiles(config, token).await
                        }
                        _ => mixsync_loader::run(config, token).await,
                    };
                    (service, result.map_err(anyhow::Error::from))
                });
            }
            Service::Emulator => {
                let config = mixsync_emulator::Config::from_env()
                    .context("emulator: invalid configuration")?;
                tasks.spawn(async move {
                    (
                        service,
                        mixsync_emulator::run(config, token)
                            .await
                            .map_err(anyhow::Error::from),
                    )
                });
            }
            Service::All => unreachable!("`all` is expanded before"),
        }
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        // Whatever ended first, the others stop too: a half-running pipeline helps nobody.
        shutdown.cancel();
        match joined {
            Ok((service, Ok(()))) => tracing::info!(service = service.name(), "service stopped"),
            Ok((service, Err(error))) => {
                tracing::error!(
                    service = service.name(),
                    error = format!("{error:#}"),
                    "service failed"
                );
                first_error.get_or_insert(error.context(format!("{} failed", service.name())));
            }
            Err(panic) => {
                tracing::error!(error = %panic, "service task panicked");
                first_error.get_or_insert(anyhow::anyhow!("a service task panicked: {panic}"));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
pub(crate) async fn stop_on_signal(shutdown: CancellationToken) {
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
