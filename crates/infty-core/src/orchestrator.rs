//! The driver: runs the calls the state machine asks for, journals everything, keeps
//! `run.json` current, and feeds results back.
//!
//! [`InftyOrchestrator`] is the library API in the seed's shape (`new`, `with_runs_root`,
//! `with_progress`, `execute_new_run`, `spawn_run`, `drive_run`) plus `resume_run`. The
//! driver holds the run's lock for as long as it drives it. Each input is journaled (and
//! fsynced) before the state machine sees it, so a crash at any point resumes from the
//! journal and the rollouts alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use futures::future::join_all;
use infty_model::{ModelApi, OutputSchema, StreamEvent};
use infty_store::{
    BrokenLine, Budgets, CheckSpec, Journal, McpServerRecord, ModelPrice, OutcomeRecord,
    ProviderRecord, RoleRecord, RunInit, RunOptions, RunStatus, RunStore, SandboxMode,
    SandboxSettings, StallPolicy, StoreError, Timeouts, TokenUsage, VerificationPolicy,
    read_journal,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::events::{Note, RunEvent};
use crate::flow::{Action, Call, DeliverableCheck, FailureKind, Flow, FlowConfig, Input, Terminal};
use crate::progress::{NoProgress, ProgressReporter, dispatch};
use crate::prompts::RoleKind;
use crate::session::{RoleSession, SessionConfig, SessionError, SessionObserver};
use crate::telemetry;
use crate::tools::{
    RunSpace, SandboxSpec, ToolContext, ToolPolicy, ToolProvider, ToolResult, ToolSet,
};
use crate::work::{WorkLog, fingerprint_path};

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
    /// Role name: `solver`, `director`, or a Verifier name starting with `verifier`.
    pub role: String,
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
}

impl RoleConfig {
    /// A role with the default tool policy of its kind: the Solver gets every tool, the
    /// Director reads, a Verifier reads and runs the shell; any other name only reads.
    pub fn new(role: impl Into<String>, model: impl Into<String>) -> RoleConfig {
        let role = role.into();
        let tools = match RoleKind::of(&role) {
            Some(RoleKind::Solver) => ToolPolicy::solver(),
            Some(RoleKind::Verifier) => ToolPolicy::verifier(),
            Some(RoleKind::Director) | None => ToolPolicy::director(),
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
        }
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

    fn kind(&self) -> RoleKind {
        RoleKind::of(&self.role).unwrap_or(RoleKind::Director)
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
    /// New models, by role name.
    pub models: BTreeMap<String, String>,
    /// New output caps (tokens per response), by role name; recorded in `run.json`.
    pub max_output_tokens: BTreeMap<String, u32>,
    /// The provider now in use.
    pub provider: Option<ProviderRecord>,
    /// Prices to add to (or replace in) what the run recorded, per model name.
    pub prices: BTreeMap<String, ModelPrice>,
    /// The MCP servers as started for this resume (what they offer may have changed).
    pub mcp_servers: Option<Vec<McpServerRecord>>,
    /// New sandbox settings (recorded in `run.json`).
    pub sandbox: Option<SandboxSettings>,
    /// Full role settings, by role name, for what `run.json` does not record (custom
    /// instructions, tool policies, compaction threshold, structured output). A role not
    /// listed is rebuilt from its record with the defaults of its kind.
    pub roles: BTreeMap<String, RoleConfig>,
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
    store: RunStore,
    roles: Vec<RoleConfig>,
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

/// Drives runs: creates their folders, runs their roles, resumes them.
#[derive(Clone)]
pub struct InftyOrchestrator {
    model: Arc<dyn ModelApi>,
    runs_root: Utf8PathBuf,
    progress: Arc<dyn ProgressReporter>,
    cancel: CancellationToken,
    tool_provider: Option<Arc<dyn ToolProvider>>,
    sandbox_helper: Option<std::path::PathBuf>,
    secrets: Vec<String>,
}

impl std::fmt::Debug for InftyOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InftyOrchestrator")
            .field("runs_root", &self.runs_root)
            .finish_non_exhaustive()
    }
}

impl InftyOrchestrator {
    /// An orchestrator over the default runs root (`$INFTY_HOME/runs`).
    pub fn new(model: Arc<dyn ModelApi>) -> Result<InftyOrchestrator, CoreError> {
        let root = infty_store::default_runs_root()?;
        Ok(InftyOrchestrator::with_runs_root(model, root))
    }

    /// An orchestrator over an explicit runs root.
    pub fn with_runs_root(
        model: Arc<dyn ModelApi>,
        runs_root: impl Into<Utf8PathBuf>,
    ) -> InftyOrchestrator {
        InftyOrchestrator {
            model,
            runs_root: runs_root.into(),
            progress: Arc::new(NoProgress),
            cancel: CancellationToken::new(),
            tool_provider: None,
            sandbox_helper: None,
            secrets: Vec::new(),
        }
    }

    /// Offers the tools of `provider` (MCP servers, ...) to the roles it names, alongside the
    /// built-in tools and under the same journaling and at-most-once rules.
    pub fn with_tool_provider(mut self, provider: Arc<dyn ToolProvider>) -> InftyOrchestrator {
        self.tool_provider = Some(provider);
        self
    }

    /// Names the sandbox helper: an executable whose `main` starts with
    /// `infty_sandbox::run_helper_if_requested()` (the `infty` binary, or `infty-sandbox`).
    /// Default: `$INFTY_SANDBOX_HELPER`, else the current executable, which must then
    /// dispatch the helper itself.
    pub fn with_sandbox_helper(mut self, helper: impl Into<std::path::PathBuf>) -> Self {
        self.sandbox_helper = Some(helper.into());
        self
    }

    /// Secret values (the API key) cut out of every tool result before it is recorded.
    pub fn with_secrets(mut self, values: impl IntoIterator<Item = String>) -> Self {
        self.secrets.extend(values);
        self
    }

    fn helper(&self) -> Option<std::path::PathBuf> {
        self.sandbox_helper
            .clone()
            .or_else(infty_sandbox::default_helper)
    }

    /// Checks that the sandbox `settings` ask for can start here.
    fn probe_sandbox(&self, settings: &SandboxSettings) -> Result<(), CoreError> {
        if !settings.any_on() {
            return Ok(());
        }
        let policy = infty_sandbox::SandboxPolicy {
            allow_network: settings.allow_network,
            ..infty_sandbox::SandboxPolicy::default()
        };
        SandboxSpec::new(SandboxMode::ReadOnly, policy, self.helper())
            .probe()
            .map_err(|source| CoreError::SandboxUnavailable { source })
    }

    /// Attaches a progress reporter.
    pub fn with_progress(mut self, progress: Arc<dyn ProgressReporter>) -> InftyOrchestrator {
        self.progress = progress;
        self
    }

    /// Uses `cancel` to stop runs: cancelling it leaves the run `interrupted`, resumable.
    pub fn with_cancellation(mut self, cancel: CancellationToken) -> InftyOrchestrator {
        self.cancel = cancel;
        self
    }

    /// The runs root.
    pub fn runs_root(&self) -> &Utf8Path {
        &self.runs_root
    }

    /// Creates the run folder and drives the run to its end.
    pub async fn execute_new_run(
        &self,
        params: RunParams,
        options: RunExecutionOptions,
    ) -> Result<RunOutcome, CoreError> {
        let spawned = self.spawn_run(params, options)?;
        self.drive_run(spawned).await
    }

    /// Creates the run folder (status `created`) without driving it.
    pub fn spawn_run(
        &self,
        params: RunParams,
        options: RunExecutionOptions,
    ) -> Result<SpawnedRun, CoreError> {
        if options.objective.trim().is_empty() {
            return Err(CoreError::Setup("the objective is empty".to_string()));
        }
        let mut roles = vec![params.solver, params.director];
        roles.extend(params.verifiers);
        check_roles(&roles)?;
        let (runs_root, run_id) = match (&params.run_root, params.run_id.as_deref()) {
            (Some(dir), id) => {
                let name = dir
                    .file_name()
                    .ok_or_else(|| CoreError::Setup(format!("run folder {dir} has no name")))?;
                if id.is_some_and(|id| id != name) {
                    return Err(CoreError::Setup(format!(
                        "run id {} does not match the run folder {dir}",
                        id.unwrap_or_default()
                    )));
                }
                let parent = dir.parent().unwrap_or(Utf8Path::new("."));
                (parent.to_path_buf(), Some(name.to_string()))
            }
            (None, id) => (self.runs_root.clone(), id.map(str::to_string)),
        };
        let init = RunInit {
            objective: options.objective.clone(),
            roles: roles
                .iter()
                .map(|role| RoleRecord {
                    context_window: role.context_window,
                    reasoning_summary: role.reasoning_summary.clone(),
                    max_output_tokens: role.max_output_tokens,
                    ..RoleRecord::new(&role.role, &role.model, role.reasoning_effort.as_deref())
                })
                .collect(),
            options: RunOptions {
                timeouts: options.timeouts,
                budgets: options.budgets,
                verification_policy: options.verification_policy,
                max_invalid_signals: nonzero(options.max_invalid_signals, 3),
                max_tool_steps: nonzero(options.max_tool_steps, 200),
                provider: options.provider.clone(),
                workspace: options.workspace.clone(),
                checks: options.checks.clone(),
                stall: options.stall,
                prices: options.prices.clone(),
                mcp: options.mcp_servers.clone(),
                sandbox: options.sandbox.clone(),
            },
        };
        self.probe_sandbox(&options.sandbox)?;
        let store = RunStore::create(&runs_root, run_id.as_deref(), init)?;
        Ok(SpawnedRun { store, roles })
    }

    /// Drives a spawned run to its end.
    pub async fn drive_run(&self, spawned: SpawnedRun) -> Result<RunOutcome, CoreError> {
        let SpawnedRun { store, roles } = spawned;
        let lock = store.lock()?;
        let driver = Driver::open(self, store, lock, roles, false)?;
        driver.run_traced().await
    }

    /// Continues a stopped run from its folder: the state is rebuilt from `events.jsonl`,
    /// each role's history from its rollout. A run that already succeeded is refused.
    pub async fn resume_run(
        &self,
        run_id: &str,
        overrides: ResumeOverrides,
    ) -> Result<RunOutcome, CoreError> {
        let mut store = RunStore::open_id(&self.runs_root, run_id)?;
        let sandbox = overrides
            .sandbox
            .clone()
            .unwrap_or_else(|| store.metadata().options.sandbox.clone());
        self.probe_sandbox(&sandbox)?;
        // Take the lock before touching run.json, so a second driver changes nothing.
        let lock = store.lock()?;
        if store.metadata().status == RunStatus::Succeeded {
            return Err(CoreError::AlreadySucceeded {
                run_id: run_id.to_string(),
            });
        }
        // Before anything is appended: a forged line must not be chained into the record.
        let check = store.check_record()?;
        let broken = check.broken();
        let record_note = if !broken.is_empty() {
            if !overrides.accept_edited_record {
                return Err(CoreError::RecordBroken {
                    run_id: run_id.to_string(),
                    broken,
                });
            }
            store.reseal_record()?;
            Some(Note::RecordEditAccepted { broken })
        } else if !check.keyed {
            store.reseal_record()?;
            Some(Note::RecordSealed)
        } else {
            None
        };
        store.update(|meta| {
            if let Some(timeouts) = overrides.timeouts {
                meta.options.timeouts = timeouts;
            }
            if let Some(budgets) = overrides.budgets {
                meta.options.budgets = budgets;
            }
            if let Some(provider) = overrides.provider.clone() {
                meta.options.provider = provider;
            }
            for (model, price) in &overrides.prices {
                meta.options.prices.insert(model.clone(), *price);
            }
            if let Some(servers) = overrides.mcp_servers.clone() {
                meta.options.mcp = servers;
            }
            meta.options.sandbox = sandbox.clone();
            for record in &mut meta.roles {
                if let Some(model) = overrides.models.get(&record.role) {
                    record.model = model.clone();
                }
                if let Some(cap) = overrides.max_output_tokens.get(&record.role) {
                    record.max_output_tokens = Some(*cap);
                }
            }
        })?;
        let roles = store
            .metadata()
            .roles
            .iter()
            .map(|record| match overrides.roles.get(&record.role) {
                Some(config) => RoleConfig {
                    model: record.model.clone(),
                    max_output_tokens: record.max_output_tokens.or(config.max_output_tokens),
                    ..config.clone()
                },
                None => RoleConfig::new(&record.role, &record.model)
                    .with_reasoning_effort(record.reasoning_effort.clone())
                    .with_reasoning_summary(record.reasoning_summary.clone())
                    .with_context_window(record.context_window)
                    .with_max_output_tokens(record.max_output_tokens),
            })
            .collect();
        let mut driver = Driver::open(self, store, lock, roles, true)?;
        driver.startup_notes.extend(record_note);
        driver.run_traced().await
    }

    /// Creates the run folder and leaves it `queued`, for a worker of a fleet to drive
    /// later with [`InftyOrchestrator::resume_run`]. Returns the run id.
    pub fn queue_run(
        &self,
        params: RunParams,
        options: RunExecutionOptions,
    ) -> Result<String, CoreError> {
        let SpawnedRun { mut store, .. } = self.spawn_run(params, options)?;
        let _lock = store.lock()?;
        store.set_status(RunStatus::Queued)?;
        Ok(store.run_id().to_string())
    }
}

/// Marks a run that no driver holds as failed, for a reason found outside it (a fleet
/// giving up on a run whose drivers kept dying). The reason is journaled. A run that
/// a live process drives is refused (`StoreError::Locked`), one that succeeded is left
/// alone.
pub fn fail_stopped_run(runs_root: &Utf8Path, run_id: &str, reason: &str) -> Result<(), CoreError> {
    let mut store = RunStore::open_id(runs_root, run_id)?;
    let _lock = store.lock()?;
    store.reload()?;
    if store.metadata().status == RunStatus::Succeeded {
        return Err(CoreError::AlreadySucceeded {
            run_id: run_id.to_string(),
        });
    }
    let mut journal = store.journal()?;
    journal.append(
        &RunEvent::Note(Note::RunFailed {
            reason: reason.to_string(),
        }),
        true,
    )?;
    // Whatever it was (queued, running after a crash, interrupted), it is failed now.
    store.update(|meta| {
        meta.status = RunStatus::Failed;
        meta.error = Some(reason.to_string());
    })?;
    Ok(())
}

/// The sandbox mode `settings` give a role of `kind`.
fn mode_of(settings: &SandboxSettings, kind: RoleKind) -> SandboxMode {
    match kind {
        RoleKind::Solver => settings.solver,
        RoleKind::Director => settings.director,
        RoleKind::Verifier => settings.verifier,
    }
}

fn nonzero(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

fn check_roles(roles: &[RoleConfig]) -> Result<(), CoreError> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, role) in roles.iter().enumerate() {
        let expected = match index {
            0 => Some(RoleKind::Solver),
            1 => Some(RoleKind::Director),
            _ => Some(RoleKind::Verifier),
        };
        if RoleKind::of(&role.role) != expected {
            return Err(CoreError::Setup(format!(
                "role {} is in the wrong place: the Solver must be named `solver`, the Director `director`, and Verifiers `verifier...`",
                role.role
            )));
        }
        if infty_store::validate_run_id(&role.role).is_err() {
            return Err(CoreError::Setup(format!(
                "role name {:?} may only use letters, digits, '.', '_' and '-'",
                role.role
            )));
        }
        if !seen.insert(role.role.clone()) {
            return Err(CoreError::Setup(format!(
                "role {} appears twice",
                role.role
            )));
        }
        if role.model.trim().is_empty() {
            return Err(CoreError::Setup(format!("role {} has no model", role.role)));
        }
    }
    Ok(())
}

/// Journals notes and reports progress for the sessions' events.
struct Reporter {
    journal: Mutex<Journal>,
    progress: Arc<dyn ProgressReporter>,
    journal_error: Mutex<Option<StoreError>>,
    /// The Solver's tool calls of the turn in progress, for its work fingerprint.
    solver_work: Mutex<WorkLog>,
}

impl Reporter {
    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(&self, event: &RunEvent, durable: bool) -> Result<(), StoreError> {
        self.journal().append(event, durable).map(|_| ())
    }

    /// Journals a note from inside a session callback, where an error cannot be returned:
    /// it is kept and surfaced at the next step.
    fn note(&self, note: Note) {
        dispatch(self.progress.as_ref(), &note);
        if let Err(error) = self.append(&RunEvent::Note(note), false) {
            let mut slot = self
                .journal_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.get_or_insert(error);
        }
    }

    fn take_solver_work(&self) -> WorkLog {
        std::mem::take(
            &mut *self
                .solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn take_error(&self) -> Option<StoreError> {
        self.journal_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl SessionObserver for Reporter {
    fn stream_event(&self, role: &str, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(delta) => self.progress.text_delta(role, delta),
            StreamEvent::Retrying {
                attempt,
                max,
                delay,
                reason,
            } => {
                self.progress
                    .model_retry(role, *attempt, *max, *delay, reason);
                self.note(Note::ModelRetry {
                    role: role.to_string(),
                    attempt: *attempt,
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
    }

    fn output_capped(&self, role: &str, max_output_tokens: u32) {
        self.note(Note::OutputCapped {
            role: role.to_string(),
            max_output_tokens,
        });
    }

    fn tool_started(&self, role: &str, call_id: &str, tool: &str, arguments: &str) {
        if role == "solver" {
            // The arguments are hashed with the output when the call finishes.
            self.solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .call(tool, arguments);
        }
        self.progress.tool_call_started(role, tool, arguments);
        self.note(Note::ToolCallStarted {
            role: role.to_string(),
            call_id: call_id.to_string(),
            tool: tool.to_string(),
        });
    }

    fn tool_finished(&self, role: &str, call_id: &str, tool: &str, result: &ToolResult) {
        if role == "solver" {
            self.solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .output(&result.output);
        }
        self.progress
            .tool_call_finished(role, tool, result.ok, &result.output);
        if let Some(plan) = &result.plan {
            self.progress.plan_updated(role, plan);
        }
        self.note(Note::ToolCallFinished {
            role: role.to_string(),
            call_id: call_id.to_string(),
            tool: tool.to_string(),
            ok: result.ok,
        });
    }

    fn compacted(&self, role: &str, prompt_tokens: u64, kept_items: usize) {
        self.note(Note::Compacted {
            role: role.to_string(),
            prompt_tokens,
            kept_items,
        });
    }
}

struct Driver {
    store: RunStore,
    flow: Flow,
    reporter: Arc<Reporter>,
    sessions: HashMap<String, RoleSession>,
    roles: HashMap<String, RoleConfig>,
    model: Arc<dyn ModelApi>,
    progress: Arc<dyn ProgressReporter>,
    cancel: CancellationToken,
    tool_provider: Option<Arc<dyn ToolProvider>>,
    resumed: bool,
    /// Inbox ids already journaled (a crash may have left them undelivered in `inbox/`).
    delivered: std::collections::BTreeSet<String>,
    /// The journal says which budgets are in force (runs journaled before budgets were
    /// journaled do not).
    budgets_journaled: bool,
    /// Notes journaled right after `driver_started` (what a resume found in the record).
    startup_notes: Vec<Note>,
    sandbox_helper: Option<std::path::PathBuf>,
    secrets: Vec<String>,
    _lock: infty_store::RunLock,
}

impl Driver {
    fn open(
        orchestrator: &InftyOrchestrator,
        store: RunStore,
        lock: infty_store::RunLock,
        roles: Vec<RoleConfig>,
        resumed: bool,
    ) -> Result<Driver, CoreError> {
        let meta = store.metadata().clone();
        let options = &meta.options;
        let run_dir = store.dir().to_path_buf();
        let base_dir = options.workspace.clone().unwrap_or_else(|| run_dir.clone());
        let verifiers: Vec<String> = roles
            .iter()
            .filter(|role| role.kind() == RoleKind::Verifier)
            .map(|role| role.role.clone())
            .collect();
        let mut flow = Flow::new(FlowConfig {
            objective: meta.objective.clone(),
            run_id: meta.run_id.clone(),
            run_dir: run_dir.to_string(),
            base_dir: base_dir.to_string(),
            verifiers,
            policy: options.verification_policy,
            budgets: options.budgets,
            max_invalid_signals: nonzero(options.max_invalid_signals, 3),
            checks: options.checks.clone(),
            stall: options.stall,
        });
        let mut delivered = std::collections::BTreeSet::new();
        let mut budgets_journaled = false;
        if resumed {
            // The state is the fold of the journal's inputs; notes are history only.
            for entry in read_journal::<RunEvent>(&store.events_path())? {
                let entry = entry?;
                if let RunEvent::Input(input) = entry.event {
                    if let Input::MessageDelivered { id, .. } = &input {
                        delivered.insert(id.clone());
                    }
                    budgets_journaled |= matches!(input, Input::BudgetsSet { .. });
                    flow.step(input, entry.at);
                }
            }
        }
        let reporter = Arc::new(Reporter {
            journal: Mutex::new(store.journal()?),
            progress: orchestrator.progress.clone(),
            journal_error: Mutex::new(None),
            solver_work: Mutex::new(WorkLog::default()),
        });
        let mut driver = Driver {
            store,
            flow,
            reporter,
            sessions: HashMap::new(),
            roles: HashMap::new(),
            model: orchestrator.model.clone(),
            progress: orchestrator.progress.clone(),
            cancel: orchestrator.cancel.clone(),
            tool_provider: orchestrator.tool_provider.clone(),
            resumed,
            delivered,
            budgets_journaled,
            startup_notes: Vec::new(),
            sandbox_helper: orchestrator.helper(),
            secrets: orchestrator.secrets.clone(),
            _lock: lock,
        };
        for role in roles {
            let session = driver.open_session(&role, resumed)?;
            driver.sessions.insert(role.role.clone(), session);
            driver.roles.insert(role.role.clone(), role);
        }
        Ok(driver)
    }

    fn open_session(&self, role: &RoleConfig, restore: bool) -> Result<RoleSession, CoreError> {
        // A run no driver ever started (created, or queued for a fleet) has no rollouts yet;
        // once one did, every role's rollout exists, and a missing one is lost history.
        let restore = restore && self.flow.started();
        let options = &self.store.metadata().options;
        let context = ToolContext {
            run_dir: self.store.dir().to_path_buf(),
            workspace: match role.kind() {
                RoleKind::Solver | RoleKind::Verifier => options.workspace.clone(),
                RoleKind::Director => options.workspace.clone(),
            },
        };
        let tools = match &self.tool_provider {
            Some(provider) => {
                let mut policy = role.tools.clone();
                let offered = provider.definitions(&role.role);
                policy.external.extend(offered.into_iter().map(|d| d.name));
                ToolSet::new(context, policy).with_provider(provider.clone(), &role.role)
            }
            None => ToolSet::new(context, role.tools.clone()),
        };
        let tools = tools
            .with_sandbox(self.sandbox_spec(role)?)
            .with_redactions(self.secrets.iter().cloned());
        let output_schema = role.structured_output.then(|| match role.kind() {
            RoleKind::Solver => OutputSchema {
                name: infty_signals::schema::SOLVER_SIGNAL_NAME.to_string(),
                schema: infty_signals::schema::solver_signal(),
                strict: true,
            },
            RoleKind::Director => OutputSchema {
                name: infty_signals::schema::DIRECTIVE_NAME.to_string(),
                schema: infty_signals::schema::directive(),
                strict: true,
            },
            RoleKind::Verifier => OutputSchema {
                name: infty_signals::schema::VERDICT_NAME.to_string(),
                schema: infty_signals::schema::verdict(),
                strict: true,
            },
        });
        let config = SessionConfig {
            role: role.role.clone(),
            model: role.model.clone(),
            reasoning_effort: role.reasoning_effort.clone(),
            reasoning_summary: role.reasoning_summary.clone(),
            instructions: format!(
                "{}\n\nYour role name in this run: {}.",
                role.instructions
                    .as_deref()
                    .unwrap_or_else(|| role.kind().instructions())
                    .trim_end(),
                role.role
            ),
            output_schema,
            max_tool_steps: nonzero(options.max_tool_steps, 200),
            context_window: role.context_window,
            compact_threshold: role.compact_threshold,
            compact_keep_items: 8,
            max_output_tokens: role.max_output_tokens,
        };
        if restore {
            let relative = self.store.rollout_path(&role.role).ok_or_else(|| {
                CoreError::Setup(format!("run.json has no rollout for role {}", role.role))
            })?;
            let path = self.store.dir().join(relative);
            // Checked before the writer opens (and so creates) the file: a resume must never
            // mistake a lost rollout for an empty history.
            if !path.is_file() {
                return Err(CoreError::RolloutMissing {
                    role: role.role.clone(),
                    path,
                });
            }
            let writer = self.store.rollout_writer(&role.role)?;
            Ok(RoleSession::restore(
                config,
                self.model.clone(),
                tools,
                &path,
                writer,
            )?)
        } else {
            let writer = self.store.rollout_writer(&role.role)?;
            Ok(RoleSession::new(config, self.model.clone(), tools, writer))
        }
    }

    /// [`Driver::run`] inside the run's span, which records how it ended.
    async fn run_traced(self) -> Result<RunOutcome, CoreError> {
        let span = telemetry::run_span(self.store.run_id(), self.resumed);
        let result = self.run().instrument(span.clone()).await;
        telemetry::record_run(&span, &result);
        result
    }

    /// The sandbox of `role`'s processes: its kind's mode from `run.json`, this run's space.
    fn sandbox_spec(&self, role: &RoleConfig) -> Result<SandboxSpec, CoreError> {
        let mode = mode_of(&self.store.metadata().options.sandbox, role.kind());
        self.sandbox_spec_for(mode, &role.role)
    }

    /// The sandbox of processes started in `mode` on behalf of `label` (a role, or a
    /// completion check, which runs `read-only`): what `tools::sandboxed_command` takes.
    /// Every process the driver starts for a run gets its spec here.
    fn sandbox_spec_for(&self, mode: SandboxMode, label: &str) -> Result<SandboxSpec, CoreError> {
        let options = &self.store.metadata().options;
        let space = RunSpace::of_run(self.store.dir(), options.workspace.as_deref());
        SandboxSpec::for_run(
            mode,
            &space,
            &options.sandbox,
            self.sandbox_helper.clone(),
            &format!("{}-{label}", self.store.run_id()),
        )
        .map_err(|error| CoreError::Setup(format!("sandbox of {label}: {error}")))
    }

    async fn run(mut self) -> Result<RunOutcome, CoreError> {
        self.store.set_status(RunStatus::Running)?;
        self.progress
            .run_started(self.store.run_id(), self.store.dir(), self.resumed);
        self.record(Note::DriverStarted {
            pid: std::process::id(),
            resumed: self.resumed,
        })?;
        for note in std::mem::take(&mut self.startup_notes) {
            // Durable: the acceptance of an edited record must not be lost to a crash.
            dispatch(self.progress.as_ref(), &note);
            self.reporter.append(&RunEvent::Note(note), true)?;
        }
        // Budgets may change between drives: journal them, so that a later fold judges each
        // input by the budgets in force when it came.
        let budgets = self.store.metadata().options.budgets;
        if !self.flow.started() || self.flow.config().budgets != budgets || !self.budgets_journaled
        {
            self.feed(Input::BudgetsSet { budgets })?;
        }
        let settings = self.store.metadata().options.sandbox.clone();
        if settings.any_off() {
            let mut roles: Vec<String> = self
                .roles
                .values()
                .filter(|role| mode_of(&settings, role.kind()) == SandboxMode::Off)
                .map(|role| role.role.clone())
                .collect();
            roles.sort();
            self.record(Note::SandboxOff { roles })?;
        }
        let first = if self.resumed && self.flow.started() {
            Input::Resumed
        } else {
            Input::Started
        };
        self.feed(first)?;
        loop {
            if let Some(terminal) = self.flow.terminal().cloned() {
                return self.finish(terminal);
            }
            let Some(mut call) = self.flow.outstanding() else {
                let reason =
                    "the orchestrator has nothing to do but the run is not over".to_string();
                self.feed_terminal(Terminal::Failed { reason })?;
                continue;
            };
            if let Some(role) = call.role() {
                let role = role.to_string();
                if self.deliver_messages(&role)? {
                    match self.flow.outstanding() {
                        Some(updated) => call = updated,
                        None => continue,
                    }
                }
            }
            let cancel = self.cancel.clone();
            let inputs = tokio::select! {
                biased;
                () = cancel.cancelled() => vec![Input::Cancel],
                inputs = self.execute(call) => inputs?,
            };
            for input in inputs {
                if input == Input::Cancel {
                    // Not journaled: a resumed run continues where it was cut.
                    let actions = self.flow.step(Input::Cancel, OffsetDateTime::now_utc());
                    self.apply(actions)?;
                } else {
                    self.feed(input)?;
                }
            }
        }
    }

    /// Journals an input durably, steps the state machine, and applies the actions.
    fn feed(&mut self, input: Input) -> Result<(), CoreError> {
        if let Some(error) = self.reporter.take_error() {
            return Err(error.into());
        }
        // run.json follows the journal: usage is added, otherwise `updated_at` moves on.
        if let Input::UsageRecorded {
            role,
            usage,
            cost_usd,
        } = &input
        {
            self.store.add_usage_and_cost(role, *usage, *cost_usd)?;
            self.progress.usage(role, usage);
            self.progress.cost(role, *cost_usd);
        } else {
            self.store.update(|_| {})?;
        }
        self.reporter
            .append(&RunEvent::Input(input.clone()), true)?;
        let actions = self.flow.step(input, OffsetDateTime::now_utc());
        self.apply(actions)
    }

    fn feed_terminal(&mut self, terminal: Terminal) -> Result<(), CoreError> {
        // Only used when the state machine stalls, which would be a bug: record it and stop.
        self.record(terminal.note())?;
        self.store.update(|meta| {
            meta.error = terminal.reason().map(str::to_string);
        })?;
        self.store.set_status(terminal.status())?;
        Err(CoreError::Stopped {
            run_id: self.store.run_id().to_string(),
            ending: terminal,
        })
    }

    fn apply(&mut self, actions: Vec<Action>) -> Result<(), CoreError> {
        for action in actions {
            match action {
                Action::Record { note } => self.record(note)?,
                Action::Finish { .. } => {}
            }
        }
        Ok(())
    }

    fn record(&self, note: Note) -> Result<(), CoreError> {
        dispatch(self.progress.as_ref(), &note);
        let durable = matches!(
            note,
            Note::RunSucceeded { .. }
                | Note::RunFailed { .. }
                | Note::BudgetExhausted { .. }
                | Note::RunInterrupted
                | Note::RunBlocked { .. }
                | Note::RunUsageLimited { .. }
        );
        self.reporter.append(&RunEvent::Note(note), durable)?;
        Ok(())
    }

    /// Delivers queued operator messages for `role` with its next turn; returns whether any was.
    fn deliver_messages(&mut self, role: &str) -> Result<bool, CoreError> {
        let inbox = self.store.inbox();
        let mut any = false;
        for message in inbox.pending(role)? {
            if !self.delivered.contains(&message.id) {
                self.feed(Input::MessageDelivered {
                    id: message.id.clone(),
                    role: message.role.clone(),
                    text: message.text.clone(),
                })?;
                self.delivered.insert(message.id.clone());
                any = true;
            }
            inbox.mark_delivered(&message.id)?;
        }
        Ok(any)
    }

    async fn execute(&mut self, call: Call) -> Result<Vec<Input>, CoreError> {
        let timeouts = self.store.metadata().options.timeouts;
        match call {
            Call::PostToSolver { message } => {
                let limit = Duration::from_secs(timeouts.solver_turn_secs.max(1));
                self.reporter.take_solver_work();
                Ok(match self.turn("solver", &message, limit).await {
                    Ok((text, usage)) => {
                        let (fingerprint, summary) = self.solver_work(&text);
                        vec![
                            self.usage_input("solver", usage),
                            Input::SolverWork {
                                fingerprint,
                                summary,
                            },
                            Input::SolverReplied { text },
                        ]
                    }
                    Err((error, failure)) => vec![Input::SolverFailed { error, failure }],
                })
            }
            Call::AskDirector { message } => {
                let limit = Duration::from_secs(timeouts.director_secs.max(1));
                Ok(match self.turn("director", &message, limit).await {
                    Ok((text, usage)) => vec![
                        self.usage_input("director", usage),
                        Input::DirectorReplied { text },
                    ],
                    Err((error, failure)) => vec![Input::DirectorFailed { error, failure }],
                })
            }
            Call::RunCheck { check } => {
                let workspace = self.store.metadata().options.workspace.clone();
                self.progress
                    .role_thinking(&format!("check {}", check.name));
                // Checks judge the delivery: they run read-only, like the Verifiers.
                let sandbox = self.sandbox_spec_for(SandboxMode::ReadOnly, "check")?;
                let mut result = crate::checks::run_check(
                    &check,
                    self.store.dir(),
                    workspace.as_deref(),
                    &sandbox,
                )
                .await;
                result.output = crate::tools::Redactor::new(
                    self.secrets.iter().cloned().chain(sandbox.secret_values()),
                )
                .redact(result.output);
                self.progress
                    .role_message(&format!("check {}", check.name), &result.output);
                Ok(vec![Input::CheckFinished { result }])
            }
            Call::CheckDeliverable { path } => {
                let check = self.check_deliverable(&path);
                Ok(vec![Input::DeliverableChecked { check }])
            }
            Call::AskVerifiers { roles, message } => {
                let limit = Duration::from_secs(timeouts.verifier_secs.max(1));
                let mut taken = Vec::new();
                for role in &roles {
                    if let Some(session) = self.sessions.remove(role) {
                        taken.push(session);
                    }
                }
                let reporter = self.reporter.clone();
                let progress = self.progress.clone();
                let results = join_all(taken.iter_mut().map(|session| {
                    let reporter = reporter.clone();
                    let progress = progress.clone();
                    let message = message.clone();
                    let span = self.turn_span(session.role());
                    async move {
                        progress.role_thinking(session.role());
                        let outcome = tokio::time::timeout(
                            limit,
                            session.resume_turn(&message, reporter.as_ref()),
                        )
                        .instrument(span.clone())
                        .await;
                        telemetry::record_turn(&span, &outcome);
                        (session.role().to_string(), flatten_turn(outcome, limit))
                    }
                }))
                .await;
                for session in taken {
                    self.sessions.insert(session.role().to_string(), session);
                }
                let mut inputs = Vec::new();
                // Before the verdicts are fed: a verdict on changed files must not count.
                if let Some(path) = self.flow.deliverable_under_verification() {
                    let check = self.check_deliverable(path);
                    inputs.push(Input::DeliverableRechecked { check });
                }
                for (role, result) in results {
                    match result {
                        Ok((text, usage)) => {
                            self.progress.role_message(&role, &text);
                            inputs.push(self.usage_input(&role, usage));
                            inputs.push(Input::VerifierReplied { role, text });
                        }
                        Err((error, failure)) => inputs.push(Input::VerifierFailed {
                            role,
                            error,
                            failure,
                        }),
                    }
                }
                Ok(inputs)
            }
            Call::ReplaceVerifiers { roles } => {
                for role in &roles {
                    self.store.rotate_rollout(role)?;
                    let config = self
                        .roles
                        .get(role)
                        .cloned()
                        .ok_or_else(|| CoreError::Setup(format!("unknown verifier {role}")))?;
                    let session = self.open_session(&config, false)?;
                    self.sessions.insert(role.clone(), session);
                }
                Ok(vec![Input::VerifiersReplaced { roles }])
            }
        }
    }

    /// The span of a turn of `role`, with the role's model and the provider.
    fn turn_span(&self, role: &str) -> tracing::Span {
        let model = self
            .roles
            .get(role)
            .map_or("", |config| config.model.as_str());
        telemetry::turn_span(self.store.run_id(), role, model, self.model.provider_name())
    }

    /// Validates a delivered path and fingerprints what it holds (blocking file reads; a
    /// deliverable is read twice per verification round).
    fn check_deliverable(&self, path: &str) -> DeliverableCheck {
        let checked = self.store.resolve_deliverable(path).and_then(|resolved| {
            let fingerprint = self.store.fingerprint_deliverable(&resolved, path)?;
            Ok((resolved, fingerprint))
        });
        match checked {
            Ok((resolved, fingerprint)) => {
                let relative = resolved
                    .strip_prefix(self.canonical_run_dir())
                    .map(|p| p.to_string())
                    .unwrap_or_else(|_| resolved.to_string());
                DeliverableCheck::Accepted {
                    path: relative,
                    fingerprint: Some(fingerprint),
                }
            }
            Err(error) => DeliverableCheck::Refused {
                reason: error.to_string(),
            },
        }
    }

    fn canonical_run_dir(&self) -> Utf8PathBuf {
        self.store
            .dir()
            .canonicalize_utf8()
            .unwrap_or_else(|_| self.store.dir().to_path_buf())
    }

    /// The fingerprint of the Solver's finished turn: its tool calls, and the delivered
    /// files when it delivered.
    fn solver_work(&self, reply: &str) -> (String, String) {
        let mut work = self.reporter.take_solver_work();
        if let Ok(infty_signals::SolverSignal::FinalDelivery(delivery)) =
            infty_signals::parse_solver_signal(reply)
            && let Ok(resolved) = self.store.resolve_deliverable(&delivery.deliverable_path)
        {
            work.delivered(fingerprint_path(&resolved));
        }
        work.finish()
    }

    /// The usage of a role's turn, priced by the model the role uses now.
    fn usage_input(&self, role: &str, usage: TokenUsage) -> Input {
        let cost_usd = self
            .roles
            .get(role)
            .and_then(|config| self.store.metadata().options.prices.get(&config.model))
            .map_or(0.0, |price| price.cost_usd(&usage));
        Input::UsageRecorded {
            role: role.to_string(),
            usage,
            cost_usd,
        }
    }

    async fn turn(
        &mut self,
        role: &str,
        message: &str,
        limit: Duration,
    ) -> Result<(String, TokenUsage), (String, FailureKind)> {
        let reporter = self.reporter.clone();
        let span = self.turn_span(role);
        let Some(session) = self.sessions.get_mut(role) else {
            return Err((format!("no session for role {role}"), FailureKind::Other));
        };
        self.progress.role_thinking(role);
        let outcome = tokio::time::timeout(limit, session.resume_turn(message, reporter.as_ref()))
            .instrument(span.clone())
            .await;
        telemetry::record_turn(&span, &outcome);
        let result = flatten_turn(outcome, limit);
        if let Ok((text, _)) = &result {
            self.progress.role_message(role, text);
        }
        result
    }

    fn finish(mut self, terminal: Terminal) -> Result<RunOutcome, CoreError> {
        self.progress.run_finished(&terminal);
        // The lengths of a record that stopped cleanly, so a later cut is found. Best effort:
        // without it only that one check is lost, and the run's outcome must still be kept.
        if let Err(error) = self.store.save_record_head() {
            tracing::warn!(run_id = self.store.run_id(), %error, "cannot save the record's head");
        }
        let run_id = self.store.run_id().to_string();
        if !matches!(terminal, Terminal::Succeeded { .. }) {
            self.store.update(|meta| {
                meta.error = terminal.reason().map(str::to_string);
                meta.resume_after = terminal.resume_after();
            })?;
            self.store.set_status(terminal.status())?;
            return Err(CoreError::Stopped {
                run_id,
                ending: terminal,
            });
        }
        match terminal {
            Terminal::Succeeded {
                deliverable_path,
                summary,
            } => {
                let outcome = OutcomeRecord {
                    deliverable_path: deliverable_path.clone(),
                    summary: summary.clone(),
                };
                self.store.update(|meta| {
                    meta.outcome = Some(outcome);
                    meta.error = None;
                })?;
                self.store.set_status(RunStatus::Succeeded)?;
                Ok(RunOutcome {
                    run_id,
                    run_dir: self.store.dir().to_path_buf(),
                    deliverable_path: self.store.dir().join(deliverable_path),
                    summary,
                })
            }
            ending => Err(CoreError::Stopped { run_id, ending }),
        }
    }
}

fn flatten_turn(
    outcome: Result<Result<crate::session::TurnOutput, SessionError>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<(String, TokenUsage), (String, FailureKind)> {
    match outcome {
        Ok(Ok(output)) => Ok((output.text, output.usage)),
        Ok(Err(error)) => {
            let kind = failure_kind(&error, OffsetDateTime::now_utc());
            Err((error.to_string(), kind))
        }
        Err(_) => Err((
            format!("the turn timed out after {}s", limit.as_secs()),
            FailureKind::Timeout,
        )),
    }
}

/// What kind of failure a session error is, from the model client's typed error. `now` dates
/// the end of a usage limit that gave no reset time.
pub fn failure_kind(error: &SessionError, now: OffsetDateTime) -> FailureKind {
    let SessionError::Model { source, .. } = error else {
        return FailureKind::Other;
    };
    if source.is_context_overflow() {
        return FailureKind::ContextOverflow;
    }
    if source.is_quota() {
        return FailureKind::Quota;
    }
    if source.is_auth() {
        return FailureKind::Auth;
    }
    if source.is_rate_limited() {
        let wait = source
            .rate_limit_wait()
            .unwrap_or(DEFAULT_LIMIT_WAIT)
            .max(Duration::from_secs(1));
        let wait = time::Duration::try_from(wait).unwrap_or(time::Duration::MINUTE);
        return FailureKind::UsageLimited {
            resume_after: (now + wait).replace_nanosecond(0).unwrap_or(now + wait),
        };
    }
    if source.is_retryable() || matches!(source, infty_model::ModelError::RetriesExhausted { .. }) {
        return FailureKind::Transient;
    }
    FailureKind::Other
}
