//! One MCP server of a run: its connection, its calls, and its one restart.
//!
//! A server is started once with the run. When it dies (the process exits, the HTTP session
//! ends), the call that was running is answered as failed with unknown effects, never sent
//! again; the next call starts it once more, and if it dies a second time its tools answer
//! with errors for the rest of the run. Each call has a timeout; a server that does not
//! answer in time gives the model an error and stays up for the next call. Nothing here may
//! fail the run: every problem is a failed [`ToolResult`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use infty_core::tools::ToolResult;
use rmcp::model::{CallToolRequestParams, Tool};
use rmcp::service::{Peer, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use tokio::io::AsyncBufReadExt;
use tokio::sync::Mutex;

use crate::output;
use crate::spawn::{self, StdioLaunch};

/// How to reach a server, fully resolved (header values and variables read).
#[derive(Clone)]
pub enum Launch {
    /// A child process speaking over stdin and stdout.
    Stdio(StdioLaunch),
    /// A streamable-HTTP endpoint.
    Http {
        /// The endpoint.
        url: String,
        /// Headers sent with every request (values from the environment).
        headers: Vec<(String, String)>,
    },
}

impl std::fmt::Debug for Launch {
    /// Shows header names, never their values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Launch::Stdio(launch) => launch.fmt(f),
            Launch::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(name, _)| name).collect::<Vec<_>>(),
                )
                .finish(),
        }
    }
}

/// A live connection to a server.
struct Connection {
    service: RunningService<RoleClient, ()>,
    process_group: Option<u32>,
    /// The last line the server wrote to its standard error, for messages.
    last_stderr: Arc<std::sync::Mutex<String>>,
}

impl Connection {
    fn peer(&self) -> Peer<RoleClient> {
        self.service.peer().clone()
    }

    fn is_down(&self) -> bool {
        self.service.peer().is_transport_closed() || self.service.is_closed()
    }

    async fn stop(mut self) {
        let _ = self
            .service
            .close_with_timeout(Duration::from_secs(5))
            .await;
        if let Some(group) = self.process_group {
            spawn::kill_group(group);
        }
    }
}

/// The connection, if any, and whether the one restart was used.
struct Slot {
    connection: Option<Connection>,
    restarted: bool,
    /// Why the server is down, when it is.
    reason: String,
}

/// One server: how to reach it, its timeout, and its current connection.
pub struct Server {
    name: String,
    launch: Launch,
    timeout: Duration,
    slot: Mutex<Slot>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.name)
            .field("launch", &self.launch)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Starts the server and lists its tools; the error is one line for `create` to show.
    pub async fn start(
        name: &str,
        launch: Launch,
        timeout: Duration,
    ) -> Result<(Server, Vec<Tool>), String> {
        let connection = connect(&launch, timeout).await?;
        let listed = tokio::time::timeout(timeout, connection.peer().list_all_tools()).await;
        let tools = match listed {
            Ok(Ok(tools)) => tools,
            Ok(Err(error)) => {
                let reason = format!("listing its tools failed: {}", describe(&error));
                connection.stop().await;
                return Err(reason);
            }
            Err(_) => {
                connection.stop().await;
                return Err(format!(
                    "listing its tools took longer than {}s",
                    timeout.as_secs()
                ));
            }
        };
        let server = Server {
            name: name.to_string(),
            launch,
            timeout,
            slot: Mutex::new(Slot {
                connection: Some(connection),
                restarted: false,
                reason: String::new(),
            }),
        };
        Ok((server, tools))
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls `tool` (the server's own name for it) with `arguments`; `shown` is the name the
    /// model used, for messages.
    pub async fn call(
        &self,
        shown: &str,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        budget: usize,
    ) -> ToolResult {
        let peer = match self.peer().await {
            Ok(peer) => peer,
            Err(reason) => return ToolResult::failure(format!("error: {reason}")),
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let outcome = tokio::time::timeout(self.timeout, peer.call_tool(params)).await;
        match outcome {
            Ok(Ok(result)) => output::render(&result, budget),
            Ok(Err(error)) => {
                if peer.is_transport_closed() || matches!(error, ServiceError::TransportClosed) {
                    let next = self.mark_down().await;
                    ToolResult::failure(format!(
                        "error: MCP server {} stopped during this call of `{shown}`, so its effects are unknown; check before retrying. {next}",
                        self.name
                    ))
                } else {
                    ToolResult::failure(output::cut(
                        &format!(
                            "error: MCP server {} failed the call of `{shown}`: {}",
                            self.name,
                            describe(&error)
                        ),
                        budget,
                    ))
                }
            }
            Err(_) => ToolResult::failure(format!(
                "error: `{shown}` did not finish within {}s (MCP server {}), so its effects are unknown; check before retrying",
                self.timeout.as_secs(),
                self.name
            )),
        }
    }

    /// A peer to call through: the running connection, or a restarted one if the server
    /// stopped and still has its restart.
    async fn peer(&self) -> Result<Peer<RoleClient>, String> {
        let mut slot = self.slot.lock().await;
        if let Some(connection) = &slot.connection {
            if !connection.is_down() {
                return Ok(connection.peer());
            }
            let stderr = last_line(&connection.last_stderr);
            tracing::warn!(server = %self.name, stderr, "mcp server stopped");
        }
        if let Some(connection) = slot.connection.take() {
            connection.stop().await;
            slot.reason = "it stopped".to_string();
        }
        if slot.restarted {
            return Err(format!(
                "MCP server {} is unavailable for the rest of this run ({}; it was already restarted once)",
                self.name, slot.reason
            ));
        }
        slot.restarted = true;
        tracing::info!(server = %self.name, "restarting mcp server");
        match connect(&self.launch, self.timeout).await {
            Ok(connection) => {
                let peer = connection.peer();
                slot.connection = Some(connection);
                Ok(peer)
            }
            Err(reason) => {
                let message = format!(
                    "MCP server {} stopped and could not be restarted: {reason}",
                    self.name
                );
                slot.reason = format!("its restart failed: {reason}");
                Err(message)
            }
        }
    }

    /// Records that the server stopped during a call; says what happens next.
    async fn mark_down(&self) -> &'static str {
        let mut slot = self.slot.lock().await;
        // Another call may have restarted it meanwhile: only a connection that is down goes.
        if slot.connection.as_ref().is_some_and(Connection::is_down)
            && let Some(connection) = slot.connection.take()
        {
            connection.stop().await;
            slot.reason = "it stopped during a call".to_string();
        }
        if slot.restarted {
            "It was already restarted once, so its tools are unavailable for the rest of this run."
        } else {
            "It will be restarted for the next call."
        }
    }

    /// Stops the server (and whatever its process started).
    pub async fn stop(&self) {
        let mut slot = self.slot.lock().await;
        slot.restarted = true;
        slot.reason = "the run stopped".to_string();
        if let Some(connection) = slot.connection.take() {
            connection.stop().await;
        }
    }
}

/// Opens a connection: starts the process or reaches the URL, then the protocol handshake.
async fn connect(launch: &Launch, timeout: Duration) -> Result<Connection, String> {
    let last_stderr = Arc::new(std::sync::Mutex::new(String::new()));
    let (service, process_group) = match launch {
        Launch::Stdio(stdio) => {
            let spawned = spawn::spawn_stdio(stdio)
                .map_err(|error| format!("cannot run `{}`: {error}", stdio.command))?;
            if let Some(stderr) = spawned.stderr {
                let last = Arc::clone(&last_stderr);
                let server = stdio.server.clone();
                tokio::spawn(async move {
                    let mut lines = tokio::io::BufReader::new(stderr).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        tracing::debug!(server = %server, "mcp stderr: {line}");
                        if !line.trim().is_empty()
                            && let Ok(mut slot) = last.lock()
                        {
                            *slot = line.chars().take(300).collect();
                        }
                    }
                });
            }
            let group = spawned.process_group;
            match tokio::time::timeout(timeout, ().serve(spawned.transport)).await {
                Ok(Ok(service)) => (service, group),
                Ok(Err(error)) => {
                    if let Some(group) = group {
                        spawn::kill_group(group);
                    }
                    // Give the stderr reader a moment to catch the server's last words.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Err(with_stderr(
                        format!("the handshake failed: {error}"),
                        &last_stderr,
                    ));
                }
                Err(_) => {
                    if let Some(group) = group {
                        spawn::kill_group(group);
                    }
                    return Err(format!(
                        "it did not complete the handshake within {}s",
                        timeout.as_secs()
                    ));
                }
            }
        }
        Launch::Http { url, headers } => {
            let mut custom = HashMap::new();
            for (name, value) in headers {
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|_| format!("header name {name:?} is invalid"))?;
                let value = HeaderValue::try_from(value.as_str()).map_err(|_| {
                    format!("the value of header {name} is not a valid header value")
                })?;
                custom.insert(name, value);
            }
            let config =
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom);
            let transport = StreamableHttpClientTransport::from_config(config);
            match tokio::time::timeout(timeout, ().serve(transport)).await {
                Ok(Ok(service)) => (service, None),
                Ok(Err(error)) => return Err(format!("the handshake with {url} failed: {error}")),
                Err(_) => {
                    return Err(format!(
                        "{url} did not complete the handshake within {}s",
                        timeout.as_secs()
                    ));
                }
            }
        }
    };
    Ok(Connection {
        service,
        process_group,
        last_stderr,
    })
}

fn last_line(slot: &std::sync::Mutex<String>) -> String {
    slot.lock().map(|line| line.clone()).unwrap_or_default()
}

fn with_stderr(message: String, slot: &std::sync::Mutex<String>) -> String {
    let line = last_line(slot);
    if line.is_empty() {
        message
    } else {
        format!("{message} (its last words: {line})")
    }
}

/// One line for an error of the protocol: the server's own message when it sent one.
fn describe(error: &ServiceError) -> String {
    match error {
        ServiceError::McpError(data) => data.message.to_string(),
        other => other.to_string(),
    }
    .replace('\n', " ")
}
