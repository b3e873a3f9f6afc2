//! The servers of a run as one [`ToolProvider`]: their tools named for the model, offered to
//! the roles the configuration names, and their calls routed to the right server.
//!
//! A tool reaches the model as `SERVER__tool` (characters outside `[A-Za-z0-9_-]` become
//! `_`, and the whole is cut to 64 characters, the APIs' limit); a name that would clash with
//! another is dropped with a warning, and so is every tool past [`MAX_EXTERNAL_TOOLS`] and
//! every tool whose schema is larger than [`MAX_SCHEMA_BYTES`]. The
//! description names the server. Starting fails as a whole, with the first server that could
//! not start named, and stops the servers already started; once started, nothing fails.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use infty_core::tools::{ToolDefinition, ToolProvider, ToolResult};
use infty_store::{McpSandbox, McpServerRecord};
use serde_json::Value;

use crate::McpError;
use crate::schema::{self, Nulls};
use crate::server::{Launch, Server};
use crate::spawn::{BASE_ENV, StdioLaunch};

/// Most external tools offered in all (the APIs take at most 128 tools in a request, and the
/// built-in tools need room too).
pub const MAX_EXTERNAL_TOOLS: usize = 100;

/// Longest description sent for a tool; a server's longer text is cut.
const MAX_DESCRIPTION_CHARS: usize = 2048;

/// Largest parameters schema sent for a tool, in bytes of JSON: a larger one would weigh on
/// every request (or make the API refuse them all), so its tool is not offered.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;

/// What a server name must look like.
pub const SERVER_NAME_RULE: &str =
    "use 1 to 32 letters, digits, `_` or `-`, not starting with `-` and without `__`";

/// Checks a server's name, which prefixes its tools' names.
pub fn validate_server_name(name: &str) -> Result<(), McpError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && !name.contains("__")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(McpError::InvalidName {
            name: name.to_string(),
            rule: SERVER_NAME_RULE,
        })
    }
}

/// The environment infty reads server settings from (header values, pass-through
/// variables, the base variables of stdio servers).
#[derive(Clone, Default)]
pub struct HostEnv {
    vars: BTreeMap<String, OsString>,
}

impl std::fmt::Debug for HostEnv {
    /// Never shows values: the environment holds the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostEnv({} variables)", self.vars.len())
    }
}

impl HostEnv {
    /// This process's environment.
    pub fn current() -> HostEnv {
        HostEnv {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .collect(),
        }
    }

    /// An environment of exactly these variables.
    pub fn of<K: Into<String>, V: Into<OsString>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        HostEnv {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name)
    }
}

/// A tool as offered to the model.
#[derive(Debug)]
struct Offered {
    server: usize,
    /// The server's own name for it.
    original: String,
    definition: ToolDefinition,
    nulls: Nulls,
    /// Roles that may call it.
    roles: Vec<String>,
}

/// The running MCP servers of a run.
#[derive(Debug)]
pub struct McpTools {
    servers: Vec<Arc<Server>>,
    records: Vec<McpServerRecord>,
    tools: BTreeMap<String, Offered>,
}

impl McpTools {
    /// Starts every server of `records` (stdio servers in `cwd`), lists their tools, and
    /// keeps those their `tools` allow-lists name. Fails on the first server that cannot
    /// start, after stopping the others.
    pub async fn start(
        records: &[McpServerRecord],
        env: &HostEnv,
        cwd: Option<PathBuf>,
    ) -> Result<McpTools, McpError> {
        McpTools::start_sandboxed(records, env, cwd, None).await
    }

    /// [`McpTools::start`], with the stdio servers whose record says `sandbox = "shell"`
    /// started under `sandbox` (the shell tool's sandbox, through core's one process seam).
    pub async fn start_sandboxed(
        records: &[McpServerRecord],
        env: &HostEnv,
        cwd: Option<PathBuf>,
        sandbox: Option<infty_core::tools::SandboxSpec>,
    ) -> Result<McpTools, McpError> {
        let mut seen = BTreeSet::new();
        let mut launches = Vec::new();
        for record in records {
            validate_server_name(&record.name)?;
            if !seen.insert(record.name.clone()) {
                return Err(McpError::Duplicate {
                    name: record.name.clone(),
                });
            }
            launches.push(launch_of(record, env, cwd.clone(), sandbox.as_ref())?);
        }
        let mut tools = McpTools {
            servers: Vec::new(),
            records: Vec::new(),
            tools: BTreeMap::new(),
        };
        for (record, launch) in records.iter().zip(launches) {
            let timeout = Duration::from_secs(record.timeout_secs.max(1));
            match Server::start(&record.name, launch, timeout).await {
                Ok((server, listed)) => tools.add(record, server, listed),
                Err(reason) => {
                    tools.shutdown().await;
                    return Err(McpError::StartFailed {
                        name: record.name.clone(),
                        reason,
                    });
                }
            }
        }
        Ok(tools)
    }

    fn add(&mut self, record: &McpServerRecord, server: Server, listed: Vec<rmcp::model::Tool>) {
        let index = self.servers.len();
        self.servers.push(Arc::new(server));
        let mut offered = Vec::new();
        for tool in listed {
            if let Some(allowed) = &record.tools
                && !allowed.iter().any(|name| name == tool.name.as_ref())
            {
                continue;
            }
            let name = model_name(&record.name, &tool.name);
            if self.tools.contains_key(&name) {
                tracing::warn!(server = %record.name, tool = %tool.name, "mcp tool name clashes with another; not offered");
                continue;
            }
            if self.tools.len() >= MAX_EXTERNAL_TOOLS {
                tracing::warn!(server = %record.name, tool = %tool.name, "more than {MAX_EXTERNAL_TOOLS} mcp tools; not offered");
                continue;
            }
            let converted = schema::for_model(&tool.input_schema);
            let size = converted.parameters.to_string().len();
            if size > MAX_SCHEMA_BYTES {
                tracing::warn!(server = %record.name, tool = %tool.name, size, "mcp tool schema larger than {MAX_SCHEMA_BYTES} bytes; not offered");
                continue;
            }
            if let Some(why) = &converted.not_strict_because {
                tracing::info!(server = %record.name, tool = %tool.name, "schema sent non-strict: {why}");
            }
            let description = tool
                .description
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .unwrap_or("(no description)");
            let description: String = format!(
                "{description} (tool `{}` of the MCP server {})",
                tool.name, record.name
            )
            .chars()
            .take(MAX_DESCRIPTION_CHARS)
            .collect();
            offered.push(name.clone());
            self.tools.insert(
                name.clone(),
                Offered {
                    server: index,
                    original: tool.name.to_string(),
                    definition: ToolDefinition {
                        name,
                        description,
                        parameters: converted.parameters,
                        strict: converted.strict,
                    },
                    nulls: converted.nulls,
                    roles: record.roles.clone(),
                },
            );
        }
        self.records.push(McpServerRecord {
            offered,
            ..record.clone()
        });
    }

    /// The records as started, each with the tools it offered, for `run.json`.
    pub fn records(&self) -> Vec<McpServerRecord> {
        self.records.clone()
    }
}

impl ToolProvider for McpTools {
    fn definitions(&self, role: &str) -> Vec<ToolDefinition> {
        self.tools
            .values()
            .filter(|tool| role_may_use(&tool.roles, role))
            .map(|tool| tool.definition.clone())
            .collect()
    }

    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: &'a str,
        output_budget: usize,
    ) -> BoxFuture<'a, ToolResult> {
        Box::pin(async move {
            let Some(tool) = self.tools.get(name) else {
                return ToolResult::failure(format!("error: unknown tool `{name}`"));
            };
            let Some(server) = self.servers.get(tool.server) else {
                return ToolResult::failure(format!("error: unknown tool `{name}`"));
            };
            let text = if arguments.trim().is_empty() {
                "{}"
            } else {
                arguments
            };
            let mut value: Value = match serde_json::from_str(text) {
                Ok(value) => value,
                Err(error) => {
                    return ToolResult::failure(format!(
                        "error: invalid arguments for `{name}`: not valid JSON ({error})"
                    ));
                }
            };
            tool.nulls.strip(&mut value);
            let Value::Object(arguments) = value else {
                return ToolResult::failure(format!(
                    "error: invalid arguments for `{name}`: the arguments must be a JSON object"
                ));
            };
            server
                .call(name, &tool.original, arguments, output_budget)
                .await
        })
    }

    /// Stops every server (and what their processes started).
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            futures::future::join_all(self.servers.iter().map(|server| server.stop())).await;
        })
    }
}

/// Whether `role` is among `roles`: by its own name, or by its kind (`verifier` names
/// every Verifier).
fn role_may_use(roles: &[String], role: &str) -> bool {
    roles
        .iter()
        .any(|allowed| allowed == role || (allowed == "verifier" && role.starts_with("verifier")))
}

/// `SERVER__tool`, within the APIs' rules for function names.
fn model_name(server: &str, tool: &str) -> String {
    let tool: String = tool
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{server}__{tool}").chars().take(64).collect()
}

/// Resolves a record against the environment: reads header values and pass-through
/// variables, builds a stdio server's whole environment.
fn launch_of(
    record: &McpServerRecord,
    env: &HostEnv,
    cwd: Option<PathBuf>,
    sandbox: Option<&infty_core::tools::SandboxSpec>,
) -> Result<Launch, McpError> {
    let invalid = |problem: &str| McpError::Invalid {
        name: record.name.clone(),
        problem: problem.to_string(),
    };
    let variable = |name: &str| {
        env.get(name)
            .cloned()
            .ok_or_else(|| McpError::MissingVariable {
                name: record.name.clone(),
                variable: name.to_string(),
            })
    };
    record
        .check_no_secrets()
        .map_err(|error| McpError::Invalid {
            name: record.name.clone(),
            problem: error.to_string(),
        })?;
    match (&record.command, &record.url) {
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(invalid("its command is empty"));
            }
            if !record.headers.is_empty() {
                return Err(invalid(
                    "headers are for HTTP servers (`url`), not commands",
                ));
            }
            let mut vars: BTreeMap<OsString, OsString> = BTreeMap::new();
            for name in BASE_ENV {
                if let Some(value) = env.get(name) {
                    vars.insert(name.into(), value.clone());
                }
            }
            for name in &record.env_vars {
                vars.insert(name.into(), variable(name)?);
            }
            for (name, value) in &record.env {
                vars.insert(name.into(), value.into());
            }
            Ok(Launch::Stdio(StdioLaunch {
                server: record.name.clone(),
                command: command.clone(),
                args: record.args.clone(),
                env: vars.into_iter().collect(),
                cwd,
                sandboxed: record.sandbox == McpSandbox::Shell,
                sandbox: sandbox
                    .filter(|_| record.sandbox == McpSandbox::Shell)
                    .map(|spec| Box::new(spec.clone())),
            }))
        }
        (None, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("its url must start with http:// or https://"));
            }
            if !record.args.is_empty() || !record.env.is_empty() || !record.env_vars.is_empty() {
                return Err(invalid(
                    "args and env are for servers started as commands, not URLs",
                ));
            }
            let mut headers = Vec::new();
            for (header, name) in &record.headers {
                let value = variable(name)?;
                let value = value.into_string().map_err(|_| {
                    invalid(&format!("environment variable {name} is not valid UTF-8"))
                })?;
                headers.push((header.clone(), value));
            }
            Ok(Launch::Http {
                url: url.clone(),
                headers,
            })
        }
        (Some(_), Some(_)) => Err(invalid("it has both a command and a url; give one")),
        (None, None) => Err(invalid("it has neither a command nor a url")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(model_name("gh", "list issues"), "gh__list_issues");
        assert_eq!(model_name("a", &"x".repeat(100)).len(), 64);
        for bad in ["", "a__b", "-a", "a.b", &"x".repeat(33)] {
            assert!(validate_server_name(bad).is_err(), "{bad}");
        }
        for good in ["gh", "my-tracker", "db_2"] {
            assert!(validate_server_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn roles_by_name_and_kind() {
        let roles = vec!["solver".to_string(), "verifier".to_string()];
        assert!(role_may_use(&roles, "solver"));
        assert!(role_may_use(&roles, "verifier-2"));
        assert!(!role_may_use(&roles, "director"));
    }

    #[test]
    fn stdio_environment_is_allowlisted() {
        let env = HostEnv::of([
            ("PATH", "/bin"),
            ("OPENAI_API_KEY", "sk-secret"),
            ("GH_TOKEN", "tok"),
        ]);
        let record = McpServerRecord {
            name: "gh".into(),
            command: Some("srv".into()),
            env: BTreeMap::from([("MODE".into(), "ro".into())]),
            env_vars: vec!["GH_TOKEN".into()],
            ..McpServerRecord::default()
        };
        let Launch::Stdio(launch) = launch_of(&record, &env, None, None).unwrap() else {
            panic!("not stdio")
        };
        let names: Vec<_> = launch
            .env
            .iter()
            .map(|(k, _)| k.to_str().unwrap())
            .collect();
        assert_eq!(names, ["GH_TOKEN", "MODE", "PATH"]);
        let missing = McpServerRecord {
            env_vars: vec!["NOPE".into()],
            ..record
        };
        assert_eq!(
            launch_of(&missing, &env, None, None)
                .unwrap_err()
                .to_string(),
            "mcp server gh: environment variable NOPE is not set"
        );
    }
}
