use tracing_subscriber::filter::FromEnvError;
use tracing_subscriber::util::TryInitError;

/// Why telemetry could not be initialised.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A telemetry variable (`MIXSYNC_LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) is invalid.
    #[error(transparent)]
    Config(#[from] mixsync_config::ConfigError),

    /// `RUST_LOG` does not parse as filter directives.
    #[error("RUST_LOG is not a valid log filter (e.g. `info,mixsync_loader=debug`)")]
    InvalidFilter(#[source] FromEnvError),

    /// The OTLP span exporter could not be built from the `OTEL_EXPORTER_OTLP_*` settings.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter could not be built")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),

    /// The exporter's background runtime or thread could not be started.
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter's runtime could not start")]
    ExporterRuntime(#[source] std::io::Error),

    /// A global `tracing` subscriber (or `log` logger) is already installed.
    #[error("a global tracing subscriber is already set: telemetry::init runs once per process")]
    AlreadyInitialized(#[source] TryInitError),
}
