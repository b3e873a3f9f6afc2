//! Streams that break: cut, cut mid-event, stalled, failed inside a 200, or complete
//! except for their closing formalities.

use std::time::Duration;

use infty_model::test_support::{ChatSse, ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{Item, ModelApi, ModelClient, ModelError, ModelRequest, StreamEvent, WireApi};

use crate::{Recorder, error_kind, event_line, fast_provider, fixture};

fn request() -> ModelRequest {
    ModelRequest {
        model: "m".into(),
        input: vec![Item::user("hi")],
        ..ModelRequest::default()
    }
}

struct Run {
    result: Result<String, ModelError>,
    requests: usize,
    events: Vec<StreamEvent>,
}

async fn run(wire_api: WireApi, replies: Vec<ScriptedReply>) -> Run {
    let server = ScriptedServer::start_async(|_| "r".to_owned()).await;
    for reply in replies {
        server.push("r", reply);
    }
    let client = ModelClient::new(fast_provider(server.base_url(), wire_api)).unwrap();
    let recorder = Recorder::default();
    let result = client
        .complete(&request(), &recorder.callback())
        .await
        .map(|r| r.text());
    Run {
        result,
        requests: server.requests().len(),
        events: recorder.events(),
    }
}

fn ok_responses() -> ScriptedReply {
    ScriptedReply::sse(ResponsesSse::new("resp_ok").text("recovered").build())
}

#[tokio::test]
async fn broken_streams_are_retried_as_a_whole() {
    let cases: &[(&str, WireApi, String, &str)] = &[
        (
            "cut before terminal",
            WireApi::Responses,
            ResponsesSse::new("r1")
                .text("partial answer")
                .build_without_terminal(),
            "stream closed before response.completed",
        ),
        (
            "cut mid-event",
            WireApi::Responses,
            fixture("responses_cut_mid_event.sse"),
            "stream closed before response.completed",
        ),
        (
            "empty body",
            WireApi::Responses,
            String::new(),
            "stream closed before response.completed",
        ),
        (
            "server error inside the stream",
            WireApi::Responses,
            ResponsesSse::new("r1").build_failed("server_error", "The server had an error"),
            "The server had an error",
        ),
        (
            "chat cut before finish_reason",
            WireApi::Chat,
            ChatSse::new("c1").text("partial").build_without_terminal(),
            "stream closed before finish_reason",
        ),
        (
            "chat provider error inside a 200",
            WireApi::Chat,
            fixture("chat_error_in_stream.sse"),
            "Upstream provider returned an error",
        ),
    ];
    for (name, wire_api, broken, reason) in cases {
        let good = match wire_api {
            WireApi::Responses => ok_responses(),
            WireApi::Chat => ScriptedReply::sse(ChatSse::new("c_ok").text("recovered").build()),
        };
        let run = run(*wire_api, vec![ScriptedReply::sse(broken.clone()), good]).await;
        assert_eq!(run.result.unwrap(), "recovered", "{name}");
        assert_eq!(run.requests, 2, "{name}");
        let retrying: Vec<&StreamEvent> = run
            .events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Retrying { .. }))
            .collect();
        assert_eq!(retrying.len(), 1, "{name}");
        let StreamEvent::Retrying {
            attempt,
            max,
            reason: got,
            ..
        } = retrying[0]
        else {
            unreachable!()
        };
        assert_eq!((*attempt, *max), (1, 3), "{name}");
        assert!(got.contains(reason), "{name}: {got}");
    }
}

#[tokio::test]
async fn events_show_the_void_attempt_then_the_retry() {
    let run = run(
        WireApi::Responses,
        vec![
            ScriptedReply::sse(
                ResponsesSse::new("r1")
                    .text("lost words")
                    .build_without_terminal(),
            ),
            ok_responses(),
        ],
    )
    .await;
    let lines: Vec<String> = run.events.iter().map(event_line).collect();
    assert_eq!(
        lines,
        [
            "created r1",
            "text \"lost \"",
            "text \"words\"",
            "retrying 1/3",
            "created resp_ok",
            "text \"recovered\"",
        ]
    );
}

#[tokio::test]
async fn rate_limit_inside_the_stream_waits_the_hinted_time() {
    let failed = ResponsesSse::new("r1").build_failed(
        "rate_limit_exceeded",
        "Rate limit reached. Please try again in 9ms.",
    );
    let run = run(
        WireApi::Responses,
        vec![ScriptedReply::sse(failed), ok_responses()],
    )
    .await;
    assert_eq!(run.result.unwrap(), "recovered");
    let delays: Vec<Duration> = run
        .events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [Duration::from_millis(9)]);
}

#[tokio::test]
async fn permanent_failures_inside_the_stream_are_not_retried() {
    let cases = [
        (
            ResponsesSse::new("r1").build_failed("context_length_exceeded", "Input too long."),
            "context_window_exceeded",
        ),
        (
            ResponsesSse::new("r1").build_failed("insufficient_quota", "You exceeded your quota."),
            "quota_exceeded",
        ),
        (
            ResponsesSse::new("r1").build_failed("invalid_prompt", "Prompt flagged."),
            "invalid_request",
        ),
    ];
    for (body, expected) in cases {
        let run = run(
            WireApi::Responses,
            vec![ScriptedReply::sse(body), ok_responses()],
        )
        .await;
        let err = run.result.unwrap_err();
        assert_eq!(error_kind(&err), expected);
        assert_eq!(run.requests, 1, "{expected}");
        assert_eq!(
            err.is_context_overflow(),
            expected == "context_window_exceeded"
        );
    }
}

#[tokio::test]
async fn stream_budget_runs_out() {
    let cut = || ScriptedReply::sse(ResponsesSse::new("r").text("x").build_without_terminal());
    let run = run(
        WireApi::Responses,
        vec![cut(), cut(), cut(), cut(), ok_responses()],
    )
    .await;
    let err = run.result.unwrap_err();
    let ModelError::RetriesExhausted { attempts, last } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(*attempts, 4);
    assert_eq!(error_kind(last), "stream_interrupted");
    assert_eq!(run.requests, 4);
}

#[tokio::test]
async fn request_and_stream_budgets_are_separate() {
    let run = run(
        WireApi::Responses,
        vec![
            ScriptedReply::error(503, r#"{"error":{"message":"busy"}}"#),
            ScriptedReply::sse(ResponsesSse::new("r").build_without_terminal()),
            ScriptedReply::error(503, r#"{"error":{"message":"busy"}}"#),
            ok_responses(),
        ],
    )
    .await;
    assert_eq!(run.result.unwrap(), "recovered");
    let attempts: Vec<String> = run
        .events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Retrying { .. }))
        .map(event_line)
        .collect();
    assert_eq!(attempts, ["retrying 1/3", "retrying 1/3", "retrying 2/3"]);
}

/// A mockito server whose first reply sends `head`, then stalls for `stall`, and whose
/// second reply is `good`.
async fn stalling_server(
    path: &str,
    head: String,
    stall: Duration,
    good: String,
) -> mockito::ServerGuard {
    let mut server = mockito::Server::new_async().await;
    server
        .mock("POST", path)
        .with_header("content-type", "text/event-stream")
        .with_chunked_body(move |w| {
            w.write_all(head.as_bytes())?;
            w.flush()?;
            std::thread::sleep(stall);
            w.write_all(b"\n")
        })
        .expect(1)
        .create_async()
        .await;
    server
        .mock("POST", path)
        .with_header("content-type", "text/event-stream")
        .with_body(good)
        .expect(1)
        .create_async()
        .await;
    server
}

#[tokio::test]
async fn a_silent_stream_times_out_and_is_retried() {
    let head = ResponsesSse::new("r_stall")
        .text("slow")
        .build_without_terminal();
    let good = ResponsesSse::new("r_ok").text("fast").build();
    let server = stalling_server("/v1/responses", head, Duration::from_millis(250), good).await;
    let mut provider = fast_provider(format!("{}/v1", server.url()), WireApi::Responses);
    provider.idle_timeout = Duration::from_millis(100);
    // mockito's stalled body blocks its server until the stall ends, so the retry may
    // itself wait for headers a while: give the request budget room.
    provider.retry.max_request_retries = 6;
    let client = ModelClient::new(provider).unwrap();
    let recorder = Recorder::default();
    let response = client
        .complete(&request(), &recorder.callback())
        .await
        .unwrap();
    assert_eq!(response.text(), "fast");
    let reasons: Vec<String> = recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Retrying { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert!(
        reasons[0].contains("disconnected before completion: no data for 100 ms (idle timeout)"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn chat_answer_complete_before_a_stall_is_kept() {
    // finish_reason arrived; the usage chunk and [DONE] never do.
    let full = ChatSse::new("c1").text("kept").build();
    let head = full[..full.find("data: [DONE]").unwrap()].to_owned();
    let server = stalling_server(
        "/v1/chat/completions",
        head,
        Duration::from_millis(250),
        ChatSse::new("c2").text("second").build(),
    )
    .await;
    let mut provider = fast_provider(format!("{}/v1", server.url()), WireApi::Chat);
    provider.idle_timeout = Duration::from_millis(100);
    let client = ModelClient::new(provider).unwrap();
    let recorder = Recorder::default();
    let response = client
        .complete(&request(), &recorder.callback())
        .await
        .unwrap();
    assert_eq!(response.text(), "kept");
    assert!(recorder.retries().is_empty());
}

#[tokio::test]
async fn servers_that_ignore_stream_true_are_understood() {
    let cases = [
        (
            "responses",
            WireApi::Responses,
            r#"{"id":"resp_w","object":"response","status":"completed","output":[
                {"id":"rs_1","type":"reasoning","summary":[],"encrypted_content":"e"},
                {"id":"msg_1","type":"message","role":"assistant","content":[{"type":"output_text","text":"whole"}]},
                {"id":"fc_1","type":"function_call","call_id":"call_1","name":"shell","arguments":"{}"}],
              "usage":{"input_tokens":3,"output_tokens":2,"total_tokens":5}}"#,
        ),
        (
            "chat",
            WireApi::Chat,
            r#"{"id":"chatcmpl-w","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"whole",
                "tool_calls":[{"id":"call_1","type":"function","function":{"name":"shell","arguments":"{}"}}]},"finish_reason":"tool_calls"}],
              "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}"#,
        ),
    ];
    for (name, wire_api, body) in cases {
        let server = ScriptedServer::start_async(|_| "r".to_owned()).await;
        server.push("r", ScriptedReply::json(body));
        let client = ModelClient::new(fast_provider(server.base_url(), wire_api)).unwrap();
        let response = client.complete(&request(), &|_| {}).await.unwrap();
        assert_eq!(response.text(), "whole", "{name}");
        let calls: Vec<_> = response
            .function_calls()
            .map(|c| (c.call_id, c.name))
            .collect();
        assert_eq!(calls, [("call_1", "shell")], "{name}");
        assert_eq!(response.usage.map(|u| u.total_tokens), Some(5), "{name}");
        assert_eq!(server.requests().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn an_error_object_in_a_200_json_body_is_classified() {
    let server = ScriptedServer::start_async(|_| "r".to_owned()).await;
    server.push(
        "r",
        ScriptedReply::json(r#"{"error":{"code":"context_length_exceeded","message":"too long"}}"#),
    );
    let client = ModelClient::new(fast_provider(server.base_url(), WireApi::Chat)).unwrap();
    let err = client.complete(&request(), &|_| {}).await.unwrap_err();
    assert!(err.is_context_overflow(), "{err}");
}

#[tokio::test]
async fn every_servers_context_overflow_is_known_as_one_and_never_retried() {
    use infty_model::test_support::CONTEXT_OVERFLOW_BODIES;
    for (server_name, status, body) in CONTEXT_OVERFLOW_BODIES {
        for wire_api in [WireApi::Chat, WireApi::Responses] {
            let run = run(
                wire_api,
                vec![ScriptedReply::error(status, body), ok_responses()],
            )
            .await;
            let err = run.result.unwrap_err();
            let case = format!("{server_name} over {wire_api:?}: {err}");
            assert!(err.is_context_overflow(), "{case}");
            assert_eq!(error_kind(&err), "context_window_exceeded", "{case}");
            assert_eq!(run.requests, 1, "{case}");
        }
    }
}
