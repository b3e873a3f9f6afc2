//! Failure classification and backoff: which provider errors are worth retrying, how long
//! to wait, and how to read the servers' own hints (`retry-after-ms`, `retry-after`,
//! "try again in 6.57s").
//!
//! The table follows wire-formats §6: retry connection errors, 408, 409, 429
//! (`rate_limit_exceeded`), 5xx; never 400/401/403/404/422, `insufficient_quota`,
//! `context_length_exceeded`. This module decides; it must never sleep or do IO.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error::ModelError;
use crate::provider::RetryPolicy;

/// An error as a provider described it, in any of the shapes seen in the wild.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ProviderError {
    /// `error.code`: a string (`rate_limit_exceeded`) or a number (OpenRouter, llama.cpp).
    pub code: Option<String>,
    /// `error.type` (`invalid_request_error`, `insufficient_quota`, ...).
    pub kind: Option<String>,
    /// Human text.
    pub message: String,
    /// When a usage limit lifts, from `resets_in_seconds` or `resets_at` (Unix seconds).
    pub resets_in: Option<Duration>,
}

impl ProviderError {
    /// Reads `{"error":{...}}`, `{"error":"text"}`, `{"object":"error",...}` or a bare
    /// `{code, message, type}`; `None` when the value has no error at all.
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        match value.get("error") {
            Some(Value::Object(inner)) => Some(Self::from_fields(inner)),
            Some(Value::String(text)) => Some(Self {
                message: text.clone(),
                ..Self::default()
            }),
            _ => {
                let object = value.as_object()?;
                let looks_like_error = object.get("object").and_then(Value::as_str)
                    == Some("error")
                    || object.get("type").and_then(Value::as_str) == Some("error")
                    || object.contains_key("message");
                looks_like_error.then(|| Self::from_fields(object))
            }
        }
    }

    fn from_fields(fields: &serde_json::Map<String, Value>) -> Self {
        let text = |key: &str| match fields.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let kind = text("type").filter(|t| t != "error");
        let resets_in = fields
            .get("resets_in_seconds")
            .and_then(Value::as_f64)
            .filter(|secs| *secs > 0.0)
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .or_else(|| {
                let at = fields.get("resets_at").and_then(Value::as_i64)?;
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                u64::try_from(at - now)
                    .ok()
                    .filter(|secs| *secs > 0)
                    .map(Duration::from_secs)
            });
        Self {
            resets_in,
            code: text("code"),
            message: text("message")
                .or_else(|| kind.clone())
                .unwrap_or_else(|| "no error message given".to_owned()),
            kind,
        }
    }

    /// Parses an HTTP error body; falls back to the raw text (trimmed, shortened).
    pub(crate) fn from_body(body: &str) -> Self {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|value| Self::from_json(&value))
            .unwrap_or_else(|| Self {
                message: shorten(body.trim(), 500),
                ..Self::default()
            })
    }

    fn is(&self, names: &[&str]) -> bool {
        [&self.code, &self.kind]
            .into_iter()
            .flatten()
            .any(|v| names.contains(&v.as_str()))
    }

    fn is_context_overflow(&self) -> bool {
        if self.is(&["context_length_exceeded", "exceed_context_size_error"]) {
            return true;
        }
        let message = self.message.to_ascii_lowercase();
        [
            "maximum context length",
            "context length exceeded",
            "context window",
            "exceeds the available context size",
            "exceeds the context length",
            "longer than the maximum model length",
            "context_length_exceeded",
        ]
        .iter()
        .any(|needle| message.contains(needle))
    }

    fn is_quota(&self) -> bool {
        self.is(&["insufficient_quota", "credit_balance_exhausted"])
    }

    fn numeric_code(&self) -> Option<u16> {
        self.code.as_deref().and_then(|c| c.parse().ok())
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Where a failure happened, for error messages and retry hints.
pub(crate) struct FailureContext<'a> {
    pub url: &'a str,
    pub request_id: Option<&'a str>,
    /// Delay from `retry-after*` headers, already parsed.
    pub header_delay: Option<Duration>,
}

/// Turns a provider error into the variant that says what to do. `status` is the HTTP
/// status, or `None` for an error reported inside a 200 stream.
pub(crate) fn classify(
    status: Option<u16>,
    error: ProviderError,
    context: &FailureContext<'_>,
) -> ModelError {
    let url = context.url.to_owned();
    let request_id = context.request_id.map(str::to_owned);
    let message = error.message.clone();
    // In-stream errors from OpenRouter/llama.cpp carry the HTTP status as `code`.
    let effective = status.or_else(|| error.numeric_code());
    if error.is_context_overflow() {
        return ModelError::ContextWindowExceeded {
            url,
            status,
            message,
            request_id,
        };
    }
    if error.is_quota() || effective == Some(402) {
        return ModelError::QuotaExceeded {
            url,
            status,
            message,
            request_id,
        };
    }
    match effective {
        Some(code @ (401 | 403)) => ModelError::Auth {
            url,
            status: code,
            message,
            request_id,
        },
        Some(408 | 409 | 429) | Some(500..=599) => ModelError::Retryable {
            delay: context
                .header_delay
                .or(error.resets_in)
                .or_else(|| rate_limit_hint(&error)),
            url,
            status,
            message,
            request_id,
        },
        Some(_) => ModelError::InvalidRequest {
            url,
            status,
            message,
            request_id,
        },
        // A failed stream with a string code: only the obviously permanent ones stop;
        // anything else (server_error, rate_limit_exceeded, unknown) is worth a retry,
        // as codex does.
        None if error.is(&[
            "invalid_prompt",
            "invalid_request_error",
            "invalid_request",
            "not_found_error",
            "bad_request",
        ]) =>
        {
            ModelError::InvalidRequest {
                url,
                status,
                message,
                request_id,
            }
        }
        None => ModelError::Retryable {
            delay: context
                .header_delay
                .or(error.resets_in)
                .or_else(|| rate_limit_hint(&error)),
            url,
            status,
            message,
            request_id,
        },
    }
}

/// The wait hidden in a rate-limit message ("Please try again in 6.57s"), only for
/// `rate_limit_exceeded`, where OpenAI puts it.
fn rate_limit_hint(error: &ProviderError) -> Option<Duration> {
    if !error.is(&[
        "rate_limit_exceeded",
        "rate_limit_error",
        "tokens",
        "requests",
    ]) {
        return None;
    }
    try_again_in(&error.message)
}

/// Parses "try again in <number><unit>" with unit `ms`, `s`, `sec`, `seconds`.
pub(crate) fn try_again_in(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("try again in")? + "try again in".len();
    let rest = lower[start..].trim_start();
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let value: f64 = rest[..number_len].parse().ok()?;
    let unit = rest[number_len..].trim_start();
    let seconds = if unit.starts_with("ms") {
        value / 1000.0
    } else if unit.starts_with('s') {
        value
    } else {
        return None;
    };
    Duration::try_from_secs_f64(seconds).ok()
}

/// Reads `retry-after-ms` (preferred) or `retry-after` (seconds, or an HTTP date).
/// Zero, negative, blank or unparsable values give `None`.
pub(crate) fn header_delay(headers: &HeaderMap, now: time::OffsetDateTime) -> Option<Duration> {
    let value = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if let Some(ms) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms > 0.0
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    let after = value("retry-after")?;
    if let Ok(seconds) = after.parse::<f64>() {
        return (seconds > 0.0)
            .then(|| Duration::try_from_secs_f64(seconds).ok())
            .flatten();
    }
    let date = parse_http_date(after)?;
    let wait = date - now;
    (wait.is_positive())
        .then(|| Duration::try_from(wait).ok())
        .flatten()
}

fn parse_http_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// The provider's request id from response headers, if any.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    [
        "x-request-id",
        "x-oai-request-id",
        "x-generation-id",
        "cf-ray",
    ]
    .iter()
    .find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    })
}

/// Exponential backoff for retry number `retry` (from 1): `base · 2^(retry-1)`, capped at
/// `max_delay`, times a jitter factor in [0.9, 1.1).
pub(crate) fn backoff(policy: &RetryPolicy, retry: u32) -> Duration {
    let exponent = retry.saturating_sub(1).min(30);
    let step = policy
        .base_delay
        .saturating_mul(1_u32 << exponent)
        .min(policy.max_delay);
    step.mul_f64(0.9 + fastrand::f64() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> FailureContext<'static> {
        FailureContext {
            url: "http://h/v1/responses",
            request_id: Some("req_1"),
            header_delay: None,
        }
    }

    fn kind(err: &ModelError) -> &'static str {
        match err {
            ModelError::Retryable { .. } => "retryable",
            ModelError::ContextWindowExceeded { .. } => "context",
            ModelError::QuotaExceeded { .. } => "quota",
            ModelError::Auth { .. } => "auth",
            ModelError::InvalidRequest { .. } => "invalid",
            _ => "other",
        }
    }

    #[test]
    fn classification_table() {
        let cases: &[(Option<u16>, Value, &str)] = &[
            (
                Some(400),
                json!({"error":{"message":"bad","type":"invalid_request_error"}}),
                "invalid",
            ),
            (
                Some(400),
                json!({"error":{"message":"too long","code":"context_length_exceeded"}}),
                "context",
            ),
            (
                Some(400),
                json!({"object":"error","message":"This model's maximum context length is 4096 tokens","code":400}),
                "context",
            ),
            (
                Some(400),
                json!({"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}),
                "context",
            ),
            (
                Some(401),
                json!({"error":{"message":"bad key","code":"invalid_api_key"}}),
                "auth",
            ),
            (
                Some(402),
                json!({"error":{"code":402,"message":"no credits"}}),
                "quota",
            ),
            (Some(403), json!({"error":{"message":"region"}}), "auth"),
            (
                Some(404),
                json!({"error":{"message":"no model"}}),
                "invalid",
            ),
            (
                Some(408),
                json!({"error":{"message":"timeout"}}),
                "retryable",
            ),
            (
                Some(409),
                json!({"error":{"message":"conflict"}}),
                "retryable",
            ),
            (
                Some(422),
                json!({"error":{"message":"unprocessable"}}),
                "invalid",
            ),
            (
                Some(429),
                json!({"error":{"message":"slow down","code":"rate_limit_exceeded"}}),
                "retryable",
            ),
            (
                Some(429),
                json!({"error":{"message":"pay","type":"insufficient_quota","code":"insufficient_quota"}}),
                "quota",
            ),
            (
                Some(500),
                json!({"error":{"message":"oops","type":"server_error"}}),
                "retryable",
            ),
            (Some(502), json!({}), "retryable"),
            (
                Some(503),
                json!({"error":{"message":"overloaded"}}),
                "retryable",
            ),
            (Some(504), json!({"error":"gateway"}), "retryable"),
            (
                None,
                json!({"error":{"code":"server_error","message":"x"}}),
                "retryable",
            ),
            (
                None,
                json!({"error":{"code":"rate_limit_exceeded","message":"x"}}),
                "retryable",
            ),
            (
                None,
                json!({"error":{"code":"invalid_prompt","message":"x"}}),
                "invalid",
            ),
            (
                None,
                json!({"error":{"code":"insufficient_quota","message":"x"}}),
                "quota",
            ),
            (
                None,
                json!({"error":{"code":"context_length_exceeded","message":"x"}}),
                "context",
            ),
            (
                None,
                json!({"error":{"code":502,"message":"upstream"}}),
                "retryable",
            ),
            (None, json!({"error":{"code":401,"message":"key"}}), "auth"),
        ];
        for (status, body, expected) in cases {
            let error = ProviderError::from_body(&body.to_string());
            let err = classify(*status, error, &ctx());
            assert_eq!(kind(&err), *expected, "{status:?} {body}");
            assert_eq!(err.request_id(), Some("req_1"));
        }
    }

    #[test]
    fn error_shapes() {
        let cases = [
            (
                r#"{"error":{"message":"m","type":"t","code":"c"}}"#,
                Some("c"),
                Some("t"),
                "m",
            ),
            (
                r#"{"error":{"code":429,"message":"m"}}"#,
                Some("429"),
                None,
                "m",
            ),
            (
                r#"{"object":"error","message":"m","type":"BadRequestError","code":400}"#,
                Some("400"),
                Some("BadRequestError"),
                "m",
            ),
            (
                r#"{"type":"error","code":"c","message":"m","param":null}"#,
                Some("c"),
                None,
                "m",
            ),
            (r#"{"error":"plain"}"#, None, None, "plain"),
            (
                "<html>bad gateway</html>",
                None,
                None,
                "<html>bad gateway</html>",
            ),
        ];
        for (body, code, kind, message) in cases {
            let e = ProviderError::from_body(body);
            assert_eq!(
                (e.code.as_deref(), e.kind.as_deref(), e.message.as_str()),
                (code, kind, message),
                "{body}"
            );
        }
    }

    #[test]
    fn try_again_in_cases() {
        let cases = [
            ("Please try again in 6.57s. Visit", Some(6570_u128)),
            ("try again in 250ms", Some(250)),
            ("Try again in 2 seconds", Some(2000)),
            ("try again in a while", None),
            ("no hint", None),
        ];
        for (text, ms) in cases {
            assert_eq!(try_again_in(text).map(|d| d.as_millis()), ms, "{text}");
        }
    }

    #[test]
    fn rate_limit_hint_only_for_rate_limits() {
        let mut context = ctx();
        let error = ProviderError {
            code: Some("rate_limit_exceeded".into()),
            kind: None,
            message: "try again in 1.5s".into(),
            resets_in: None,
        };
        let err = classify(None, error.clone(), &context);
        assert_eq!(err.retry_delay(), Some(Duration::from_millis(1500)));
        context.header_delay = Some(Duration::from_secs(3));
        let err = classify(Some(429), error, &context);
        assert_eq!(err.retry_delay(), Some(Duration::from_secs(3)));
        let other = ProviderError {
            code: Some("server_error".into()),
            kind: None,
            message: "try again in 1.5s".into(),
            resets_in: None,
        };
        assert_eq!(classify(None, other, &ctx()).retry_delay(), None);
    }

    #[test]
    fn usage_limit_reset_time_is_the_delay() {
        let body = r#"{"error":{"type":"usage_limit_reached","message":"You've hit your usage limit.","resets_in_seconds":5400}}"#;
        let err = classify(Some(429), ProviderError::from_body(body), &ctx());
        assert!(err.is_rate_limited());
        assert_eq!(err.retry_delay(), Some(Duration::from_secs(5400)));
        let quota = r#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota"}}"#;
        let err = classify(Some(429), ProviderError::from_body(quota), &ctx());
        assert!(err.is_quota() && !err.is_rate_limited());
    }

    #[test]
    fn header_delay_cases() {
        let now = time::macros::datetime!(2026-01-01 00:00:00 UTC);
        type Case = (&'static [(&'static str, &'static str)], Option<u128>);
        let cases: &[Case] = &[
            (&[("retry-after-ms", "1500")], Some(1500)),
            (&[("retry-after-ms", "20"), ("retry-after", "5")], Some(20)),
            (&[("retry-after", "2")], Some(2000)),
            (&[("retry-after", "0.5")], Some(500)),
            (
                &[("retry-after", "Thu, 01 Jan 2026 00:00:30 GMT")],
                Some(30_000),
            ),
            (&[("retry-after", "Wed, 31 Dec 2025 23:00:00 GMT")], None),
            (&[("retry-after", "0")], None),
            (&[("retry-after", "")], None),
            (&[("retry-after", "soon")], None),
            (&[], None),
        ];
        for (pairs, expected) in cases {
            let mut headers = HeaderMap::new();
            for (k, v) in *pairs {
                headers.insert(
                    reqwest::header::HeaderName::from_static(k),
                    v.parse().expect("header value"),
                );
            }
            assert_eq!(
                header_delay(&headers, now).map(|d| d.as_millis()),
                *expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_cap() {
        let policy = RetryPolicy::default();
        for (retry, nominal_ms) in [
            (1, 200.0),
            (2, 400.0),
            (3, 800.0),
            (6, 6400.0),
            (7, 8000.0),
            (40, 8000.0),
        ] {
            let ms = backoff(&policy, retry).as_secs_f64() * 1000.0;
            assert!(
                (nominal_ms * 0.9..nominal_ms * 1.1).contains(&ms),
                "retry {retry}: {ms}"
            );
        }
    }
}
