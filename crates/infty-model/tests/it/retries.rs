//! Every row of the retry table (wire-formats §6): what is retried, what is not, how
//! long the client waits, and when it gives up.

use std::time::Duration;

use infty_model::test_support::{ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{Item, ModelApi, ModelClient, ModelError, ModelRequest, ProviderConfig, WireApi};

use crate::{Recorder, error_kind, fast_provider};

fn request() -> ModelRequest {
    ModelRequest {
        model: "m".into(),
        input: vec![Item::user("hi")],
        ..ModelRequest::default()
    }
}

fn success() -> ScriptedReply {
    ScriptedReply::sse(ResponsesSse::new("resp_ok").text("done").build())
}

struct Run {
    result: Result<String, ModelError>,
    requests: usize,
    retries: Vec<(u32, u32, Duration)>,
}

/// Serves `replies` in order (then a success), returns what the client made of them.
async fn run(replies: Vec<ScriptedReply>, configure: impl FnOnce(&mut ProviderConfig)) -> Run {
    let server = ScriptedServer::start_async(|_| "r".to_owned()).await;
    for reply in replies {
        server.push("r", reply);
    }
    server.push("r", success());
    let mut provider = fast_provider(server.base_url(), WireApi::Responses);
    configure(&mut provider);
    let client = ModelClient::new(provider).unwrap();
    let recorder = Recorder::default();
    let result = client
        .complete(&request(), &recorder.callback())
        .await
        .map(|r| r.text());
    Run {
        result,
        requests: server.requests().len(),
        retries: recorder.retries(),
    }
}

fn err_body(code: &str, kind: &str) -> String {
    serde_json::json!({"error": {"message": format!("{code} happened"), "type": kind, "param": null, "code": code}})
        .to_string()
}

#[tokio::test]
async fn retried_statuses_then_success() {
    let cases: &[(u16, &str, &str)] = &[
        (408, "timeout", "invalid_request_error"),
        (409, "conflict", "invalid_request_error"),
        (429, "rate_limit_exceeded", "requests"),
        (500, "server_error", "server_error"),
        (502, "bad_gateway", "server_error"),
        (503, "server_is_overloaded", "server_error"),
        (504, "gateway_timeout", "server_error"),
    ];
    for (status, code, kind) in cases {
        let run = run(
            vec![ScriptedReply::error(*status, &err_body(code, kind))],
            |_| {},
        )
        .await;
        assert_eq!(run.result.unwrap(), "done", "status {status}");
        assert_eq!(run.requests, 2, "status {status}");
        assert_eq!(run.retries.len(), 1, "status {status}");
        assert_eq!(
            (run.retries[0].0, run.retries[0].1),
            (1, 3),
            "status {status}"
        );
    }
}

#[tokio::test]
async fn never_retried() {
    let cases: &[(u16, &str, &str, &str)] = &[
        (
            400,
            "invalid_value",
            "invalid_request_error",
            "invalid_request",
        ),
        (
            400,
            "context_length_exceeded",
            "invalid_request_error",
            "context_window_exceeded",
        ),
        (401, "invalid_api_key", "invalid_request_error", "auth"),
        (402, "payment_required", "billing", "quota_exceeded"),
        (403, "unsupported_country", "invalid_request_error", "auth"),
        (
            404,
            "model_not_found",
            "invalid_request_error",
            "invalid_request",
        ),
        (
            422,
            "unprocessable",
            "invalid_request_error",
            "invalid_request",
        ),
        (
            429,
            "insufficient_quota",
            "insufficient_quota",
            "quota_exceeded",
        ),
    ];
    for (status, code, kind, expected) in cases {
        let run = run(
            vec![
                ScriptedReply::error(*status, &err_body(code, kind))
                    .with_header("x-request-id", "req_42"),
            ],
            |_| {},
        )
        .await;
        let err = run.result.unwrap_err();
        assert_eq!(error_kind(&err), *expected, "status {status} {code}");
        assert_eq!(run.requests, 1, "status {status} {code}");
        assert!(run.retries.is_empty());
        assert_eq!(err.status(), Some(*status));
        assert_eq!(err.request_id(), Some("req_42"));
        let message = err.to_string();
        assert!(message.contains(&format!("{code} happened")), "{message}");
        assert!(message.contains("/v1/responses"), "{message}");
        assert!(message.contains("req_42"), "{message}");
    }
}

#[tokio::test]
async fn honours_retry_after_headers() {
    let cases: &[(&[(&str, &str)], Duration)] = &[
        (&[("retry-after-ms", "7")], Duration::from_millis(7)),
        (&[("retry-after", "0.011")], Duration::from_millis(11)),
        (
            &[("retry-after-ms", "5"), ("retry-after", "0.040")],
            Duration::from_millis(5),
        ),
    ];
    for (headers, expected) in cases {
        let mut reply = ScriptedReply::error(429, &err_body("rate_limit_exceeded", "tokens"));
        for (k, v) in *headers {
            reply = reply.with_header(k, v);
        }
        let run = run(vec![reply], |_| {}).await;
        assert_eq!(run.result.unwrap(), "done");
        assert_eq!(run.retries, [(1, 3, *expected)], "{headers:?}");
    }
}

#[tokio::test]
async fn retry_after_beyond_the_cap_fails_fast_with_the_hint() {
    let reply = ScriptedReply::error(503, &err_body("slow_down", "server_error"))
        .with_header("retry-after", "600");
    let run = run(vec![reply], |_| {}).await;
    let err = run.result.unwrap_err();
    assert_eq!(error_kind(&err), "retryable");
    assert_eq!(err.retry_delay(), Some(Duration::from_secs(600)));
    assert_eq!(run.requests, 1);
}

#[tokio::test]
async fn backoff_grows_between_retries() {
    let replies = (0..3)
        .map(|_| ScriptedReply::error(500, &err_body("server_error", "server_error")))
        .collect();
    let run = run(replies, |p| {
        p.retry.base_delay = Duration::from_millis(2);
        p.retry.max_delay = Duration::from_millis(6);
    })
    .await;
    assert_eq!(run.result.unwrap(), "done");
    let delays: Vec<u128> = run.retries.iter().map(|r| r.2.as_micros()).collect();
    // 2 ms, 4 ms, then capped at 6 ms, each within ±10 % jitter.
    for (delay, nominal) in delays.iter().zip([2000.0, 4000.0, 6000.0]) {
        let delay = *delay as f64;
        assert!(
            (nominal * 0.9..nominal * 1.1).contains(&delay),
            "{delays:?}"
        );
    }
}

#[tokio::test]
async fn request_budget_runs_out() {
    let replies = (0..5)
        .map(|_| ScriptedReply::error(503, &err_body("server_is_overloaded", "server_error")))
        .collect();
    let run = run(replies, |p| p.retry.max_request_retries = 2).await;
    let err = run.result.unwrap_err();
    assert_eq!(error_kind(&err), "retries_exhausted");
    assert_eq!(run.requests, 3);
    match &err {
        ModelError::RetriesExhausted { attempts, last } => {
            assert_eq!(*attempts, 3);
            assert_eq!(last.status(), Some(503));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().starts_with("gave up after 3 attempts: "),
        "{err}"
    );
}

#[tokio::test]
async fn zero_budget_means_one_attempt() {
    let run = run(
        vec![ScriptedReply::error(
            500,
            &err_body("server_error", "server_error"),
        )],
        |p| p.retry.max_request_retries = 0,
    )
    .await;
    assert_eq!(error_kind(&run.result.unwrap_err()), "retries_exhausted");
    assert_eq!(run.requests, 1);
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported_with_the_url() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut provider = fast_provider(format!("http://127.0.0.1:{port}/v1"), WireApi::Responses);
    provider.retry.max_request_retries = 2;
    let client = ModelClient::new(provider).unwrap();
    let recorder = Recorder::default();
    let err = client
        .complete(&request(), &recorder.callback())
        .await
        .unwrap_err();
    assert_eq!(recorder.retries().len(), 2);
    let ModelError::RetriesExhausted { attempts: 3, last } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(error_kind(last), "connect");
    let message = last.to_string();
    assert!(
        message.starts_with(&format!(
            "cannot reach http://127.0.0.1:{port}/v1/responses: "
        )),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn missing_key_is_reported_before_any_request() {
    let err = ModelClient::new(ProviderConfig::openai()).unwrap_err();
    assert_eq!(error_kind(&err), "missing_api_key");
    let err = ProviderConfig::openrouter()
        .resolve_api_key_with(|_| None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "provider openrouter needs an API key: set the environment variable OPENROUTER_API_KEY"
    );
}

#[tokio::test]
async fn bad_configuration_is_refused() {
    let cases = [
        ("not a url", "is not a valid url"),
        ("ftp://host/v1", "must be http or https"),
        ("http://user:pw@host/v1", "must not carry credentials"),
        ("http://host/v1?key=sk-1", "must not carry credentials"),
    ];
    for (base_url, expected) in cases {
        let mut provider = ProviderConfig::ollama();
        provider.base_url = base_url.into();
        let err = ModelClient::new(provider).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(expected), "{base_url}: {message}");
        assert!(
            !message.contains("pw@") && !message.contains("sk-1"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn an_echoed_key_is_scrubbed_from_errors() {
    let server = ScriptedServer::start_async(|_| "r".to_owned()).await;
    server.push(
        "r",
        ScriptedReply::error(
            401,
            r#"{"error":{"message":"Incorrect API key provided: sk-live-123. Check it.","code":"invalid_api_key"}}"#,
        ),
    );
    let mut provider = fast_provider(server.base_url(), WireApi::Responses);
    provider.api_key = Some(infty_model::ApiKey::new("sk-live-123"));
    let client = ModelClient::new(provider).unwrap();
    let err = client.complete(&request(), &|_| {}).await.unwrap_err();
    let shown = format!("{err} {err:?} {client:?}");
    assert!(!shown.contains("sk-live-123"), "{shown}");
    assert!(
        err.to_string()
            .contains("Incorrect API key provided: [redacted]. Check it."),
        "{err}"
    );
}
