//! Recorded streams decode the same whatever the framing: whole, CRLF line endings, no
//! blank line after the last event, or cut into tiny chunks that split lines, events and
//! multi-byte characters.

use std::time::Duration;

use futures::stream;
use infty_model::WireApi;
use infty_model::test_support::decode_chunks;

use crate::{Recorder, fixture, outcome_json};

/// Decodes `body` delivered in chunks of `chunk_size` bytes (0 = one chunk).
async fn decode(wire_api: WireApi, body: &[u8], chunk_size: usize) -> serde_json::Value {
    let chunks: Vec<Vec<u8>> = if chunk_size == 0 {
        vec![body.to_vec()]
    } else {
        body.chunks(chunk_size).map(<[u8]>::to_vec).collect()
    };
    let recorder = Recorder::default();
    let result = decode_chunks(
        wire_api,
        stream::iter(chunks),
        Duration::from_secs(5),
        &recorder.callback(),
    )
    .await;
    outcome_json(&result, &recorder.events())
}

const FIXTURES: &[(&str, WireApi)] = &[
    ("responses_text.sse", WireApi::Responses),
    ("responses_reasoning_call.sse", WireApi::Responses),
    ("responses_parallel_calls.sse", WireApi::Responses),
    ("responses_incomplete.sse", WireApi::Responses),
    ("responses_rate_limited.sse", WireApi::Responses),
    ("responses_context_overflow.sse", WireApi::Responses),
    ("responses_quota_error.sse", WireApi::Responses),
    ("responses_quirks.sse", WireApi::Responses),
    ("responses_cut_mid_event.sse", WireApi::Responses),
    // Recorded from llama.cpp's llama-server (llama-cpp-python 0.3.36): no sequence_number,
    // output_index or content_index, items keyed by item_id; cut at max_output_tokens = 40
    // yet `completed`.
    ("responses_llama_cpp.sse", WireApi::Responses),
    ("chat_text.sse", WireApi::Chat),
    ("chat_parallel_calls.sse", WireApi::Chat),
    ("chat_ollama_same_index.sse", WireApi::Chat),
    ("chat_missing_ids.sse", WireApi::Chat),
    ("chat_reasoning_quirks.sse", WireApi::Chat),
    ("chat_error_in_stream.sse", WireApi::Chat),
    ("chat_vllm_error.sse", WireApi::Chat),
    ("chat_length.sse", WireApi::Chat),
    ("chat_cut.sse", WireApi::Chat),
    ("chat_done_before_finish.sse", WireApi::Chat),
];

#[tokio::test]
async fn fixtures_decode_identically_under_any_framing() {
    for (name, wire_api) in FIXTURES {
        let body = fixture(name);
        let expected = decode(*wire_api, body.as_bytes(), 0).await;
        let crlf = body.replace('\n', "\r\n");
        let no_final_blank_line = body.trim_end_matches('\n');
        for (label, bytes, chunk) in [
            ("no final blank line", no_final_blank_line.as_bytes(), 0),
            ("1-byte chunks", body.as_bytes(), 1),
            ("7-byte chunks", body.as_bytes(), 7),
            ("crlf", crlf.as_bytes(), 0),
            ("crlf 3-byte chunks", crlf.as_bytes(), 3),
        ] {
            let got = decode(*wire_api, bytes, chunk).await;
            assert_eq!(got, expected, "{name} with {label}");
        }
        let snapshot = name.trim_end_matches(".sse");
        insta::assert_json_snapshot!(snapshot, expected);
    }
}

#[tokio::test]
async fn builders_round_trip_through_the_decoder() {
    use infty_model::test_support::{ChatSse, ResponsesSse};
    let responses = ResponsesSse::new("resp_b")
        .reasoning("Need two files.")
        .text("Reading both.")
        .function_call("call_1", "read_file", r#"{"path":"a.md"}"#)
        .function_call("call_2", "read_file", r#"{"path":"b.md"}"#)
        .usage(100, 20)
        .build();
    let chat = ChatSse::new("chat_b")
        .reasoning("Need two files.")
        .text("Reading both.")
        .function_call("call_1", "read_file", r#"{"path":"a.md"}"#)
        .function_call("call_2", "read_file", r#"{"path":"b.md"}"#)
        .usage(100, 20)
        .build();
    let responses = decode(WireApi::Responses, responses.as_bytes(), 0).await;
    let chat = decode(WireApi::Chat, chat.as_bytes(), 0).await;
    insta::assert_json_snapshot!("builder_responses", responses);
    insta::assert_json_snapshot!("builder_chat", chat);
}

#[tokio::test]
async fn builder_failure_and_cut_variants() {
    use infty_model::test_support::{ChatSse, ResponsesSse};
    let cases = [
        (
            WireApi::Responses,
            ResponsesSse::new("r").text("hi").build_without_terminal(),
            "stream_interrupted",
        ),
        (
            WireApi::Responses,
            ResponsesSse::new("r").build_failed("server_error", "boom"),
            "retryable",
        ),
        (
            WireApi::Responses,
            ResponsesSse::new("r").build_failed("context_length_exceeded", "too long"),
            "context_window_exceeded",
        ),
        (
            WireApi::Chat,
            ChatSse::new("c").text("hi").build_without_terminal(),
            "stream_interrupted",
        ),
        (
            WireApi::Chat,
            ChatSse::new("c").build_failed("insufficient_quota", "pay up"),
            "quota_exceeded",
        ),
    ];
    for (wire_api, body, expected) in cases {
        let got = decode(wire_api, body.as_bytes(), 0).await;
        assert_eq!(got["outcome"]["error"], expected, "{body}");
    }
    let incomplete = ResponsesSse::new("r")
        .text("partial")
        .build_incomplete("max_output_tokens");
    let got = decode(WireApi::Responses, incomplete.as_bytes(), 0).await;
    assert_eq!(got["outcome"]["incomplete"], "max_output_tokens");
}

#[tokio::test]
async fn llama_cpp_reports_a_cut_response_only_through_its_token_count() {
    let body = fixture("responses_llama_cpp.sse");
    let response = decode_chunks(
        WireApi::Responses,
        stream::iter(vec![body.into_bytes()]),
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(response.incomplete, None);
    assert!(response.text().starts_with('{'));
    assert!(response.hit_output_cap(Some(40)));
    assert!(!response.hit_output_cap(Some(41)));
}
