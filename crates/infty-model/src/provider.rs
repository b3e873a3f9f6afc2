//! Where a model lives and how to talk to it: base URL, wire API, credentials, headers,
//! timeouts, retry budget and capability flags, plus documented presets for the servers
//! infty supports.
//!
//! Capabilities are declared per provider rather than sniffed from responses, so a request
//! body is a pure function of (request, provider). This module must never log or format
//! the API key: [`ApiKey`] prints as `[redacted]` and has no serde implementation.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Which wire API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireApi {
    /// OpenAI Responses: `POST {base}/responses`.
    #[default]
    Responses,
    /// Chat Completions: `POST {base}/chat/completions`.
    Chat,
}

impl WireApi {
    /// The name used in configuration and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::Chat => "chat",
        }
    }

    /// The endpoint path below the base URL.
    pub fn path(self) -> &'static str {
        match self {
            Self::Responses => "responses",
            Self::Chat => "chat/completions",
        }
    }
}

impl fmt::Display for WireApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WireApi {
    type Err = ModelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "responses" => Ok(Self::Responses),
            "chat" | "chat-completions" | "chat_completions" => Ok(Self::Chat),
            other => Err(ModelError::Config(format!(
                "unknown wire api `{other}` (expected `responses` or `chat`)"
            ))),
        }
    }
}

/// An API key. Prints as `[redacted]`; read it only with [`ApiKey::expose`], at the one
/// place that builds the `Authorization` header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        Self(key)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How hard to try before giving up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries when the request itself fails (connection error, 408, 409, 429, 5xx).
    pub max_request_retries: u32,
    /// Whole-request retries after a stream broke off, stalled or failed transiently.
    pub max_stream_retries: u32,
    /// First backoff step; doubles each retry, with jitter of ±10 %.
    pub base_delay: Duration,
    /// Cap on a computed backoff step.
    pub max_delay: Duration,
    /// Longest server-requested wait (`retry-after*`) honoured; a longer one fails fast.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_request_retries: 4,
            max_stream_retries: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Caps on what one response may make infty hold, so a hostile or broken server cannot
/// exhaust memory or keep a turn busy forever with a stream that never ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Largest single SSE event (its `data`, all lines together), in bytes.
    pub max_event_bytes: usize,
    /// Largest response, in bytes received (streamed or whole) before the terminal event.
    pub max_response_bytes: u64,
}

impl StreamLimits {
    /// Default cap on one event: 64 MiB (a whole long answer echoed in one event fits).
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 64 << 20;
    /// Default cap on one response: 256 MiB.
    pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 << 20;
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// What a provider accepts, so request bodies only carry what it understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// A key is mandatory (local servers usually ignore it).
    pub needs_api_key: bool,
    /// `parallel_tool_calls` is understood.
    pub supports_parallel_tool_calls: bool,
    /// `strict: true` on tools and schemas is understood.
    pub supports_strict_schema: bool,
    /// Reasoning effort is understood (`reasoning.effort` / `reasoning_effort`).
    pub supports_reasoning_effort: bool,
    /// JSON-schema structured output (`text.format` / `response_format`) is understood.
    pub supports_structured_output: bool,
    /// Chat: send `stream_options.include_usage` to get a usage chunk.
    pub supports_stream_usage: bool,
    /// Chat: cap tokens with `max_completion_tokens` (OpenAI) instead of `max_tokens`.
    pub uses_max_completion_tokens: bool,
    /// Responses: send the output schema as Chat's `response_format` instead of
    /// `text.format`. llama.cpp's `/v1/responses` ignores `text.format` but forwards
    /// `response_format` to the same grammar-constrained sampling its Chat endpoint uses.
    pub responses_schema_as_response_format: bool,
    /// A JSON schema replaces the tools: llama.cpp compiles the schema into the sampling
    /// grammar and then ignores `tools`, so no call could ever be made. The schema is sent
    /// only on requests without tools; callers ask for the constrained reply in a request of
    /// its own ([`crate::ModelApi::schema_excludes_tools`]).
    pub schema_excludes_tools: bool,
}

impl Capabilities {
    /// Everything on: OpenAI itself.
    pub const OPENAI: Self = Self {
        needs_api_key: true,
        supports_parallel_tool_calls: true,
        supports_strict_schema: true,
        supports_reasoning_effort: true,
        supports_structured_output: true,
        supports_stream_usage: true,
        uses_max_completion_tokens: true,
        responses_schema_as_response_format: false,
        schema_excludes_tools: false,
    };

    /// A conservative local OpenAI-compatible server: no key, no strict schemas.
    pub const LOCAL: Self = Self {
        needs_api_key: false,
        supports_parallel_tool_calls: false,
        supports_strict_schema: false,
        supports_reasoning_effort: false,
        supports_structured_output: true,
        supports_stream_usage: true,
        uses_max_completion_tokens: false,
        responses_schema_as_response_format: false,
        schema_excludes_tools: false,
    };
}

impl Default for Capabilities {
    fn default() -> Self {
        Self::OPENAI
    }
}

/// One model provider: endpoint, credentials, timeouts, retry budget, capabilities.
///
/// `Debug` shows the key as `[redacted]`, and the values of headers whose names suggest a
/// secret (`authorization`, `*key*`, `*token*`, `*secret*`, ...) likewise.
#[derive(Clone, PartialEq)]
pub struct ProviderConfig {
    /// Short name shown in messages (`openai`, `ollama`, ...).
    pub name: String,
    /// Base URL ending in the API version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Which wire API to speak.
    pub wire_api: WireApi,
    /// Name of the environment variable holding the key.
    pub api_key_env: Option<String>,
    /// The key itself, once resolved (or given directly).
    pub api_key: Option<ApiKey>,
    /// Extra request headers (e.g. OpenRouter's `X-Title`).
    pub headers: Vec<(String, String)>,
    /// Limit on establishing the connection.
    pub connect_timeout: Duration,
    /// Longest silence tolerated while waiting for response headers or the next SSE event.
    pub idle_timeout: Duration,
    /// Retry budget and backoff.
    pub retry: RetryPolicy,
    /// Caps on one event and one response.
    pub limits: StreamLimits,
    /// What the provider accepts.
    pub capabilities: Capabilities,
}

/// True for header names that usually carry a credential.
pub(crate) fn is_sensitive_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "authorization",
        "key",
        "token",
        "secret",
        "password",
        "cookie",
    ]
    .iter()
    .any(|needle| name.contains(needle))
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if is_sensitive_header(name) {
                    "[redacted]"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("wire_api", &self.wire_api)
            .field("api_key_env", &self.api_key_env)
            .field("api_key", &self.api_key)
            .field("headers", &headers)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("retry", &self.retry)
            .field("limits", &self.limits)
            .field("capabilities", &self.capabilities)
            .finish()
    }
}

/// Names accepted by [`ProviderConfig::preset`].
pub const PRESET_NAMES: [&str; 6] = [
    "openai",
    "ollama",
    "vllm",
    "llamacpp",
    "lmstudio",
    "openrouter",
];

impl ProviderConfig {
    fn base(name: &str, base_url: &str, wire_api: WireApi, capabilities: Capabilities) -> Self {
        Self {
            name: name.to_owned(),
            base_url: base_url.to_owned(),
            wire_api,
            api_key_env: None,
            api_key: None,
            headers: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            limits: StreamLimits::default(),
            capabilities,
        }
    }

    /// OpenAI: Responses API at `https://api.openai.com/v1`, key in `OPENAI_API_KEY`,
    /// every capability on.
    pub fn openai() -> Self {
        let mut config = Self::base(
            "openai",
            "https://api.openai.com/v1",
            WireApi::Responses,
            Capabilities::OPENAI,
        );
        config.api_key_env = Some("OPENAI_API_KEY".to_owned());
        config
    }

    /// Ollama: Chat at `http://localhost:11434/v1`, no key. Tool calls often arrive whole,
    /// with missing or repeated indexes (handled by the decoder); `reasoning_effort` is
    /// understood by its thinking models; no strict schemas, no parallel-call switch.
    pub fn ollama() -> Self {
        Self::base(
            "ollama",
            "http://localhost:11434/v1",
            WireApi::Chat,
            Capabilities {
                supports_reasoning_effort: true,
                ..Capabilities::LOCAL
            },
        )
    }

    /// vLLM: Chat at `http://localhost:8000/v1`; key optional (`VLLM_API_KEY`, needed only
    /// when the server runs with `--api-key`). Tool choice `auto` needs the server's
    /// `--enable-auto-tool-choice`; reasoning streams as `reasoning` or `reasoning_content`.
    pub fn vllm() -> Self {
        let mut config = Self::base(
            "vllm",
            "http://localhost:8000/v1",
            WireApi::Chat,
            Capabilities {
                supports_parallel_tool_calls: true,
                supports_reasoning_effort: true,
                ..Capabilities::LOCAL
            },
        );
        config.api_key_env = Some("VLLM_API_KEY".to_owned());
        config
    }

    /// llama.cpp `llama-server`: Chat at `http://127.0.0.1:8080/v1`; key optional
    /// (`LLAMA_API_KEY`, for `--api-key`). Always sends a `choices: []` usage chunk;
    /// reasoning arrives as `reasoning_content`. A schema makes it ignore the tools, so it
    /// is sent only without them. Its `/v1/responses` honours the schema
    /// only as `response_format`, streams without `sequence_number`, `output_index`,
    /// `content_index` and `function_call_arguments.done` (the decoder keys items by id),
    /// and reports a hit output cap only through `usage.output_tokens`.
    pub fn llama_cpp() -> Self {
        let mut config = Self::base(
            "llamacpp",
            "http://127.0.0.1:8080/v1",
            WireApi::Chat,
            Capabilities {
                supports_parallel_tool_calls: true,
                responses_schema_as_response_format: true,
                schema_excludes_tools: true,
                ..Capabilities::LOCAL
            },
        );
        config.api_key_env = Some("LLAMA_API_KEY".to_owned());
        config
    }

    /// LM Studio: Chat at `http://localhost:1234/v1`; key optional (`LM_API_TOKEN`, when
    /// its authentication is on). Models load on first use, so the first response can be slow.
    pub fn lm_studio() -> Self {
        let mut config = Self::base(
            "lmstudio",
            "http://localhost:1234/v1",
            WireApi::Chat,
            Capabilities::LOCAL,
        );
        config.api_key_env = Some("LM_API_TOKEN".to_owned());
        config
    }

    /// OpenRouter: Chat at `https://openrouter.ai/api/v1`, key in `OPENROUTER_API_KEY`,
    /// attribution header `X-Title: infty`. Sends `: OPENROUTER PROCESSING` comments and
    /// reports errors after generation started inside the 200 stream.
    pub fn openrouter() -> Self {
        let mut config = Self::base(
            "openrouter",
            "https://openrouter.ai/api/v1",
            WireApi::Chat,
            Capabilities {
                needs_api_key: true,
                supports_parallel_tool_calls: true,
                supports_strict_schema: true,
                supports_reasoning_effort: true,
                supports_structured_output: true,
                supports_stream_usage: true,
                uses_max_completion_tokens: false,
                responses_schema_as_response_format: false,
                schema_excludes_tools: false,
            },
        );
        config.api_key_env = Some("OPENROUTER_API_KEY".to_owned());
        config.headers = vec![("X-Title".to_owned(), "infty".to_owned())];
        config
    }

    /// A preset by name (see [`PRESET_NAMES`]); `None` for an unknown name.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::openai()),
            "ollama" => Some(Self::ollama()),
            "vllm" => Some(Self::vllm()),
            "llamacpp" | "llama.cpp" | "llama-cpp" => Some(Self::llama_cpp()),
            "lmstudio" | "lm-studio" => Some(Self::lm_studio()),
            "openrouter" => Some(Self::openrouter()),
            _ => None,
        }
    }

    /// Reads the key from the variable named by `api_key_env`, unless a key is already set.
    ///
    /// Fails with [`ModelError::MissingApiKey`] when the provider needs a key and the
    /// variable is unset or blank.
    pub fn resolve_api_key(self) -> Result<Self, ModelError> {
        self.resolve_api_key_with(|var| std::env::var(var).ok())
    }

    /// [`ProviderConfig::resolve_api_key`] with an injected environment, for tests and for
    /// callers that keep their own environment map.
    pub fn resolve_api_key_with(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ModelError> {
        if self.api_key.is_some() {
            return Ok(self);
        }
        if let Some(var) = &self.api_key_env
            && let Some(value) = env(var).filter(|v| !v.trim().is_empty())
        {
            self.api_key = Some(ApiKey::new(value.trim()));
            return Ok(self);
        }
        if self.capabilities.needs_api_key {
            return Err(ModelError::MissingApiKey {
                provider: self.name.clone(),
                var: self
                    .api_key_env
                    .clone()
                    .unwrap_or_else(|| "(none configured)".to_owned()),
            });
        }
        Ok(self)
    }

    /// The full endpoint URL for this provider's wire API.
    pub fn endpoint(&self) -> String {
        format!(
            "{}/{}",
            self.base_url.trim_end_matches('/'),
            self.wire_api.path()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_api_names_round_trip() {
        for (text, api) in [
            ("responses", WireApi::Responses),
            ("chat", WireApi::Chat),
            ("CHAT", WireApi::Chat),
        ] {
            assert_eq!(text.parse::<WireApi>().expect("parse"), api);
        }
        assert_eq!(WireApi::Chat.to_string(), "chat");
        assert_eq!(
            serde_json::to_string(&WireApi::Responses).expect("json"),
            "\"responses\""
        );
        let err = "grpc".parse::<WireApi>().expect_err("unknown");
        assert!(err.to_string().contains("`grpc`"), "{err}");
    }

    #[test]
    fn api_key_never_prints() {
        let key = ApiKey::new("sk-secret");
        assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
        let mut config = ProviderConfig::openai();
        config.api_key = Some(key);
        config.headers = vec![
            ("X-Api-Key".into(), "sk-secret".into()),
            ("X-Title".into(), "infty".into()),
        ];
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("\"X-Title\", \"infty\""), "{shown}");
    }

    #[test]
    fn resolve_api_key_cases() {
        let env = |value: Option<&'static str>| move |_: &str| value.map(str::to_owned);
        let resolved = ProviderConfig::openai()
            .resolve_api_key_with(env(Some(" sk-1 ")))
            .expect("resolved");
        assert_eq!(resolved.api_key.as_ref().map(ApiKey::expose), Some("sk-1"));

        for missing in [None, Some("  ")] {
            let err = ProviderConfig::openai()
                .resolve_api_key_with(env(missing))
                .expect_err("missing");
            assert_eq!(
                err.to_string(),
                "provider openai needs an API key: set the environment variable OPENAI_API_KEY"
            );
        }
        let local = ProviderConfig::ollama()
            .resolve_api_key_with(env(None))
            .expect("no key needed");
        assert!(local.api_key.is_none());
    }

    #[test]
    fn presets_by_name() {
        for name in PRESET_NAMES {
            let config = ProviderConfig::preset(name).expect("preset");
            assert_eq!(config.name, name);
        }
        assert!(ProviderConfig::preset("nope").is_none());
        assert_eq!(
            ProviderConfig::ollama().endpoint(),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(
            ProviderConfig::openai().endpoint(),
            "https://api.openai.com/v1/responses"
        );
    }
}
