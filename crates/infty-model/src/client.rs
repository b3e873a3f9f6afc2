//! The HTTP client: sends a request, streams the answer through the right decoder, and
//! retries what is worth retrying within the provider's budgets.
//!
//! Two budgets, as codex keeps them: request retries (connection errors, 408/409/429/5xx
//! before any stream) and stream retries (a stream cut, stalled, or failed transiently;
//! the whole request is sent again). Server hints (`retry-after-ms`, `retry-after`,
//! "try again in") win over backoff up to `max_retry_after`; a longer hint fails fast with
//! a [`ModelError::Retryable`] that carries it. This module is the only place that reads
//! [`ApiKey::expose`](crate::ApiKey::expose), and it must never log the key or a header map.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;

use crate::error::{ModelError, display_url};
use crate::provider::{ProviderConfig, is_sensitive_header};
use crate::request::ModelRequest;
use crate::response::{ModelResponse, StreamEvent};
use crate::retry::{self, FailureContext, ProviderError};
use crate::sse::decode_stream;
use crate::telemetry;
use crate::wire::{self, AnyDecoder, WireFailure};

/// The seam the orchestrator calls, so tests and benchmarks can plug in an in-process model.
pub trait ModelApi: Send + Sync {
    /// Runs one model call to completion, reporting progress through `events`.
    ///
    /// [`ModelClient`]'s future must run inside a tokio runtime with time enabled (it uses
    /// tokio timers for idle timeouts and backoff).
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: &'a (dyn Fn(StreamEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>>;

    /// The provider's name, for telemetry (`gen_ai.provider.name`); `None` when unknown.
    fn provider_name(&self) -> Option<&str> {
        None
    }

    /// True when the provider drops the output schema from requests that offer tools
    /// (llama.cpp would otherwise ignore the tools), so a caller wanting a constrained reply
    /// asks for it in a request without tools.
    fn schema_excludes_tools(&self) -> bool {
        false
    }
}

/// Which budget a failed attempt draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Request,
    Stream,
}

/// The HTTP clients that the [`ModelClient`]s of one process share, one per connect timeout.
///
/// A reqwest client holds its connection pool and its TLS roots (about 100 KiB, read from
/// the system's certificates when it is built), so a worker driving many runs builds one,
/// not one per run, and its runs to the same provider reuse connections. Cheap to clone.
/// Use it within one tokio runtime: a pooled connection belongs to the runtime that
/// opened it.
#[derive(Clone, Default)]
pub struct HttpClients {
    built: Arc<Mutex<Vec<(Duration, reqwest::Client)>>>,
}

impl std::fmt::Debug for HttpClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClients").finish_non_exhaustive()
    }
}

impl HttpClients {
    /// The client whose connections time out after `connect_timeout`, built on first use.
    fn client(&self, connect_timeout: Duration) -> Result<reqwest::Client, ModelError> {
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, client)) = built
            .iter()
            .find(|(timeout, _)| *timeout == connect_timeout)
        {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .build()
            .map_err(|err| {
                ModelError::Config(format!("cannot build http client: {}", error_chain(&err)))
            })?;
        built.push((connect_timeout, client.clone()));
        Ok(client)
    }
}

/// A streaming model client for one provider. Cheap to clone.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
    provider: Arc<ProviderConfig>,
    endpoint: reqwest::Url,
    shown_url: Arc<str>,
    headers: HeaderMap,
}

impl std::fmt::Debug for ModelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("provider", &self.provider)
            .field("endpoint", &self.shown_url)
            .finish_non_exhaustive()
    }
}

impl ModelClient {
    /// Builds a client. Fails with [`ModelError::Config`] for an unusable base URL
    /// (unparsable, credentials or query in it) or header, and with
    /// [`ModelError::MissingApiKey`] when the provider needs a key and has none (call
    /// [`ProviderConfig::resolve_api_key`] first to read it from the environment).
    pub fn new(provider: ProviderConfig) -> Result<Self, ModelError> {
        Self::sharing(provider, &HttpClients::default())
    }

    /// [`ModelClient::new`] on an HTTP client from `http`, shared with the other model
    /// clients built from it.
    pub fn sharing(provider: ProviderConfig, http: &HttpClients) -> Result<Self, ModelError> {
        let endpoint = reqwest::Url::parse(&provider.endpoint()).map_err(|err| {
            ModelError::Config(format!(
                "base url `{}` of provider {} is not a valid url: {err}",
                provider.base_url, provider.name
            ))
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(ModelError::Config(format!(
                "base url of provider {} must be http or https, not `{}`",
                provider.name,
                endpoint.scheme()
            )));
        }
        if !endpoint.username().is_empty()
            || endpoint.password().is_some()
            || endpoint.query().is_some()
        {
            return Err(ModelError::Config(format!(
                "base url {} of provider {} must not carry credentials or a query; \
                 name the key's environment variable instead",
                display_url(&endpoint),
                provider.name
            )));
        }
        if provider.capabilities.needs_api_key && provider.api_key.is_none() {
            return Err(ModelError::MissingApiKey {
                provider: provider.name.clone(),
                var: provider
                    .api_key_env
                    .clone()
                    .unwrap_or_else(|| "(none configured)".to_owned()),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        if let Some(key) = &provider.api_key {
            let mut value =
                HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
                    ModelError::Config(format!(
                        "api key of provider {} contains characters not allowed in a header",
                        provider.name
                    ))
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &provider.headers {
            let header_name = HeaderName::try_from(name.as_str()).map_err(|_| {
                ModelError::Config(format!(
                    "header name `{name}` of provider {} is invalid",
                    provider.name
                ))
            })?;
            let mut header_value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                ModelError::Config(format!(
                    "value of header `{name}` of provider {} is invalid",
                    provider.name
                ))
            })?;
            header_value.set_sensitive(is_sensitive_header(name));
            headers.insert(header_name, header_value);
        }
        let http = http.client(provider.connect_timeout)?;
        Ok(Self {
            http,
            shown_url: display_url(&endpoint).into(),
            endpoint,
            provider: Arc::new(provider),
            headers,
        })
    }

    /// The provider this client talks to.
    pub fn provider(&self) -> &ProviderConfig {
        &self.provider
    }

    /// The endpoint URL, as shown in messages.
    pub fn endpoint(&self) -> &str {
        &self.shown_url
    }

    async fn run(
        &self,
        request: &ModelRequest,
        events: &(dyn Fn(StreamEvent) + Send + Sync),
    ) -> Result<ModelResponse, ModelError> {
        let provider = &self.provider;
        let body = wire::request_body(provider.wire_api, request, &provider.capabilities);
        let body = Bytes::from(
            serde_json::to_vec(&body)
                .map_err(|err| ModelError::Config(format!("cannot encode request body: {err}")))?,
        );
        let policy = &provider.retry;
        let mut request_retries = 0;
        let mut stream_retries = 0;
        loop {
            let (err, phase) = match self.attempt(body.clone(), events).await {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            if !err.is_retryable() {
                return Err(err);
            }
            let (used, max) = match phase {
                Phase::Request => (&mut request_retries, policy.max_request_retries),
                Phase::Stream => (&mut stream_retries, policy.max_stream_retries),
            };
            if *used >= max {
                return Err(ModelError::RetriesExhausted {
                    attempts: request_retries + stream_retries + 1,
                    last: Box::new(err),
                });
            }
            *used += 1;
            let attempt = *used;
            let delay = match err.retry_delay() {
                Some(hint) if hint > policy.max_retry_after => return Err(err),
                Some(hint) => hint,
                None => retry::backoff(policy, attempt),
            };
            tracing::warn!(
                provider = %provider.name,
                attempt,
                max,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "model call failed; retrying"
            );
            events(StreamEvent::Retrying {
                attempt,
                max,
                delay,
                reason: err.to_string(),
            });
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(
        &self,
        body: Bytes,
        events: &(dyn Fn(StreamEvent) + Send + Sync),
    ) -> Result<ModelResponse, (ModelError, Phase)> {
        let provider = &self.provider;
        let url = &*self.shown_url;
        let send = self
            .http
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .body(body)
            .send();
        let response = match tokio::time::timeout(provider.idle_timeout, send).await {
            Err(_) => {
                return Err((
                    ModelError::Connect {
                        url: url.to_owned(),
                        message: format!(
                            "no response within {} ms",
                            provider.idle_timeout.as_millis()
                        ),
                    },
                    Phase::Request,
                ));
            }
            Ok(Err(err)) => {
                return Err((
                    ModelError::Connect {
                        url: url.to_owned(),
                        message: error_chain(&err.without_url()),
                    },
                    Phase::Request,
                ));
            }
            Ok(Ok(response)) => response,
        };
        let request_id = retry::request_id(response.headers());
        let status = response.status();
        if !status.is_success() {
            let header_delay =
                retry::header_delay(response.headers(), time::OffsetDateTime::now_utc());
            // An error body is for its message: a bounded prefix is enough, and a server
            // answering with an endless body cannot hold the client.
            let text = read_body(response, ERROR_BODY_LIMIT, provider.idle_timeout)
                .await
                .unwrap_or_else(|partial| partial);
            let text = self.scrub(text);
            let error = if text.trim().is_empty() {
                ProviderError {
                    message: status
                        .canonical_reason()
                        .unwrap_or("no error message given")
                        .to_owned(),
                    ..ProviderError::default()
                }
            } else {
                ProviderError::from_body(&text)
            };
            let context = FailureContext {
                url,
                request_id: request_id.as_deref(),
                header_delay,
            };
            let err = retry::classify(Some(status.as_u16()), error, &context);
            return Err((err, Phase::Request));
        }
        tracing::debug!(provider = %provider.name, request_id = ?request_id, "streaming response");
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let decoded = if is_json {
            // A server (or proxy) that ignored `stream: true` sends the whole response at once.
            match read_whole(response, provider).await {
                Ok(text) => wire::decode_whole(provider.wire_api, &text, events),
                Err(failure) => Err(failure),
            }
        } else {
            let bytes = response
                .bytes_stream()
                .map_err(|err| error_chain(&err.without_url()));
            let decoder = AnyDecoder::new(provider.wire_api);
            decode_stream(
                bytes,
                decoder,
                provider.idle_timeout,
                provider.limits,
                events,
            )
            .await
        };
        decoded.map_err(|failure| {
            let err = match failure {
                WireFailure::Interrupted(message) => ModelError::StreamInterrupted {
                    url: url.to_owned(),
                    message,
                    request_id: request_id.clone(),
                },
                WireFailure::TooLarge(message) => ModelError::ResponseTooLarge {
                    url: url.to_owned(),
                    message,
                    request_id: request_id.clone(),
                },
                WireFailure::Provider(mut error) => {
                    error.message = self.scrub(error.message);
                    let context = FailureContext {
                        url,
                        request_id: request_id.as_deref(),
                        header_delay: None,
                    };
                    retry::classify(None, error, &context)
                }
            };
            (err, Phase::Stream)
        })
    }
}

impl ModelClient {
    /// Removes the API key from text a server sent back (some echo it in auth errors).
    fn scrub(&self, text: String) -> String {
        match &self.provider.api_key {
            Some(key) if !key.expose().is_empty() && text.contains(key.expose()) => {
                text.replace(key.expose(), "[redacted]")
            }
            _ => text,
        }
    }
}

impl ModelApi for ModelClient {
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: &'a (dyn Fn(StreamEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        let span = telemetry::chat_span(&self.provider, &self.endpoint, request);
        async move {
            let outcome = self.run(request, events).await;
            telemetry::record_outcome(&tracing::Span::current(), request, &outcome);
            outcome
        }
        .instrument(span)
        .boxed()
    }

    fn provider_name(&self) -> Option<&str> {
        Some(&self.provider.name)
    }

    fn schema_excludes_tools(&self) -> bool {
        self.provider.capabilities.schema_excludes_tools
    }
}

/// How much of an error body is read for its message.
const ERROR_BODY_LIMIT: usize = 1 << 20;

/// Reads a body up to `limit` bytes, each chunk within `idle`. `Err` carries what was read
/// when the body was longer, broke off or stalled.
async fn read_body(
    response: reqwest::Response,
    limit: usize,
    idle: std::time::Duration,
) -> Result<String, String> {
    use futures::StreamExt;
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    let complete = loop {
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => {
                let room = limit.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    break false;
                }
            }
            Ok(None) => break true,
            Ok(Some(Err(_))) | Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    if complete { Ok(text) } else { Err(text) }
}

/// Reads a whole (non-streamed) response body within the provider's response cap.
async fn read_whole(
    response: reqwest::Response,
    provider: &ProviderConfig,
) -> Result<String, WireFailure> {
    let limit = usize::try_from(provider.limits.max_response_bytes).unwrap_or(usize::MAX);
    let declared = response.content_length();
    if declared.is_some_and(|length| length > provider.limits.max_response_bytes) {
        return Err(WireFailure::TooLarge(format!(
            "the body is over {} bytes (the limit of one response)",
            provider.limits.max_response_bytes
        )));
    }
    // One byte past the cap tells a body at the cap from one beyond it.
    match read_body(response, limit.saturating_add(1), provider.idle_timeout).await {
        Ok(text) if text.len() > limit => Err(WireFailure::TooLarge(format!(
            "the body is over {limit} bytes (the limit of one response)"
        ))),
        Ok(text) => Ok(text),
        Err(partial) if partial.len() > limit => Err(WireFailure::TooLarge(format!(
            "the body is over {limit} bytes (the limit of one response)"
        ))),
        Err(_) => Err(WireFailure::Interrupted(format!(
            "the body broke off or stalled past {} ms",
            provider.idle_timeout.as_millis()
        ))),
    }
}

/// An error and its sources, joined, lowercase as reqwest/hyper write them.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_clients_build_one_client_per_connect_timeout() {
        let http = HttpClients::default();
        let short = Duration::from_secs(5);
        http.client(short).unwrap();
        http.client(short).unwrap();
        http.clone().client(Duration::from_secs(9)).unwrap();
        let built = http.built.lock().unwrap();
        let timeouts: Vec<Duration> = built.iter().map(|(timeout, _)| *timeout).collect();
        assert_eq!(timeouts, [short, Duration::from_secs(9)]);
    }
}
