//! The `tracing` spans of a run, a role turn and a tool call, named and attributed by the
//! OpenTelemetry GenAI semantic conventions, for any subscriber.
//!
//! The tree is `invoke_workflow infty` (the run) > `invoke_agent {role}` (one role turn) >
//! `chat {model}` (one model call, from `infty-model`) and `execute_tool {tool}` (one tool
//! call). The run and turn spans carry `infty.run.id` and `infty.role`; spans below inherit
//! them from their parents (an exporter may copy them down, as infty's own does). Tool
//! arguments and outputs never go on a span: they are one event on
//! [`CONTENT_TARGET`](infty_model::telemetry::CONTENT_TARGET), off unless a subscriber
//! enables it. This module must never record a secret or a prompt.

use tracing::Span;
use tracing::field::Empty;

use infty_model::telemetry::{CONTENT_TARGET, error_type, record_usage};

use crate::orchestrator::{CoreError, RunOutcome};
use crate::session::{SessionError, TurnOutput};
use crate::tools::ToolResult;

/// `gen_ai.workflow.name` of a run.
pub const WORKFLOW_NAME: &str = "infty";

/// `infty.role` of the run span, which belongs to no role.
pub const ORCHESTRATOR_ROLE: &str = "orchestrator";

/// The span of a run being driven: `invoke_workflow infty`.
pub(crate) fn run_span(run_id: &str, resumed: bool) -> Span {
    tracing::info_span!(
        "invoke_workflow",
        otel.name = %format!("invoke_workflow {WORKFLOW_NAME}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "invoke_workflow",
        gen_ai.workflow.name = WORKFLOW_NAME,
        infty.run.id = run_id,
        infty.role = ORCHESTRATOR_ROLE,
        infty.run.resumed = resumed,
        infty.run.status = Empty,
        error.type = Empty,
    )
}

/// Records how the driving ended: the status the run was left in, and `error.type` unless
/// it succeeded.
pub(crate) fn record_run(span: &Span, result: &Result<RunOutcome, CoreError>) {
    let status = match result {
        Ok(_) => "succeeded",
        Err(CoreError::Stopped { ending, .. }) => ending.status().as_str(),
        Err(CoreError::Store(_)) => "store",
        Err(CoreError::Session(_)) => "session",
        Err(_) => "error",
    };
    span.record("infty.run.status", status);
    if result.is_err() {
        span.record("error.type", status);
        span.record("otel.status_code", "error");
    }
}

/// The span of one role turn: `invoke_agent {role}`.
pub(crate) fn turn_span(run_id: &str, role: &str, model: &str, provider: Option<&str>) -> Span {
    tracing::info_span!(
        "invoke_agent",
        otel.name = %format!("invoke_agent {role}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "invoke_agent",
        gen_ai.provider.name = provider,
        gen_ai.agent.name = role,
        gen_ai.request.model = model,
        infty.run.id = run_id,
        infty.role = role,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.usage.cache_read.input_tokens = Empty,
        gen_ai.usage.reasoning.output_tokens = Empty,
        error.type = Empty,
    )
}

/// Records a turn's outcome: the tokens of all its model calls, or why it failed.
pub(crate) fn record_turn<E>(span: &Span, outcome: &Result<Result<TurnOutput, SessionError>, E>) {
    let error = match outcome {
        Ok(Ok(output)) => {
            let usage = &output.usage;
            record_usage(
                span,
                &infty_model::Usage {
                    input_tokens: usage.input_tokens,
                    cached_input_tokens: usage.cached_input_tokens,
                    output_tokens: usage.output_tokens,
                    reasoning_tokens: usage.reasoning_tokens,
                    total_tokens: usage.total_tokens,
                },
            );
            return;
        }
        Ok(Err(SessionError::Model { source, .. })) => error_type(source),
        Ok(Err(SessionError::Rollout { .. })) => "rollout",
        #[allow(unreachable_patterns)]
        Ok(Err(_)) => "session",
        Err(_) => "timeout",
    };
    span.record("error.type", error);
    span.record("otel.status_code", "error");
}

/// The span of one tool call: `execute_tool {tool}`. The name is the model's; one that is
/// not a plausible function name is shown as `_OTHER`, so a hostile model cannot write
/// arbitrary text into span names (nor into the call id attribute).
pub(crate) fn tool_span(tool: &str, call_id: &str) -> Span {
    let tool = if plausible_name(tool, 64) {
        tool
    } else {
        "_OTHER"
    };
    // Servers make call ids, but a local one may pass the model's text through.
    let call_id = if plausible_name(call_id, 128) {
        call_id
    } else {
        "_OTHER"
    };
    tracing::info_span!(
        "execute_tool",
        otel.name = %format!("execute_tool {tool}"),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = tool,
        gen_ai.tool.type = "function",
        gen_ai.tool.call.id = call_id,
        error.type = Empty,
    )
}

/// Records a tool call's outcome, and its arguments and output for subscribers that
/// enabled the content target.
pub(crate) fn record_tool(span: &Span, arguments: &str, result: &ToolResult) {
    if !result.ok {
        span.record("error.type", "tool_error");
        span.record("otel.status_code", "error");
    }
    if tracing::enabled!(target: CONTENT_TARGET, tracing::Level::INFO) {
        span.in_scope(|| {
            tracing::event!(
                target: CONTENT_TARGET,
                tracing::Level::INFO,
                { "gen_ai.tool.call.arguments" } = arguments,
                { "gen_ai.tool.call.result" } = result.output.as_str(),
                "gen_ai.execute_tool.details"
            );
        });
    }
}

/// Names as the APIs make them: 1 to `max` of `[A-Za-z0-9_.-]`.
fn plausible_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plausible_tool_names_reach_span_names() {
        let long = "a".repeat(65);
        let cases = [
            ("shell", true),
            ("mcp.server-1_tool", true),
            ("", false),
            ("rm -rf /", false),
            ("a\nb", false),
            (long.as_str(), false),
        ];
        for (name, expected) in cases {
            assert_eq!(plausible_name(name, 64), expected, "{name:?}");
        }
    }
}
