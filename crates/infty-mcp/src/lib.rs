//! Model Context Protocol servers as tools for the roles of an infty run, on the official Rust
//! SDK (`rmcp`).
//!
//! [`McpTools::start`] starts every server a run records ([`infty_store::McpServerRecord`]):
//! stdio servers as child processes (through one function, [`spawn`], with an allowlisted
//! environment), streamable-HTTP servers with headers read from named environment variables.
//! It lists their tools, names them `SERVER__tool` for the model, converts their JSON Schemas
//! to the strict subset of the OpenAI APIs where that is possible ([`schema`]), and serves
//! them to `infty-core` through its [`infty_core::tools::ToolProvider`] seam.
//!
//! - [`schema`]: strict-mode conversion of a server's input schema, and the undoing of its
//!   nullable stand-ins before a call reaches the server.
//! - [`server`]: one server's connection: start, call with a timeout, one restart.
//! - [`output`]: a tool result as the text the model reads, cut to the output budget.
//! - [`spawn`]: the only place a stdio server process is started.
//!
//! This crate never fails a run once it started: a server that dies, hangs or answers
//! nonsense becomes a failed tool result for the model. It never re-sends a call whose
//! outcome is unknown, never passes infty's own environment (and its API key) to a server,
//! and never writes a secret anywhere.

mod error;
pub mod output;
mod provider;
pub mod schema;
pub mod server;
pub mod spawn;
#[cfg(feature = "test-server")]
pub mod test_server;

pub use error::McpError;
pub use provider::{
    HostEnv, MAX_EXTERNAL_TOOLS, MAX_SCHEMA_BYTES, McpTools, SERVER_NAME_RULE, validate_server_name,
};
