//! Streams a hostile or broken server may send: one huge event, a stream that never ends,
//! absurd usage, tool-call fragments that change id, and context-window questions.

use std::time::Duration;

use futures::stream;
use infty_model::test_support::{ChatSse, decode_chunks, decode_chunks_within};
use infty_model::{
    ModelError, ProviderConfig, StreamLimits, WindowSource, WireApi, discover_context_window,
};

use crate::{Recorder, error_kind};

const CHUNK: usize = 16 * 1024;

fn chunked(body: &str) -> Vec<Vec<u8>> {
    body.as_bytes().chunks(CHUNK).map(<[u8]>::to_vec).collect()
}

#[tokio::test]
async fn one_50_mb_event_decodes() {
    let delta = "x".repeat(50 << 20);
    let body = format!(
        "data: {{\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"{delta}\"}}\n\n\
         data: {{\"type\":\"response.completed\",\"response\":{{\"id\":\"r\"}}}}\n\n"
    );
    let response = decode_chunks(
        WireApi::Responses,
        stream::iter(chunked(&body)),
        Duration::from_secs(60),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(response.text().len(), 50 << 20);
}

#[tokio::test]
async fn an_event_over_its_cap_ends_with_a_clear_error() {
    let body = format!("data: {}\n\n", "x".repeat(1 << 20));
    let limits = StreamLimits {
        max_event_bytes: 1000,
        ..StreamLimits::default()
    };
    let err = decode_chunks_within(
        WireApi::Chat,
        stream::iter(chunked(&body)),
        Duration::from_secs(5),
        limits,
        &|_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(error_kind(&err), "response_too_large");
    assert!(!err.is_retryable());
    assert_eq!(
        err.to_string(),
        "response from recorded stream is too large: one event is over 1000 bytes (the limit of one event)"
    );
}

#[tokio::test]
async fn an_endless_stream_ends_at_the_response_cap() {
    let event = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more \"}}]}\n\n";
    let chunk = event.repeat(100).into_bytes();
    // Never ends by itself: only the cap stops it.
    let endless = stream::iter(std::iter::repeat(chunk));
    let limits = StreamLimits {
        max_response_bytes: 1 << 20,
        ..StreamLimits::default()
    };
    let err = decode_chunks_within(
        WireApi::Chat,
        endless,
        Duration::from_secs(5),
        limits,
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ModelError::ResponseTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("over 1048576 bytes"), "{err}");
}

#[tokio::test]
async fn absurd_usage_is_unknown_never_a_cut_stream() {
    for usage in [
        r#"{"prompt_tokens":-5,"completion_tokens":2,"total_tokens":-3}"#,
        r#"{"prompt_tokens":1.5,"completion_tokens":2}"#,
        r#"{"prompt_tokens":18446744073709551615,"completion_tokens":1,"total_tokens":18446744073709551615}"#,
        r#""lots""#,
    ] {
        let body = format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"hi\"}}}}]}}\n\n\
             data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"stop\"}}],\"usage\":{usage}}}\n\n\
             data: [DONE]\n\n"
        );
        let recorder = Recorder::default();
        let response = decode_chunks(
            WireApi::Chat,
            stream::iter([body.into_bytes()]),
            Duration::from_secs(5),
            &recorder.callback(),
        )
        .await
        .unwrap_or_else(|e| panic!("{usage}: {e}"));
        assert_eq!(response.text(), "hi", "{usage}");
        assert_eq!(response.usage, None, "{usage}");
    }
    let body = "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r\",\"usage\":{\"input_tokens\":-1,\"output_tokens\":2}}}\n\n";
    let response = decode_chunks(
        WireApi::Responses,
        stream::iter([body.as_bytes().to_vec()]),
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(response.usage, None);
}

#[tokio::test]
async fn tool_call_fragments_that_change_id_are_one_call() {
    // Kimi/Moonshot: index 0 throughout, a fresh id on every fragment, the name first.
    let fragments = [
        r#"{"index":0,"id":"tool_A1","type":"function","function":{"name":"read_file","arguments":""}}"#,
        r#"{"index":0,"id":"tool_B2","function":{"arguments":"{\"pa"}}"#,
        r#"{"index":0,"id":"tool_C3","function":{"arguments":"th\":\"REA"}}"#,
        r#"{"index":0,"id":"tool_D4","function":{"arguments":"DME.md\"}"}}"#,
    ];
    let mut body = String::new();
    for fragment in fragments {
        body.push_str(&format!(
            "data: {{\"id\":\"k\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{fragment}]}}}}]}}\n\n"
        ));
    }
    body.push_str("data: {\"id\":\"k\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n");
    let response = decode_chunks(
        WireApi::Chat,
        stream::iter([body.into_bytes()]),
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap();
    let calls: Vec<_> = response.function_calls().collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].call_id, "tool_A1");
    assert_eq!(calls[0].name, "read_file");
    assert_eq!(calls[0].arguments, r#"{"path":"README.md"}"#);
    // The builder's streams (Ollama-style ids per call) still give two calls.
    let two = ChatSse::new("c")
        .function_call("c1", "a", "{}")
        .function_call("c2", "b", "{}")
        .build();
    let response = decode_chunks(
        WireApi::Chat,
        stream::iter([two.into_bytes()]),
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(response.function_calls().count(), 2);
}

#[tokio::test]
async fn context_windows_are_asked_of_the_server_where_it_says_it() {
    let mut server = mockito::Server::new_async().await;
    let _models = server
        .mock("GET", "/v1/models")
        .with_body(r#"{"data":[{"id":"qwen","max_model_len":32768}]}"#)
        .create_async()
        .await;
    let _props = server
        .mock("GET", "/props")
        .with_body(r#"{"default_generation_settings":{"n_ctx":8192}}"#)
        .create_async()
        .await;
    let _show = server
        .mock("POST", "/api/show")
        .match_body(mockito::Matcher::PartialJsonString(
            r#"{"model":"llama3"}"#.into(),
        ))
        .with_body(r#"{"parameters":"num_ctx 16384","model_info":{"llama.context_length":131072}}"#)
        .create_async()
        .await;
    let base = format!("{}/v1", server.url());
    let with = |mut provider: ProviderConfig| {
        provider.base_url = base.clone();
        provider
    };
    let cases = [
        (
            with(ProviderConfig::vllm()),
            "qwen",
            Some(32_768),
            "/v1/models",
        ),
        (
            with(ProviderConfig::llama_cpp()),
            "any",
            Some(8192),
            "/props",
        ),
        (
            with(ProviderConfig::ollama()),
            "llama3",
            Some(16_384),
            "/api/show",
        ),
        // Not listed by /v1/models: /props answers for the single loaded model.
        (with(ProviderConfig::vllm()), "gpt-5", Some(8192), "/props"),
        // OpenAI is never asked; its table answers.
        (
            with(ProviderConfig::openai()),
            "gpt-5",
            Some(400_000),
            "built in",
        ),
    ];
    for (provider, model, tokens, source) in cases {
        let found = discover_context_window(&provider, model).await;
        assert_eq!(
            found.as_ref().map(|w| w.tokens),
            tokens,
            "{model} at {}",
            provider.name
        );
        let shown = match found.map(|w| w.source) {
            Some(WindowSource::Server(url)) => url.trim_start_matches(&server.url()).to_owned(),
            Some(WindowSource::BuiltIn) => "built in".to_owned(),
            None => "none".to_owned(),
        };
        assert_eq!(shown, source, "{model} at {}", provider.name);
    }
    // A server that says nothing: the table, else unknown.
    let silent = mockito::Server::new_async().await;
    let mut provider = ProviderConfig::vllm();
    provider.base_url = format!("{}/v1", silent.url());
    assert_eq!(
        discover_context_window(&provider, "gpt-4o")
            .await
            .map(|w| w.tokens),
        Some(128_000)
    );
    assert_eq!(discover_context_window(&provider, "mystery").await, None);
}
