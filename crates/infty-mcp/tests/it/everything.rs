//! The published reference server `@modelcontextprotocol/server-everything` (npm), when
//! `.ci/run` installed it: `INFTY_MCP_EVERYTHING` names its executable. Without it the tests
//! say so and pass: a developer machine need not have Node.

use infty_core::tools::ToolProvider;
use infty_mcp::{HostEnv, McpTools};
use infty_store::McpServerRecord;
use serde_json::json;

fn everything() -> Option<McpServerRecord> {
    let Ok(command) = std::env::var("INFTY_MCP_EVERYTHING") else {
        eprintln!("INFTY_MCP_EVERYTHING is not set: the published-server test is skipped");
        return None;
    };
    Some(McpServerRecord {
        name: "everything".into(),
        command: Some(command),
        args: vec!["stdio".into()],
        roles: vec!["solver".into()],
        timeout_secs: 30,
        ..McpServerRecord::default()
    })
}

#[tokio::test]
async fn the_published_reference_server_is_listed_converted_and_called() {
    let Some(record) = everything() else { return };
    let env = HostEnv::of([
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("OPENAI_API_KEY", "sk-never-passed-4242".to_string()),
    ]);
    let tools = McpTools::start(&[record], &env, None).await.unwrap();
    let definitions = tools.definitions("solver");
    let summary: Vec<_> = definitions
        .iter()
        .map(|definition| json!({"name": definition.name, "strict": definition.strict}))
        .collect();
    insta::assert_json_snapshot!("everything_tools", summary);
    let echo = tools
        .call("everything__echo", r#"{"message": "hello"}"#, 1000)
        .await;
    assert!(echo.ok, "{}", echo.output);
    assert!(echo.output.contains("hello"), "{}", echo.output);
    let add = tools
        .call("everything__get-sum", r#"{"a": 2, "b": 3}"#, 1000)
        .await;
    assert!(add.output.contains('5'), "{}", add.output);
    // The server reports its own environment: the driver's key is not in it.
    let env = tools.call("everything__get-env", "{}", 100_000).await;
    assert!(env.ok, "{}", env.output);
    assert!(env.output.contains("PATH"), "{}", env.output);
    assert!(
        !env.output.contains("sk-never-passed-4242"),
        "{}",
        env.output
    );
    tools.shutdown().await;
}
