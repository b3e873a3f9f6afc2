//! infty's streaming model client: OpenAI **Responses** and **Chat Completions** over SSE,
//! behind one wire-neutral interface, with the retries a multi-hour run needs.
//!
//! - [`ModelRequest`] in, [`ModelResponse`] out, [`StreamEvent`]s while it streams;
//!   history is a list of [`Item`]s that both APIs understand.
//! - [`ProviderConfig`] says where the model lives (presets for OpenAI, Ollama, vLLM,
//!   llama.cpp, LM Studio, OpenRouter) and what it accepts ([`Capabilities`]);
//!   [`detect_preset`] recognises a server that identifies itself (llama.cpp).
//! - [`ModelClient`] implements [`ModelApi`]: it retries connection errors, 408/409/429/5xx,
//!   cut and stalled streams, honours `retry-after` hints, and reports failures as
//!   [`ModelError`] variants that say what to do next.
//! - [`telemetry`]: the `tracing` span of each model call, in the OpenTelemetry GenAI
//!   conventions; prompt and completion text only on a separate, opt-in target.
//! - With the `test-support` feature, `test_support` builds SSE bodies in the real wire
//!   shapes and serves them from a scripted mockito server.
//!
//! This crate depends on no other infty crate, never reads files, and never lets an API key
//! reach `Debug`, logs, errors or files.

mod client;
pub mod context_window;
mod detect;
mod error;
mod item;
mod provider;
mod request;
mod response;
mod retry;
mod sse;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod test_support;
mod wire;

pub use client::{HttpClients, ModelApi, ModelClient};
pub use context_window::{
    ContextWindow, WindowSource, discover_context_window, known_context_window,
};
pub use detect::detect_preset;
pub use error::ModelError;
pub use item::{Item, Role};
pub use provider::{
    ApiKey, Capabilities, PRESET_NAMES, ProviderConfig, RetryPolicy, StreamLimits, WireApi,
};
pub use request::{ModelRequest, OutputSchema, ToolChoice, ToolSpec};
pub use response::{FunctionCallRef, ModelResponse, StreamEvent, Usage};
