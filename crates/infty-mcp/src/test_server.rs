//! A small MCP server for tests, built on the same SDK: `echo`, `add`, `big`, `labels`
//! (a schema that cannot be strict), `crash` (the process exits) and `hang` (never answers).
//!
//! It appends one JSON line per call it receives (`{"tool", "arguments"}`) to a counter file
//! when given one, so tests can tell how often a call reached it. Served over stdio by the
//! `infty-mcp-test-server` binary and over streamable HTTP on loopback by [`serve_http`].
//! Only for tests (feature `test-server`); it must never be offered to users.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// The test server's tools and where it counts calls.
#[derive(Debug, Clone, Default)]
pub struct TestServer {
    counter: Option<PathBuf>,
}

impl TestServer {
    /// A server appending each call it receives to `counter`, if given.
    pub fn new(counter: Option<PathBuf>) -> TestServer {
        TestServer { counter }
    }

    fn count(&self, tool: &str, arguments: &Option<Map<String, Value>>) {
        let Some(path) = &self.counter else { return };
        let line = json!({"tool": tool, "arguments": arguments}).to_string();
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{line}");
            let _ = file.sync_all();
        }
    }
}

fn schema(value: Value) -> Arc<Map<String, Value>> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(Map::new()),
    }
}

/// The tools the server lists.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "echo",
            "Return the text, repeated `times` times (default once).",
            schema(json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "text": {"type": "string", "description": "What to say.", "minLength": 1},
                    "times": {"type": "integer", "minimum": 1, "default": 1}
                },
                "required": ["text"]
            })),
        ),
        Tool::new(
            "add",
            "Add two numbers.",
            schema(json!({
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"]
            })),
        ),
        Tool::new(
            "big",
            "Return `bytes` bytes of numbered lines.",
            schema(json!({
                "type": "object",
                "properties": {"bytes": {"type": "integer"}},
                "required": ["bytes"]
            })),
        ),
        Tool::new(
            "labels",
            "Count the labels given as a map of names to values.",
            schema(json!({
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                },
                "required": ["labels"]
            })),
        ),
        Tool::new(
            "crash",
            "Stop the server process at once.",
            schema(json!({"type": "object"})),
        ),
        Tool::new(
            "hang",
            "Never answer.",
            schema(json!({"type": "object", "properties": {}})),
        ),
    ]
}

fn text(value: impl Into<String>) -> CallToolResponse {
    CallToolResponse::from(CallToolResult::success(vec![ContentBlock::text(value)]))
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.count(&request.name, &request.arguments);
        let arguments = request.arguments.unwrap_or_default();
        match request.name.as_ref() {
            "echo" => {
                let Some(said) = arguments.get("text").and_then(Value::as_str) else {
                    return Err(ErrorData::invalid_params("`text` must be a string", None));
                };
                if arguments.contains_key("times") && !arguments["times"].is_u64() {
                    return Err(ErrorData::invalid_params(
                        "`times` must be an integer",
                        None,
                    ));
                }
                let times = arguments.get("times").and_then(Value::as_u64).unwrap_or(1);
                Ok(text(vec![said; times.min(100) as usize].join(" ")))
            }
            "add" => {
                let a = arguments.get("a").and_then(Value::as_f64).unwrap_or(0.0);
                let b = arguments.get("b").and_then(Value::as_f64).unwrap_or(0.0);
                Ok(text((a + b).to_string()))
            }
            "big" => {
                let bytes = arguments.get("bytes").and_then(Value::as_u64).unwrap_or(0) as usize;
                let mut out = String::new();
                let mut line = 1;
                while out.len() < bytes {
                    out.push_str(&format!("line {line}\n"));
                    line += 1;
                }
                out.truncate(bytes);
                Ok(text(out))
            }
            "labels" => {
                let count = arguments
                    .get("labels")
                    .and_then(Value::as_object)
                    .map_or(0, Map::len);
                Ok(text(format!("{count} labels")))
            }
            "crash" => std::process::exit(3),
            "hang" => {
                std::future::pending::<()>().await;
                Ok(text("never"))
            }
            other => Err(ErrorData::invalid_params(
                format!("no tool named {other}"),
                None,
            )),
        }
    }
}

/// Serves a [`TestServer`] over streamable HTTP on a loopback port until `cancel` fires;
/// returns the endpoint's URL.
pub async fn serve_http(
    counter: Option<PathBuf>,
    cancel: CancellationToken,
) -> std::io::Result<String> {
    let service: StreamableHttpService<TestServer, LocalSessionManager> =
        StreamableHttpService::new(
            move || Ok(TestServer::new(counter.clone())),
            Default::default(),
            StreamableHttpServerConfig::default()
                .with_sse_keep_alive(None)
                .with_cancellation_token(cancel.child_token()),
        );
    let router = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { cancel.cancelled_owned().await })
            .await;
    });
    Ok(format!("http://{address}/mcp"))
}
