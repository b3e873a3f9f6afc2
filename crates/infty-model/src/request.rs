//! What the caller asks of a model, independent of the wire API.
//!
//! The wire modules decide how (and whether, per provider capabilities) each field is sent.
//! This module must never build wire JSON itself.

use crate::item::Item;

/// A function tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Tool name, as the model will call it.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    /// Ask for strict schema adherence (sent only where the provider supports it).
    pub strict: bool,
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// Exactly this function.
    Function(String),
}

/// A JSON Schema the final text must follow (structured output).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSchema {
    /// Schema name (`[a-zA-Z0-9_-]{1,64}`).
    pub name: String,
    /// The JSON Schema.
    pub schema: serde_json::Value,
    /// Ask for strict adherence.
    pub strict: bool,
}

impl ModelRequest {
    /// Whether the request offers tools the model may call.
    pub fn offers_tools(&self) -> bool {
        !self.tools.is_empty() && self.tool_choice != ToolChoice::None
    }
}

/// One model call: instructions, history, tools and options.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelRequest {
    /// Model id as the provider names it.
    pub model: String,
    /// System/developer instructions, resent on every call. Empty means none.
    pub instructions: String,
    /// The conversation so far, oldest first.
    pub input: Vec<Item>,
    /// Tools on offer.
    pub tools: Vec<ToolSpec>,
    /// How the tools may be used (sent only when there are tools).
    pub tool_choice: ToolChoice,
    /// Allow several calls in one response (sent only when there are tools and the
    /// provider supports it).
    pub parallel_tool_calls: bool,
    /// Reasoning effort (`"minimal"`, `"low"`, `"medium"`, `"high"`, ...); omitted when `None`.
    pub reasoning_effort: Option<String>,
    /// Reasoning summary (`"auto"`, `"concise"`, `"detailed"`), sent as `reasoning.summary`
    /// on the Responses API only when asked for: organisations OpenAI has not verified get
    /// a 400 for it.
    pub reasoning_summary: Option<String>,
    /// Structured output schema, sent as `text.format` / `response_format` where supported.
    pub output_schema: Option<OutputSchema>,
    /// Cap on generated tokens.
    pub max_output_tokens: Option<u32>,
}
