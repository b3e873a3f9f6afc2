//! Test support (feature `test-support`): SSE bodies in the real wire shapes of both APIs,
//! and a scripted mockito server that answers model requests from per-route queues.
//!
//! Other crates' tests build their model traffic here, so it follows the captured streams
//! of wire-formats §3 and §5 closely. Nothing here may touch the network beyond
//! 127.0.0.1, and nothing here is meant for production code.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::Stream;
use serde_json::{Value, json};

use crate::client::ModelApi;
use crate::error::ModelError;
use crate::provider::{Capabilities, StreamLimits, WireApi};
use crate::request::ModelRequest;
use crate::response::{ModelResponse, StreamEvent};
use crate::wire::{AnyDecoder, WireFailure};

/// Splits text into small deltas the way servers do (word by word, spaces kept).
fn deltas(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return vec![""];
    }
    text.split_inclusive(' ').collect()
}

/// Splits an argument string into short fragments, on character boundaries.
fn fragments(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (count, (index, _)) in text.char_indices().enumerate() {
        if count > 0 && count % 8 == 0 {
            pieces.push(&text[start..index]);
            start = index;
        }
    }
    pieces.push(&text[start..]);
    pieces
}

#[derive(Debug, Clone)]
enum Output {
    Reasoning(String),
    Text(String),
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// Builds a complete Responses-API SSE body in the real event shapes (`response.created`,
/// `output_item.added/.done`, `output_text.delta`, `function_call_arguments.delta/.done`,
/// `response.completed` with usage).
#[derive(Debug, Clone)]
pub struct ResponsesSse {
    response_id: String,
    outputs: Vec<Output>,
    usage: Option<(u64, u64)>,
}

struct SseWriter {
    body: String,
    sequence: u64,
}

impl SseWriter {
    fn new() -> Self {
        Self {
            body: String::new(),
            sequence: 0,
        }
    }

    /// Writes a Responses event: `event:` line plus JSON with `type` and `sequence_number`.
    fn event(&mut self, kind: &str, mut payload: Value) {
        payload["type"] = json!(kind);
        payload["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        self.body.push_str("event: ");
        self.body.push_str(kind);
        self.body.push_str("\ndata: ");
        self.body.push_str(&payload.to_string());
        self.body.push_str("\n\n");
    }

    /// Writes a bare `data:` event (Chat).
    fn data(&mut self, payload: &str) {
        self.body.push_str("data: ");
        self.body.push_str(payload);
        self.body.push_str("\n\n");
    }
}

/// The builder methods both SSE builders share: they only record what the body will hold;
/// each builder's `build*` renders it in its own wire format.
macro_rules! output_builder {
    ($builder:ident) => {
        impl $builder {
            /// A response with this id and no output yet.
            pub fn new(response_id: &str) -> Self {
                Self {
                    response_id: response_id.to_owned(),
                    outputs: Vec::new(),
                    usage: None,
                }
            }

            /// Adds reasoning with this summary text.
            pub fn reasoning(mut self, summary: &str) -> Self {
                self.outputs.push(Output::Reasoning(summary.to_owned()));
                self
            }

            /// Adds an assistant message.
            pub fn text(mut self, text: &str) -> Self {
                self.outputs.push(Output::Text(text.to_owned()));
                self
            }

            /// Adds a function call; call it several times for parallel calls.
            pub fn function_call(mut self, call_id: &str, name: &str, arguments: &str) -> Self {
                self.outputs.push(Output::FunctionCall {
                    call_id: call_id.to_owned(),
                    name: name.to_owned(),
                    arguments: arguments.to_owned(),
                });
                self
            }

            /// Sets the usage the stream reports (without it, Responses reports `usage: null`
            /// and Chat sends no usage chunk, like a server that ignores `include_usage`).
            pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
                self.usage = Some((input_tokens, output_tokens));
                self
            }
        }
    };
}

output_builder!(ResponsesSse);
output_builder!(ChatSse);

impl ResponsesSse {
    fn usage_json(&self) -> Value {
        match self.usage {
            Some((input, output)) => json!({
                "input_tokens": input,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input + output,
            }),
            None => Value::Null,
        }
    }

    fn response_json(&self, status: &str, output: Vec<Value>) -> Value {
        json!({
            "id": self.response_id,
            "object": "response",
            "created_at": 1_750_000_000,
            "status": status,
            "model": "scripted",
            "error": null,
            "incomplete_details": null,
            "output": output,
            "usage": null,
        })
    }

    /// Everything up to (not including) the terminal event; returns the finished items.
    fn write_items(&self, writer: &mut SseWriter) -> Vec<Value> {
        writer.event(
            "response.created",
            json!({"response": self.response_json("in_progress", Vec::new())}),
        );
        writer.event(
            "response.in_progress",
            json!({"response": self.response_json("in_progress", Vec::new())}),
        );
        let mut done_items = Vec::new();
        for (index, output) in self.outputs.iter().enumerate() {
            let done = match output {
                Output::Reasoning(summary) => {
                    let id = format!("rs_{index}");
                    writer.event(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "reasoning", "summary": []}}),
                    );
                    let part = json!({"type": "summary_text", "text": ""});
                    writer.event(
                        "response.reasoning_summary_part.added",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                    );
                    for delta in deltas(summary) {
                        writer.event(
                            "response.reasoning_summary_text.delta",
                            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
                        );
                    }
                    writer.event(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": summary}),
                    );
                    let part = json!({"type": "summary_text", "text": summary});
                    writer.event(
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "part": part}),
                    );
                    json!({
                        "id": id, "type": "reasoning",
                        "summary": [{"type": "summary_text", "text": summary}],
                        "encrypted_content": format!("enc_{id}"),
                    })
                }
                Output::Text(text) => {
                    let id = format!("msg_{index}");
                    writer.event(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "message", "status": "in_progress", "content": [], "role": "assistant"}}),
                    );
                    writer.event(
                        "response.content_part.added",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": {"type": "output_text", "annotations": [], "text": ""}}),
                    );
                    for delta in deltas(text) {
                        writer.event(
                            "response.output_text.delta",
                            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
                        );
                    }
                    writer.event(
                        "response.output_text.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                    );
                    let part = json!({"type": "output_text", "annotations": [], "text": text});
                    writer.event(
                        "response.content_part.done",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                    );
                    json!({"id": id, "type": "message", "status": "completed", "content": [part], "role": "assistant"})
                }
                Output::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => {
                    let id = format!("fc_{index}");
                    writer.event(
                        "response.output_item.added",
                        json!({"output_index": index, "item": {"id": id, "type": "function_call", "status": "in_progress", "arguments": "", "call_id": call_id, "name": name}}),
                    );
                    for delta in fragments(arguments) {
                        writer.event(
                            "response.function_call_arguments.delta",
                            json!({"item_id": id, "output_index": index, "delta": delta}),
                        );
                    }
                    writer.event(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": arguments}),
                    );
                    json!({"id": id, "type": "function_call", "status": "completed", "arguments": arguments, "call_id": call_id, "name": name})
                }
            };
            writer.event(
                "response.output_item.done",
                json!({"output_index": index, "item": done}),
            );
            done_items.push(done);
        }
        done_items
    }

    /// The whole stream, ending with `response.completed`.
    pub fn build(self) -> String {
        let mut writer = SseWriter::new();
        let items = self.write_items(&mut writer);
        let mut response = self.response_json("completed", items);
        response["usage"] = self.usage_json();
        writer.event("response.completed", json!({ "response": response }));
        writer.body
    }

    /// The stream without its terminal event, as a cut connection leaves it.
    pub fn build_without_terminal(self) -> String {
        let mut writer = SseWriter::new();
        self.write_items(&mut writer);
        writer.body
    }

    /// The stream ending with `response.failed` carrying `{code, message}`.
    pub fn build_failed(self, code: &str, message: &str) -> String {
        let mut writer = SseWriter::new();
        let items = self.write_items(&mut writer);
        let mut response = self.response_json("failed", items);
        response["error"] = json!({"code": code, "message": message});
        writer.event("response.failed", json!({ "response": response }));
        writer.body
    }

    /// The stream ending with `response.incomplete` for `reason` (e.g. `max_output_tokens`).
    pub fn build_incomplete(self, reason: &str) -> String {
        let mut writer = SseWriter::new();
        let items = self.write_items(&mut writer);
        let mut response = self.response_json("incomplete", items);
        response["incomplete_details"] = json!({ "reason": reason });
        response["usage"] = self.usage_json();
        writer.event("response.incomplete", json!({ "response": response }));
        writer.body
    }
}

/// Builds a Chat Completions SSE body (`data:` chunks only, ending in `data: [DONE]`).
///
/// Reasoning streams as `delta.reasoning_content` (llama.cpp, older vLLM). Each function
/// call gets its own `index`, first fragment with `id` and `name`, then argument pieces.
#[derive(Debug, Clone)]
pub struct ChatSse {
    response_id: String,
    outputs: Vec<Output>,
    usage: Option<(u64, u64)>,
}

impl ChatSse {
    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> String {
        json!({
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "created": 1_750_000_000,
            "model": "scripted",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        })
        .to_string()
    }

    fn write_items(&self, writer: &mut SseWriter) {
        writer.data(&self.chunk(json!({"role": "assistant", "content": ""}), None));
        let mut call_index = 0;
        for output in &self.outputs {
            match output {
                Output::Reasoning(text) => {
                    for delta in deltas(text) {
                        writer.data(&self.chunk(json!({ "reasoning_content": delta }), None));
                    }
                }
                Output::Text(text) => {
                    for delta in deltas(text) {
                        writer.data(&self.chunk(json!({ "content": delta }), None));
                    }
                }
                Output::FunctionCall {
                    call_id,
                    name,
                    arguments,
                } => {
                    let first = json!({"tool_calls": [{"index": call_index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]});
                    writer.data(&self.chunk(first, None));
                    for piece in fragments(arguments) {
                        let next = json!({"tool_calls": [{"index": call_index, "function": {"arguments": piece}}]});
                        writer.data(&self.chunk(next, None));
                    }
                    call_index += 1;
                }
            }
        }
    }

    fn finish_reason(&self) -> &'static str {
        if self
            .outputs
            .iter()
            .any(|o| matches!(o, Output::FunctionCall { .. }))
        {
            "tool_calls"
        } else {
            "stop"
        }
    }

    /// The whole stream: items, a `finish_reason` chunk, the usage chunk (`choices: []`,
    /// when usage was set) and `data: [DONE]`.
    pub fn build(self) -> String {
        let mut writer = SseWriter::new();
        self.write_items(&mut writer);
        writer.data(&self.chunk(json!({}), Some(self.finish_reason())));
        if let Some((input, output)) = self.usage {
            let usage = json!({
                "id": self.response_id,
                "object": "chat.completion.chunk",
                "created": 1_750_000_000,
                "model": "scripted",
                "choices": [],
                "usage": {
                    "prompt_tokens": input,
                    "completion_tokens": output,
                    "total_tokens": input + output,
                    "prompt_tokens_details": {"cached_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 0},
                },
            });
            writer.data(&usage.to_string());
        }
        writer.data("[DONE]");
        writer.body
    }

    /// The stream cut before `finish_reason`.
    pub fn build_without_terminal(self) -> String {
        let mut writer = SseWriter::new();
        self.write_items(&mut writer);
        writer.body
    }

    /// The stream ending in an in-stream error chunk (`{"error":{code,message}}` with
    /// `finish_reason: "error"`, as OpenRouter sends after generation started).
    pub fn build_failed(self, code: &str, message: &str) -> String {
        let mut writer = SseWriter::new();
        self.write_items(&mut writer);
        let error = json!({
            "id": self.response_id,
            "object": "chat.completion.chunk",
            "error": {"code": code, "message": message},
            "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
        });
        writer.data(&error.to_string());
        writer.body
    }
}

/// A reply the scripted server gives to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedReply {
    /// HTTP status.
    pub status: u16,
    /// Response headers; only names in [`SCRIPTED_HEADER_NAMES`] are sent.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

/// How the servers infty talks to refuse a prompt longer than the model's context window:
/// `(server, HTTP status, JSON body)`, each in the shape and words that server answers with
/// (the numbers vary). Ollama answers so when it is asked not to truncate, vLLM in both the
/// error shape of its older releases and that of its newer ones.
pub const CONTEXT_OVERFLOW_BODIES: [(&str, u16, &str); 6] = [
    (
        "openai chat completions",
        400,
        r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 131584 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
    ),
    (
        "openai responses",
        400,
        r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#,
    ),
    (
        "vllm",
        400,
        r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#,
    ),
    (
        "vllm (v1 engine)",
        400,
        r#"{"error":{"message":"The decoder prompt (length 5210) is longer than the maximum model length of 4096. Make sure that `max_model_len` is no smaller than the number of text tokens.","type":"BadRequestError","param":null,"code":400}}"#,
    ),
    (
        "ollama",
        400,
        r#"{"error":{"message":"the input length exceeds the context length","type":"invalid_request_error","param":null,"code":null}}"#,
    ),
    (
        "llama.cpp",
        400,
        r#"{"error":{"code":400,"message":"request (4352 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4352,"n_ctx":4096}}"#,
    ),
];

/// Header names a [`ScriptedServer`] can send (mockito needs them declared up front).
pub const SCRIPTED_HEADER_NAMES: [&str; 5] = [
    "content-type",
    "retry-after",
    "retry-after-ms",
    "x-request-id",
    "x-generation-id",
];

impl ScriptedReply {
    /// A 200 `text/event-stream` reply with this SSE body.
    pub fn sse(body: String) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".to_owned(), "text/event-stream".to_owned())],
            body,
        }
    }

    /// An error reply with a JSON body.
    pub fn error(status: u16, json_body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: json_body.to_owned(),
        }
    }

    /// A 200 reply with a whole JSON body, as from a server that ignores `stream: true`.
    pub fn json(json_body: &str) -> Self {
        Self::error(200, json_body)
    }

    /// Adds (or replaces) a header.
    pub fn with_header(mut self, key: &str, value: &str) -> Self {
        let key = key.to_ascii_lowercase();
        self.headers.retain(|(k, _)| *k != key);
        self.headers.push((key, value.to_owned()));
        self
    }

    fn header(&self, name: &str) -> String {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

type Router = dyn Fn(&Value) -> String + Send + Sync;

#[derive(Default)]
struct Script {
    queues: BTreeMap<String, VecDeque<ScriptedReply>>,
    requests: Vec<(String, Value)>,
    /// Replies chosen by the status callback, waiting for the header and body callbacks
    /// of the same request (keyed by the request body).
    in_flight: HashMap<Vec<u8>, VecDeque<ScriptedReply>>,
}

fn lock(script: &Mutex<Script>) -> MutexGuard<'_, Script> {
    script.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A mockito server answering `POST {base}/responses` and `{base}/chat/completions` from
/// per-route FIFO queues. The router maps each request body to a route name, so concurrent
/// callers get deterministic scripts. Every request body is recorded in arrival order; an
/// empty queue answers 400 with `{"error":{"message":"script exhausted for route <r>"}}`.
pub struct ScriptedServer {
    server: mockito::ServerGuard,
    script: Arc<Mutex<Script>>,
    router: Arc<Router>,
    _mock: mockito::Mock,
    stalls: Vec<mockito::Mock>,
}

impl std::fmt::Debug for ScriptedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedServer")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl ScriptedServer {
    /// Starts a server (outside any async runtime).
    pub fn start(router: impl Fn(&Value) -> String + Send + Sync + 'static) -> Self {
        let server = mockito::Server::new();
        Self::install(server, Arc::new(router))
    }

    /// Starts a server from inside a tokio runtime.
    pub async fn start_async(router: impl Fn(&Value) -> String + Send + Sync + 'static) -> Self {
        let server = mockito::Server::new_async().await;
        Self::install(server, Arc::new(router))
    }

    fn install(mut server: mockito::ServerGuard, router: Arc<Router>) -> Self {
        let script = Arc::new(Mutex::new(Script::default()));
        // mockito calls the status callback, then the header callbacks in order, then the
        // body callback, all under its state lock: the status callback picks the reply.
        let status_script = Arc::clone(&script);
        let main_router = Arc::clone(&router);
        // `expect_at_least(0)`: this mock never claims priority, so a stall mock that still
        // expects its hit always wins the request it matches.
        let mut mock = server
            .mock("POST", mockito::Matcher::Any)
            .expect_at_least(0)
            .with_status_code_from_request(move |request| {
                let router = &main_router;
                let bytes = request.body().cloned().unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let route = router(&body);
                let mut script = lock(&status_script);
                script.requests.push((route.clone(), body));
                let reply = script
                    .queues
                    .get_mut(&route)
                    .and_then(VecDeque::pop_front)
                    .unwrap_or_else(|| {
                        ScriptedReply::error(
                            400,
                            &json!({"error": {"message": format!("script exhausted for route {route}")}})
                                .to_string(),
                        )
                    });
                let status = usize::from(reply.status);
                script.in_flight.entry(bytes).or_default().push_back(reply);
                status
            });
        for name in SCRIPTED_HEADER_NAMES {
            let header_script = Arc::clone(&script);
            mock = mock.with_header_from_request(name, move |request| {
                let bytes = request.body().cloned().unwrap_or_default();
                lock(&header_script)
                    .in_flight
                    .get(&bytes)
                    .and_then(VecDeque::front)
                    .map(|reply| reply.header(name))
                    .unwrap_or_default()
            });
        }
        let body_script = Arc::clone(&script);
        let mock = mock
            .with_body_from_request(move |request| {
                let bytes = request.body().cloned().unwrap_or_default();
                let mut script = lock(&body_script);
                let reply = script
                    .in_flight
                    .get_mut(&bytes)
                    .and_then(VecDeque::pop_front);
                if script.in_flight.get(&bytes).is_some_and(VecDeque::is_empty) {
                    script.in_flight.remove(&bytes);
                }
                reply.map(|r| r.body.into_bytes()).unwrap_or_default()
            })
            .create();
        Self {
            server,
            script,
            router,
            _mock: mock,
            stalls: Vec::new(),
        }
    }

    /// Makes the first request for `route` once its queue is empty hang: the server sends `partial_body` (for example
    /// the first events of an SSE stream) with status 200, then stays silent for `silence`
    /// without ending the response. For tests that kill a client mid-stream. The stalled
    /// request is recorded like any other; the route's queue is left untouched.
    pub fn stall_next(&mut self, route: &str, partial_body: String, silence: Duration) {
        let armed = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let router = Arc::clone(&self.router);
        let script = Arc::clone(&self.script);
        let wanted = route.to_owned();
        let mock = self
            .server
            .mock("POST", mockito::Matcher::Any)
            .match_request(move |request| {
                let bytes = request.body().cloned().unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let route = router(&body);
                let mut script = lock(&script);
                let queued = script
                    .queues
                    .get(&route)
                    .is_some_and(|queue| !queue.is_empty());
                if route != wanted
                    || queued
                    || !armed.swap(false, std::sync::atomic::Ordering::SeqCst)
                {
                    return false;
                }
                script.requests.push((route, body));
                true
            })
            .expect(1)
            .with_status(200)
            .with_header("content-type", "text/event-stream")
            .with_chunked_body(move |writer| {
                writer.write_all(partial_body.as_bytes())?;
                writer.flush()?;
                std::thread::sleep(silence);
                Ok(())
            })
            .create();
        self.stalls.push(mock);
    }

    /// The base URL to configure a provider with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.server.url())
    }

    /// Queues a reply for `route`.
    pub fn push(&self, route: &str, reply: ScriptedReply) {
        lock(&self.script)
            .queues
            .entry(route.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Every request so far, as (route, parsed body), in arrival order.
    pub fn requests(&self) -> Vec<(String, Value)> {
        lock(&self.script).requests.clone()
    }

    /// Replies still queued, per route (routes with none left are included as 0).
    pub fn remaining(&self) -> BTreeMap<String, usize> {
        lock(&self.script)
            .queues
            .iter()
            .map(|(route, queue)| (route.clone(), queue.len()))
            .collect()
    }
}

/// An in-process [`ModelApi`] answering from the same per-route scripts as
/// [`ScriptedServer`], without HTTP: for tests and benchmarks that want the real decoders
/// but no sockets. The router sees the wire body the client would have sent (built with
/// every capability on). Non-2xx replies become the error the client would report (without
/// retrying); an empty queue answers like the server does.
pub struct ScriptedModel {
    wire_api: WireApi,
    router: Arc<Router>,
    script: Arc<Mutex<Script>>,
}

impl std::fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("wire_api", &self.wire_api)
            .finish_non_exhaustive()
    }
}

impl ScriptedModel {
    /// A model speaking `wire_api` (which SSE format the replies are in).
    pub fn new(
        wire_api: WireApi,
        router: impl Fn(&Value) -> String + Send + Sync + 'static,
    ) -> Self {
        Self {
            wire_api,
            router: Arc::new(router),
            script: Arc::new(Mutex::new(Script::default())),
        }
    }

    /// Queues a reply for `route`.
    pub fn push(&self, route: &str, reply: ScriptedReply) {
        lock(&self.script)
            .queues
            .entry(route.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Every request so far, as (route, wire body), in arrival order.
    pub fn requests(&self) -> Vec<(String, Value)> {
        lock(&self.script).requests.clone()
    }

    /// Replies still queued, per route.
    pub fn remaining(&self) -> BTreeMap<String, usize> {
        lock(&self.script)
            .queues
            .iter()
            .map(|(route, queue)| (route.clone(), queue.len()))
            .collect()
    }

    async fn answer(
        &self,
        request: &ModelRequest,
        events: &(dyn Fn(StreamEvent) + Send + Sync),
    ) -> Result<ModelResponse, ModelError> {
        let body = crate::wire::request_body(self.wire_api, request, &Capabilities::OPENAI);
        let route = (self.router)(&body);
        let reply = {
            let mut script = lock(&self.script);
            script.requests.push((route.clone(), body));
            script.queues.get_mut(&route).and_then(VecDeque::pop_front)
        };
        let url = "scripted model";
        let Some(reply) = reply else {
            return Err(ModelError::InvalidRequest {
                url: url.to_owned(),
                status: Some(400),
                message: format!("script exhausted for route {route}"),
                request_id: None,
            });
        };
        if (200..300).contains(&reply.status) {
            return decode_chunks(
                self.wire_api,
                futures::stream::iter([reply.body.into_bytes()]),
                Duration::from_secs(60),
                events,
            )
            .await;
        }
        let request_id = Some(reply.header("x-request-id")).filter(|id| !id.is_empty());
        Err(crate::retry::classify(
            Some(reply.status),
            crate::retry::ProviderError::from_body(&reply.body),
            &crate::retry::FailureContext {
                url,
                request_id: request_id.as_deref(),
                header_delay: None,
            },
        ))
    }
}

impl ModelApi for ScriptedModel {
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: &'a (dyn Fn(StreamEvent) + Send + Sync),
    ) -> futures::future::BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(self.answer(request, events))
    }
}

/// Decodes a recorded SSE body (given as the chunks a socket would deliver) exactly as the
/// client decodes a live stream, without HTTP or retries. For tests and benchmarks.
pub async fn decode_chunks<S, B>(
    wire_api: WireApi,
    chunks: S,
    idle_timeout: Duration,
    events: &(dyn Fn(StreamEvent) + Send + Sync),
) -> Result<ModelResponse, ModelError>
where
    S: Stream<Item = B> + Unpin,
    B: AsRef<[u8]>,
{
    decode_chunks_within(
        wire_api,
        chunks,
        idle_timeout,
        StreamLimits::default(),
        events,
    )
    .await
}

/// [`decode_chunks`] with explicit caps on one event and one response.
pub async fn decode_chunks_within<S, B>(
    wire_api: WireApi,
    chunks: S,
    idle_timeout: Duration,
    limits: StreamLimits,
    events: &(dyn Fn(StreamEvent) + Send + Sync),
) -> Result<ModelResponse, ModelError>
where
    S: Stream<Item = B> + Unpin,
    B: AsRef<[u8]>,
{
    use futures::StreamExt;
    let stream = chunks.map(Ok::<B, std::convert::Infallible>);
    let url = "recorded stream";
    crate::sse::decode_stream(
        stream,
        AnyDecoder::new(wire_api),
        idle_timeout,
        limits,
        events,
    )
    .await
    .map_err(|failure| match failure {
        WireFailure::Interrupted(message) => ModelError::StreamInterrupted {
            url: url.to_owned(),
            message,
            request_id: None,
        },
        WireFailure::TooLarge(message) => ModelError::ResponseTooLarge {
            url: url.to_owned(),
            message,
            request_id: None,
        },
        WireFailure::Provider(error) => crate::retry::classify(
            None,
            error,
            &crate::retry::FailureContext {
                url,
                request_id: None,
                header_delay: None,
            },
        ),
    })
}
