//! MCP servers on the command line and in the config file, and how `show` presents them.
//!
//! `--mcp NAME=URL` (a value starting with `http://` or `https://`) is a streamable-HTTP
//! server; `--mcp NAME=COMMAND ARGS…` is a stdio server, its command line split the way a
//! POSIX shell splits words (quotes and backslashes, no expansion: `shell-words`). Flag
//! servers are for the Solver, with the default timeout. `[mcp.servers.NAME]` in the config
//! file says everything (`command`, `args`, `env`, `env_vars`, `url`, `headers`, `roles`,
//! `tools`, `timeout_secs`, `sandbox`); a flag replaces a config server of the same name.
//! This module never reads the values of the variables it names: `infty-mcp` does, when it
//! starts the servers, and `run.json` keeps only the names.

use std::collections::BTreeMap;

use anyhow::Result;
use infty_store::{McpSandbox, McpServerRecord, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Coded;

/// `[mcp]` of the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpSection {
    /// The servers, by name.
    #[serde(default)]
    pub servers: BTreeMap<String, McpServerSection>,
}

/// `[mcp.servers.NAME]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpServerSection {
    /// The program of a stdio server.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Variables set for it (literal values, recorded in `run.json`: no secrets here).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables passed through from infty's environment (recorded by name).
    #[serde(default)]
    pub env_vars: Vec<String>,
    /// The endpoint of a streamable-HTTP server.
    pub url: Option<String>,
    /// Headers: header name to the environment variable holding its value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Roles that may use it (`solver`, `director`, `verifier`, or a role's name).
    pub roles: Option<Vec<String>>,
    /// The server's tools to offer; all when absent.
    pub tools: Option<Vec<String>>,
    /// Seconds one call may take.
    pub timeout_secs: Option<u64>,
    /// `shell` (the shell tool's sandbox, the default) or `off`.
    pub sandbox: Option<McpSandbox>,
}

/// Checks the config file's servers; the message names the server.
pub(crate) fn check_config(section: &McpSection) -> std::result::Result<(), String> {
    for (name, server) in &section.servers {
        record_of(name, server).map_err(|problem| format!("mcp.servers.{name}: {problem}"))?;
    }
    Ok(())
}

/// The servers of a new run: the config file's, then the flags' (which replace a config
/// server of the same name).
pub(crate) fn records(
    flags: &[String],
    config: &BTreeMap<String, McpServerSection>,
) -> Result<Vec<McpServerRecord>> {
    let mut servers: BTreeMap<String, McpServerRecord> = BTreeMap::new();
    for (name, section) in config {
        let record = record_of(name, section)
            .map_err(|problem| Coded::usage(format!("mcp server {name}: {problem}")))?;
        servers.insert(name.clone(), record);
    }
    let mut from_flags = std::collections::BTreeSet::new();
    for flag in flags {
        let record = parse_flag(flag).map_err(Coded::usage)?;
        if !from_flags.insert(record.name.clone()) {
            return Err(Coded::usage(format!(
                "--mcp {}: the server is given twice",
                record.name
            )));
        }
        servers.insert(record.name.clone(), record);
    }
    Ok(servers.into_values().collect())
}

/// Parses one `--mcp NAME=COMMAND ARGS…` or `--mcp NAME=URL`.
pub(crate) fn parse_flag(value: &str) -> std::result::Result<McpServerRecord, String> {
    let Some((name, spec)) = value.split_once('=') else {
        return Err(format!(
            "--mcp {value:?}: expected NAME=COMMAND [ARGS...] or NAME=URL"
        ));
    };
    let name = name.trim();
    infty_mcp::validate_server_name(name).map_err(|error| format!("--mcp: {error}"))?;
    let spec = spec.trim();
    let mut record = McpServerRecord {
        name: name.to_string(),
        roles: vec!["solver".to_string()],
        timeout_secs: McpServerRecord::DEFAULT_TIMEOUT_SECS,
        ..McpServerRecord::default()
    };
    if spec.starts_with("http://") || spec.starts_with("https://") {
        record.url = Some(spec.to_string());
    } else {
        let mut words = shell_words::split(spec)
            .map_err(|error| format!("--mcp {name}: cannot split the command line: {error}"))?
            .into_iter();
        let Some(command) = words.next() else {
            return Err(format!("--mcp {name}: the command is empty"));
        };
        record.command = Some(command);
        record.args = words.collect();
    }
    record
        .check_no_secrets()
        .map_err(|error| format!("--mcp {name}: {error}"))?;
    Ok(record)
}

fn record_of(
    name: &str,
    section: &McpServerSection,
) -> std::result::Result<McpServerRecord, String> {
    infty_mcp::validate_server_name(name).map_err(|error| error.to_string())?;
    match (&section.command, &section.url) {
        (Some(_), Some(_)) => return Err("give `command` or `url`, not both".to_string()),
        (None, None) => return Err("give `command` (stdio) or `url` (HTTP)".to_string()),
        (Some(command), None) if command.trim().is_empty() => {
            return Err("`command` is empty".to_string());
        }
        (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
            return Err(format!("url {url:?} must start with http:// or https://"));
        }
        _ => {}
    }
    if section.url.is_some()
        && (!section.args.is_empty() || !section.env.is_empty() || !section.env_vars.is_empty())
    {
        return Err("`args`, `env` and `env_vars` are for `command` servers".to_string());
    }
    if section.command.is_some() && !section.headers.is_empty() {
        return Err("`headers` are for `url` servers".to_string());
    }
    if section.timeout_secs == Some(0) {
        return Err("timeout_secs must be at least 1".to_string());
    }
    let roles = section
        .roles
        .clone()
        .unwrap_or_else(|| vec![Role::SOLVER.to_string()]);
    for role in &roles {
        // `verifier` is a role name too, and here stands for every Verifier.
        if Role::parse(role).is_err() {
            return Err(format!(
                "role {role:?} is not solver, director, verifier or a verifier's name"
            ));
        }
    }
    let record = McpServerRecord {
        name: name.to_string(),
        command: section.command.clone(),
        args: section.args.clone(),
        env: section.env.clone(),
        env_vars: section.env_vars.clone(),
        url: section.url.clone(),
        headers: section.headers.clone(),
        roles,
        tools: section.tools.clone(),
        timeout_secs: section
            .timeout_secs
            .unwrap_or(McpServerRecord::DEFAULT_TIMEOUT_SECS),
        sandbox: section.sandbox.unwrap_or_default(),
        offered: Vec::new(),
    };
    record
        .check_no_secrets()
        .map_err(|error| error.to_string())?;
    Ok(record)
}

/// Starts the servers of a run (none: no provider); the error is the one line naming the
/// server that could not start.
pub(crate) async fn start(
    records: &[McpServerRecord],
    cwd: Option<camino::Utf8PathBuf>,
    sandbox: Option<infty_core::tools::SandboxSpec>,
) -> Result<Option<std::sync::Arc<infty_mcp::McpTools>>> {
    if records.is_empty() {
        return Ok(None);
    }
    let tools = infty_mcp::McpTools::start_sandboxed(
        records,
        &infty_mcp::HostEnv::current(),
        cwd.map(camino::Utf8PathBuf::into_std_path_buf),
        sandbox,
    )
    .await?;
    Ok(Some(std::sync::Arc::new(tools)))
}

/// What `show --json` says of the servers (`mcp_servers`).
pub(crate) fn servers_json(servers: &[McpServerRecord]) -> Value {
    Value::Array(
        servers
            .iter()
            .map(|server| {
                json!({
                    "name": server.name,
                    "transport": if server.url.is_some() { "http" } else { "stdio" },
                    "command": server.command,
                    "args": server.args,
                    "url": server.url,
                    "roles": server.roles,
                    "tools": server.offered,
                    "timeout_secs": server.timeout_secs,
                })
            })
            .collect(),
    )
}

/// The lines `show` prints for the servers (none without servers).
pub(crate) fn servers_text(servers: &[McpServerRecord]) -> Vec<String> {
    if servers.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![String::new(), "MCP servers:".to_string()];
    for server in servers {
        let how = match (&server.url, &server.command) {
            (Some(url), _) => format!("http {url}"),
            (None, Some(command)) => {
                let mut words = vec![command.clone()];
                words.extend(server.args.iter().cloned());
                format!("stdio {}", shell_words::join(words))
            }
            (None, None) => "?".to_string(),
        };
        lines.push(format!(
            "  {:<12} {how}  roles: {}",
            server.name,
            server.roles.join(", ")
        ));
        let tools = if server.offered.is_empty() {
            "none".to_string()
        } else {
            server.offered.join(", ")
        };
        lines.push(format!("  {:<12} tools: {tools}", ""));
    }
    lines
}

/// The sandbox of a run's stdio MCP servers: the shell tool's (the Solver's mode) over this
/// run's space, so a server can do what the Solver's commands can and nothing more. `None`
/// when that mode is `off`. The run folder may not exist yet (servers start before it is
/// written); the sandbox then simply has nothing of it to show.
pub(crate) fn sandbox_for(
    settings: &infty_store::SandboxSettings,
    run_dir: &camino::Utf8Path,
    workspace: Option<&camino::Utf8Path>,
) -> Result<Option<infty_core::tools::SandboxSpec>> {
    use infty_core::tools::{RunSpace, SandboxSpec};
    let mode = settings.solver;
    if mode == infty_store::SandboxMode::Off {
        return Ok(None);
    }
    let space = RunSpace::of_run(run_dir, workspace);
    let spec = SandboxSpec::for_run(
        mode,
        &space,
        settings,
        infty_sandbox::default_helper(),
        "mcp",
    )
    .map_err(|error| anyhow::anyhow!("sandbox of the mcp servers: {error}"))?;
    Ok(Some(spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_split_like_a_shell() {
        let record = parse_flag(r#"fs=npx -y "@scope/server fs" --root '/tmp/a b'"#).unwrap();
        assert_eq!(record.name, "fs");
        assert_eq!(record.command.as_deref(), Some("npx"));
        assert_eq!(
            record.args,
            ["-y", "@scope/server fs", "--root", "/tmp/a b"]
        );
        assert_eq!(record.roles, ["solver"]);
        let record = parse_flag("web=https://mcp.example/mcp").unwrap();
        assert_eq!(record.url.as_deref(), Some("https://mcp.example/mcp"));
        assert!(record.command.is_none());
    }

    #[test]
    fn bad_flags_say_what_is_wrong() {
        let cases = [
            (
                "nameonly",
                "--mcp \"nameonly\": expected NAME=COMMAND [ARGS...] or NAME=URL",
            ),
            (
                "a__b=x",
                "--mcp: mcp server name \"a__b\" is invalid: use 1 to 32 letters, digits, `_` or `-`, not starting with `-` and without `__`",
            ),
            ("x=", "--mcp x: the command is empty"),
            (
                "x=cmd 'open",
                "--mcp x: cannot split the command line: missing closing quote",
            ),
            (
                "x=https://u:p@host/",
                "--mcp x: refusing to store options.mcp.url in run.json: it carries credentials before `@`",
            ),
        ];
        for (flag, expected) in cases {
            assert_eq!(parse_flag(flag).unwrap_err(), expected, "{flag}");
        }
    }

    #[test]
    fn config_sections_are_checked() {
        let section = |text: &str| -> McpSection { toml::from_str::<McpSection>(text).unwrap() };
        let ok = section(
            "[servers.gh]\ncommand = \"gh-mcp\"\nenv_vars = [\"GH_TOKEN\"]\nroles = [\"solver\", \"verifier\"]\n\
             [servers.web]\nurl = \"https://x/mcp\"\nheaders = { Authorization = \"WEB_AUTH\" }\ntimeout_secs = 5\n",
        );
        assert!(check_config(&ok).is_ok());
        let cases = [
            (
                "[servers.x]\n",
                "mcp.servers.x: give `command` (stdio) or `url` (HTTP)",
            ),
            (
                "[servers.x]\nurl = \"https://x\"\nheaders = { A = \"Bearer 123\" }\n",
                "mcp.servers.x: refusing to store options.mcp.headers in run.json: each header value must be the NAME of an environment variable (letters, digits, `_`), not the value",
            ),
            (
                "[servers.x]\ncommand = \"c\"\nroles = [\"boss\"]\n",
                "mcp.servers.x: role \"boss\" is not solver, director, verifier or a verifier's name",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                check_config(&section(text)).unwrap_err(),
                expected,
                "{text}"
            );
        }
    }
}
