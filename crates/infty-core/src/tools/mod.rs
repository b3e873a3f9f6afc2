//! The function tools a role's model calls: `shell`, `read_file`, `write_file`, `edit_file`,
//! `list_dir` and `update_plan`, with their JSON-Schema definitions and a role's policy.
//!
//! A [`ToolSet`] is what a session holds: it lists the definitions to send to the model and
//! executes calls by name with the model's raw JSON arguments. Whatever goes wrong (unknown
//! tool, bad JSON, a tool the role may not use, a path outside the allowed folders, a failing
//! command) comes back as a [`ToolResult`] with `ok == false` and a message for the model:
//! this module must never panic and never hand the session an error that would end the run.
//!
//! File tools are confined (see `confine`) to the run folder and the workspace folder, open
//! every path below an opened root folder in one step without following links, refuse files
//! with several names, and never write the run's own records (`run.json`, `events.jsonl`,
//! `run.lock`, `rollouts/`, `inbox/`: the names come from `infty_store`). The `shell` tool
//! is bounded (timeout, output budget, process-group kill) and starts its command through
//! [`process::sandboxed_command`], the one seam of every process a role causes: the OS
//! sandbox of the role's [`SandboxSpec`] (unless its mode is `off`), an allowlisted
//! environment and a private temp folder. Every result, external tools' included, passes
//! through the tool set's [`Redactor`] before anyone records it.

mod capture;
mod confine;
mod external;
mod files;
mod plan;
pub mod process;
mod redact;
mod schema;
pub(crate) mod shell;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};

pub use capture::OutputCapture;
pub use confine::Refusal;
pub use external::ToolProvider;
pub use plan::{PLAN_FILE, Plan, PlanStep, StepStatus};
pub use process::{RunSpace, SandboxSpec, role_policy, sandboxed_command};
pub use redact::{REDACTED, Redactor};

/// The tools infty knows, in the order their definitions are listed to a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolName {
    /// Run a command with `bash -c`.
    Shell,
    /// Read a text file as numbered lines.
    ReadFile,
    /// Create or overwrite a file.
    WriteFile,
    /// Replace an exact string in a file.
    EditFile,
    /// List a folder as a tree.
    ListDir,
    /// Record the role's plan under `memory/plan.json`.
    UpdatePlan,
}

impl ToolName {
    /// Every tool, in listing order.
    pub const ALL: [ToolName; 6] = [
        ToolName::Shell,
        ToolName::ReadFile,
        ToolName::WriteFile,
        ToolName::EditFile,
        ToolName::ListDir,
        ToolName::UpdatePlan,
    ];

    /// The name the model calls the tool by.
    pub const fn as_str(self) -> &'static str {
        match self {
            ToolName::Shell => "shell",
            ToolName::ReadFile => "read_file",
            ToolName::WriteFile => "write_file",
            ToolName::EditFile => "edit_file",
            ToolName::ListDir => "list_dir",
            ToolName::UpdatePlan => "update_plan",
        }
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ToolName {
    type Err = ToolError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        ToolName::ALL
            .into_iter()
            .find(|tool| tool.as_str() == name)
            .ok_or_else(|| ToolError::UnknownTool {
                name: name.to_owned(),
                available: names_of(ToolName::ALL),
            })
    }
}

/// A function tool as the model sees it: name, what it does, and its JSON-Schema parameters
/// (strict-mode compatible: closed objects, every property required, optional ones nullable).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// The tool's name, as in [`ToolName::as_str`].
    pub name: String,
    /// What the tool does and how to use it well, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
    /// Whether the schema is strict-mode compatible and the model is asked to follow it
    /// strictly (every built-in tool is; an external tool whose schema could not be made so
    /// is sent without it).
    #[serde(default = "strict_by_default")]
    pub strict: bool,
}

fn strict_by_default() -> bool {
    true
}

/// Which tools a role may use, and the bounds they run under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolPolicy {
    /// The tools the role may call; others are listed to no one and refused if called.
    pub allowed: BTreeSet<ToolName>,
    /// Timeout of a `shell` call that names none.
    pub shell_default_timeout: Duration,
    /// Longest timeout a `shell` call may ask for; longer requests are cut to this.
    pub shell_max_timeout: Duration,
    /// Byte budget of a `shell` call's captured output (head and tail kept).
    pub max_output_bytes: usize,
    /// Most lines one `read_file` call returns.
    pub read_max_lines: usize,
    /// Most entries one `list_dir` call returns.
    pub list_max_entries: usize,
    /// External tools (from a [`ToolProvider`]) the role may call, by the name the model sees.
    pub external: BTreeSet<String>,
}

impl ToolPolicy {
    /// Default `shell` timeout: two minutes.
    pub const DEFAULT_SHELL_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default cap on `shell` timeouts: one hour.
    pub const DEFAULT_SHELL_MAX_TIMEOUT: Duration = Duration::from_secs(3600);
    /// Default `shell` output budget: 32 KiB.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 32 * 1024;
    /// Default `read_file` line cap.
    pub const DEFAULT_READ_MAX_LINES: usize = 2000;
    /// Default `list_dir` entry cap.
    pub const DEFAULT_LIST_MAX_ENTRIES: usize = 500;

    fn with_tools(tools: impl IntoIterator<Item = ToolName>) -> Self {
        ToolPolicy {
            allowed: tools.into_iter().collect(),
            shell_default_timeout: Self::DEFAULT_SHELL_TIMEOUT,
            shell_max_timeout: Self::DEFAULT_SHELL_MAX_TIMEOUT,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            read_max_lines: Self::DEFAULT_READ_MAX_LINES,
            list_max_entries: Self::DEFAULT_LIST_MAX_ENTRIES,
            external: BTreeSet::new(),
        }
    }

    /// The Solver's policy: every tool.
    pub fn solver() -> Self {
        Self::with_tools(ToolName::ALL)
    }

    /// The Director's policy: it looks (`read_file`, `list_dir`) but does not act.
    pub fn director() -> Self {
        Self::with_tools([ToolName::ReadFile, ToolName::ListDir])
    }

    /// A Verifier's policy: it looks and may run checks (`read_file`, `list_dir`, `shell`).
    pub fn verifier() -> Self {
        Self::with_tools([ToolName::ReadFile, ToolName::ListDir, ToolName::Shell])
    }

    /// The same bounds with exactly these tools allowed.
    pub fn with_allowed(mut self, tools: impl IntoIterator<Item = ToolName>) -> Self {
        self.allowed = tools.into_iter().collect();
        self
    }

    /// Whether the role may call `tool`.
    pub fn allows(&self, tool: ToolName) -> bool {
        self.allowed.contains(&tool)
    }

    /// Whether the role may call the external tool `name`.
    pub fn allows_external(&self, name: &str) -> bool {
        self.external.contains(name)
    }
}

/// Where tools act: the run folder, and the workspace folder when the run has one.
///
/// Relative paths resolve against the workspace when there is one, else the run folder;
/// file tools act only inside these two folders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolContext {
    /// The run folder (`<runs_root>/<run_id>`).
    pub run_dir: Utf8PathBuf,
    /// The folder the objective is about, if any.
    pub workspace: Option<Utf8PathBuf>,
}

impl ToolContext {
    /// A context with only a run folder.
    pub fn new(run_dir: impl Into<Utf8PathBuf>) -> Self {
        ToolContext {
            run_dir: run_dir.into(),
            workspace: None,
        }
    }

    /// The same context with a workspace folder.
    pub fn with_workspace(mut self, workspace: impl Into<Utf8PathBuf>) -> Self {
        self.workspace = Some(workspace.into());
        self
    }

    /// The folder relative paths resolve against (and `shell` starts in).
    pub fn base_dir(&self) -> &camino::Utf8Path {
        self.workspace.as_deref().unwrap_or(&self.run_dir)
    }
}

/// What a tool call gives back to the model (and to the session, for progress).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The text the model reads as the call's output.
    pub output: String,
    /// False when the call failed (refused, invalid, errored, non-zero exit, timed out).
    pub ok: bool,
    /// The plan, when the call was a successful `update_plan`.
    pub plan: Option<Plan>,
}

impl ToolResult {
    /// A successful result.
    pub fn success(output: impl Into<String>) -> Self {
        ToolResult {
            output: output.into(),
            ok: true,
            plan: None,
        }
    }

    /// A failed result whose output explains the failure.
    pub fn failure(output: impl Into<String>) -> Self {
        ToolResult {
            output: output.into(),
            ok: false,
            plan: None,
        }
    }
}

impl From<ToolError> for ToolResult {
    fn from(error: ToolError) -> Self {
        ToolResult::failure(format!("error: {error}"))
    }
}

/// Why a tool call failed; its message is what the model reads, so each says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The model called a tool that does not exist: call one of `available`.
    #[error("unknown tool `{name}`; available tools: {available}")]
    UnknownTool {
        /// The name the model used.
        name: String,
        /// The tools this role may call, comma separated.
        available: String,
    },
    /// The tool exists but this role may not use it: call one of `available`.
    #[error("tool `{name}` is not allowed for this role; available tools: {available}")]
    NotAllowed {
        /// The tool the model called.
        name: ToolName,
        /// The tools this role may call, comma separated.
        available: String,
    },
    /// The arguments did not parse or did not fit the schema: resend them fixed.
    #[error("invalid arguments for `{tool}`: {problem}; the arguments look like {expected}")]
    InvalidArguments {
        /// The tool called.
        tool: ToolName,
        /// What was wrong with the arguments.
        problem: String,
        /// A short rendering of the expected arguments.
        expected: String,
    },
    /// A path was refused by confinement: use a path inside the allowed folders.
    #[error("path `{path}` refused: {reason}")]
    PathRefused {
        /// The path as the model gave it.
        path: String,
        /// Why it was refused.
        reason: Refusal,
    },
    /// The path does not exist.
    #[error("`{path}` does not exist")]
    NotFound {
        /// The path as the model gave it.
        path: String,
    },
    /// The path is a folder where a file was expected.
    #[error("`{path}` is a folder, not a file; use list_dir to see its contents")]
    IsAFolder {
        /// The path as the model gave it.
        path: String,
    },
    /// The path is a file (or something else) where a folder was expected.
    #[error("`{path}` is not a folder")]
    NotAFolder {
        /// The path as the model gave it.
        path: String,
    },
    /// The file has several names (hard links): one may lie outside the allowed folders, so
    /// the file tools neither read nor edit it.
    #[error(
        "`{path}` has {links} names (hard links), and another name may lie outside the allowed folders, so file tools do not open it; copy it to a new file if you need it"
    )]
    HardLinked {
        /// The path as the model gave it.
        path: String,
        /// How many names the file has.
        links: u64,
    },
    /// The file is not UTF-8 text: inspect it with `shell` instead.
    #[error(
        "`{path}` looks binary ({why}); it cannot be read or edited as text, inspect it with shell tools instead"
    )]
    Binary {
        /// The path as the model gave it.
        path: String,
        /// What gave it away.
        why: String,
    },
    /// `read_file` started past the last line.
    #[error("offset {offset} is past the end of `{path}`, which has {lines} lines")]
    OffsetPastEnd {
        /// The path as the model gave it.
        path: String,
        /// The requested first line.
        offset: u64,
        /// How many lines the file has.
        lines: u64,
    },
    /// `edit_file` found nothing to replace: re-read the file and copy the text exactly.
    #[error(
        "`old_string` was not found in `{path}`{hint}; read the file and copy the text to replace exactly"
    )]
    EditNotFound {
        /// The path as the model gave it.
        path: String,
        /// An extra clue (line endings, whitespace), or empty.
        hint: String,
    },
    /// `edit_file` matched several places: add context or pass `replace_all`.
    #[error(
        "`old_string` occurs {count} times in `{path}`; include more surrounding text to make it unique, or pass replace_all: true to replace every occurrence"
    )]
    EditAmbiguous {
        /// The path as the model gave it.
        path: String,
        /// How many times it occurs.
        count: usize,
    },
    /// `edit_file` was given an unusable pair of strings.
    #[error("{problem}")]
    EditInvalid {
        /// What is wrong with the request.
        problem: &'static str,
    },
    /// `update_plan` was given a plan that cannot be recorded.
    #[error("invalid plan: {problem}")]
    PlanInvalid {
        /// What is wrong with the plan.
        problem: String,
    },
    /// An operating-system call failed.
    #[error("could not {action} `{path}`: {source}")]
    Io {
        /// What was being done (`read`, `write`, `list`, ...).
        action: &'static str,
        /// The path involved, as the model gave it (or as infty named it).
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The shell could not be started.
    #[error("could not start `bash`: {source}")]
    Spawn {
        /// The underlying error.
        source: std::io::Error,
    },
    /// The sandbox could not be set up for the command.
    #[error("the sandbox could not start the command: {0}")]
    Sandbox(infty_sandbox::SandboxError),
    /// The tool's worker task died; the call's effects are unknown.
    #[error(
        "the tool stopped unexpectedly ({detail}); its effects are unknown, check before retrying"
    )]
    Interrupted {
        /// What the runtime reported.
        detail: String,
    },
}

fn names_of(tools: impl IntoIterator<Item = ToolName>) -> String {
    let names: Vec<&str> = tools.into_iter().map(ToolName::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The tools a role holds: its definitions, its policy, and how to run a call.
///
/// Cheap to clone (shared inside); `Send + Sync`, so calls may run concurrently.
#[derive(Clone, Debug)]
pub struct ToolSet {
    inner: Arc<Inner>,
}

struct Inner {
    context: ToolContext,
    policy: ToolPolicy,
    /// How the processes of the role's tools start (sandbox, environment, temp folder).
    sandbox: SandboxSpec,
    /// Secrets cut out of every result.
    redactor: Redactor,
    /// Where external tools come from, and the definitions of those the policy allows.
    external: Option<(Arc<dyn ToolProvider>, Vec<ToolDefinition>)>,
}

impl fmt::Debug for Inner {
    /// Never prints environment values or secrets (the spec and redactor hide them).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolSet")
            .field("context", &self.context)
            .field("policy", &self.policy)
            .field("sandbox", &self.sandbox)
            .field("redactor", &self.redactor)
            .field(
                "external",
                &self.external.as_ref().map(|(provider, _)| provider),
            )
            .finish()
    }
}

impl ToolSet {
    /// A tool set acting in `context` under `policy`, its processes UNSANDBOXED (mode
    /// `off`, allowlisted environment) until [`ToolSet::with_sandbox`] says otherwise. The
    /// orchestrator always gives one.
    pub fn new(context: ToolContext, policy: ToolPolicy) -> Self {
        ToolSet {
            inner: Arc::new(Inner {
                context,
                policy,
                sandbox: SandboxSpec::unsandboxed(),
                redactor: Redactor::default(),
                external: None,
            }),
        }
    }

    fn rebuild(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Inner {
            context: self.inner.context.clone(),
            policy: self.inner.policy.clone(),
            sandbox: self.inner.sandbox.clone(),
            redactor: self.inner.redactor.clone(),
            external: self.inner.external.clone(),
        };
        change(&mut inner);
        ToolSet {
            inner: Arc::new(inner),
        }
    }

    /// The same tool set whose processes start from `env` instead of this process's
    /// environment (still allowlisted: see [`SandboxSpec::environment`]).
    pub fn with_base_env<K, V>(self, env: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        let env: Vec<(OsString, OsString)> =
            env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.rebuild(|inner| inner.sandbox = inner.sandbox.clone().with_base_env(env))
    }

    /// The same tool set whose processes start under `sandbox` (its base environment, if
    /// one was given with [`ToolSet::with_base_env`] before, is replaced by the spec's).
    /// The values of secret-looking variables the spec passes are redacted from results.
    pub fn with_sandbox(self, sandbox: SandboxSpec) -> Self {
        self.rebuild(|inner| {
            inner.redactor.extend(sandbox.secret_values());
            inner.sandbox = sandbox;
        })
    }

    /// The same tool set, cutting these secret values out of every result.
    pub fn with_redactions(self, values: impl IntoIterator<Item = String>) -> Self {
        self.rebuild(|inner| inner.redactor.extend(values))
    }

    /// How the role's processes start.
    pub fn sandbox(&self) -> &SandboxSpec {
        &self.inner.sandbox
    }

    /// The same tool set with the external tools of `provider` that `role` may use and the
    /// policy allows ([`ToolPolicy::external`]).
    pub fn with_provider(self, provider: Arc<dyn ToolProvider>, role: &str) -> Self {
        let policy = &self.inner.policy;
        let definitions = provider
            .definitions(role)
            .into_iter()
            .filter(|definition| policy.allows_external(&definition.name))
            .collect();
        self.rebuild(|inner| inner.external = Some((provider, definitions)))
    }

    /// The definitions of the allowed tools, in [`ToolName::ALL`] order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        ToolName::ALL
            .into_iter()
            .filter(|tool| self.inner.policy.allows(*tool))
            .map(|tool| schema::definition(tool, &self.inner.policy))
            .chain(self.external_definitions().iter().cloned())
            .collect()
    }

    fn external_definitions(&self) -> &[ToolDefinition] {
        match &self.inner.external {
            Some((_, definitions)) => definitions,
            None => &[],
        }
    }

    /// The role's policy.
    pub fn policy(&self) -> &ToolPolicy {
        &self.inner.policy
    }

    /// Where the tools act.
    pub fn context(&self) -> &ToolContext {
        &self.inner.context
    }

    /// Runs the tool `name` with the model's raw JSON `arguments`.
    ///
    /// Never panics and never fails: every problem becomes a result with `ok == false`.
    /// Dropping the future cancels the call; a running `shell` command is killed with its
    /// whole process group.
    pub async fn execute(&self, name: &str, arguments: &str) -> ToolResult {
        let result = self.dispatch(name, arguments).await;
        let mut result = match result {
            Ok(result) => result,
            Err(error) => {
                tracing::debug!(tool = name, %error, "tool call failed");
                error.into()
            }
        };
        result.output = self.inner.redactor.redact(result.output);
        result
    }

    async fn dispatch(&self, name: &str, arguments: &str) -> Result<ToolResult, ToolError> {
        let available = || {
            let mut names: Vec<&str> = self
                .inner
                .policy
                .allowed
                .iter()
                .map(|tool| tool.as_str())
                .collect();
            names.extend(self.external_definitions().iter().map(|d| d.name.as_str()));
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        if let Some((provider, definitions)) = &self.inner.external
            && definitions.iter().any(|definition| definition.name == name)
        {
            let budget = self.inner.policy.max_output_bytes;
            return Ok(provider.call(name, arguments, budget).await);
        }
        let tool = ToolName::from_str(name).map_err(|_| ToolError::UnknownTool {
            name: name.to_owned(),
            available: available(),
        })?;
        if !self.inner.policy.allows(tool) {
            return Err(ToolError::NotAllowed {
                name: tool,
                available: available(),
            });
        }
        match tool {
            ToolName::Shell => {
                let args = schema::parse_arguments(tool, arguments)?;
                shell::run(
                    &self.inner.context,
                    &self.inner.policy,
                    &self.inner.sandbox,
                    args,
                )
                .await
            }
            ToolName::ReadFile => {
                let args = schema::parse_arguments(tool, arguments)?;
                self.blocking(move |inner| files::read_file(&inner.context, &inner.policy, args))
                    .await
            }
            ToolName::WriteFile => {
                let args = schema::parse_arguments(tool, arguments)?;
                self.blocking(move |inner| files::write_file(&inner.context, args))
                    .await
            }
            ToolName::EditFile => {
                let args = schema::parse_arguments(tool, arguments)?;
                self.blocking(move |inner| files::edit_file(&inner.context, args))
                    .await
            }
            ToolName::ListDir => {
                let args = schema::parse_arguments(tool, arguments)?;
                self.blocking(move |inner| files::list_dir(&inner.context, &inner.policy, args))
                    .await
            }
            ToolName::UpdatePlan => {
                let args = schema::parse_arguments(tool, arguments)?;
                self.blocking(move |inner| plan::update_plan(&inner.context, args))
                    .await
            }
        }
    }

    /// Runs blocking file-system work off the async workers.
    async fn blocking<F>(&self, work: F) -> Result<ToolResult, ToolError>
    where
        F: FnOnce(&Inner) -> Result<ToolResult, ToolError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|error| ToolError::Interrupted {
                detail: error.to_string(),
            })?
    }
}
