//! What comes back from a model: progress events while streaming, the assembled response
//! at the end, and token usage.
//!
//! This module must never hold raw wire events: the response is built from assembled items.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::item::{Item, Role};

/// Token counts of one response. Totals over many responses are `infty-store`'s
/// `TokenUsage`, whose additions saturate: this crate never adds usages up.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_tokens: u64,
    /// Generated tokens (reasoning included).
    pub output_tokens: u64,
    /// Generated tokens spent on reasoning.
    pub reasoning_tokens: u64,
    /// Total as reported (or input + output when the provider leaves it out).
    pub total_tokens: u64,
}

/// Progress while a response streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The server accepted the request and named the response.
    Created {
        /// Response id (`resp_...` or `chatcmpl-...`).
        response_id: String,
    },
    /// A piece of assistant text.
    TextDelta(String),
    /// A piece of reasoning text (summary or raw reasoning).
    ReasoningDelta(String),
    /// The model started a tool call.
    ToolCallStarted {
        /// Call id (synthesised as `call_<n>` when the server sends none).
        call_id: String,
        /// Tool name.
        name: String,
    },
    /// Token usage of the response.
    Usage(Usage),
    /// The attempt failed in a retryable way; the client waits `delay` and tries again.
    /// Text and tool calls streamed so far are void: the retry streams them anew.
    Retrying {
        /// Retry number within its budget, from 1.
        attempt: u32,
        /// The budget.
        max: u32,
        /// Wait before the retry.
        delay: Duration,
        /// Why (the error's message).
        reason: String,
    },
}

/// A borrowed view of one function call in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCallRef<'a> {
    /// Call id.
    pub call_id: &'a str,
    /// Tool name.
    pub name: &'a str,
    /// Raw JSON argument string.
    pub arguments: &'a str,
}

/// The assembled result of one model call.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelResponse {
    /// Response id, if the server gave one.
    pub id: Option<String>,
    /// Output items in order: reasoning, messages, function calls.
    pub items: Vec<Item>,
    /// Token usage, if the server reported it.
    pub usage: Option<Usage>,
    /// Why the output stopped early (`max_output_tokens`, `content_filter`, ...), if it did.
    pub incomplete: Option<String>,
}

impl ModelResponse {
    /// All assistant message text, concatenated.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for item in &self.items {
            if let Item::Message {
                role: Role::Assistant,
                text: part,
            } = item
            {
                text.push_str(part);
            }
        }
        text
    }

    /// Whether the output stopped at its token cap: the server said so (`incomplete` is
    /// `max_output_tokens`, Chat's `finish_reason: length`), or it generated all
    /// `max_output_tokens` tokens, the only sign some servers give (llama.cpp's
    /// `/v1/responses` reports every response as completed).
    pub fn hit_output_cap(&self, max_output_tokens: Option<u32>) -> bool {
        if self.incomplete.as_deref() == Some("max_output_tokens") {
            return true;
        }
        match (max_output_tokens, self.usage) {
            (Some(cap), Some(usage)) => {
                self.incomplete.is_none() && usage.output_tokens >= u64::from(cap)
            }
            _ => false,
        }
    }

    /// The function calls, in order.
    pub fn function_calls(&self) -> impl Iterator<Item = FunctionCallRef<'_>> {
        self.items.iter().filter_map(|item| match item {
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => Some(FunctionCallRef {
                call_id,
                name,
                arguments,
            }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_cap_hits() {
        let usage = |output_tokens| {
            Some(Usage {
                output_tokens,
                ..Usage::default()
            })
        };
        let cases = [
            (
                "reported",
                Some("max_output_tokens"),
                Some(10),
                usage(3),
                true,
            ),
            (
                "reported without a cap sent",
                Some("max_output_tokens"),
                None,
                None,
                true,
            ),
            (
                "other reason",
                Some("content_filter"),
                Some(10),
                usage(10),
                false,
            ),
            ("counted at the cap", None, Some(10), usage(10), true),
            ("counted under the cap", None, Some(10), usage(9), false),
            ("no cap sent", None, None, usage(10_000), false),
            ("no usage", None, Some(10), None, false),
        ];
        for (name, incomplete, cap, usage, expected) in cases {
            let response = ModelResponse {
                incomplete: incomplete.map(str::to_owned),
                usage,
                ..ModelResponse::default()
            };
            assert_eq!(response.hit_output_cap(cap), expected, "{name}");
        }
    }

    #[test]
    fn text_and_function_calls_views() {
        let response = ModelResponse {
            items: vec![
                Item::Reasoning {
                    raw: serde_json::json!({}),
                },
                Item::assistant("Hello"),
                Item::user("ignored"),
                Item::assistant(" world"),
                Item::FunctionCall {
                    call_id: "c1".into(),
                    name: "shell".into(),
                    arguments: "{}".into(),
                },
            ],
            ..ModelResponse::default()
        };
        assert_eq!(response.text(), "Hello world");
        let calls: Vec<_> = response.function_calls().collect();
        assert_eq!(
            calls,
            [FunctionCallRef {
                call_id: "c1",
                name: "shell",
                arguments: "{}"
            }]
        );
    }
}
