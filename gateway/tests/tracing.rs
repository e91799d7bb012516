//! OpenTelemetry tracing end to end: an in-process OTLP receiver (a tonic `TraceService`)
//! receives the gateway's spans; the server span's parent is the caller's `traceparent`, the
//! upstream span is its child, and the providers — the npm Dubbo2 provider (attachments) and
//! the grpc-js Triple provider (headers) — see the upstream span as their parent.

mod common;

use std::sync::{Arc, Mutex};

use figment::providers::{Format, Yaml};
use figment::Figment;
use http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value as Json;
use testkit::peers::NodeProvider;

use common::SERVICE;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        if let Ok(mut all) = self.0.lock() {
            all.extend(spans);
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

async fn traced_post(gw: std::net::SocketAddr, path: &str) -> (StatusCode, Json) {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = http::Request::post(format!("http://{gw}{path}"))
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"[]")))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Json::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_follow_the_caller_and_reach_providers() {
    let Some(npm) = NodeProvider::start().await else {
        return;
    };
    let Some(node) = testkit::peers::require("node peers", testkit::peers::node_dir()) else {
        return;
    };
    let mut command = tokio::process::Command::new("node");
    command
        .arg(node.join("triple_wrapper_provider.js"))
        .arg("0");
    let (triple_port, _triple) = testkit::peers::spawn_listening(command).await;

    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let otlp = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let yaml = format!(
        "listeners: [{{name: http, address: '127.0.0.1:0'}}]\nadmin: {{address: ''}}\n\
         metadata: {{backend: memory, grpc_address: ''}}\n\
         tracing: {{enabled: true, otlp_endpoint: 'http://{otlp}', service_name: gw-test}}\n\
         clusters:\n\
         \x20 - {{name: npm, endpoints: ['127.0.0.1:{}']}}\n\
         \x20 - {{name: tri, protocol: tri, endpoints: ['127.0.0.1:{triple_port}']}}\n\
         routes: [{{prefix: /npm, cluster: npm}}, {{prefix: /tri, cluster: tri}}]\n",
        npm.port
    );
    let config = gateway::config::from_figment(Figment::new().merge(Yaml::string(&yaml)), "test")
        .unwrap_or_else(|e| panic!("{e}"));
    let running = gateway::app::start(config).await.expect("start");
    let gw = running.listeners[0];
    let (status, dubbo2) = traced_post(gw, &format!("/npm/{SERVICE}/traceContext")).await;
    assert_eq!(status, StatusCode::OK, "{dubbo2}");
    let (status, triple) = traced_post(gw, &format!("/tri/{SERVICE}/traceContext")).await;
    assert_eq!(status, StatusCode::OK, "{triple}");
    // Shutting down flushes the exporter.
    running.shutdown().await;
    let spans = receiver.0.lock().map(|s| s.clone()).unwrap_or_default();

    for (route, seen, system) in [("/npm", &dubbo2, "npm"), ("/tri", &triple, "tri")] {
        let server = spans
            .iter()
            .find(|s| {
                s.kind == SpanKind::Server as i32
                    && attribute(s, "http.route").as_deref() == Some(route)
            })
            .unwrap_or_else(|| panic!("no server span for {route}: {spans:#?}"));
        assert_eq!(hex(&server.trace_id), TRACE_ID);
        assert_eq!(
            hex(&server.parent_span_id),
            CALLER_SPAN,
            "the caller's span is the parent"
        );
        assert_eq!(server.name, format!("POST {route}"));
        assert_eq!(
            attribute(server, "http.response.status_code").as_deref(),
            Some("200")
        );
        assert_eq!(
            attribute(server, "gateway.cluster").as_deref(),
            Some(system)
        );
        let client = spans
            .iter()
            .find(|s| s.kind == SpanKind::Client as i32 && s.parent_span_id == server.span_id)
            .unwrap_or_else(|| panic!("no upstream span under {route}: {spans:#?}"));
        assert_eq!(hex(&client.trace_id), TRACE_ID);
        assert_eq!(attribute(client, "rpc.service").as_deref(), Some(SERVICE));
        assert_eq!(
            attribute(client, "rpc.method").as_deref(),
            Some("traceContext")
        );
        assert_eq!(
            attribute(client, "server.address").as_deref(),
            Some("127.0.0.1")
        );
        // The provider's parent is the upstream span, in the caller's trace and state.
        assert_eq!(
            seen["traceparent"],
            format!("00-{TRACE_ID}-{}-01", hex(&client.span_id)),
            "{route}: {seen}"
        );
        assert_eq!(seen["tracestate"], "vendor=abc");
    }
}
