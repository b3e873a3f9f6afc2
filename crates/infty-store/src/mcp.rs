//! What `run.json` records of a run's Model Context Protocol servers, so that a resumed run
//! starts the same servers again.
//!
//! Plain data: this module starts nothing and talks to no server. It must never hold a
//! secret: headers and pass-through environment variables are recorded by the *name* of the
//! variable that holds their value, and [`McpServerRecord::check_no_secrets`] refuses
//! anything that is not such a name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::metadata::{is_env_var_name, url_has_userinfo};

/// One MCP server of a run: how to reach it, who may use it, and what it offered.
///
/// Exactly one of `command` (a stdio server) and `url` (a streamable-HTTP server) is set.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(default)]
pub struct McpServerRecord {
    /// The server's name; its tools reach the model as `NAME__tool`.
    pub name: String,
    /// The program of a stdio server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Variables set for it, with literal values from the configuration (not secrets).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Variables passed through from infty's environment, by name only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_vars: Vec<String>,
    /// The endpoint of a streamable-HTTP server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP headers sent to it: header name to the environment variable holding its value.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Roles that may use its tools: `solver`, `director`, `verifier` (every Verifier) or a
    /// role's own name.
    pub roles: Vec<String>,
    /// The server's tools the roles may use; `None` means all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Seconds one tool call may take.
    pub timeout_secs: u64,
    /// The sandbox a stdio server runs in.
    pub sandbox: McpSandbox,
    /// The tools it offered when it was last started, as the model sees them (`NAME__tool`).
    pub offered: Vec<String>,
}

/// The sandbox a stdio server runs in.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum McpSandbox {
    /// The policy of the shell tool of the roles that use it.
    #[default]
    Shell,
    /// None: the server runs with the user's rights (the configuration said so).
    Off,
}

impl McpServerRecord {
    /// Seconds a tool call may take when the configuration names none.
    pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

    /// Refuses header and variable entries that are not variable names, and URLs carrying
    /// credentials: whatever looks like a secret stays out of `run.json`.
    pub fn check_no_secrets(&self) -> Result<(), StoreError> {
        if self.headers.values().any(|name| !is_env_var_name(name)) {
            return Err(StoreError::SecretRefused {
                field: "options.mcp.headers",
                reason: "each header value must be the NAME of an environment variable (letters, digits, `_`), not the value",
            });
        }
        if self.env_vars.iter().any(|name| !is_env_var_name(name)) {
            return Err(StoreError::SecretRefused {
                field: "options.mcp.env_vars",
                reason: "each entry must be the NAME of an environment variable (letters, digits, `_`)",
            });
        }
        if self.url.as_deref().is_some_and(url_has_userinfo) {
            return Err(StoreError::SecretRefused {
                field: "options.mcp.url",
                reason: "it carries credentials before `@`",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_refused() {
        let base = McpServerRecord {
            name: "tracker".into(),
            url: Some("https://mcp.example/mcp".into()),
            headers: BTreeMap::from([("Authorization".into(), "TRACKER_TOKEN".into())]),
            ..McpServerRecord::default()
        };
        assert!(base.check_no_secrets().is_ok());
        let cases = [
            McpServerRecord {
                headers: BTreeMap::from([("Authorization".into(), "Bearer abc".into())]),
                ..base.clone()
            },
            McpServerRecord {
                env_vars: vec!["sk-123".into()],
                ..base.clone()
            },
            McpServerRecord {
                url: Some("https://user:pw@mcp.example/".into()),
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.check_no_secrets().is_err(), "{case:?}");
        }
    }

    #[test]
    fn an_old_record_without_new_keys_loads() {
        let record: McpServerRecord =
            serde_json::from_str(r#"{"name":"x","command":"srv"}"#).expect("loads");
        assert_eq!(record.sandbox, McpSandbox::Shell);
        assert!(record.offered.is_empty());
    }
}
