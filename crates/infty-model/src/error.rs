//! The one error type of this crate, shaped by what the caller does next.
//!
//! Every variant says which action fits: wait and retry, compact the history, fix the key,
//! fix the request, stop. Messages name the URL (without credentials), the HTTP status, the
//! provider's own message and its request id. This module must never format an API key:
//! no variant holds one, and URLs are shown through [`display_url`], which drops user info
//! and query strings.

use std::time::Duration;

/// What went wrong talking to a model, grouped by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The server could not be reached (refused, reset, DNS, TLS, connect timeout).
    /// Retry after a pause.
    #[error("cannot reach {url}: {message}")]
    Connect {
        /// Endpoint that was being called (credentials removed).
        url: String,
        /// What the transport reported.
        message: String,
    },
    /// The server answered with a transient failure (408, 409, 429 rate limit, 5xx, or the
    /// same inside a stream). Wait `delay` if given (the server's hint), then retry.
    #[error("transient failure at {url}{}: {message}{}", status_text(*status), request_id_text(request_id.as_deref()))]
    Retryable {
        /// Endpoint that was being called.
        url: String,
        /// HTTP status, when the failure came as one (none for in-stream failures).
        status: Option<u16>,
        /// The provider's message.
        message: String,
        /// How long the server asked us to wait (`retry-after-ms`, `retry-after`, "try again in").
        delay: Option<Duration>,
        /// The provider's request id (`x-request-id` and friends).
        request_id: Option<String>,
    },
    /// The response stream stopped before its terminal event: cut, silent past the idle
    /// timeout, or broken by the transport. Send the whole request again.
    #[error("stream from {url} disconnected before completion: {message}{}", request_id_text(request_id.as_deref()))]
    StreamInterrupted {
        /// Endpoint that was being called.
        url: String,
        /// Why the stream is considered dead.
        message: String,
        /// The provider's request id, if the response carried one.
        request_id: Option<String>,
    },
    /// One SSE event or the whole response went past its cap
    /// ([`StreamLimits`](crate::StreamLimits)): a server sending an endless or oversized
    /// answer. Not retried: the same request would most likely loop the same way, and each
    /// attempt would again hold up to the cap.
    #[error("response from {url} is too large: {message}{}", request_id_text(request_id.as_deref()))]
    ResponseTooLarge {
        /// Endpoint that was being called.
        url: String,
        /// Which cap was passed.
        message: String,
        /// The provider's request id, if the response carried one.
        request_id: Option<String>,
    },
    /// Every retry in the budget was spent; `last` is the final failure.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// How many attempts were made in total.
        attempts: u32,
        /// The failure of the last attempt.
        last: Box<ModelError>,
    },
    /// The conversation no longer fits the model's context window. Compact or trim the
    /// history, then retry.
    #[error("context window exceeded at {url}{}: {message}{}", status_text(*status), request_id_text(request_id.as_deref()))]
    ContextWindowExceeded {
        /// Endpoint that was being called.
        url: String,
        /// HTTP status, when the failure came as one.
        status: Option<u16>,
        /// The provider's message.
        message: String,
        /// The provider's request id.
        request_id: Option<String>,
    },
    /// The account is out of quota or credits. Stop; a person must act.
    #[error("quota exceeded at {url}{}: {message}{}", status_text(*status), request_id_text(request_id.as_deref()))]
    QuotaExceeded {
        /// Endpoint that was being called.
        url: String,
        /// HTTP status, when the failure came as one.
        status: Option<u16>,
        /// The provider's message.
        message: String,
        /// The provider's request id.
        request_id: Option<String>,
    },
    /// The key was refused (401) or lacks permission (403). Fix the credentials.
    #[error("authentication failed at {url} (status {status}): {message}{}", request_id_text(request_id.as_deref()))]
    Auth {
        /// Endpoint that was being called.
        url: String,
        /// HTTP status (401 or 403).
        status: u16,
        /// The provider's message.
        message: String,
        /// The provider's request id.
        request_id: Option<String>,
    },
    /// The server refused the request as it is (400, 404, 422, other 4xx, or a failed
    /// response it will not serve). Retrying the same request will not help.
    #[error("request refused by {url}{}: {message}{}", status_text(*status), request_id_text(request_id.as_deref()))]
    InvalidRequest {
        /// Endpoint that was being called.
        url: String,
        /// HTTP status, when the failure came as one.
        status: Option<u16>,
        /// The provider's message.
        message: String,
        /// The provider's request id.
        request_id: Option<String>,
    },
    /// The provider needs an API key and the named environment variable is unset or blank.
    #[error("provider {provider} needs an API key: set the environment variable {var}")]
    MissingApiKey {
        /// Provider name (e.g. `openai`).
        provider: String,
        /// Name of the environment variable that should hold the key.
        var: String,
    },
    /// The provider configuration cannot work (bad base URL, bad header, unknown preset).
    #[error("invalid model provider configuration: {0}")]
    Config(String),
}

impl ModelError {
    /// True when sending the same request again (after [`ModelError::retry_delay`] or a
    /// backoff) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Connect { .. } | Self::Retryable { .. } | Self::StreamInterrupted { .. }
        )
    }

    /// True when the history must shrink before the model can answer (also looks through
    /// [`ModelError::RetriesExhausted`]).
    pub fn is_context_overflow(&self) -> bool {
        match self {
            Self::ContextWindowExceeded { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_context_overflow(),
            _ => false,
        }
    }

    /// True when the account is out of quota or credits (also looks through
    /// [`ModelError::RetriesExhausted`]). A person must act; waiting does not help.
    pub fn is_quota(&self) -> bool {
        match self {
            Self::QuotaExceeded { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_quota(),
            _ => false,
        }
    }

    /// True when the key was refused or lacks permission.
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Auth { .. } | Self::MissingApiKey { .. } => true,
            Self::RetriesExhausted { last, .. } => last.is_auth(),
            _ => false,
        }
    }

    /// True when a rate or usage limit (HTTP 429, or a limit reported in the stream) stopped
    /// the call and the client's retries could not wait it out: either the server asked for
    /// a longer wait than the client honours, or every retry met the limit again. The
    /// caller may park the work until [`ModelError::rate_limit_wait`] has passed.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Self::Retryable {
                status, message, ..
            } => *status == Some(429) || (status.is_none() && mentions_limit(message)),
            Self::RetriesExhausted { last, .. } => last.is_rate_limited(),
            _ => false,
        }
    }

    /// How long the server said a rate or usage limit lasts, when it said (also looks
    /// through [`ModelError::RetriesExhausted`]).
    pub fn rate_limit_wait(&self) -> Option<Duration> {
        match self {
            Self::Retryable { delay, .. } => *delay,
            Self::RetriesExhausted { last, .. } => last.rate_limit_wait(),
            _ => None,
        }
    }

    /// The wait the server asked for, if it asked.
    pub fn retry_delay(&self) -> Option<Duration> {
        match self {
            Self::Retryable { delay, .. } => *delay,
            _ => None,
        }
    }

    /// The HTTP status the failure came with, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Retryable { status, .. }
            | Self::ContextWindowExceeded { status, .. }
            | Self::QuotaExceeded { status, .. }
            | Self::InvalidRequest { status, .. } => *status,
            Self::Auth { status, .. } => Some(*status),
            Self::RetriesExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The provider's request id, if the failing response carried one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Retryable { request_id, .. }
            | Self::StreamInterrupted { request_id, .. }
            | Self::ResponseTooLarge { request_id, .. }
            | Self::ContextWindowExceeded { request_id, .. }
            | Self::QuotaExceeded { request_id, .. }
            | Self::Auth { request_id, .. }
            | Self::InvalidRequest { request_id, .. } => request_id.as_deref(),
            Self::RetriesExhausted { last, .. } => last.request_id(),
            _ => None,
        }
    }
}

/// Whether an in-stream failure's text names a rate or usage limit.
fn mentions_limit(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    ["rate limit", "usage limit", "rate_limit", "usage_limit"]
        .iter()
        .any(|needle| lower.contains(needle))
}

fn status_text(status: Option<u16>) -> String {
    status
        .map(|s| format!(" with status {s}"))
        .unwrap_or_default()
}

fn request_id_text(request_id: Option<&str>) -> String {
    request_id
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

/// Renders a URL for messages: user info and query string are dropped, because either may
/// carry a credential.
pub(crate) fn display_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    // Both setters only fail for URLs that cannot have credentials; nothing to strip then.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_url_status_and_request_id() {
        let err = ModelError::Retryable {
            url: "http://127.0.0.1:9/v1/responses".into(),
            status: Some(503),
            message: "overloaded".into(),
            delay: None,
            request_id: Some("req_1".into()),
        };
        assert_eq!(
            err.to_string(),
            "transient failure at http://127.0.0.1:9/v1/responses with status 503: overloaded (request id req_1)"
        );
        let err = ModelError::Connect {
            url: "http://127.0.0.1:9/v1/responses".into(),
            message: "connection refused".into(),
        };
        assert_eq!(
            err.to_string(),
            "cannot reach http://127.0.0.1:9/v1/responses: connection refused"
        );
    }

    #[test]
    fn display_url_drops_credentials_and_query() {
        let url = reqwest::Url::parse("https://user:secret@example.com/v1/responses?key=sk-1")
            .expect("url");
        assert_eq!(display_url(&url), "https://example.com/v1/responses");
    }

    #[test]
    fn classification_helpers() {
        let overflow = ModelError::ContextWindowExceeded {
            url: "u".into(),
            status: Some(400),
            message: "too long".into(),
            request_id: None,
        };
        assert!(overflow.is_context_overflow());
        assert!(!overflow.is_retryable());
        let exhausted = ModelError::RetriesExhausted {
            attempts: 3,
            last: Box::new(ModelError::StreamInterrupted {
                url: "u".into(),
                message: "cut".into(),
                request_id: Some("r".into()),
            }),
        };
        assert!(!exhausted.is_retryable());
        assert_eq!(exhausted.request_id(), Some("r"));
    }

    #[test]
    fn limits_and_quota() {
        let limited =
            |status: Option<u16>, message: &str, delay: Option<u64>| ModelError::Retryable {
                url: "u".into(),
                status,
                message: message.into(),
                delay: delay.map(Duration::from_secs),
                request_id: None,
            };
        let cases: &[(ModelError, bool, Option<u64>)] = &[
            (
                limited(Some(429), "slow down", Some(3600)),
                true,
                Some(3600),
            ),
            (limited(Some(503), "overloaded", None), false, None),
            (
                limited(None, "You've hit your usage limit", None),
                true,
                None,
            ),
            (limited(None, "server_error", None), false, None),
            (
                ModelError::RetriesExhausted {
                    attempts: 5,
                    last: Box::new(limited(Some(429), "rate limit", Some(2))),
                },
                true,
                Some(2),
            ),
        ];
        for (error, rate_limited, wait) in cases {
            assert_eq!(error.is_rate_limited(), *rate_limited, "{error}");
            assert_eq!(
                error.rate_limit_wait(),
                wait.map(Duration::from_secs),
                "{error}"
            );
            assert!(!error.is_quota());
        }
        let quota = ModelError::QuotaExceeded {
            url: "u".into(),
            status: Some(429),
            message: "insufficient_quota".into(),
            request_id: None,
        };
        assert!(quota.is_quota() && !quota.is_rate_limited());
    }
}
