//! The bodies the client sends, per wire API and per provider preset, as the server
//! received them.

use infty_model::test_support::{ChatSse, ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{
    ApiKey, Item, ModelApi, ModelClient, ModelRequest, OutputSchema, ProviderConfig, Role,
    ToolChoice, ToolSpec, WireApi,
};
use serde_json::json;

/// A call id as vLLM mints them: 46 characters.
const VLLM_CALL_ID: &str = "chatcmpl-tool-8f3b2a1c9d7e4f60a5b3c2d1e0f9a8b7";

pub(crate) fn rich_request() -> ModelRequest {
    ModelRequest {
        model: "gpt-5".into(),
        instructions: "You are the Solver.".into(),
        input: vec![
            Item::Message {
                role: Role::Developer,
                text: "Be terse.".into(),
            },
            Item::user("What does README.md say?"),
            Item::Reasoning {
                raw: json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"}),
            },
            Item::Reasoning {
                raw: json!({"type": "reasoning", "text": "reasoning recorded from a chat server"}),
            },
            Item::assistant("Let me look."),
            // vLLM's ids run past the 40 characters OpenAI Chat accepts.
            Item::FunctionCall {
                call_id: VLLM_CALL_ID.into(),
                name: "read_file".into(),
                arguments: r#"{"path":"README.md"}"#.into(),
            },
            Item::FunctionCall {
                call_id: "call_b".into(),
                name: "list_dir".into(),
                arguments: r#"{"path":"."}"#.into(),
            },
            Item::function_output(VLLM_CALL_ID, "# infty"),
            Item::function_output("call_b", "README.md\nsrc/"),
            // Without its encrypted content a stateless server cannot resolve it.
            Item::Reasoning {
                raw: json!({"type": "reasoning", "id": "rs_2", "summary": []}),
            },
            Item::FunctionCall {
                call_id: "call_c".into(),
                name: "list_dir".into(),
                arguments: r#"{"path":"src"}"#.into(),
            },
            Item::function_output("call_c", "lib.rs"),
            Item::assistant("It says: infty."),
            // Its following item was cut away (compaction, a crash): never sent alone.
            Item::Reasoning {
                raw: json!({"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "gBBBB"}),
            },
            Item::user("Now write the answer."),
        ],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a UTF-8 file".into(),
            parameters: json!({
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
                "additionalProperties": false,
            }),
            strict: true,
        }],
        tool_choice: ToolChoice::Auto,
        parallel_tool_calls: true,
        reasoning_effort: Some("high".into()),
        reasoning_summary: None,
        output_schema: Some(OutputSchema {
            name: "final_delivery".into(),
            schema: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"], "additionalProperties": false}),
            strict: true,
        }),
        max_output_tokens: Some(2048),
    }
}

fn minimal_request(tool_choice: ToolChoice, with_tool: bool) -> ModelRequest {
    let mut request = ModelRequest {
        model: "llama3".into(),
        input: vec![Item::user("hi")],
        tool_choice,
        ..ModelRequest::default()
    };
    if with_tool {
        request.tools = rich_request().tools;
    }
    request
}

/// Sends `request` through `provider` pointed at a scripted server; returns the body.
pub(crate) async fn sent_body(
    mut provider: ProviderConfig,
    request: &ModelRequest,
) -> serde_json::Value {
    let server = ScriptedServer::start_async(|_| "model".to_owned()).await;
    let body = match provider.wire_api {
        WireApi::Responses => ResponsesSse::new("resp_1").text("ok").build(),
        WireApi::Chat => ChatSse::new("chat_1").text("ok").build(),
    };
    server.push("model", ScriptedReply::sse(body));
    provider.base_url = server.base_url();
    provider.api_key = Some(ApiKey::new("sk-test"));
    let client = ModelClient::new(provider).unwrap();
    let response = client.complete(request, &|_| {}).await.unwrap();
    assert_eq!(response.text(), "ok");
    let mut requests = server.requests();
    assert_eq!(requests.len(), 1);
    requests.remove(0).1
}

pub(crate) fn with_wire(mut provider: ProviderConfig, wire_api: WireApi) -> ProviderConfig {
    provider.wire_api = wire_api;
    provider
}

#[tokio::test]
async fn rich_request_per_provider() {
    let cases = [
        ("openai_responses", ProviderConfig::openai()),
        (
            "openai_chat",
            with_wire(ProviderConfig::openai(), WireApi::Chat),
        ),
        ("ollama_chat", ProviderConfig::ollama()),
        ("vllm_chat", ProviderConfig::vllm()),
        ("llama_cpp_chat", ProviderConfig::llama_cpp()),
        (
            "llama_cpp_responses",
            with_wire(ProviderConfig::llama_cpp(), WireApi::Responses),
        ),
        ("lm_studio_chat", ProviderConfig::lm_studio()),
        ("openrouter_chat", ProviderConfig::openrouter()),
        (
            "lm_studio_responses",
            with_wire(ProviderConfig::lm_studio(), WireApi::Responses),
        ),
    ];
    for (name, provider) in cases {
        let body = sent_body(provider, &rich_request()).await;
        insta::assert_json_snapshot!(name, body);
    }
}

/// llama.cpp ignores `tools` when a schema comes with them, so it gets the schema only on
/// requests without tools: as `response_format` on both endpoints (its `/v1/responses`
/// ignores `text.format`).
#[tokio::test]
async fn llama_cpp_gets_the_schema_without_tools() {
    let mut request = rich_request();
    request.tools.clear();
    request.tool_choice = ToolChoice::None;
    for (name, wire_api) in [
        ("llama_cpp_schema_chat", WireApi::Chat),
        ("llama_cpp_schema_responses", WireApi::Responses),
    ] {
        let body = sent_body(with_wire(ProviderConfig::llama_cpp(), wire_api), &request).await;
        insta::assert_json_snapshot!(name, body);
    }
}

#[tokio::test]
async fn minimal_requests_and_tool_choices() {
    let cases = [
        (
            "minimal_responses",
            WireApi::Responses,
            ToolChoice::Auto,
            false,
        ),
        ("minimal_chat", WireApi::Chat, ToolChoice::Auto, false),
        (
            "named_function_responses",
            WireApi::Responses,
            ToolChoice::Function("read_file".into()),
            true,
        ),
        (
            "named_function_chat",
            WireApi::Chat,
            ToolChoice::Function("read_file".into()),
            true,
        ),
        ("required_chat", WireApi::Chat, ToolChoice::Required, true),
        ("none_responses", WireApi::Responses, ToolChoice::None, true),
    ];
    for (name, wire_api, choice, with_tool) in cases {
        let provider = with_wire(ProviderConfig::openai(), wire_api);
        let body = sent_body(provider, &minimal_request(choice, with_tool)).await;
        insta::assert_json_snapshot!(name, body);
    }
}

#[tokio::test]
async fn sends_bearer_key_and_extra_headers() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", "/api/v1/chat/completions")
        .match_header("authorization", "Bearer sk-or-secret")
        .match_header("x-title", "infty")
        .match_header("content-type", "application/json")
        .with_header("content-type", "text/event-stream")
        .with_body(ChatSse::new("c").text("ok").build())
        .create_async()
        .await;
    let mut provider = ProviderConfig::openrouter()
        .resolve_api_key_with(|var| (var == "OPENROUTER_API_KEY").then(|| "sk-or-secret".into()))
        .unwrap();
    provider.base_url = format!("{}/api/v1", server.url());
    let client = ModelClient::new(provider).unwrap();
    let response = client
        .complete(&minimal_request(ToolChoice::Auto, false), &|_| {})
        .await
        .unwrap();
    assert_eq!(response.text(), "ok");
    mock.assert_async().await;
    assert!(!format!("{client:?}").contains("sk-or-secret"));
}

#[tokio::test]
async fn no_authorization_header_without_key() {
    let mut server = mockito::Server::new_async().await;
    let mock = server
        .mock("POST", "/v1/chat/completions")
        .match_header("authorization", mockito::Matcher::Missing)
        .with_body(ChatSse::new("c").text("ok").build())
        .create_async()
        .await;
    let mut provider = ProviderConfig::ollama();
    provider.base_url = format!("{}/v1", server.url());
    let client = ModelClient::new(provider).unwrap();
    client
        .complete(&minimal_request(ToolChoice::Auto, false), &|_| {})
        .await
        .unwrap();
    mock.assert_async().await;
}

/// What a Responses request asks of reasoning, per model and setting: encrypted reasoning
/// is included whenever reasoning may come back (any effort, none included, or a model
/// known to reason), and a summary only when asked for.
#[tokio::test]
async fn reasoning_settings_on_the_responses_api() {
    let history = vec![
        Item::user("go"),
        Item::Reasoning {
            raw: json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"}),
        },
        Item::FunctionCall {
            call_id: "call_1".into(),
            name: "read_file".into(),
            arguments: "{}".into(),
        },
        Item::function_output("call_1", "ok"),
    ];
    let cases: [(&str, &str, Option<&str>, Option<&str>); 5] = [
        ("reasoning_default_gpt5", "gpt-5", None, None),
        ("reasoning_effort_none", "gpt-5.1", Some("none"), None),
        (
            "reasoning_summary_asked",
            "gpt-5",
            Some("low"),
            Some("concise"),
        ),
        ("reasoning_non_reasoning_model", "gpt-4o", None, None),
        ("reasoning_unknown_model_replaying", "my-model", None, None),
    ];
    let mut bodies = serde_json::Map::new();
    for (name, model, effort, summary) in cases {
        let mut request = ModelRequest {
            model: model.into(),
            input: history.clone(),
            reasoning_effort: effort.map(str::to_owned),
            reasoning_summary: summary.map(str::to_owned),
            ..ModelRequest::default()
        };
        if name == "reasoning_non_reasoning_model" {
            request
                .input
                .retain(|item| !matches!(item, Item::Reasoning { .. }));
        }
        let body = sent_body(ProviderConfig::openai(), &request).await;
        let keep = |key: &str| body.get(key).cloned().unwrap_or(serde_json::Value::Null);
        bodies.insert(
            name.into(),
            json!({"reasoning": keep("reasoning"), "include": keep("include"), "store": keep("store")}),
        );
    }
    insta::assert_json_snapshot!("reasoning_settings", bodies);
}
