use std::thread::JoinHandle;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::oneshot;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use crate::TelemetryError;

/// The variable that turns on OTLP span export (standard OpenTelemetry name).
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// A tracer provider exporting to OTLP/gRPC in batches, with the Tokio
/// runtime its tonic channel runs on.
///
/// The channel gets a runtime of its own so that init works before the
/// service's runtime exists, and so that the final flush on drop cannot
/// deadlock a current-thread runtime that is blocked in that very drop.
#[derive(Debug)]
pub(crate) struct OtlpPipeline {
    provider: SdkTracerProvider,
    stop: Option<oneshot::Sender<()>>,
    runtime_thread: Option<JoinHandle<()>>,
}

impl OtlpPipeline {
    /// The pipeline for `service`, exporting to the endpoint the exporter reads from
    /// [`OTLP_ENDPOINT_VAR`] (and the other standard `OTEL_EXPORTER_OTLP_*` variables).
    pub(crate) fn start(service: &str) -> Result<Self, TelemetryError> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, exporter) = std::sync::mpsc::sync_channel(1);
        // The runtime is created, driven and dropped on its own thread only:
        // dropping a runtime inside the caller's async context would panic.
        let runtime_thread = std::thread::Builder::new()
            .name("otlp-exporter".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready.send(Err(TelemetryError::ExporterRuntime(error)));
                        return;
                    }
                };
                // The exporter resolves the endpoint, headers, timeout and
                // compression from the standard OTEL_EXPORTER_OTLP_*
                // variables; its channel's worker is spawned on `runtime`.
                let built = {
                    let _entered = runtime.enter();
                    SpanExporter::builder().with_tonic().build()
                };
                let serving = built.is_ok();
                let _ = ready.send(built.map_err(TelemetryError::Exporter));
                if serving {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                }
            })
            .map_err(TelemetryError::ExporterRuntime)?;
        let exporter = match exporter.recv() {
            Ok(Ok(exporter)) => exporter,
            Ok(Err(error)) => {
                let _ = runtime_thread.join();
                return Err(error);
            }
            Err(_) => {
                let _ = runtime_thread.join();
                return Err(TelemetryError::ExporterRuntime(std::io::Error::other(
                    "the exporter thread stopped before the exporter was built",
                )));
            }
        };

        let resource = Resource::builder()
            .with_service_name(service.to_owned())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        Ok(Self {
            provider,
            stop: Some(stop),
            runtime_thread: Some(runtime_thread),
        })
    }

    /// The tracing-opentelemetry layer turning spans into OpenTelemetry spans.
    pub(crate) fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        // The exporter's own transport would otherwise trace its exports,
        // which would be exported in turn.
        let not_the_exporter = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target("h2", LevelFilter::OFF)
            .with_target("hyper", LevelFilter::OFF)
            .with_target("hyper_util", LevelFilter::OFF)
            .with_target("tonic", LevelFilter::OFF)
            .with_target("tower", LevelFilter::OFF)
            .with_target("opentelemetry", LevelFilter::OFF)
            .with_target("opentelemetry_sdk", LevelFilter::OFF)
            .with_target("opentelemetry_otlp", LevelFilter::OFF);
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("mixsync"))
            .with_filter(not_the_exporter)
    }
}

impl Drop for OtlpPipeline {
    fn drop(&mut self) {
        // Shutdown blocks until the last batch is exported (or times out):
        // on a multi-threaded runtime, let other tasks move off this worker.
        let shutdown = || self.provider.shutdown();
        let result = match Handle::try_current().map(|handle| handle.runtime_flavor()) {
            Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(shutdown),
            _ => shutdown(),
        };
        if let Err(error) = result {
            tracing::warn!(%error, "span exporter shutdown failed; recent spans may be lost");
        }
        // Only now may the channel's runtime go.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.runtime_thread.take() {
            let _ = thread.join();
        }
    }
}

/// Keeps the OpenTelemetry pipeline alive; dropping it flushes pending spans
/// and shuts the exporter down.
#[must_use = "dropping the guard shuts down span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    otlp: Option<OtlpPipeline>,
}

impl TelemetryGuard {
    pub(crate) fn new(otlp: Option<OtlpPipeline>) -> Self {
        Self { otlp }
    }

    /// Whether spans are exported over OTLP.
    pub fn exports_spans(&self) -> bool {
        self.otlp.is_some()
    }
}
