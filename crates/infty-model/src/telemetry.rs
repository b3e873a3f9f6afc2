//! The `tracing` span of one model call, named and attributed by the OpenTelemetry GenAI
//! semantic conventions (`chat {model}`, `gen_ai.*` attributes), for any subscriber.
//!
//! The span carries what identifies the call (provider, model, server) and, when the
//! response completes, its id and token usage. Prompt and completion text never go on the
//! span: they are emitted as one event on the separate [`CONTENT_TARGET`], which a
//! subscriber enables only when content capture was asked for (it is off by default, and
//! infty's log file never enables it). This module must never record an API key, a header
//! or a URL with credentials.

use tracing::Span;
use tracing::field::Empty;

use crate::error::ModelError;
use crate::item::{Item, Role};
use crate::provider::ProviderConfig;
use crate::request::ModelRequest;
use crate::response::{ModelResponse, Usage};

/// The `tracing` target of events that carry prompt, completion or tool text. Subscribers
/// enable it only to capture content on purpose; it is never on by a default filter.
pub const CONTENT_TARGET: &str = "infty_content";

/// The span of one model call: `chat {model}`, kind client. `gen_ai.provider.name` is the
/// provider's name in infty (`openai` is the convention's own value; the others, such as
/// `ollama` or `vllm`, are custom values as the convention allows).
pub(crate) fn chat_span(
    provider: &ProviderConfig,
    endpoint: &reqwest::Url,
    request: &ModelRequest,
) -> Span {
    tracing::info_span!(
        "chat",
        otel.name = %format!("chat {}", request.model),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = %provider.name,
        gen_ai.request.model = %request.model,
        gen_ai.output.type = if request.output_schema.is_some() { "json" } else { "text" },
        server.address = endpoint.host_str().unwrap_or_default(),
        server.port = endpoint.port_or_known_default().map(i64::from),
        gen_ai.response.id = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.reasoning.output_tokens = Empty,
        error.type = Empty,
    )
}

/// Records a finished call on `span`: usage and response id, or the error's type; and, for
/// subscribers that enabled [`CONTENT_TARGET`], the messages in and out.
pub(crate) fn record_outcome(
    span: &Span,
    request: &ModelRequest,
    outcome: &Result<ModelResponse, ModelError>,
) {
    match outcome {
        Ok(response) => {
            if let Some(id) = &response.id {
                span.record("gen_ai.response.id", id.as_str());
            }
            if let Some(usage) = &response.usage {
                record_usage(span, usage);
            }
        }
        Err(error) => {
            span.record("error.type", error_type(error));
            span.record("otel.status_code", "error");
        }
    }
    if tracing::enabled!(target: CONTENT_TARGET, tracing::Level::INFO) {
        let output = match outcome {
            Ok(response) => messages_json(&response.items),
            Err(_) => "[]".to_string(),
        };
        span.in_scope(|| {
            tracing::event!(
                target: CONTENT_TARGET,
                tracing::Level::INFO,
                { "gen_ai.system_instructions" } = %system_instructions(&request.instructions),
                { "gen_ai.input.messages" } = %messages_json(&request.input),
                { "gen_ai.output.messages" } = %output,
                "gen_ai.client.inference.operation.details"
            );
        });
    }
}

/// Records token counts on `span` with the convention's names. A span that did not declare
/// a field ignores it, so this serves the call span and the turn spans above it alike.
pub fn record_usage(span: &Span, usage: &Usage) {
    // As integers: exporters turn a u64 into text, which backends cannot sum.
    let int = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
    span.record("gen_ai.usage.input_tokens", int(usage.input_tokens));
    span.record("gen_ai.usage.output_tokens", int(usage.output_tokens));
    span.record(
        "gen_ai.usage.cache_read.input_tokens",
        int(usage.cached_input_tokens),
    );
    span.record(
        "gen_ai.usage.reasoning.output_tokens",
        int(usage.reasoning_tokens),
    );
}

/// A low-cardinality name for what went wrong (`error.type`).
pub fn error_type(error: &ModelError) -> &'static str {
    match error {
        ModelError::Connect { .. } => "connect",
        ModelError::Retryable { .. } => "retryable",
        ModelError::StreamInterrupted { .. } => "stream_interrupted",
        ModelError::RetriesExhausted { last, .. } => error_type(last),
        ModelError::ContextWindowExceeded { .. } => "context_window_exceeded",
        ModelError::QuotaExceeded { .. } => "quota_exceeded",
        ModelError::Auth { .. } => "auth",
        ModelError::InvalidRequest { .. } => "invalid_request",
        ModelError::MissingApiKey { .. } => "missing_api_key",
        ModelError::Config(_) => "config",
        ModelError::ResponseTooLarge { .. } => "response_too_large",
    }
}

/// `gen_ai.system_instructions`: the instructions as text parts, JSON.
fn system_instructions(instructions: &str) -> String {
    serde_json::json!([{"type": "text", "content": instructions}]).to_string()
}

/// Items as the convention's messages (`role` and `parts`), JSON. Reasoning is opaque and
/// left out.
pub fn messages_json(items: &[Item]) -> String {
    let messages: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|item| match item {
            Item::Message { role, text } => Some(serde_json::json!({
                "role": match role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                    Role::System | Role::Developer => "system",
                },
                "parts": [{"type": "text", "content": text}],
            })),
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => Some(serde_json::json!({
                "role": "assistant",
                "parts": [{"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}],
            })),
            Item::FunctionOutput { call_id, output } => Some(serde_json::json!({
                "role": "tool",
                "parts": [{"type": "tool_call_response", "id": call_id, "result": output}],
            })),
            Item::Reasoning { .. } => None,
        })
        .collect();
    serde_json::Value::Array(messages).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_the_convention_shape() {
        let items = vec![
            Item::user("hi"),
            Item::FunctionCall {
                call_id: "c1".into(),
                name: "shell".into(),
                arguments: "{}".into(),
            },
            Item::function_output("c1", "ok"),
            Item::Reasoning {
                raw: serde_json::json!({"secret": "opaque"}),
            },
            Item::assistant("done"),
        ];
        let value: serde_json::Value = serde_json::from_str(&messages_json(&items)).unwrap();
        let roles: Vec<&str> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
        assert_eq!(value[1]["parts"][0]["type"], "tool_call");
        assert_eq!(value[2]["parts"][0]["result"], "ok");
    }
}
