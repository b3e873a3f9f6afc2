//! Chat Completions: request body (`POST {base}/chat/completions`) and SSE decoder.
//!
//! The decoder survives the quirks of OpenAI-compatible servers (wire-formats §7):
//! `choices: []` usage chunks, missing usage, tool-call fragments without `index` or `id`,
//! several calls sent under one index, reasoning as `reasoning_content`, `reasoning` or
//! `reasoning.text`, errors inside a 200 stream, and streams that end after
//! `finish_reason` without `[DONE]`. It must never keep raw chunks.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::item::{Item, Role};
use crate::provider::Capabilities;
use crate::request::{ModelRequest, ToolChoice};
use crate::response::{ModelResponse, StreamEvent, Usage};
use crate::retry::ProviderError;
use crate::wire::call_ids::{CHAT_MAX_CALL_ID, CallIds};
use crate::wire::{Decoder, WireFailure, usage};

/// Builds the streamed Chat Completions request body.
pub(crate) fn request_body(request: &ModelRequest, capabilities: &Capabilities) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("messages".into(), Value::Array(messages(request)));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut function = json!({
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                });
                if capabilities.supports_strict_schema {
                    function["strict"] = json!(tool.strict);
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        body.insert(
            "tool_choice".into(),
            match &request.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Function(name) => {
                    json!({"type": "function", "function": {"name": name}})
                }
            },
        );
        if capabilities.supports_parallel_tool_calls {
            body.insert(
                "parallel_tool_calls".into(),
                json!(request.parallel_tool_calls),
            );
        }
    }
    if let Some(effort) = request
        .reasoning_effort
        .as_ref()
        .filter(|_| capabilities.supports_reasoning_effort)
    {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(schema) = request
        .output_schema
        .as_ref()
        .filter(|_| capabilities.supports_structured_output)
        .filter(|_| !(capabilities.schema_excludes_tools && request.offers_tools()))
    {
        let mut json_schema = json!({"name": schema.name, "schema": schema.schema});
        if capabilities.supports_strict_schema {
            json_schema["strict"] = json!(schema.strict);
        }
        body.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": json_schema}),
        );
    }
    if let Some(max) = request.max_output_tokens {
        let field = if capabilities.uses_max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(field.into(), json!(max));
    }
    body.insert("stream".into(), json!(true));
    if capabilities.supports_stream_usage {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Value::Object(body)
}

/// Translates history to chat messages: instructions become the first system message,
/// an assistant text and the calls right after it share one assistant message, reasoning
/// is not sent back.
fn messages(request: &ModelRequest) -> Vec<Value> {
    let mut messages = Vec::with_capacity(request.input.len() + 1);
    if !request.instructions.is_empty() {
        messages.push(json!({"role": "system", "content": request.instructions}));
    }
    // True while the last message is an assistant turn that calls may still join.
    let mut open_assistant = false;
    let ids = CallIds::for_items(&request.input, CHAT_MAX_CALL_ID);
    for item in &request.input {
        match item {
            Item::Message { role, text } => {
                let role = match role {
                    // Local servers know `system`; OpenAI maps it for reasoning models.
                    Role::Developer | Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                messages.push(json!({"role": role, "content": text}));
                open_assistant = role == "assistant";
            }
            Item::FunctionCall {
                call_id,
                name,
                arguments,
            } => {
                let call = json!({
                    "id": ids.wire(call_id),
                    "type": "function",
                    "function": {"name": name, "arguments": super::sent_arguments(arguments)},
                });
                let joined = match messages.last_mut() {
                    Some(Value::Object(last)) if open_assistant => {
                        match last.entry("tool_calls").or_insert_with(|| json!([])) {
                            Value::Array(calls) => {
                                calls.push(call.clone());
                                true
                            }
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if !joined {
                    messages.push(json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [call],
                    }));
                }
                open_assistant = true;
            }
            Item::FunctionOutput { call_id, output } => {
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": ids.wire(call_id),
                    "content": output,
                }));
                open_assistant = false;
            }
            Item::Reasoning { .. } => {}
        }
    }
    messages
}

/// The chunk a streaming server would have sent for a complete `chat.completion`: each
/// choice's `message` becomes its `delta`.
pub(crate) fn whole_as_chunks(mut completion: Value) -> Vec<Value> {
    if let Some(Value::Array(choices)) = completion.get_mut("choices") {
        for choice in choices {
            if let Some(message) = choice.get_mut("message").map(Value::take) {
                choice["delta"] = message;
            }
            // Whole tool calls carry no index: number them in order.
            if let Some(Value::Array(calls)) = choice.pointer_mut("/delta/tool_calls") {
                for (index, call) in calls.iter_mut().enumerate() {
                    if call.get("index").is_none() {
                        call["index"] = json!(index);
                    }
                }
            }
        }
    }
    vec![completion]
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default, rename = "type")]
    kind: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    refusal: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    reasoning: Option<Value>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallFragment>>,
}

#[derive(Deserialize)]
struct ToolCallFragment {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionFragment>,
}

#[derive(Deserialize)]
struct FunctionFragment {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Value>,
}

struct CallSlot {
    index: Option<u64>,
    /// The id the server sent; empty until it does.
    id: String,
    name: String,
    arguments: String,
    /// The id given in `ToolCallStarted` (synthetic when the server had sent none yet).
    announced: Option<String>,
}

/// Assembles a Chat Completions stream.
#[derive(Default)]
pub(crate) struct ChatDecoder {
    response_id: Option<String>,
    text: String,
    reasoning: String,
    calls: Vec<CallSlot>,
    usage: Option<Usage>,
    finish_reason: Option<String>,
}

impl ChatDecoder {
    fn on_fragment(&mut self, fragment: ToolCallFragment, events: &dyn Fn(StreamEvent)) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let (name, arguments) = match fragment.function {
            Some(f) => (
                f.name.filter(|n| !n.is_empty()),
                match f.arguments {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                },
            ),
            None => (None, String::new()),
        };
        let slot = self.slot_for(fragment.index, id.as_deref(), name.as_deref());
        let call = &mut self.calls[slot];
        if call.id.is_empty()
            && let Some(id) = id
        {
            call.id = id;
        }
        if call.name.is_empty()
            && let Some(name) = name
        {
            call.name = name;
        }
        call.arguments.push_str(&arguments);
        if call.announced.is_none() && !call.name.is_empty() {
            let call_id = if call.id.is_empty() {
                synthetic_call_id(self.response_id.as_deref(), slot)
            } else {
                call.id.clone()
            };
            events(StreamEvent::ToolCallStarted {
                call_id: call_id.clone(),
                name: call.name.clone(),
            });
            call.announced = Some(call_id);
        }
    }

    /// Picks the call a fragment belongs to. Keyed by `index`; a fragment for an occupied
    /// index opens a new call when it carries a different id and a name, or a different id
    /// after the current call's arguments form complete JSON (Ollama sends parallel calls
    /// all as index 0), or, lacking ids, a name after the current call's arguments already
    /// form complete JSON (calls that arrive whole). A different id without a name on an
    /// unfinished call is the same call (Kimi/Moonshot rotate ids per fragment); the first
    /// id is kept.
    fn slot_for(&mut self, index: Option<u64>, id: Option<&str>, name: Option<&str>) -> usize {
        let found = match index {
            Some(index) => self.calls.iter().rposition(|c| c.index == Some(index)),
            None => self.calls.len().checked_sub(1),
        };
        if let Some(position) = found {
            let call = &self.calls[position];
            let other_id = matches!(id, Some(id) if !call.id.is_empty() && call.id != id);
            let arguments_complete =
                serde_json::from_str::<serde::de::IgnoredAny>(&call.arguments).is_ok();
            // A different id starts a new call only together with a name, or once the
            // current call's arguments are complete: Kimi/Moonshot send one call as
            // fragments that each carry a fresh id, the name on the first only.
            let new_call = other_id && (name.is_some() || arguments_complete);
            let whole_call_done =
                id.is_none() && name.is_some() && !call.name.is_empty() && arguments_complete;
            if !new_call && !whole_call_done {
                return position;
            }
        }
        self.calls.push(CallSlot {
            index,
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
            announced: None,
        });
        self.calls.len() - 1
    }
}

fn synthetic_call_id(response_id: Option<&str>, slot: usize) -> String {
    match response_id {
        Some(id) => format!("call_{id}_{slot}"),
        None => format!("call_{slot}"),
    }
}

fn reasoning_text(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => Some(s),
        Value::Object(map) => map
            .get("text")
            .or_else(|| map.get("content"))
            .and_then(Value::as_str),
        _ => None,
    }
}

impl Decoder for ChatDecoder {
    fn feed(&mut self, data: &str, events: &dyn Fn(StreamEvent)) -> Result<bool, WireFailure> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        let chunk: Chunk<'_> = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(err) => {
                tracing::debug!(%err, "skipping unparsable chat chunk");
                return Ok(false);
            }
        };
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            let error = ProviderError::from_json(&json!({ "error": error })).unwrap_or_default();
            return Err(WireFailure::Provider(error));
        }
        if chunk.object.as_deref() == Some("error") {
            let mut fields = Map::new();
            for (key, value) in [
                ("message", chunk.message),
                ("code", chunk.code),
                ("type", chunk.kind),
            ] {
                if let Some(value) = value {
                    fields.insert(key.into(), value);
                }
            }
            let error = ProviderError::from_json(&json!({ "error": fields })).unwrap_or_default();
            return Err(WireFailure::Provider(error));
        }
        if self.response_id.is_none()
            && let Some(id) = chunk.id.filter(|id| !id.is_empty()).map(Cow::into_owned)
        {
            events(StreamEvent::Created {
                response_id: id.clone(),
            });
            self.response_id = Some(id);
        }
        for choice in chunk.choices.into_iter().flatten() {
            // infty asks for one choice; anything beyond index 0 is ignored.
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(reasoning) = delta
                    .reasoning_content
                    .as_deref()
                    .or_else(|| delta.reasoning.as_ref().and_then(reasoning_text))
                    .filter(|r| !r.is_empty())
                {
                    self.reasoning.push_str(reasoning);
                    events(StreamEvent::ReasoningDelta(reasoning.to_owned()));
                }
                for piece in [delta.content, delta.refusal].into_iter().flatten() {
                    if !piece.is_empty() {
                        self.text.push_str(&piece);
                        events(StreamEvent::TextDelta(piece.into_owned()));
                    }
                }
                for fragment in delta.tool_calls.into_iter().flatten() {
                    self.on_fragment(fragment, events);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                if reason == "error" {
                    return Err(WireFailure::Provider(ProviderError {
                        message: "stream finished with finish_reason error".to_owned(),
                        ..ProviderError::default()
                    }));
                }
                self.finish_reason = Some(reason.into_owned());
            }
        }
        if let Some(usage) = usage::read(chunk.usage.as_ref(), &usage::CHAT) {
            events(StreamEvent::Usage(usage));
            self.usage = Some(usage);
        }
        Ok(false)
    }

    fn has_answer(&self) -> bool {
        self.finish_reason.is_some()
    }

    fn finish(self) -> Result<ModelResponse, WireFailure> {
        let Some(finish_reason) = self.finish_reason else {
            return Err(WireFailure::Interrupted(
                "stream closed before finish_reason".to_owned(),
            ));
        };
        let mut items = Vec::with_capacity(self.calls.len() + 2);
        if !self.reasoning.is_empty() {
            items.push(Item::Reasoning {
                raw: json!({"type": "reasoning", "text": self.reasoning}),
            });
        }
        if !self.text.is_empty() {
            items.push(Item::Message {
                role: Role::Assistant,
                text: self.text,
            });
        }
        for (slot, call) in self.calls.into_iter().enumerate() {
            if call.name.is_empty() && call.arguments.is_empty() {
                continue;
            }
            // The server's id wins over the one announced before it arrived.
            let call_id = if !call.id.is_empty() {
                call.id
            } else {
                call.announced
                    .unwrap_or_else(|| synthetic_call_id(self.response_id.as_deref(), slot))
            };
            items.push(Item::FunctionCall {
                call_id,
                name: call.name,
                arguments: call.arguments,
            });
        }
        let incomplete = match finish_reason.as_str() {
            "length" => Some("max_output_tokens".to_owned()),
            "content_filter" => Some("content_filter".to_owned()),
            _ => None,
        };
        Ok(ModelResponse {
            id: self.response_id,
            items,
            usage: self.usage,
            incomplete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds tool-call fragments (one chunk each), then `finish_reason`; returns the calls
    /// as `id name arguments` lines.
    fn calls(fragments: &[Value]) -> Vec<String> {
        let mut decoder = ChatDecoder::default();
        for fragment in fragments {
            let chunk = json!({"choices": [{"index": 0, "delta": {"tool_calls": [fragment]}}]});
            decoder.feed(&chunk.to_string(), &|_| {}).expect("feed");
        }
        let done = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]});
        decoder
            .feed(&done.to_string(), &|_| {})
            .expect("finish chunk");
        decoder
            .finish()
            .expect("finish")
            .function_calls()
            .map(|c| format!("{} {} {}", c.call_id, c.name, c.arguments))
            .collect()
    }

    #[test]
    fn tool_call_fragment_table() {
        let f = |index: Option<u64>, id: Option<&str>, name: Option<&str>, args: &str| {
            let mut fragment = json!({"function": {"arguments": args}});
            if let Some(index) = index {
                fragment["index"] = json!(index);
            }
            if let Some(id) = id {
                fragment["id"] = json!(id);
            }
            if let Some(name) = name {
                fragment["function"]["name"] = json!(name);
            }
            fragment
        };
        let cases: Vec<(&str, Vec<Value>, Vec<&str>)> = vec![
            (
                "openai: first fragment has id and name, then argument pieces",
                vec![
                    f(Some(0), Some("c1"), Some("ls"), ""),
                    f(Some(0), None, None, "{\"a\""),
                    f(Some(0), None, None, ":1}"),
                ],
                vec!["c1 ls {\"a\":1}"],
            ),
            (
                "two indexes interleaved",
                vec![
                    f(Some(0), Some("c1"), Some("a"), "{"),
                    f(Some(1), Some("c2"), Some("b"), "{"),
                    f(Some(0), None, None, "}"),
                    f(Some(1), None, None, "}"),
                ],
                vec!["c1 a {}", "c2 b {}"],
            ),
            (
                "ollama: parallel calls all at index 0 with different ids",
                vec![
                    f(Some(0), Some("c1"), Some("a"), "{}"),
                    f(Some(0), Some("c2"), Some("a"), "{}"),
                ],
                vec!["c1 a {}", "c2 a {}"],
            ),
            (
                "no ids, no indexes, whole calls",
                vec![
                    f(None, None, Some("a"), "{\"x\":1}"),
                    f(None, None, Some("a"), "{\"x\":2}"),
                ],
                vec!["call_0 a {\"x\":1}", "call_1 a {\"x\":2}"],
            ),
            (
                "no index, pieces after a named first fragment",
                vec![
                    f(None, Some("c1"), Some("a"), "{\"x\""),
                    f(None, None, None, ":1}"),
                ],
                vec!["c1 a {\"x\":1}"],
            ),
            (
                "id arrives after the name",
                vec![
                    f(Some(0), None, Some("a"), ""),
                    f(Some(0), Some("c9"), None, "{}"),
                ],
                vec!["c9 a {}"],
            ),
            (
                "repeated id on every fragment",
                vec![
                    f(Some(0), Some("c1"), Some("a"), "{"),
                    f(Some(0), Some("c1"), None, "}"),
                ],
                vec!["c1 a {}"],
            ),
            (
                "arguments as an object",
                vec![
                    json!({"index": 0, "id": "c1", "function": {"name": "a", "arguments": {"x": 1}}}),
                ],
                vec!["c1 a {\"x\":1}"],
            ),
            (
                "kimi: a fresh id on every fragment of one call, the name on the first",
                vec![
                    f(Some(0), Some("tool_A"), Some("skill_view"), ""),
                    f(Some(0), Some("tool_B"), None, "{\""),
                    f(Some(0), Some("tool_C"), None, "name"),
                    f(Some(0), Some("tool_D"), None, "\":"),
                    f(Some(0), Some("tool_E"), None, "\"x\"}"),
                ],
                vec!["tool_A skill_view {\"name\":\"x\"}"],
            ),
            (
                "kimi then a second call at the next index",
                vec![
                    f(Some(0), Some("tool_A"), Some("a"), "{"),
                    f(Some(0), Some("tool_B"), None, "}"),
                    f(Some(1), Some("tool_C"), Some("b"), "{"),
                    f(Some(1), Some("tool_D"), None, "}"),
                ],
                vec!["tool_A a {}", "tool_C b {}"],
            ),
            (
                "different id without a name after complete arguments is a new call",
                vec![
                    f(Some(0), Some("c1"), Some("a"), "{}"),
                    f(Some(0), Some("c2"), None, "{}"),
                ],
                vec!["c1 a {}", "c2  {}"],
            ),
            (
                "empty fragment is dropped",
                vec![json!({"index": 0})],
                vec![],
            ),
        ];
        for (name, fragments, expected) in cases {
            assert_eq!(calls(&fragments), expected, "{name}");
        }
    }
}
