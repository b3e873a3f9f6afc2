//! Integration tests of infty-mcp against real MCP servers built from the same SDK: the test
//! server as a child process over stdio, and in process over streamable HTTP on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod everything;
mod http;
mod schema;
mod stdio;
mod wire;

use std::path::{Path, PathBuf};

use infty_store::McpServerRecord;
use serde_json::Value;

/// The test server binary built with this crate.
pub fn test_server() -> String {
    env!("CARGO_BIN_EXE_infty-mcp-test-server").to_string()
}

/// A record for the stdio test server counting calls in `counter`.
pub fn stdio_record(name: &str, counter: &Path, timeout_secs: u64) -> McpServerRecord {
    McpServerRecord {
        name: name.to_string(),
        command: Some(test_server()),
        args: vec!["--counter".into(), counter.display().to_string()],
        roles: vec!["solver".into()],
        timeout_secs,
        ..McpServerRecord::default()
    }
}

/// The calls the test server received, one JSON object each.
pub fn received(counter: &Path) -> Vec<Value> {
    std::fs::read_to_string(counter)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Where a test's server counts its calls.
pub fn counter_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("calls.jsonl")
}
