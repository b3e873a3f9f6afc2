//! The driver: runs the calls the state machine asks for, journals everything, keeps
//! `run.json` current, and feeds results back.
//!
//! [`InftyOrchestrator`] is the library API in the seed's shape (`new`, `with_runs_root`,
//! `with_progress`, `execute_new_run`, `spawn_run`, `drive_run`) plus `resume_run`. The
//! driver holds the run's lock for as long as it drives it. Each input is journaled before
//! the state machine sees it, and synced before anything that costs to redo (a model call,
//! a check) starts, so a crash at any point resumes from the journal and the rollouts alone.

mod api;
mod driver;
mod recorder;

pub use api::*;
use driver::Driver;
pub use driver::failure_kind;

use std::sync::Arc;

use camino::{Utf8Path, Utf8PathBuf};
use infty_model::ModelApi;
use infty_store::{
    Role, RoleRecord, RunInit, RunOptions, RunStatus, RunStore, SandboxMode, SandboxSettings,
};
use tokio_util::sync::CancellationToken;

use crate::events::{Note, RunEvent, Terminal};
use crate::progress::{NoProgress, ProgressReporter};
use crate::tools::{SandboxSpec, ToolProvider};

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
                    tool_choice: role.tool_choice,
                    ..RoleRecord::new(
                        role.role.clone(),
                        &role.model,
                        role.reasoning_effort.as_deref(),
                    )
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
                if let Some(model) = overrides.models.get(record.role.as_str()) {
                    record.model = model.clone();
                }
                if let Some(cap) = overrides.max_output_tokens.get(record.role.as_str()) {
                    record.max_output_tokens = Some(*cap);
                }
            }
        })?;
        let roles = store
            .metadata()
            .roles
            .iter()
            .map(|record| match overrides.roles.get(record.role.as_str()) {
                Some(config) => RoleConfig {
                    model: record.model.clone(),
                    max_output_tokens: record.max_output_tokens.or(config.max_output_tokens),
                    tool_choice: record.tool_choice,
                    ..config.clone()
                },
                None => RoleConfig::new(record.role.clone(), &record.model)
                    .with_reasoning_effort(record.reasoning_effort.clone())
                    .with_reasoning_summary(record.reasoning_summary.clone())
                    .with_context_window(record.context_window)
                    .with_max_output_tokens(record.max_output_tokens)
                    .with_tool_choice(record.tool_choice),
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
        &RunEvent::Note(Note::Ended(Terminal::Failed {
            reason: reason.to_string(),
        })),
        true,
    )?;
    // Whatever it was (queued, running after a crash, interrupted), it is failed now.
    store.update(|meta| {
        meta.status = RunStatus::Failed;
        meta.error = Some(reason.to_string());
    })?;
    Ok(())
}

/// The sandbox mode `settings` give `role`.
fn mode_of(settings: &SandboxSettings, role: &Role) -> SandboxMode {
    match role {
        Role::Solver => settings.solver,
        Role::Director => settings.director,
        Role::Verifier(_) => settings.verifier,
    }
}

fn nonzero(value: u32, default: u32) -> u32 {
    if value == 0 { default } else { value }
}

fn check_roles(roles: &[RoleConfig]) -> Result<(), CoreError> {
    let mut seen = std::collections::BTreeSet::new();
    for (index, role) in roles.iter().enumerate() {
        let in_place = match index {
            0 => role.role == Role::Solver,
            1 => role.role == Role::Director,
            _ => role.role.is_verifier(),
        };
        if !in_place {
            return Err(CoreError::Setup(format!(
                "role {} is in the wrong place: the Solver must be named `solver`, the Director `director`, and Verifiers `verifier...`",
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
