//! OpenAI Responses API: request body (`POST {base}/responses`) and SSE decoder.
//!
//! The decoder dispatches on the JSON `type` of each payload (never the `event:` line),
//! ignores unknown types, keys open items by `output_index` / `item_id`, and takes each
//! item from `response.output_item.done` when the server sends it (the authoritative copy,
//! the one whose reasoning `encrypted_content` is complete). It must never keep raw
//! events: typed parsing skips the large echoed `response.output` arrays entirely.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::context_window;
use crate::item::{Item, Role};
use crate::provider::Capabilities;
use crate::request::{ModelRequest, ToolChoice};
use crate::response::{ModelResponse, StreamEvent, Usage};
use crate::retry::ProviderError;
use crate::wire::call_ids::{CallIds, RESPONSES_MAX_CALL_ID};
use crate::wire::{Decoder, WireFailure, usage};

/// Builds the streamed Responses request body (stateless: `store: false`, full history).
///
/// With `store: false` the server keeps nothing, so a reasoning item is replayed only with
/// its `encrypted_content`, and only followed by the output item it led to (the API refuses
/// a reasoning item without it); `include: ["reasoning.encrypted_content"]` is asked for
/// whenever the model may return reasoning to replay, whatever the effort.
pub(crate) fn request_body(request: &ModelRequest, capabilities: &Capabilities) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    if !request.instructions.is_empty() {
        body.insert("instructions".into(), json!(request.instructions));
    }
    let ids = CallIds::for_items(&request.input, RESPONSES_MAX_CALL_ID);
    let input = paired_reasoning(
        request
            .input
            .iter()
            .filter_map(|item| input_item(item, &ids))
            .collect(),
    );
    let replays_reasoning = input
        .iter()
        .any(|item| item.get("type").and_then(Value::as_str) == Some("reasoning"));
    body.insert("input".into(), Value::Array(input));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut spec = json!({
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                });
                if capabilities.supports_strict_schema {
                    spec["strict"] = json!(tool.strict);
                }
                spec
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
        body.insert("tool_choice".into(), tool_choice(&request.tool_choice));
        if capabilities.supports_parallel_tool_calls {
            body.insert(
                "parallel_tool_calls".into(),
                json!(request.parallel_tool_calls),
            );
        }
    }
    if capabilities.supports_reasoning_effort {
        let mut reasoning = Map::new();
        if let Some(effort) = &request.reasoning_effort {
            reasoning.insert("effort".into(), json!(effort));
        }
        // Only when asked for: unverified organisations get a 400 for any summary.
        if let Some(summary) = &request.reasoning_summary {
            reasoning.insert("summary".into(), json!(summary));
        }
        let reasons = !reasoning.is_empty()
            || replays_reasoning
            || context_window::is_reasoning_model(&request.model);
        if !reasoning.is_empty() {
            body.insert("reasoning".into(), Value::Object(reasoning));
        }
        if reasons {
            // Stateless replay of reasoning items needs their encrypted content.
            body.insert("include".into(), json!(["reasoning.encrypted_content"]));
        }
    }
    if let Some(schema) = request
        .output_schema
        .as_ref()
        .filter(|_| capabilities.supports_structured_output)
        .filter(|_| !(capabilities.schema_excludes_tools && request.offers_tools()))
    {
        if capabilities.responses_schema_as_response_format {
            // Chat's shape: the server hands it to the grammar sampler; `text` it ignores.
            body.insert(
                "response_format".into(),
                json!({
                    "type": "json_schema",
                    "json_schema": {"name": schema.name, "schema": schema.schema},
                }),
            );
        } else {
            let mut format = json!({
                "type": "json_schema",
                "name": schema.name,
                "schema": schema.schema,
            });
            if capabilities.supports_strict_schema {
                format["strict"] = json!(schema.strict);
            }
            body.insert("text".into(), json!({ "format": format }));
        }
    }
    if let Some(max) = request.max_output_tokens {
        body.insert("max_output_tokens".into(), json!(max));
    }
    body.insert("store".into(), json!(false));
    body.insert("stream".into(), json!(true));
    Value::Object(body)
}

fn tool_choice(choice: &ToolChoice) -> Value {
    match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function(name) => json!({"type": "function", "name": name}),
    }
}

fn input_item(item: &Item, ids: &CallIds) -> Option<Value> {
    Some(match item {
        // The document's "easy input message": an assistant turn replayed as plain text.
        Item::Message { role, text } => json!({
            "type": "message",
            "role": role.as_str(),
            "content": text,
        }),
        Item::FunctionCall {
            call_id,
            name,
            arguments,
        } => json!({
            "type": "function_call",
            "call_id": ids.wire(call_id),
            "name": name,
            "arguments": super::sent_arguments(arguments),
        }),
        Item::FunctionOutput { call_id, output } => json!({
            "type": "function_call_output",
            "call_id": ids.wire(call_id),
            "output": output,
        }),
        // Only items that came from a Responses server with their encrypted content can be
        // resolved without server-side storage; reasoning text recorded from a Chat server,
        // or an item whose content was not included, means nothing here.
        Item::Reasoning { raw }
            if raw.get("id").is_some()
                && raw
                    .get("encrypted_content")
                    .and_then(Value::as_str)
                    .is_some_and(|content| !content.is_empty()) =>
        {
            raw.clone()
        }
        Item::Reasoning { .. } => return None,
    })
}

/// Drops reasoning items that are not followed (after any further reasoning items) by a
/// function call or an assistant message: the item they led to was cut away (compaction,
/// an interrupted turn), and the API refuses a reasoning item without it.
fn paired_reasoning(items: Vec<Value>) -> Vec<Value> {
    let kind = |item: &Value| -> (Option<String>, Option<String>) {
        (
            item.get("type").and_then(Value::as_str).map(str::to_owned),
            item.get("role").and_then(Value::as_str).map(str::to_owned),
        )
    };
    let mut kept = Vec::with_capacity(items.len());
    // Walk backwards: a reasoning item is kept when the next non-reasoning item is one it
    // can lead to.
    let mut follower_ok = false;
    for item in items.into_iter().rev() {
        match kind(&item) {
            (Some(t), _) if t == "reasoning" => {
                if follower_ok {
                    kept.push(item);
                }
            }
            (Some(t), _) if t == "function_call" => {
                follower_ok = true;
                kept.push(item);
            }
            (_, Some(role)) if role == "assistant" => {
                follower_ok = true;
                kept.push(item);
            }
            _ => {
                follower_ok = false;
                kept.push(item);
            }
        }
    }
    kept.reverse();
    kept
}

/// The events a streaming server would have sent for a complete Response object.
pub(crate) fn whole_as_events(mut response: Value) -> Vec<Value> {
    let output = match response.get_mut("output").map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    let mut events = Vec::with_capacity(output.len() + 2);
    events.push(json!({"type": "response.created", "response": {"id": response.get("id")}}));
    for (index, item) in output.into_iter().enumerate() {
        events.push(
            json!({"type": "response.output_item.done", "output_index": index, "item": item}),
        );
    }
    let terminal = match response.get("status").and_then(Value::as_str) {
        Some("incomplete") => "response.incomplete",
        Some("failed") => "response.failed",
        _ => "response.completed",
    };
    events.push(json!({"type": terminal, "response": response}));
    events
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default, borrow)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<ResponseInfo>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize, Default)]
struct ResponseInfo {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
}

#[derive(Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

/// One output item under construction.
enum Slot {
    Message {
        text: String,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    Reasoning {
        raw: Value,
    },
    Done(Item),
    Skipped,
}

/// Assembles a Responses stream.
#[derive(Default)]
pub(crate) struct ResponsesDecoder {
    response_id: Option<String>,
    slots: BTreeMap<u64, Slot>,
    by_item_id: HashMap<String, u64>,
    next_index: u64,
    usage: Option<Usage>,
    incomplete: Option<String>,
    completed: bool,
}

impl ResponsesDecoder {
    /// Where a delta goes: its `output_index`, else the item its `item_id` names, else the
    /// last item opened when it is still open and of the delta's kind (`wants`), else a new
    /// slot. Servers such as llama.cpp send no `output_index` at all.
    fn slot_index(
        &mut self,
        output_index: Option<u64>,
        item_id: Option<&str>,
        wants: fn(&Slot) -> bool,
    ) -> u64 {
        if let Some(index) = output_index {
            return index;
        }
        if let Some(index) = item_id.and_then(|id| self.by_item_id.get(id)) {
            return *index;
        }
        match self.slots.last_key_value() {
            Some((index, slot)) if wants(slot) => *index,
            _ => self.next_index,
        }
    }

    /// Where a finished item goes: its `output_index`, else the item with its id, else the
    /// first still-open item of its kind (same `call_id` for calls), else a new slot. A
    /// server whose `done` item id differs from the `added` one then still closes the item
    /// it opened instead of adding a second copy.
    fn done_index(&self, output_index: Option<u64>, item: &Value) -> u64 {
        if let Some(index) = output_index {
            return index;
        }
        if let Some(index) = item
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| self.by_item_id.get(id))
        {
            return *index;
        }
        let kind = item.get("type").and_then(Value::as_str);
        let call_id = item.get("call_id").and_then(Value::as_str);
        let name = item.get("name").and_then(Value::as_str);
        let open = |same_call: bool| {
            self.slots.iter().find(|(_, slot)| match (slot, kind) {
                (Slot::Message { .. }, Some("message")) => true,
                (Slot::Reasoning { .. }, Some("reasoning")) => true,
                (Slot::FunctionCall { call_id: id, .. }, Some("function_call")) if same_call => {
                    call_id == Some(id.as_str())
                }
                (Slot::FunctionCall { name: open, .. }, Some("function_call")) => {
                    name.is_none_or(|name| name == open)
                }
                _ => false,
            })
        };
        open(true)
            .or_else(|| open(false))
            .map_or(self.next_index, |(index, _)| *index)
    }

    fn open(&mut self, index: u64, item: &Value, events: &dyn Fn(StreamEvent)) {
        self.next_index = self.next_index.max(index + 1);
        if let Some(id) = item.get("id").and_then(Value::as_str) {
            self.by_item_id.insert(id.to_owned(), index);
        }
        let slot = match item.get("type").and_then(Value::as_str) {
            Some("message") => Slot::Message {
                text: String::new(),
            },
            Some("function_call") => {
                let call_id = call_id_of(item, index);
                let name = str_field(item, "name");
                events(StreamEvent::ToolCallStarted {
                    call_id: call_id.clone(),
                    name: name.clone(),
                });
                Slot::FunctionCall {
                    call_id,
                    name,
                    arguments: str_field(item, "arguments"),
                }
            }
            Some("reasoning") => Slot::Reasoning { raw: item.clone() },
            _ => Slot::Skipped,
        };
        self.slots.insert(index, slot);
    }

    fn close(&mut self, index: u64, item: Value, events: &dyn Fn(StreamEvent)) {
        if !self.slots.contains_key(&index) {
            self.open(index, &item, events);
        }
        let done = match item.get("type").and_then(Value::as_str) {
            Some("message") => Some(Item::Message {
                role: match item.get("role").and_then(Value::as_str) {
                    Some("system") => Role::System,
                    Some("developer") => Role::Developer,
                    Some("user") => Role::User,
                    _ => Role::Assistant,
                },
                text: message_text(&item),
            }),
            Some("function_call") => Some(Item::FunctionCall {
                call_id: call_id_of(&item, index),
                name: str_field(&item, "name"),
                arguments: str_field(&item, "arguments"),
            }),
            Some("reasoning") => Some(Item::Reasoning { raw: item }),
            _ => None,
        };
        let slot = done.map_or(Slot::Skipped, Slot::Done);
        self.slots.insert(index, slot);
    }

    fn terminal(&mut self, response: Option<ResponseInfo>, events: &dyn Fn(StreamEvent)) {
        let response = response.unwrap_or_default();
        if self.response_id.is_none() {
            self.response_id = response.id;
        }
        if let Some(usage) = usage::read(response.usage.as_ref(), &usage::RESPONSES) {
            events(StreamEvent::Usage(usage));
            self.usage = Some(usage);
        }
        if let Some(reason) = response.incomplete_details.and_then(|d| d.reason) {
            self.incomplete = Some(reason);
        }
        self.completed = true;
    }
}

fn str_field(item: &Value, key: &str) -> String {
    item.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn call_id_of(item: &Value, index: u64) -> String {
    ["call_id", "id"]
        .iter()
        .find_map(|key| item.get(*key).and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map_or_else(|| format!("call_{index}"), str::to_owned)
}

fn message_text(item: &Value) -> String {
    let mut text = String::new();
    if let Some(parts) = item.get("content").and_then(Value::as_array) {
        for part in parts {
            let piece = part
                .get("text")
                .or_else(|| part.get("refusal"))
                .and_then(Value::as_str);
            text.push_str(piece.unwrap_or_default());
        }
    } else if let Some(content) = item.get("content").and_then(Value::as_str) {
        text.push_str(content);
    }
    text
}

fn provider_error(
    nested: Option<&Value>,
    code: Option<&Value>,
    message: Option<&str>,
) -> ProviderError {
    if let Some(error) = nested.and_then(|e| ProviderError::from_json(&json!({ "error": e }))) {
        return error;
    }
    let mut fields = Map::new();
    if let Some(code) = code {
        fields.insert("code".into(), code.clone());
    }
    if let Some(message) = message {
        fields.insert("message".into(), json!(message));
    }
    ProviderError::from_json(&json!({ "error": fields })).unwrap_or_default()
}

impl Decoder for ResponsesDecoder {
    fn feed(&mut self, data: &str, events: &dyn Fn(StreamEvent)) -> Result<bool, WireFailure> {
        if data.trim() == "[DONE]" {
            // A proxy's stray sentinel: treat it as the end of the stream.
            return Ok(true);
        }
        let event: Event<'_> = match serde_json::from_str(data) {
            Ok(event) => event,
            Err(err) => {
                tracing::debug!(%err, "skipping unparsable responses event");
                return Ok(false);
            }
        };
        match event.kind.as_ref() {
            "response.created" | "response.in_progress" | "response.queued"
                if self.response_id.is_none() =>
            {
                if let Some(id) = event.response.and_then(|r| r.id) {
                    events(StreamEvent::Created {
                        response_id: id.clone(),
                    });
                    self.response_id = Some(id);
                }
            }
            "response.output_item.added" => {
                if let Some(item) = event.item {
                    let index = event.output_index.unwrap_or(self.next_index);
                    self.open(index, &item, events);
                }
            }
            "response.output_item.done" => {
                if let Some(item) = event.item {
                    let index = self.done_index(event.output_index, &item);
                    self.close(index, item, events);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let index = self.slot_index(event.output_index, event.item_id.as_deref(), |s| {
                    matches!(s, Slot::Message { .. })
                });
                if let Some(delta) = event.delta {
                    self.next_index = self.next_index.max(index + 1);
                    let slot = self.slots.entry(index).or_insert(Slot::Message {
                        text: String::new(),
                    });
                    if let Slot::Message { text } = slot {
                        text.push_str(&delta);
                    }
                    events(StreamEvent::TextDelta(delta.into_owned()));
                }
            }
            "response.function_call_arguments.delta" => {
                let index = self.slot_index(event.output_index, event.item_id.as_deref(), |s| {
                    matches!(s, Slot::FunctionCall { .. })
                });
                if let (Some(Slot::FunctionCall { arguments, .. }), Some(delta)) =
                    (self.slots.get_mut(&index), event.delta)
                {
                    arguments.push_str(&delta);
                }
            }
            "response.function_call_arguments.done" => {
                let index = self.slot_index(event.output_index, event.item_id.as_deref(), |s| {
                    matches!(s, Slot::FunctionCall { .. })
                });
                if let (Some(Slot::FunctionCall { arguments, .. }), Some(done)) =
                    (self.slots.get_mut(&index), event.arguments)
                {
                    *arguments = done;
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(delta) = event.delta {
                    events(StreamEvent::ReasoningDelta(delta.into_owned()));
                }
            }
            "response.completed" | "response.incomplete" => {
                self.terminal(event.response, events);
                return Ok(true);
            }
            "response.failed" => {
                let error = event.response.and_then(|r| r.error);
                return Err(WireFailure::Provider(provider_error(
                    error.as_ref(),
                    None,
                    Some("response failed without an error message"),
                )));
            }
            "error" => {
                return Err(WireFailure::Provider(provider_error(
                    event.error.as_ref(),
                    event.code.as_ref(),
                    event.message.as_deref(),
                )));
            }
            _ => {}
        }
        Ok(false)
    }

    fn has_answer(&self) -> bool {
        self.completed
    }

    fn finish(self) -> Result<ModelResponse, WireFailure> {
        if !self.completed {
            return Err(WireFailure::Interrupted(
                "stream closed before response.completed".to_owned(),
            ));
        }
        let items = self
            .slots
            .into_values()
            .filter_map(|slot| match slot {
                Slot::Done(item) => Some(item),
                Slot::Message { text } => Some(Item::Message {
                    role: Role::Assistant,
                    text,
                }),
                Slot::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => Some(Item::FunctionCall {
                    call_id,
                    name,
                    arguments,
                }),
                Slot::Reasoning { raw } => Some(Item::Reasoning { raw }),
                Slot::Skipped => None,
            })
            .filter(|item| !matches!(item, Item::Message { text, .. } if text.is_empty()))
            .collect();
        Ok(ModelResponse {
            id: self.response_id,
            items,
            usage: self.usage,
            incomplete: self.incomplete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds payloads (JSON values, or `"[DONE]"` sent raw); returns items as short
    /// lines, or the failure.
    fn decode(payloads: &[Value]) -> Result<Vec<String>, WireFailure> {
        let mut decoder = ResponsesDecoder::default();
        for payload in payloads {
            let data = match payload {
                Value::String(raw) => raw.clone(),
                other => other.to_string(),
            };
            if decoder.feed(&data, &|_| {})? {
                break;
            }
        }
        let response = decoder.finish()?;
        Ok(response
            .items
            .iter()
            .map(|item| match item {
                Item::Message { role, text } => format!("{} {text}", role.as_str()),
                Item::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => format!("call {call_id} {name} {arguments}"),
                Item::Reasoning { raw } => format!("reasoning {}", raw["id"]),
                Item::FunctionOutput { .. } => "output".to_owned(),
            })
            .collect())
    }

    fn completed() -> Value {
        json!({"type": "response.completed", "response": {"id": "r"}})
    }

    #[test]
    fn event_sequence_table() {
        type Case = (
            &'static str,
            Vec<Value>,
            Result<Vec<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "deltas without any item events",
                vec![
                    json!({"type": "response.output_text.delta", "output_index": 0, "delta": "a"}),
                    json!({"type": "response.output_text.delta", "output_index": 0, "delta": "b"}),
                    completed(),
                ],
                Ok(vec!["assistant ab"]),
            ),
            (
                "done item without added",
                vec![
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "function_call", "call_id": "c1", "name": "ls", "arguments": "{}"}}),
                    completed(),
                ],
                Ok(vec!["call c1 ls {}"]),
            ),
            (
                "deltas located by item_id when output_index is missing",
                vec![
                    json!({"type": "response.output_item.added", "item": {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "ls"}}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{\"a\""}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": ":1}"}),
                    completed(),
                ],
                Ok(vec!["call c1 ls {\"a\":1}"]),
            ),
            (
                "arguments.done overrides the deltas",
                vec![
                    json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "call_id": "c1", "name": "ls"}}),
                    json!({"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{\"a"}),
                    json!({"type": "response.function_call_arguments.done", "output_index": 0, "arguments": "{\"a\":2}"}),
                    completed(),
                ],
                Ok(vec!["call c1 ls {\"a\":2}"]),
            ),
            (
                "call without call_id falls back to the item id",
                vec![
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {"id": "fc_9", "type": "function_call", "name": "ls", "arguments": ""}}),
                    completed(),
                ],
                Ok(vec!["call fc_9 ls "]),
            ),
            (
                "refusal is kept as assistant text",
                vec![
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]}}),
                    completed(),
                ],
                Ok(vec!["assistant I can't."]),
            ),
            (
                "items ordered by output_index, unknown item types dropped",
                vec![
                    json!({"type": "response.output_item.done", "output_index": 2, "item": {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "last"}]}}),
                    json!({"type": "response.output_item.done", "output_index": 1, "item": {"type": "web_search_call", "id": "ws"}}),
                    json!({"type": "response.output_item.done", "output_index": 0, "item": {"type": "reasoning", "id": "rs_0"}}),
                    completed(),
                ],
                Ok(vec!["reasoning \"rs_0\"", "assistant last"]),
            ),
            (
                "empty message dropped",
                vec![
                    json!({"type": "response.output_item.added", "output_index": 0, "item": {"type": "message"}}),
                    completed(),
                ],
                Ok(vec![]),
            ),
            (
                "events after the terminal one are not read",
                vec![
                    completed(),
                    json!({"type": "response.output_text.delta", "output_index": 0, "delta": "late"}),
                ],
                Ok(vec![]),
            ),
            (
                "llama.cpp: text keyed by item_id only, no indices, no arguments.done",
                vec![
                    json!({"type": "response.created", "response": {"id": "resp_l", "object": "response", "status": "in_progress"}}),
                    json!({"type": "response.in_progress", "response": {"id": "resp_l", "object": "response", "status": "in_progress"}}),
                    json!({"type": "response.output_item.added", "item": {"content": [], "id": "msg_1", "role": "assistant", "status": "in_progress", "type": "message"}}),
                    json!({"type": "response.content_part.added", "item_id": "msg_1", "part": {"type": "output_text", "text": ""}}),
                    json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "{\"a\""}),
                    json!({"type": "response.output_text.delta", "item_id": "msg_1", "delta": ":1}"}),
                    json!({"type": "response.output_item.added", "item": {"id": "fc_x", "arguments": "", "call_id": "call_x", "name": "ls", "type": "function_call", "status": "in_progress"}}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_x", "delta": "{\"path\""}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_x", "delta": ":\".\"}"}),
                    json!({"type": "response.output_text.done", "item_id": "msg_1", "text": "{\"a\":1}"}),
                    json!({"type": "response.content_part.done", "item_id": "msg_1", "part": {"type": "output_text", "text": "{\"a\":1}"}}),
                    json!({"type": "response.output_item.done", "item": {"type": "message", "status": "completed", "id": "msg_1", "content": [{"type": "output_text", "text": "{\"a\":1}"}], "role": "assistant"}}),
                    json!({"type": "response.output_item.done", "item": {"id": "fc_x", "type": "function_call", "status": "completed", "arguments": "{\"path\":\".\"}", "call_id": "call_x", "name": "ls"}}),
                    json!({"type": "response.completed", "response": {"id": "resp_l", "status": "completed", "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}}}),
                ],
                Ok(vec![
                    "assistant {\"a\":1}",
                    "call call_x ls {\"path\":\".\"}",
                ]),
            ),
            (
                "no indices, deltas only: arguments assembled from the deltas",
                vec![
                    json!({"type": "response.output_item.added", "item": {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "ls", "arguments": ""}}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{}"}),
                    completed(),
                ],
                Ok(vec!["call c1 ls {}"]),
            ),
            (
                "no indices nor item ids: deltas join the last open item",
                vec![
                    json!({"type": "response.output_item.added", "item": {"type": "message", "role": "assistant"}}),
                    json!({"type": "response.output_text.delta", "delta": "a"}),
                    json!({"type": "response.output_text.delta", "delta": "b"}),
                    json!({"type": "response.output_item.added", "item": {"type": "function_call", "call_id": "c1", "name": "ls"}}),
                    json!({"type": "response.function_call_arguments.delta", "delta": "{}"}),
                    completed(),
                ],
                Ok(vec!["assistant ab", "call c1 ls {}"]),
            ),
            (
                "a done item whose id differs from the added one closes it, not a second copy",
                vec![
                    json!({"type": "response.output_item.added", "item": {"id": "fc_a", "type": "function_call", "call_id": "call_a", "name": "ls", "arguments": ""}}),
                    json!({"type": "response.function_call_arguments.delta", "item_id": "fc_a", "delta": "{"}),
                    json!({"type": "response.output_item.done", "item": {"id": "fc_b", "type": "function_call", "call_id": "call_b", "name": "ls", "arguments": "{}"}}),
                    json!({"type": "response.output_item.added", "item": {"id": "msg_a", "type": "message", "role": "assistant"}}),
                    json!({"type": "response.output_text.delta", "item_id": "msg_a", "delta": "x"}),
                    json!({"type": "response.output_item.done", "item": {"id": "msg_b", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "xy"}]}}),
                    completed(),
                ],
                Ok(vec!["call call_b ls {}", "assistant xy"]),
            ),
            (
                "deltas before any item event, then an added item without index: two slots",
                vec![
                    json!({"type": "response.output_text.delta", "delta": "a"}),
                    json!({"type": "response.output_item.added", "item": {"type": "function_call", "call_id": "c1", "name": "ls", "arguments": "{}"}}),
                    completed(),
                ],
                Ok(vec!["assistant a", "call c1 ls {}"]),
            ),
            (
                "stray [DONE] without a terminal event",
                vec![json!("[DONE]")],
                Err("interrupted"),
            ),
            (
                "failed without error details",
                vec![json!({"type": "response.failed", "response": {"id": "r"}})],
                Err("provider"),
            ),
        ];
        for (name, payloads, expected) in cases {
            let got = decode(&payloads).map_err(|failure| match failure {
                WireFailure::Interrupted(_) | WireFailure::TooLarge(_) => "interrupted",
                WireFailure::Provider(_) => "provider",
            });
            let expected =
                expected.map(|lines| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
            assert_eq!(got, expected, "{name}");
        }
    }
}
