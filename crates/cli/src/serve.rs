//! `mixsync serve <service>`: init telemetry, read and validate config, run until SIGINT/SIGTERM.
//! `mixsync serve all` runs every pipeline service in one process (the monolithic mode).

use anyhow::Context;
use clap::{Args, ValueEnum};
use mixsync_config::Env;
use mixsync_telemetry::TelemetryConfig;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    service: Service,
    /// Print the configuration the service would run with (every variable it reads, its value
    /// in effect and whether it is set or the default; secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
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
    let services = match args.service {
        Service::All => PIPELINE.to_vec(),
        one => vec![one],
    };
    let env = Env::process();
    let telemetry = TelemetryConfig::read(&env).context("invalid telemetry configuration")?;
    let configs = services
        .iter()
        .map(|&service| {
            ServiceConfig::read(service, &env)
                .with_context(|| format!("{}: invalid configuration", service.name()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.print_config {
        print_config(&env);
        return Ok(());
    }
    let _telemetry =
        mixsync_telemetry::init_with(&format!("mixsync-{}", args.service.name()), &telemetry)
            .context("cannot start telemetry")?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    start(configs, shutdown).await
}

/// Every variable read, one `NAME=value  # set|default` line each, secrets redacted.
fn print_config(env: &Env) {
    for setting in env.settings() {
        println!("{setting}");
    }
}

/// A service's configuration, read and validated before anything starts.
pub(crate) enum ServiceConfig {
    Control(mixsync_control::Config),
    Extractor(mixsync_extractor::Config),
    Mapper(mixsync_mapper::Config),
    Loader(Service, mixsync_loader::Config),
    Emulator(mixsync_emulator::Config),
}

impl ServiceConfig {
    /// Reads `service`'s configuration from `env`.
    pub(crate) fn read(service: Service, env: &Env) -> anyhow::Result<Self> {
        Ok(match service {
            Service::Control => Self::Control(mixsync_control::Config::read(env)?),
            Service::Extractor => Self::Extractor(mixsync_extractor::Config::read(env)?),
            Service::Mapper => Self::Mapper(mixsync_mapper::Config::read(env)?),
            Service::LoaderEvents | Service::LoaderUsers | Service::LoaderGroups => {
                Self::Loader(service, mixsync_loader::Config::read(env)?)
            }
            Service::Emulator => Self::Emulator(mixsync_emulator::Config::read(env)?),
            Service::All => anyhow::bail!("`all` is expanded before its configuration is read"),
        })
    }

    fn service(&self) -> Service {
        match self {
            Self::Control(_) => Service::Control,
            Self::Extractor(_) => Service::Extractor,
            Self::Mapper(_) => Service::Mapper,
            Self::Loader(service, _) => *service,
            Self::Emulator(_) => Service::Emulator,
        }
    }
}

/// Starts each service, waits until one stops or shutdown is asked, stops the others and
/// reports how each ended.
async fn start(configs: Vec<ServiceConfig>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for config in configs {
        let token = shutdown.child_token();
        let service = config.service();
        tasks.spawn(async move {
            let result = match config {
                ServiceConfig::Control(c) => mixsync_control::run(c, token)
                    .await
                    .map_err(anyhow::Error::from),
                ServiceConfig::Extractor(c) => mixsync_extractor::run(c, token)
                    .await
                    .map_err(anyhow::Error::from),
                ServiceConfig::Mapper(c) => mixsync_mapper::run(c, token)
                    .await
                    .map_err(anyhow::Error::from),
                ServiceConfig::Loader(Service::LoaderUsers, c) => {
                    mixsync_loader::run_user_profiles(c, token)
                        .await
                        .map_err(anyhow::Error::from)
                }
                ServiceConfig::Loader(Service::LoaderGroups, c) => {
                    mixsync_loader::run_group_profiles(c, token)
                        .await
                        .map_err(anyhow::Error::from)
                }
                ServiceConfig::Loader(_, c) => mixsync_loader::run(c, token)
                    .await
                    .map_err(anyhow::Error::from),
                ServiceConfig::Emulator(c) => mixsync_emulator::run(c, token)
                    .await
                    .map_err(anyhow::Error::from),
            };
            (service, result)
        });
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
