//! OpenTelemetry export of whole scripted runs, received by local OTLP collectors (HTTP
//! protobuf and gRPC) on loopback: span names, parents and attributes, and what must
//! never be exported.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

use crate::harness::{SECRET, World};

const OBJECTIVE: &str = "What is six times seven?";
/// Text the Solver writes through a tool: content, never exported by default.
const TOOL_TEXT: &str = "Six times seven.";

/// One export request as the collector received it.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A local OTLP collector, over HTTP or gRPC, keeping what it receives.
struct Collector {
    runtime: tokio::runtime::Runtime,
    endpoint: String,
    received: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone)]
struct GrpcTraces(Arc<Mutex<Vec<Received>>>);

#[tonic::async_trait]
impl TraceService for GrpcTraces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request
            .metadata()
            .clone()
            .into_headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect();
        let body = request.into_inner().encode_to_vec();
        self.0.lock().unwrap().push(Received { headers, body });
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    }

    /// OTLP/HTTP with protobuf bodies at `/v1/traces`.
    fn http() -> Collector {
        let runtime = Collector::runtime();
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let store = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    let headers = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
                        .collect();
                    store.lock().unwrap().push(Received {
                        headers,
                        body: body.to_vec(),
                    });
                    (
                        [("content-type", "application/x-protobuf")],
                        ExportTraceServiceResponse::default().encode_to_vec(),
                    )
                }
            }),
        );
        runtime.spawn(async move { axum::serve(listener, app).await });
        Collector {
            runtime,
            endpoint,
            received,
        }
    }

    /// OTLP/gRPC: the `TraceService`.
    fn grpc() -> Collector {
        let runtime = Collector::runtime();
        let received = Arc::new(Mutex::new(Vec::new()));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(GrpcTraces(received.clone()));
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
                .await
        });
        Collector {
            runtime,
            endpoint,
            received,
        }
    }

    /// Every span received, decoded, with the resource's `service.name` of each.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for received in self.received.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(received.body.as_slice()).unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| attribute(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        spans.push((service.clone(), span));
                    }
                }
            }
        }
        spans
    }

    /// Everything received, bodies and headers, as text.
    fn raw_text(&self) -> String {
        let mut text = String::new();
        for received in self.received.lock().unwrap().iter() {
            for (name, value) in &received.headers {
                let _ = writeln!(text, "{name}: {value}");
            }
            text.push_str(&String::from_utf8_lossy(&received.body));
        }
        text
    }

    fn header(&self, name: &str) -> Option<String> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| r.headers.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let runtime = std::mem::replace(&mut self.runtime, Collector::runtime());
        runtime.shutdown_background();
    }
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
        .map(render_value)
}

fn render_value(value: &AnyValue) -> String {
    match value {
        AnyValue::StringValue(s) => format!("{s:?}"),
        AnyValue::BoolValue(b) => b.to_string(),
        AnyValue::IntValue(i) => i.to_string(),
        AnyValue::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Attribute values that differ from run to run.
fn redacted(key: &str, value: String) -> String {
    match key {
        "gen_ai.response.id" | "server.port" => "[REDACTED]".to_string(),
        _ => value,
    }
}

/// The spans as a tree: name, kind and status, then the sorted attributes; children in
/// the order they started. Ids and times are left out.
fn span_tree(spans: &[(String, Span)]) -> String {
    let mut children: BTreeMap<Vec<u8>, Vec<&Span>> = BTreeMap::new();
    let ids: Vec<&[u8]> = spans.iter().map(|(_, s)| s.span_id.as_slice()).collect();
    for (_, span) in spans {
        let parent = if ids.contains(&span.parent_span_id.as_slice()) {
            span.parent_span_id.clone()
        } else {
            Vec::new()
        };
        children.entry(parent).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time_unix_nano);
    }
    let mut out = String::new();
    fn walk(
        out: &mut String,
        children: &BTreeMap<Vec<u8>, Vec<&Span>>,
        parent: &[u8],
        depth: usize,
    ) {
        for span in children.get(parent).into_iter().flatten() {
            let indent = "    ".repeat(depth);
            let kind = match span.kind {
                1 => "internal",
                2 => "server",
                3 => "client",
                _ => "other",
            };
            let status = match span.status.as_ref().map(|s| s.code) {
                Some(2) => " status=error",
                _ => "",
            };
            let _ = writeln!(out, "{indent}{} [{kind}]{status}", span.name);
            let mut attributes: Vec<(String, String)> = span
                .attributes
                .iter()
                .map(|kv| {
                    let value = kv
                        .value
                        .as_ref()
                        .and_then(|v| v.value.as_ref())
                        .map(render_value)
                        .unwrap_or_default();
                    (kv.key.clone(), redacted(&kv.key, value))
                })
                .collect();
            attributes.sort();
            for (key, value) in attributes {
                let _ = writeln!(out, "{indent}  {key} = {value}");
            }
            for event in &span.events {
                let keys: Vec<&str> = event.attributes.iter().map(|kv| kv.key.as_str()).collect();
                let _ = writeln!(out, "{indent}  event {} {keys:?}", event.name);
            }
            walk(out, children, &span.span_id, depth + 1);
        }
    }
    walk(&mut out, &children, &[], 0);
    out
}

/// The Solver asks the Director, writes a file with a tool call, delivers; the Verifier passes.
fn script_run(world: &World) {
    world.say(
        "solver",
        r#"{"type":"direction_request","prompt":"Should the answer be a number or prose?"}"#,
    );
    world.say(
        "director",
        r#"{"directive":"A number, with one line of justification.","rationale":null}"#,
    );
    world.write_and_deliver("deliverable/answer.md", &format!("42\n\n{TOOL_TEXT}\n"));
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
}

fn run_with(world: &World, env: &[(&str, &str)]) {
    script_run(world);
    let mut cmd = world.infty();
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.args(["create", "--objective", OBJECTIVE, "--run-id", "otel"])
        .args(["--base-url", &world.server.base_url()])
        .args(["--timeout-secs", "30"])
        .assert()
        .success();
}

/// Fails when the API key or any prompt, completion or tool text reached the collector.
fn assert_no_secret_nor_content(collector: &Collector) {
    let raw = collector.raw_text();
    assert!(!raw.is_empty(), "nothing was exported");
    assert!(!raw.contains(SECRET), "the API key was exported");
    for text in [
        OBJECTIVE,
        TOOL_TEXT,
        "Your role name in this run",
        "A number, with one line",
    ] {
        assert!(
            !raw.contains(text),
            "{text:?} was exported without being asked for"
        );
    }
}

#[test]
fn a_run_is_exported_over_http_as_a_tree_of_genai_spans() {
    let collector = Collector::http();
    let world = World::new();
    run_with(
        &world,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=t0k3n"),
        ],
    );
    let spans = collector.spans();
    assert!(spans.iter().all(|(service, _)| service == "\"infty\""));
    insta::assert_snapshot!("span_tree", span_tree(&spans));
    assert_no_secret_nor_content(&collector);
    assert_eq!(
        collector.header("x-collector-token").as_deref(),
        Some("t0k3n")
    );
    assert_eq!(
        collector.header("content-type").as_deref(),
        Some("application/x-protobuf")
    );
}

#[test]
fn a_run_is_exported_over_grpc_with_the_same_spans() {
    let collector = Collector::grpc();
    let world = World::new();
    run_with(
        &world,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_SERVICE_NAME", "infty-ci"),
        ],
    );
    let spans = collector.spans();
    assert!(spans.iter().all(|(service, _)| service == "\"infty-ci\""));
    insta::assert_snapshot!("span_tree", span_tree(&spans));
    assert_no_secret_nor_content(&collector);
}

#[test]
fn the_config_file_can_choose_grpc() {
    let collector = Collector::grpc();
    let world = World::new();
    world.write_config(&format!(
        "[telemetry]\nendpoint = \"{}\"\nprotocol = \"grpc\"\n",
        collector.endpoint
    ));
    run_with(&world, &[]);
    insta::assert_snapshot!("span_tree", span_tree(&collector.spans()));
    assert_no_secret_nor_content(&collector);
}

#[test]
fn http_json_is_spoken_when_the_protocol_says_so() {
    let collector = Collector::http();
    let world = World::new();
    run_with(
        &world,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ],
    );
    assert_eq!(
        collector.header("content-type").as_deref(),
        Some("application/json")
    );
    let bodies: Vec<serde_json::Value> = collector
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let text = serde_json::to_string(&bodies).unwrap();
    for name in [
        "invoke_workflow infty",
        "invoke_agent director",
        "execute_tool write_file",
    ] {
        assert!(text.contains(name), "{name} is missing from {text}");
    }
    assert_no_secret_nor_content(&collector);
}

#[test]
fn content_is_exported_only_when_the_config_asks_for_it() {
    let collector = Collector::http();
    let world = World::new();
    world.write_config(&format!(
        "[telemetry]\nendpoint = \"{}\"\nprotocol = \"http/protobuf\"\ncapture_content = true\n",
        collector.endpoint
    ));
    run_with(&world, &[]);
    let raw = collector.raw_text();
    assert!(!raw.contains(SECRET), "the API key was exported");
    for text in [OBJECTIVE, TOOL_TEXT, "A number, with one line"] {
        assert!(
            raw.contains(text),
            "{text:?} was not exported though asked for"
        );
    }
    let spans = collector.spans();
    let events: Vec<&str> = spans
        .iter()
        .flat_map(|(_, s)| s.events.iter().map(|e| e.name.as_str()))
        .collect();
    assert!(events.contains(&"gen_ai.client.inference.operation.details"));
    assert!(events.contains(&"gen_ai.execute_tool.details"));
    // Never in the log file, though.
    let log = std::fs::read_to_string(world.home.path().join("logs/infty.log")).unwrap();
    assert!(
        !log.contains(OBJECTIVE) && !log.contains(TOOL_TEXT),
        "{log}"
    );
}

#[test]
fn an_unreachable_collector_does_not_fail_the_run() {
    // Nothing listens on the discard port of loopback.
    let world = World::new();
    run_with(
        &world,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
        ],
    );
    assert_eq!(world.run_json("otel")["status"], "succeeded");
    let log = std::fs::read_to_string(world.home.path().join("logs/infty.log")).unwrap();
    assert!(log.contains("opentelemetry export on"), "{log}");
    assert!(
        log.lines()
            .any(|line| (line.contains("WARN") || line.contains("ERROR"))
                && line.contains("opentelemetry")),
        "no warning about the export in the log:\n{log}"
    );
    world.assert_secret_nowhere();
}

#[test]
fn a_bad_protocol_is_a_warning_and_the_run_goes_on() {
    let world = World::new();
    script_run(&world);
    let assert = world
        .infty()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "udp")
        .args(["create", "--objective", OBJECTIVE, "--run-id", "otel"])
        .args(["--base-url", &world.server.base_url()])
        .assert()
        .success();
    let stderr = crate::harness::stderr_text(&assert);
    assert!(
        stderr.contains(
            "warning: opentelemetry export is off: OTEL_EXPORTER_OTLP_PROTOCOL is \"udp\""
        ),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_still_exports_the_run_as_interrupted_and_the_resume_as_resumed() {
    let collector = Collector::http();
    let mut world = World::new();
    let stalled = infty_model::test_support::ResponsesSse::new("resp_stalled")
        .text("thinking")
        .build_without_terminal();
    world
        .server
        .stall_next("solver", stalled, std::time::Duration::from_secs(5));
    let mut cmd = world.infty_process();
    cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .args(["create", "--objective", OBJECTIVE, "--run-id", "otel"])
        .args(["--base-url", &world.server.base_url()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Interrupt once the Solver's stalled request is in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while world.server.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the Solver never called"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let spans = collector.spans();
    let run = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "invoke_workflow infty")
        .expect("the run span was not exported");
    assert_eq!(
        attribute(&run.attributes, "infty.run.status").as_deref(),
        Some("\"interrupted\"")
    );
    assert_eq!(
        attribute(&run.attributes, "error.type").as_deref(),
        Some("\"interrupted\"")
    );
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    assert!(names.contains(&"invoke_agent solver"), "{names:?}");

    // The resumed run is a trace of its own, marked resumed.
    world.write_and_deliver("deliverable/answer.md", "42\n");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    world
        .infty()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .args(["resume", "otel", "--base-url", &world.server.base_url()])
        .assert()
        .success();
    let spans = collector.spans();
    let resumed: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| attribute(&s.attributes, "infty.run.resumed").as_deref() == Some("true"))
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(
        attribute(&resumed[0].attributes, "infty.run.status").as_deref(),
        Some("\"succeeded\"")
    );
    assert_ne!(resumed[0].trace_id, run.trace_id);
}
