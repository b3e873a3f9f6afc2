//! The one integration-test binary of infty-model: the client against scripted mockito
//! servers (retries, stream failures, quirks), request-body snapshots, and decoding of
//! recorded streams.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod decode;
mod hostile;
mod presets;
mod request_bodies;
mod retries;
mod schemas;
mod scripted;
mod streams;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use infty_model::{ModelError, ModelResponse, ProviderConfig, RetryPolicy, StreamEvent, WireApi};
use serde_json::{Value, json};

/// Reads a fixture under `tests/fixtures/`.
pub(crate) fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A local provider for `base_url` with fast retries (1 ms steps) and the given timeouts.
pub(crate) fn fast_provider(base_url: String, wire_api: WireApi) -> ProviderConfig {
    let mut config = ProviderConfig::ollama();
    config.name = "scripted".into();
    config.base_url = base_url;
    config.wire_api = wire_api;
    config.idle_timeout = Duration::from_secs(5);
    config.retry = RetryPolicy {
        max_request_retries: 3,
        max_stream_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        max_retry_after: Duration::from_millis(50),
    };
    config
}

/// Collects stream events for later inspection.
#[derive(Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<StreamEvent>>>);

impl Recorder {
    pub(crate) fn callback(&self) -> impl Fn(StreamEvent) + Send + Sync + use<> {
        let events = Arc::clone(&self.0);
        move |event| events.lock().unwrap().push(event)
    }

    pub(crate) fn events(&self) -> Vec<StreamEvent> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn retries(&self) -> Vec<(u32, u32, Duration)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                StreamEvent::Retrying {
                    attempt,
                    max,
                    delay,
                    ..
                } => Some((attempt, max, delay)),
                _ => None,
            })
            .collect()
    }
}

/// The variant name of an error, for tables and snapshots.
pub(crate) fn error_kind(err: &ModelError) -> &'static str {
    match err {
        ModelError::Connect { .. } => "connect",
        ModelError::Retryable { .. } => "retryable",
        ModelError::StreamInterrupted { .. } => "stream_interrupted",
        ModelError::ResponseTooLarge { .. } => "response_too_large",
        ModelError::RetriesExhausted { .. } => "retries_exhausted",
        ModelError::ContextWindowExceeded { .. } => "context_window_exceeded",
        ModelError::QuotaExceeded { .. } => "quota_exceeded",
        ModelError::Auth { .. } => "auth",
        ModelError::InvalidRequest { .. } => "invalid_request",
        ModelError::MissingApiKey { .. } => "missing_api_key",
        ModelError::Config(_) => "config",
        _ => "other",
    }
}

/// One event as a short line.
pub(crate) fn event_line(event: &StreamEvent) -> String {
    match event {
        StreamEvent::Created { response_id } => format!("created {response_id}"),
        StreamEvent::TextDelta(text) => format!("text {text:?}"),
        StreamEvent::ReasoningDelta(text) => format!("reasoning {text:?}"),
        StreamEvent::ToolCallStarted { call_id, name } => format!("tool_call {call_id} {name}"),
        StreamEvent::Usage(usage) => format!(
            "usage in={} cached={} out={} reasoning={} total={}",
            usage.input_tokens,
            usage.cached_input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens,
            usage.total_tokens
        ),
        StreamEvent::Retrying { attempt, max, .. } => format!("retrying {attempt}/{max}"),
    }
}

/// A model call's outcome and events as JSON, for snapshots.
pub(crate) fn outcome_json(
    result: &Result<ModelResponse, ModelError>,
    events: &[StreamEvent],
) -> Value {
    let outcome = match result {
        Ok(response) => json!({
            "id": response.id,
            "items": response.items,
            "usage": response.usage,
            "incomplete": response.incomplete,
        }),
        Err(err) => json!({
            "error": error_kind(err),
            "message": err.to_string(),
            "retryable": err.is_retryable(),
            "delay_ms": err.retry_delay().map(|d| d.as_millis() as u64),
        }),
    };
    json!({
        "outcome": outcome,
        "events": events.iter().map(event_line).collect::<Vec<_>>(),
    })
}
