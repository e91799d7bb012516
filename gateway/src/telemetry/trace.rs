//! OpenTelemetry tracing: a server span per request and a client span per upstream call, with
//! the route, cluster, endpoint, Dubbo service and method; W3C `traceparent`/`tracestate` read
//! from callers and written to providers (Dubbo2 attachments, Triple/gRPC headers); spans
//! exported by OTLP/gRPC in batches from a background thread.
//!
//! With tracing off there is no [`Tracing`] at all: requests carry no context and no span is
//! built, so the cost is one `Option` check per request.

use std::net::SocketAddr;
use std::time::Duration;

use dubbo_codec::dubbo2::Attachments;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use crate::config;

/// The trace context of one request (its server span), carried in the request's extensions.
#[derive(Debug, Clone)]
pub struct RequestTrace(pub Context);

#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// Starts the exporter (must run inside the Tokio runtime); `None` when tracing is off.
    pub fn start(config: &config::Tracing) -> Result<Option<Tracing>, String> {
        if !config.enabled {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(config.otlp_endpoint.clone())
            .with_timeout(Duration::from_millis(config.export_timeout_ms))
            .build()
            .map_err(|e| format!("tracing.otlp_endpoint: {e}"))?;
        let sampler =
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(sampler)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("dubbo-gateway");
        Ok(Some(Tracing {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        }))
    }

    /// The server span of a request, child of the caller's `traceparent` if it sent one.
    pub fn server_span(&self, method: &http::Method, path: &str, headers: &HeaderMap) -> Context {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder(format!("{method}"))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", method.to_string()),
                KeyValue::new("url.path", path.to_owned()),
            ])
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    /// Ends a request's server span with what became of it.
    pub fn finish_server(
        cx: &Context,
        method: &http::Method,
        route: Option<&str>,
        cluster: Option<&str>,
        status: u16,
    ) {
        let span = cx.span();
        if let Some(route) = route {
            span.update_name(format!("{method} {route}"));
            span.set_attribute(KeyValue::new("http.route", route.to_owned()));
        }
        if let Some(cluster) = cluster {
            span.set_attribute(KeyValue::new("gateway.cluster", cluster.to_owned()));
        }
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if status >= 500 {
            span.set_status(Status::error(format!("HTTP {status}")));
        }
        span.end();
    }

    /// A client span for one upstream call, child of the request's span.
    pub fn upstream_span(&self, parent: &Context, call: &UpstreamCall<'_>) -> Context {
        let mut attributes = vec![
            KeyValue::new("rpc.system", call.system),
            KeyValue::new("rpc.service", call.service.to_owned()),
            KeyValue::new("rpc.method", call.method.to_owned()),
            KeyValue::new("gateway.cluster", call.cluster.to_owned()),
        ];
        if let Some(addr) = call.endpoint {
            attributes.push(KeyValue::new("server.address", addr.ip().to_string()));
            attributes.push(KeyValue::new("server.port", i64::from(addr.port())));
        }
        let span = self
            .tracer
            .span_builder(format!("{}/{}", call.service, call.method))
            .with_kind(SpanKind::Client)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    /// The client span of an upstream call, if the request is traced (its extensions carry
    /// a [`RequestTrace`]).
    pub fn start_upstream(
        tracing: Option<&Tracing>,
        extensions: &http::Extensions,
        call: &UpstreamCall<'_>,
    ) -> Option<Context> {
        let parent = extensions.get::<RequestTrace>()?;
        Some(tracing?.upstream_span(&parent.0, call))
    }

    /// Ends an upstream call's span; `error` is the failure, if it failed.
    pub fn finish_upstream(cx: &Context, error: Option<&str>) {
        let span = cx.span();
        if let Some(e) = error {
            span.set_status(Status::error(e.to_owned()));
        }
        span.end();
    }

    /// Writes `cx` as `traceparent`/`tracestate` Dubbo2 attachments.
    pub fn inject_attachments(&self, cx: &Context, attachments: &mut Attachments) {
        self.propagator
            .inject_context(cx, &mut AttachmentInjector(attachments));
    }

    /// Writes `cx` as `traceparent`/`tracestate` headers (Triple, gRPC).
    pub fn inject_headers(&self, cx: &Context, headers: &mut HeaderMap) {
        self.propagator
            .inject_context(cx, &mut HeaderInjector(headers));
    }

    /// Exports what is buffered and stops the exporter (blocking: call off the runtime).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace exporter shutdown");
        }
    }
}

/// What an upstream span describes.
#[derive(Debug)]
pub struct UpstreamCall<'a> {
    /// `apache_dubbo` or `grpc`.
    pub system: &'static str,
    pub service: &'a str,
    pub method: &'a str,
    pub cluster: &'a str,
    pub endpoint: Option<SocketAddr>,
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct AttachmentInjector<'a>(&'a mut Attachments);

impl Injector for AttachmentInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value);
    }
}
