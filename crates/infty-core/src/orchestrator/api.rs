//! The library's types around a run: its roles, parameters, options, outcome and errors.

use std::collections::BTreeMap;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use infty_store::{
    BrokenLine, Budgets, CheckSpec, McpServerRecord, ModelPrice, ProviderRecord, Role, RunStore,
    SandboxSettings, StallPolicy, StoreError, Timeouts, TurnToolChoice, VerificationPolicy,
};

use crate::events::Terminal;
use crate::session::SessionError;
use crate::tools::ToolPolicy;

/// How long a usage limit without a reset time is assumed to last.
pub const DEFAULT_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Why a run could not be set up or did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The run folder could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The run's parameters are inconsistent.
    #[error("invalid run setup: {0}")]
    Setup(String),
    /// A role's rollout could not be read or written.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The run stopped short of success (failed, budget exhausted, interrupted, blocked or
    /// usage limited); every such run can be resumed. `ending` says how, and is what the
    /// status, the exit code and every message derive from.
    #[error("run {run_id} {ending}")]
    Stopped {
        /// The run.
        run_id: String,
        /// How it ended.
        ending: Terminal,
    },
    /// A resumed role's rollout is gone: its history cannot be rebuilt, and resuming with
    /// an empty one would silently lose the conversation.
    #[error("cannot resume role {role}: its rollout {path} is missing")]
    RolloutMissing {
        /// The role.
        role: String,
        /// The rollout file that should be there.
        path: Utf8PathBuf,
    },
    /// The OS sandbox cannot start on this machine; nothing was created or changed.
    #[error("{source}; to run tools without it, pass --sandbox off")]
    SandboxUnavailable {
        /// What is missing.
        source: infty_sandbox::SandboxError,
    },
    /// The run already succeeded; there is nothing to resume.
    #[error("run {run_id} already succeeded; nothing to resume")]
    AlreadySucceeded {
        /// The run.
        run_id: String,
    },
    /// The run's record (journal or a rollout) was changed outside infty: a line was edited,
    /// inserted, removed or moved. Inspect it; resume only by accepting it as it is.
    #[error("the record of run {run_id} was changed outside infty: {}", describe_broken(.broken))]
    RecordBroken {
        /// The run.
        run_id: String,
        /// The first changed line of each changed file.
        broken: Vec<BrokenLine>,
    },
}

fn describe_broken(broken: &[BrokenLine]) -> String {
    let lines: Vec<String> = broken.iter().map(ToString::to_string).collect();
    lines.join("; ")
}

/// One role's settings: its model and its explicit tool policy.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    /// The role: the Solver, the Director or a Verifier.
    pub role: Role,
    /// Model name sent to the provider.
    pub model: String,
    /// Reasoning effort (`minimal`, `low`, `medium`, `high`, ...).
    pub reasoning_effort: Option<String>,
    /// Reasoning summary (`auto`, `concise`, `detailed`); sent only when set.
    pub reasoning_summary: Option<String>,
    /// Base instructions; `None` uses infty's prompt for the role's kind.
    pub instructions: Option<String>,
    /// The tools the role may use and their limits. Explicit: never silently full access.
    pub tools: ToolPolicy,
    /// The model's context window in tokens, if known; enables compaction.
    pub context_window: Option<u64>,
    /// Share of the context window past which the history is compacted.
    pub compact_threshold: f64,
    /// Whether replies are constrained by the role's JSON Schema (structured output).
    pub structured_output: bool,
    /// Cap on the tokens of each of the role's responses, sent with every request.
    pub max_output_tokens: Option<u32>,
    /// How the first request of each turn may use tools.
    pub tool_choice: TurnToolChoice,
}

impl RoleConfig {
    /// A role with the default tool policy of its kind: the Solver gets every tool, the
    /// Director reads, a Verifier reads and runs the shell.
    pub fn new(role: Role, model: impl Into<String>) -> RoleConfig {
        let tools = match role {
            Role::Solver => ToolPolicy::solver(),
            Role::Verifier(_) => ToolPolicy::verifier(),
            Role::Director => ToolPolicy::director(),
        };
        RoleConfig {
            role,
            model: model.into(),
            reasoning_effort: None,
            reasoning_summary: None,
            instructions: None,
            tools,
            context_window: None,
            compact_threshold: 0.8,
            structured_output: true,
            max_output_tokens: None,
            tool_choice: TurnToolChoice::Auto,
        }
    }

    /// Sets how the first request of each turn may use tools.
    pub fn with_tool_choice(mut self, choice: TurnToolChoice) -> RoleConfig {
        self.tool_choice = choice;
        self
    }

    /// Sets the cap on the tokens of each response.
    pub fn with_max_output_tokens(mut self, tokens: Option<u32>) -> RoleConfig {
        self.max_output_tokens = tokens;
        self
    }

    /// Sets the reasoning effort.
    pub fn with_reasoning_effort(mut self, effort: Option<String>) -> RoleConfig {
        self.reasoning_effort = effort;
        self
    }

    /// Sets the reasoning summary.
    pub fn with_reasoning_summary(mut self, summary: Option<String>) -> RoleConfig {
        self.reasoning_summary = summary;
        self
    }

    /// Sets the tool policy.
    pub fn with_tools(mut self, tools: ToolPolicy) -> RoleConfig {
        self.tools = tools;
        self
    }

    /// Sets the context window (enables compaction).
    pub fn with_context_window(mut self, tokens: Option<u64>) -> RoleConfig {
        self.context_window = tokens;
        self
    }
}

/// Who takes part in a run and where it lives.
#[derive(Debug, Clone)]
pub struct RunParams {
    /// Run id; `None` generates a time-based one.
    pub run_id: Option<String>,
    /// The run folder; `None` means `<runs_root>/<run_id>`.
    pub run_root: Option<Utf8PathBuf>,
    /// The Solver.
    pub solver: RoleConfig,
    /// The Director.
    pub director: RoleConfig,
    /// Zero or more Verifiers.
    pub verifiers: Vec<RoleConfig>,
}

/// What to do and within which limits.
#[derive(Debug, Clone, Default)]
pub struct RunExecutionOptions {
    /// The objective.
    pub objective: String,
    /// Per-role turn timeouts.
    pub timeouts: Timeouts,
    /// Limits of the whole run.
    pub budgets: Budgets,
    /// How verdicts are aggregated.
    pub verification_policy: VerificationPolicy,
    /// Invalid Solver replies in a row before the run fails (0 means the default, 3).
    pub max_invalid_signals: u32,
    /// Tool-call rounds per turn (0 means the default, 200).
    pub max_tool_steps: u32,
    /// A project folder the Solver works in; notes and deliverable stay in the run folder.
    pub workspace: Option<Utf8PathBuf>,
    /// The provider settings to record in `run.json` (never a key).
    pub provider: ProviderRecord,
    /// Completion checks run after each valid delivery, before any Verifier.
    pub checks: Vec<CheckSpec>,
    /// When repeated work counts as a stall.
    pub stall: StallPolicy,
    /// Prices per model name, recorded in `run.json`; unpriced models cost 0.
    pub prices: BTreeMap<String, ModelPrice>,
    /// The MCP servers to record in `run.json`, so a resume starts them again (the tools
    /// themselves come from [`InftyOrchestrator::with_tool_provider`]).
    pub mcp_servers: Vec<McpServerRecord>,
    /// The sandbox of the roles' processes (default: Solver `workspace-write`, Director and
    /// Verifiers `read-only`, no network).
    pub sandbox: SandboxSettings,
}

/// Settings a resumed run may change.
#[derive(Debug, Clone, Default)]
pub struct ResumeOverrides {
    /// New turn timeouts.
    pub timeouts: Option<Timeouts>,
    /// New budgets.
    pub budgets: Option<Budgets>,
    /// New models, by role.
    pub models: BTreeMap<Role, String>,
    /// New output caps (tokens per response), by role; recorded in `run.json`.
    pub max_output_tokens: BTreeMap<Role, u32>,
    /// The provider now in use.
    pub provider: Option<ProviderRecord>,
    /// Prices to add to (or replace in) what the run recorded, per model name.
    pub prices: BTreeMap<String, ModelPrice>,
    /// The MCP servers as started for this resume (what they offer may have changed).
    pub mcp_servers: Option<Vec<McpServerRecord>>,
    /// New sandbox settings (recorded in `run.json`).
    pub sandbox: Option<SandboxSettings>,
    /// Full role settings, by role, for what `run.json` does not record (custom
    /// instructions, tool policies, compaction threshold, structured output). A role not
    /// listed is rebuilt from its record with the defaults of its kind.
    pub roles: BTreeMap<Role, RoleConfig>,
    /// Continue even though the record was changed outside infty (journaled, then the
    /// record is sealed afresh as it is). Without it such a run is refused.
    pub accept_edited_record: bool,
}

/// A succeeded run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The run id.
    pub run_id: String,
    /// The run folder.
    pub run_dir: Utf8PathBuf,
    /// The deliverable, absolute.
    pub deliverable_path: Utf8PathBuf,
    /// The Solver's summary.
    pub summary: Option<String>,
}

/// A created run, ready to be driven.
#[derive(Debug)]
pub struct SpawnedRun {
    pub(super) store: RunStore,
    pub(super) roles: Vec<RoleConfig>,
}

impl SpawnedRun {
    /// The run id.
    pub fn run_id(&self) -> &str {
        self.store.run_id()
    }

    /// The run folder.
    pub fn run_dir(&self) -> &Utf8Path {
        self.store.dir()
    }
}
