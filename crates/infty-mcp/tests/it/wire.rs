//! The tool definitions as each wire API receives them from a session holding MCP tools,
//! with a provider that takes strict schemas (OpenAI): converted schemas go `strict: true`,
//! one that cannot be converted goes `strict: false` with the server's own schema.

use std::sync::Arc;

use camino::Utf8PathBuf;
use infty_core::session::{NoObserver, RoleSession, SessionConfig};
use infty_core::tools::{ToolContext, ToolPolicy, ToolProvider, ToolSet};
use infty_mcp::{HostEnv, McpTools};
use infty_model::test_support::{ChatSse, ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{ApiKey, ModelClient, ProviderConfig, ToolChoice, WireApi};
use infty_store::{JsonlWriter, McpServerRecord, Role};
use serde_json::Value;

use super::{counter_in, stdio_record};

async fn tools_sent(wire: WireApi) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let run = Utf8PathBuf::from_path_buf(dir.path().to_path_buf()).unwrap();
    let server = ScriptedServer::start_async(|_| "model".to_string()).await;
    let reply = match wire {
        WireApi::Responses => ResponsesSse::new("r1").text("done").usage(10, 5).build(),
        WireApi::Chat => ChatSse::new("c1").text("done").usage(10, 5).build(),
    };
    server.push("model", ScriptedReply::sse(reply));
    let mut provider = ProviderConfig::openai();
    provider.base_url = server.base_url();
    provider.wire_api = wire;
    provider.api_key = Some(ApiKey::new("sk-test"));
    let model = Arc::new(ModelClient::new(provider).unwrap());

    let record = McpServerRecord {
        tools: Some(vec!["echo".into(), "labels".into()]),
        ..stdio_record("t", &counter_in(&dir), 10)
    };
    let mcp = Arc::new(
        McpTools::start(&[record], &HostEnv::default(), None)
            .await
            .unwrap(),
    );
    let mut policy = ToolPolicy::director();
    policy.external = mcp
        .definitions("solver")
        .into_iter()
        .map(|d| d.name)
        .collect();
    let tools =
        ToolSet::new(ToolContext::new(run.clone()), policy).with_provider(mcp.clone(), "solver");
    let config = SessionConfig {
        role: Role::Solver,
        model: "m".into(),
        reasoning_effort: None,
        instructions: "Work.".into(),
        output_schema: None,
        max_tool_steps: 4,
        context_window: None,
        compact_threshold: 0.8,
        compact_keep_items: 8,
        reasoning_summary: None,
        max_output_tokens: None,
        first_tool_choice: ToolChoice::Auto,
    };
    let writer = JsonlWriter::open(&run.join("solver.jsonl")).unwrap();
    let mut session = RoleSession::new(config, model, tools, writer);
    session.run_turn("go", &NoObserver).await.unwrap();
    mcp.shutdown().await;
    let (_, body) = server.requests().remove(0);
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|tool| {
            let name = tool["name"].as_str().or(tool["function"]["name"].as_str());
            name.unwrap_or_default().contains("__")
        })
        .cloned()
        .collect()
}

#[tokio::test]
async fn responses_gets_flat_tools_strict_where_converted() {
    insta::assert_json_snapshot!("wire_responses", tools_sent(WireApi::Responses).await);
}

#[tokio::test]
async fn chat_gets_nested_tools_strict_where_converted() {
    insta::assert_json_snapshot!("wire_chat", tools_sent(WireApi::Chat).await);
}
