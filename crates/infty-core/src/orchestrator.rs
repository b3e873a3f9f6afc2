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
    Budgets, Journal, OutcomeRecord, ProviderRecord, RoleRecord, RunInit, RunOptions, RunStatus,
    RunStore, SandboxMode, SandboxSettings, StoreError, Timeouts, TokenUsage, VerificationPolicy,
    read_journal,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::events::{Note, RunEvent};
use crate::flow::{Action, Call, DeliverableCheck, Flow, FlowConfig, Input, Terminal};
use crate::progress::{NoProgress, ProgressReporter, dispatch};
use crate::prompts::RoleKind;
use crate::session::{RoleSession, SessionConfig, SessionError, SessionObserver};
use crate::tools::{
    RunSpace, SandboxSpec, ToolContext, ToolPolicy, ToolResult, ToolSet, role_policy,
};

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
    /// The run stopped as failed; it can be resumed.
    #[error("run {run_id} failed: {reason}")]
    RunFailed {
        /// The run.
        run_id: String,
        /// Why.
        reason: String,
    },
    /// A budget ran out; resume with a larger one.
    #[error("run {run_id} exhausted its budget: {reason}")]
    BudgetExhausted {
        /// The run.
        run_id: String,
        /// Which budget.
        reason: String,
    },
    /// The run was interrupted; it can be resumed.
    #[error("run {run_id} was interrupted")]
    Interrupted {
        /// The run.
        run_id: String,
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
            instructions: None,
            tools,
            context_window: None,
            compact_threshold: 0.8,
            structured_output: true,
        }
    }

    /// Sets the reasoning effort.
    pub fn with_reasoning_effort(mut self, effort: Option<String>) -> RoleConfig {
        self.reasoning_effort = effort;
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
    /// The provider now in use.
    pub provider: Option<ProviderRecord>,
    /// New sandbox settings (recorded in `run.json`).
    pub sandbox: Option<SandboxSettings>,
    /// Full role settings, by role name, for what `run.json` does not record (custom
    /// instructions, tool policies, compaction threshold, structured output). A role not
    /// listed is rebuilt from its record with the defaults of its kind.
    pub roles: BTreeMap<String, RoleConfig>,
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
            sandbox_helper: None,
            secrets: Vec::new(),
        }
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
        driver.run().await
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
            meta.options.sandbox = sandbox.clone();
            for record in &mut meta.roles {
                if let Some(model) = overrides.models.get(&record.role) {
                    record.model = model.clone();
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
                    ..config.clone()
                },
                None => RoleConfig::new(&record.role, &record.model)
                    .with_reasoning_effort(record.reasoning_effort.clone())
                    .with_context_window(record.context_window),
            })
            .collect();
        let driver = Driver::open(self, store, lock, roles, true)?;
        driver.run().await
    }
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

    fn tool_started(&self, role: &str, call_id: &str, tool: &str, arguments: &str) {
        self.progress.tool_call_started(role, tool, arguments);
        self.note(Note::ToolCallStarted {
            role: role.to_string(),
            call_id: call_id.to_string(),
            tool: tool.to_string(),
        });
    }

    fn tool_finished(&self, role: &str, call_id: &str, tool: &str, result: &ToolResult) {
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
    resumed: bool,
    /// Inbox ids already journaled (a crash may have left them undelivered in `inbox/`).
    delivered: std::collections::BTreeSet<String>,
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
        });
        let mut delivered = std::collections::BTreeSet::new();
        if resumed {
            // The state is the fold of the journal's inputs; notes are history only.
            for entry in read_journal::<RunEvent>(&store.events_path())? {
                let entry = entry?;
                if let RunEvent::Input(input) = entry.event {
                    if let Input::MessageDelivered { id, .. } = &input {
                        delivered.insert(id.clone());
                    }
                    flow.step(input, entry.at);
                }
            }
        }
        let reporter = Arc::new(Reporter {
            journal: Mutex::new(store.journal()?),
            progress: orchestrator.progress.clone(),
            journal_error: Mutex::new(None),
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
            resumed,
            delivered,
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
        let options = &self.store.metadata().options;
        let context = ToolContext {
            run_dir: self.store.dir().to_path_buf(),
            workspace: match role.kind() {
                RoleKind::Solver | RoleKind::Verifier => options.workspace.clone(),
                RoleKind::Director => options.workspace.clone(),
            },
        };
        let tools = ToolSet::new(context, role.tools.clone())
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
        };
        let writer = self.store.rollout_writer(&role.role)?;
        if restore {
            let relative = self.store.rollout_path(&role.role).ok_or_else(|| {
                CoreError::Setup(format!("run.json has no rollout for role {}", role.role))
            })?;
            let path = self.store.dir().join(relative);
            Ok(RoleSession::restore(
                config,
                self.model.clone(),
                tools,
                &path,
                writer,
            )?)
        } else {
            Ok(RoleSession::new(config, self.model.clone(), tools, writer))
        }
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
        let settings = &options.sandbox;
        let space = RunSpace::of_run(self.store.dir(), options.workspace.as_deref());
        SandboxSpec::new(
            mode,
            role_policy(mode, &space, settings),
            self.sandbox_helper.clone(),
        )
        .with_env_names(settings.env.iter().cloned())
        .with_private_temp(&format!("{}-{label}", self.store.run_id()))
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
        if let Input::UsageRecorded { role, usage } = &input {
            self.store.add_usage(role, *usage)?;
            self.progress.usage(role, usage);
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
        let reason = match &terminal {
            Terminal::Failed { reason } => reason.clone(),
            _ => String::new(),
        };
        self.record(Note::RunFailed {
            reason: reason.clone(),
        })?;
        self.store
            .update(|meta| meta.error = Some(reason.clone()))?;
        self.store.set_status(RunStatus::Failed)?;
        Err(CoreError::RunFailed {
            run_id: self.store.run_id().to_string(),
            reason,
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
                Ok(match self.turn("solver", &message, limit).await {
                    Ok((text, usage)) => {
                        vec![usage_input("solver", usage), Input::SolverReplied { text }]
                    }
                    Err(error) => vec![Input::SolverFailed { error }],
                })
            }
            Call::AskDirector { message } => {
                let limit = Duration::from_secs(timeouts.director_secs.max(1));
                Ok(match self.turn("director", &message, limit).await {
                    Ok((text, usage)) => vec![
                        usage_input("director", usage),
                        Input::DirectorReplied { text },
                    ],
                    Err(error) => vec![Input::DirectorFailed { error }],
                })
            }
            Call::CheckDeliverable { path } => {
                let check = match self.store.resolve_deliverable(&path) {
                    Ok(resolved) => {
                        let relative = resolved
                            .strip_prefix(self.canonical_run_dir())
                            .map(|p| p.to_string())
                            .unwrap_or_else(|_| resolved.to_string());
                        DeliverableCheck::Accepted { path: relative }
                    }
                    Err(error) => DeliverableCheck::Refused {
                        reason: error.to_string(),
                    },
                };
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
                    async move {
                        progress.role_thinking(session.role());
                        let outcome = tokio::time::timeout(
                            limit,
                            session.resume_turn(&message, reporter.as_ref()),
                        )
                        .await;
                        (session.role().to_string(), flatten_turn(outcome, limit))
                    }
                }))
                .await;
                for session in taken {
                    self.sessions.insert(session.role().to_string(), session);
                }
                let mut inputs = Vec::new();
                for (role, result) in results {
                    match result {
                        Ok((text, usage)) => {
                            self.progress.role_message(&role, &text);
                            inputs.push(usage_input(&role, usage));
                            inputs.push(Input::VerifierReplied { role, text });
                        }
                        Err(error) => inputs.push(Input::VerifierFailed { role, error }),
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

    fn canonical_run_dir(&self) -> Utf8PathBuf {
        self.store
            .dir()
            .canonicalize_utf8()
            .unwrap_or_else(|_| self.store.dir().to_path_buf())
    }

    async fn turn(
        &mut self,
        role: &str,
        message: &str,
        limit: Duration,
    ) -> Result<(String, infty_model::Usage), String> {
        let reporter = self.reporter.clone();
        let Some(session) = self.sessions.get_mut(role) else {
            return Err(format!("no session for role {role}"));
        };
        self.progress.role_thinking(role);
        let outcome =
            tokio::time::timeout(limit, session.resume_turn(message, reporter.as_ref())).await;
        let result = flatten_turn(outcome, limit);
        if let Ok((text, _)) = &result {
            self.progress.role_message(role, text);
        }
        result
    }

    fn finish(mut self, terminal: Terminal) -> Result<RunOutcome, CoreError> {
        self.progress.run_finished(&terminal);
        let run_id = self.store.run_id().to_string();
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
            Terminal::Failed { reason } => {
                self.store
                    .update(|meta| meta.error = Some(reason.clone()))?;
                self.store.set_status(RunStatus::Failed)?;
                Err(CoreError::RunFailed { run_id, reason })
            }
            Terminal::BudgetExhausted { reason } => {
                self.store
                    .update(|meta| meta.error = Some(reason.clone()))?;
                self.store.set_status(RunStatus::BudgetExhausted)?;
                Err(CoreError::BudgetExhausted { run_id, reason })
            }
            Terminal::Interrupted => {
                self.store.set_status(RunStatus::Interrupted)?;
                Err(CoreError::Interrupted { run_id })
            }
        }
    }
}

fn flatten_turn(
    outcome: Result<Result<crate::session::TurnOutput, SessionError>, tokio::time::error::Elapsed>,
    limit: Duration,
) -> Result<(String, infty_model::Usage), String> {
    match outcome {
        Ok(Ok(output)) => Ok((output.text, output.usage)),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("the turn timed out after {}s", limit.as_secs())),
    }
}

fn usage_input(role: &str, usage: infty_model::Usage) -> Input {
    Input::UsageRecorded {
        role: role.to_string(),
        usage: TokenUsage {
            input_tokens: usage.input_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            output_tokens: usage.output_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            total_tokens: usage.total_tokens,
        },
    }
}
