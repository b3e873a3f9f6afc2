//! OpenTelemetry export: the `tracing` spans of `infty-core` and `infty-model` sent to an
//! OTLP collector over HTTP (protobuf or JSON) or gRPC, when one is configured.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
//! `[telemetry] endpoint` in the config file) is set. The standard variables win over the
//! file, as flags > environment > file everywhere in infty: `OTEL_EXPORTER_OTLP_PROTOCOL`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_SERVICE_NAME` and
//! `OTEL_RESOURCE_ATTRIBUTES` are read by the SDK itself; `OTEL_SDK_DISABLED=true` and
//! `OTEL_TRACES_EXPORTER=none` turn export off.
//!
//! Export must never slow or fail a run: spans go through the SDK's batch processor on its
//! own thread, a collector that cannot be reached costs a warning in the log file, and a
//! misconfiguration costs a warning on stderr with the run going on. Prompt, completion
//! and tool text are exported only when asked for (`[telemetry] capture_content = true`
//! or `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`). This module must never
//! export a secret: the model's API key is not in any span, and the only spans exported
//! are infty's own.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use infty_model::telemetry::CONTENT_TARGET;
use opentelemetry::trace::{Span as _, SpanId, TraceContextExt as _, TracerProvider as _};
use opentelemetry::{Context, InstrumentationScope, KeyValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, Span, SpanData, SpanProcessor};
use serde::{Deserialize, Serialize};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;

use crate::config::ConfigFile;
use crate::logging::BoxedLayer;

/// The standard variable naming the collector (all signals).
pub(crate) const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable naming the collector's trace endpoint (used as is).
pub(crate) const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The standard variable choosing the protocol (all signals).
pub(crate) const PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The standard variable choosing the protocol of traces.
pub(crate) const TRACES_PROTOCOL_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// The variable GenAI instrumentations read to capture message content.
pub(crate) const CAPTURE_CONTENT_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// The longest wait for the last spans at exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// `[telemetry]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TelemetrySection {
    /// The collector's base URL (`http://localhost:4318` for HTTP, `http://localhost:4317`
    /// for gRPC); HTTP appends `/v1/traces`. Unset: export is off.
    pub endpoint: Option<String>,
    /// How spans are sent.
    pub protocol: Option<OtlpProtocol>,
    /// Export prompt, completion and tool text too (default false).
    pub capture_content: Option<bool>,
}

/// Checks `[telemetry]` as the config file is read.
pub(crate) fn check(section: &TelemetrySection) -> Result<(), String> {
    match &section.endpoint {
        Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err(format!(
            "telemetry.endpoint {url:?} must start with http:// or https://"
        )),
        _ => Ok(()),
    }
}

/// An OTLP transport, named as `OTEL_EXPORTER_OTLP_PROTOCOL` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum OtlpProtocol {
    /// Protobuf over HTTP, the default.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    /// JSON over HTTP.
    #[serde(rename = "http/json")]
    HttpJson,
    /// gRPC.
    #[serde(rename = "grpc")]
    Grpc,
}

impl OtlpProtocol {
    fn parse(text: &str) -> Option<OtlpProtocol> {
        match text.trim() {
            "http/protobuf" => Some(OtlpProtocol::HttpProtobuf),
            "http/json" => Some(OtlpProtocol::HttpJson),
            "grpc" => Some(OtlpProtocol::Grpc),
            _ => None,
        }
    }

    /// The name, as in the variable.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
            OtlpProtocol::Grpc => "grpc",
        }
    }
}

/// Where the collector's address came from: the SDK reads the variables itself, infty
/// passes the config file's.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Environment(String),
    Config(String),
}

/// What export does, resolved from the environment and the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    endpoint: Endpoint,
    protocol: OtlpProtocol,
    capture_content: bool,
}

/// Resolves the settings: `Ok(None)` when export is off, `Err` for a value that cannot
/// work (which turns export off with a warning).
pub(crate) fn settings(
    file: &TelemetrySection,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Settings>, String> {
    let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let endpoint = match var(TRACES_ENDPOINT_ENV).or_else(|| var(ENDPOINT_ENV)) {
        Some(url) => Endpoint::Environment(url),
        None => match file
            .endpoint
            .as_deref()
            .filter(|url| !url.trim().is_empty())
        {
            Some(url) => Endpoint::Config(url.trim().to_string()),
            None => return Ok(None),
        },
    };
    let protocol = match var(TRACES_PROTOCOL_ENV)
        .map(|value| (TRACES_PROTOCOL_ENV, value))
        .or_else(|| var(PROTOCOL_ENV).map(|value| (PROTOCOL_ENV, value)))
    {
        Some((name, value)) => OtlpProtocol::parse(&value)
            .ok_or_else(|| format!("{name} is {value:?}; use grpc, http/protobuf or http/json"))?,
        None => file.protocol.unwrap_or(OtlpProtocol::HttpProtobuf),
    };
    let capture_content = match var(CAPTURE_CONTENT_ENV) {
        Some(value) => value.trim().eq_ignore_ascii_case("true"),
        None => file.capture_content.unwrap_or(false),
    };
    Ok(Some(Settings {
        endpoint,
        protocol,
        capture_content,
    }))
}

/// The running export: flushes and stops on [`Telemetry::shutdown`] or when dropped.
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// gRPC's client needs a tokio runtime of its own, alive until the last export.
    runtime: Option<tokio::runtime::Runtime>,
    shown_endpoint: String,
    protocol: OtlpProtocol,
    capture_content: bool,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("endpoint", &self.shown_endpoint)
            .finish_non_exhaustive()
    }
}

/// Starts export for a command that drives runs, reading `$INFTY_HOME/config.toml`'s
/// `[telemetry]` and the environment. `None` when export is off; a setting that cannot
/// work is a warning on stderr and no export, never a failed command.
pub(crate) fn start(config: Option<&ConfigFile>) -> Option<(Telemetry, BoxedLayer)> {
    let section = config.map(|c| c.telemetry.clone()).unwrap_or_default();
    let resolved = settings(&section, &|name| std::env::var(name).ok());
    let result = match resolved {
        Ok(None) => return None,
        Ok(Some(settings)) => build(&settings),
        Err(reason) => Err(reason),
    };
    match result {
        Ok(started) => Some(started),
        Err(reason) => {
            eprintln!("warning: opentelemetry export is off: {reason}");
            None
        }
    }
}

fn build(settings: &Settings) -> Result<(Telemetry, BoxedLayer), String> {
    let (url, from_config) = match &settings.endpoint {
        Endpoint::Environment(url) => (url.as_str(), false),
        Endpoint::Config(url) => (url.as_str(), true),
    };
    let shown_endpoint = without_credentials(url);
    let mut runtime = None;
    let exporter = match settings.protocol {
        OtlpProtocol::Grpc => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("infty-otlp")
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start the export runtime: {error}"))?;
            // The channel's tasks live on this runtime; the batch thread waits on them.
            let _entered = rt.enter();
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if from_config {
                builder = builder.with_endpoint(url);
            }
            let exporter = builder.build();
            drop(_entered);
            runtime = Some(rt);
            exporter
        }
        OtlpProtocol::HttpProtobuf | OtlpProtocol::HttpJson => {
            let protocol = match settings.protocol {
                OtlpProtocol::HttpJson => Protocol::HttpJson,
                _ => Protocol::HttpBinary,
            };
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(protocol);
            if from_config {
                builder = builder.with_endpoint(format!("{}/v1/traces", url.trim_end_matches('/')));
            }
            builder.build()
        }
    }
    .map_err(|error| format!("cannot export to {shown_endpoint}: {error}"))?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(LabelsDown::default())
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    let scope = InstrumentationScope::builder("infty")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    let tracer = provider.tracer_with_scope(scope);
    let capture = settings.capture_content;
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(move |meta| {
            // Only infty's own spans: the HTTP and gRPC clients' spans and every log event
            // stay out, and content only when asked for.
            (meta.is_span() && meta.target().starts_with("infty_"))
                || (capture && meta.target() == CONTENT_TARGET)
        }));
    Ok((
        Telemetry {
            provider: Some(provider),
            runtime,
            shown_endpoint,
            protocol: settings.protocol,
            capture_content: capture,
        },
        Box::new(layer),
    ))
}

/// `service.name` is `infty` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names it (the SDK's detectors read both).
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name("infty");
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Telemetry {
    /// Says in the log file where spans go (once logging is set up).
    pub(crate) fn log_started(&self) {
        tracing::info!(
            endpoint = %self.shown_endpoint,
            protocol = self.protocol.as_str(),
            capture_content = self.capture_content,
            "opentelemetry export on"
        );
    }

    /// Exports what is left and stops, waiting at most a few seconds. A failure is a
    /// warning in the log file.
    pub(crate) fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            tracing::warn!(endpoint = %self.shown_endpoint, %error, "opentelemetry export did not finish");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A URL without user info, for messages.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// The labels every exported span carries.
const LABELS: [&str; 2] = ["infty.run.id", "infty.role"];

/// Copies `infty.run.id` and `infty.role` from a span's parent onto the span when it has
/// none of its own, so model and tool calls, whose library code cannot know the run, carry
/// them as the run and turn spans do.
#[derive(Debug, Default)]
struct LabelsDown {
    open: Mutex<HashMap<SpanId, [Option<Value>; 2]>>,
}

impl SpanProcessor for LabelsDown {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let Some(data) = span.exported_data() else {
            return;
        };
        let mut labels: [Option<Value>; 2] = [None, None];
        for attribute in &data.attributes {
            for (slot, key) in labels.iter_mut().zip(LABELS) {
                if attribute.key.as_str() == key {
                    *slot = Some(attribute.value.clone());
                }
            }
        }
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if cx.has_active_span()
            && let Some(parent) = open.get(&cx.span().span_context().span_id())
        {
            for ((slot, inherited), key) in labels.iter_mut().zip(parent).zip(LABELS) {
                if slot.is_none()
                    && let Some(value) = inherited
                {
                    span.set_attribute(KeyValue::new(key, value.clone()));
                    *slot = Some(value.clone());
                }
            }
        }
        open.insert(data.span_context.span_id(), labels);
    }

    fn on_end(&self, span: SpanData) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&span.span_context.span_id());
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: TelemetrySection, vars: &[(&str, &str)]) -> Result<Option<Settings>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        settings(&file, &|name| vars.get(name).cloned())
    }

    fn file(endpoint: Option<&str>, protocol: Option<OtlpProtocol>) -> TelemetrySection {
        TelemetrySection {
            endpoint: endpoint.map(str::to_string),
            protocol,
            capture_content: None,
        }
    }

    #[test]
    fn export_is_off_unless_an_endpoint_is_set() {
        assert_eq!(resolve(file(None, None), &[]), Ok(None));
        assert_eq!(
            resolve(file(Some(" "), None), &[(ENDPOINT_ENV, "")]),
            Ok(None)
        );
        let on = resolve(file(Some("http://c:4318"), None), &[])
            .unwrap()
            .unwrap();
        assert_eq!(on.endpoint, Endpoint::Config("http://c:4318".into()));
        assert_eq!(on.protocol, OtlpProtocol::HttpProtobuf);
        assert!(!on.capture_content);
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(
                resolve(file(None, None), &[(ENDPOINT_ENV, "http://e"), off]),
                Ok(None)
            );
        }
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let got = resolve(
            file(Some("http://file:4318"), Some(OtlpProtocol::HttpJson)),
            &[(ENDPOINT_ENV, "http://env:4317"), (PROTOCOL_ENV, "grpc")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got.endpoint,
            Endpoint::Environment("http://env:4317".into())
        );
        assert_eq!(got.protocol, OtlpProtocol::Grpc);
        let got = resolve(
            file(None, None),
            &[
                (TRACES_ENDPOINT_ENV, "http://t/v1/traces"),
                (ENDPOINT_ENV, "http://e"),
                (TRACES_PROTOCOL_ENV, "http/json"),
                (PROTOCOL_ENV, "grpc"),
                (CAPTURE_CONTENT_ENV, "TRUE"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            got.endpoint,
            Endpoint::Environment("http://t/v1/traces".into())
        );
        assert_eq!(got.protocol, OtlpProtocol::HttpJson);
        assert!(got.capture_content);
    }

    #[test]
    fn a_bad_protocol_names_the_variable() {
        let error = resolve(
            file(None, None),
            &[(ENDPOINT_ENV, "http://e"), (PROTOCOL_ENV, "udp")],
        )
        .unwrap_err();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL is \"udp\""),
            "{error}"
        );
    }

    #[test]
    fn shown_endpoints_drop_credentials() {
        assert_eq!(
            without_credentials("https://u:p@c:4318/x"),
            "https://c:4318/x"
        );
        assert_eq!(without_credentials("http://c:4317"), "http://c:4317");
    }
}
