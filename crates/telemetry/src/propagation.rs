use std::collections::BTreeMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The W3C trace context of `span` (`traceparent`, and `tracestate` when
/// present), ready to be sent as message headers.
///
/// Empty when the span is disabled or telemetry has no OpenTelemetry layer.
pub fn inject_context(span: &tracing::Span) -> BTreeMap<String, String> {
    let context = span.context();
    let mut headers = BTreeMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(&mut headers));
    headers
}

/// The remote parent context carried in `headers` by [`inject_context`];
/// an empty context when there is none or it does not parse.
///
/// Make it a span's parent with
/// `tracing_opentelemetry::OpenTelemetrySpanExt::set_parent`.
pub fn extract_context(headers: &BTreeMap<String, String>) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes W3C trace context the process-wide propagator, for libraries that
/// use the global one.
pub(crate) fn install_global_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

struct HeaderInjector<'a>(&'a mut BTreeMap<String, String>);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` says nothing; keep the headers small.
        if !value.is_empty() {
            self.0.insert(key.to_owned(), value);
        }
    }
}

struct HeaderExtractor<'a>(&'a BTreeMap<String, String>);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_otel_subscriber(test: impl FnOnce()) {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, test);
    }

    #[test]
    fn extract_reads_a_traceparent() {
        let headers = BTreeMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())]);

        let context = extract_context(&headers);

        let span = context.span();
        let span_context = span.span_context();
        assert!(span_context.is_remote());
        assert_eq!(
            span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(span_context.span_id().to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn a_child_of_an_extracted_context_injects_the_same_trace() {
        with_otel_subscriber(|| {
            let incoming = BTreeMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())]);
            let span = tracing::info_span!("consume");
            span.set_parent(extract_context(&incoming)).unwrap();

            let outgoing = inject_context(&span);

            let traceparent = &outgoing["traceparent"];
            assert!(
                traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
                "{traceparent}"
            );
            assert!(traceparent.ends_with("-01"), "{traceparent}");
            assert_ne!(traceparent, TRACEPARENT, "the child has its own span id");

            let round_trip = extract_context(&outgoing);
            assert_eq!(
                round_trip.span().span_context().trace_id(),
                span.context().span().span_context().trace_id()
            );
        });
    }

    #[test]
    fn a_new_root_span_round_trips() {
        with_otel_subscriber(|| {
            let span = tracing::info_span!("publish");

            let headers = inject_context(&span);
            let context = extract_context(&headers);

            let sent = span.context().span().span_context().clone();
            let received = context.span().span_context().clone();
            assert!(sent.is_valid());
            assert_eq!(received.trace_id(), sent.trace_id());
            assert_eq!(received.span_id(), sent.span_id());
        });
    }

    #[test]
    fn nothing_to_inject_without_a_trace() {
        let headers = inject_context(&tracing::Span::none());

        assert!(headers.is_empty(), "{headers:?}");
        assert!(!extract_context(&headers).span().span_context().is_valid());
    }
}
