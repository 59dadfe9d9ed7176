//! Logging and tracing for every mixsync service.
//!
//! [`init_with`] installs the process-wide `tracing` subscriber: an `EnvFilter`
//! from `RUST_LOG` (default `info`), human-readable or JSON lines on stderr
//! ([`TelemetryConfig`]: `MIXSYNC_LOG_FORMAT`), and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
//! an OpenTelemetry OTLP/gRPC span exporter. [`inject_context`] and
//! [`extract_context`] carry W3C trace context across RabbitMQ headers so a
//! run is one trace across services.
//!
//! The services and queues a trace crosses: docs/architecture.md.

mod error;
mod format;
mod otlp;
mod propagation;

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer as _, fmt};

pub use error::TelemetryError;
pub use format::{LOG_FORMAT_VAR, LogFormat};
use otlp::OtlpPipeline;
pub use otlp::{OTLP_ENDPOINT_VAR, TelemetryGuard};
pub use propagation::{extract_context, inject_context};

/// The variable holding the log filter directives.
pub const LOG_FILTER_VAR: &str = "RUST_LOG";

/// What [`init_with`] is given, read from the environment (besides `RUST_LOG`, which `tracing-subscriber`'s
/// `EnvFilter` parses itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `MIXSYNC_LOG_FORMAT`: `text` (default) or `json`.
    pub format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: spans are exported over OTLP/gRPC when set.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads the telemetry variables from `env`.
    ///
    /// # Errors
    ///
    /// An invalid value, naming the variable.
    pub fn read(env: &mixsync_config::Env) -> Result<Self, mixsync_config::ConfigError> {
        Ok(TelemetryConfig {
            format: LogFormat::read(env)?,
            otlp_endpoint: env.string(OTLP_ENDPOINT_VAR)?,
        })
    }
}

/// Installs the global `tracing` subscriber for `service` (also the OpenTelemetry
/// `service.name`) with `config`.
///
/// Reads `RUST_LOG` (default `info`); when `config.otlp_endpoint` is set, exports spans over
/// OTLP/gRPC (the exporter honours the standard `OTEL_EXPORTER_OTLP_*` settings).
/// Works inside or outside a Tokio runtime: the exporter brings its own.
/// Keep the returned guard alive for the life of the process: dropping it
/// flushes and shuts down the span exporter.
///
/// # Errors
///
/// An exporter that cannot be built, an invalid `RUST_LOG`, or a global subscriber that is
/// already set (a second call in the same process).
pub fn init_with(
    service: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    let format = config.format;
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .with_env_var(LOG_FILTER_VAR)
        .from_env()
        .map_err(TelemetryError::InvalidFilter)?;
    let otlp = match config.otlp_endpoint {
        Some(_) => Some(OtlpPipeline::start(service)?),
        None => None,
    };

    let ansi = std::io::stderr().is_terminal();
    let fmt_layer = match format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let otel_layer = otlp.as_ref().map(OtlpPipeline::layer);

    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    if let Err(error) = installed {
        // Nothing of ours is global yet; dropping `otlp` stops the exporter.
        return Err(TelemetryError::AlreadyInitialized(error));
    }

    propagation::install_global_propagator();
    tracing::debug!(
        service,
        ?format,
        otlp = otlp.is_some(),
        "telemetry initialised"
    );
    Ok(TelemetryGuard::new(otlp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_init_is_an_error_not_a_panic() {
        // Whichever call wins the global slot, the other must fail cleanly.
        let config =
            TelemetryConfig::read(&mixsync_config::Env::from_pairs::<&str, &str>([])).unwrap();
        let first = init_with("telemetry-test", &config);
        let second = init_with("telemetry-test", &config);

        assert!(first.is_ok() || second.is_ok());
        let error = second.err().or(first.err()).unwrap();
        assert!(
            matches!(error, TelemetryError::AlreadyInitialized(_)),
            "{error:?}"
        );
    }
}
