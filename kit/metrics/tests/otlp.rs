//! OTLP export to a collector: a real gRPC server speaking the OTLP collector protocol
//! receives the spans (with the trace id the logs show) and the metrics.

use std::sync::{Arc, Mutex};

use gochat_clog::MemoryWriter;
use gochat_core::{Context, Env};
use gochat_metrics::{Config, Error, Options, OtlpConfig};
use opentelemetry_proto::tonic::collector::{
    metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
        metrics_service_server::{MetricsService, MetricsServiceServer},
    },
    trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
};
use tonic::{
    Request, Response, Status,
    transport::{Server, server::TcpIncoming},
};

/// What the collector received.
#[derive(Clone, Default)]
struct Collector {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn spans_and_metrics_reach_an_otlp_collector_with_the_logged_trace_id() {
    let collector = Collector::default();
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let address = incoming.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .add_service(MetricsServiceServer::new(collector.clone()))
            .serve_with_incoming(incoming),
    );

    let mut config = Config::for_env(Env::Development);
    config.service_name = "im-logic".to_owned();
    config.listen = None;
    let mut otlp = OtlpConfig::default();
    otlp.endpoint = format!("http://{address}");
    config.otlp = Some(otlp);
    let metrics = gochat_metrics::new(&Context::new(), config, Options::default()).unwrap();
    let out = MemoryWriter::new();
    let log = gochat_clog::new(
        &Context::new(),
        gochat_clog::Config::for_env(Env::Production),
        gochat_clog::Options::default()
            .writer(out.clone())
            .tracer(metrics.tracer()),
    )
    .unwrap();
    metrics
        .meter("im")
        .u64_counter("messages_sent")
        .build()
        .add(3, &[]);
    log.in_scope(|| {
        log.request_span(None)
            .in_scope(|| tracing::info!("handled"));
    });
    let logged = out.json_lines().unwrap()[0]["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Closing flushes both exporters before it returns.
    metrics.close().await;

    let traces = collector.traces.lock().unwrap().clone();
    let spans: Vec<_> = traces
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .collect();
    let request = spans
        .iter()
        .find(|span| span.name == "request")
        .unwrap_or_else(|| panic!("no request span in {spans:?}"));
    assert_eq!(hex(&request.trace_id), logged);
    let resource = traces[0].resource_spans[0].resource.as_ref().unwrap();
    let service = resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .map(|v| format!("{:?}", v.value));
    assert!(
        service.as_deref().is_some_and(|v| v.contains("im-logic")),
        "{service:?}"
    );

    let exported = collector.metrics.lock().unwrap().clone();
    let names: Vec<&str> = exported
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.as_str())
        .collect();
    assert!(names.contains(&"messages_sent"), "{names:?}");
}

#[test]
fn otlp_settings_are_checked_and_need_a_runtime() {
    let mut config = Config::for_env(Env::Development);
    config.listen = None;
    let mut otlp = OtlpConfig::default();
    otlp.endpoint = "collector:4317".to_owned();
    config.otlp = Some(otlp);
    let Err(Error::Config(e)) =
        gochat_metrics::new(&Context::new(), config.clone(), Options::default())
    else {
        panic!("an endpoint without a scheme is refused");
    };
    assert_eq!(e.field, "otlp.endpoint");

    config.otlp = Some(OtlpConfig::default());
    let outside = gochat_metrics::new(&Context::new(), config, Options::default());
    assert!(
        matches!(&outside, Err(Error::Otlp(reason)) if reason.contains("tokio runtime")),
        "{outside:?}"
    );
}
