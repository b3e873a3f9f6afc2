//! `infty create` and `infty resume`: build the roles, drive the run with live progress,
//! report the outcome.

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use infty_core::{
    CoreError, InftyOrchestrator, ResumeOverrides, RoleConfig, RunExecutionOptions, RunOutcome,
    RunParams,
};
use infty_model::ModelClient;
use infty_store::{RunStatus, RunStore, Timeouts, VerificationPolicy};
use tokio_util::sync::CancellationToken;

use crate::args::{CreateArgs, PolicyArg, ResumeArgs};
use crate::terminal::TerminalProgress;
use crate::{Coded, EXIT_INTERRUPTED, provider};

/// Creates a run and drives it to its end.
pub fn create(
    runs_root: &Utf8Path,
    args: CreateArgs,
    sandbox: infty_store::SandboxSettings,
) -> Result<u8> {
    let objective = match (&args.objective, &args.objective_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the objective file {path}"))?,
        (None, None) => String::new(),
    };
    if objective.trim().is_empty() {
        return Err(Coded::usage("the objective is empty"));
    }
    if let Some(id) = &args.run_id {
        infty_store::validate_run_id(id).map_err(|error| Coded::usage(error.to_string()))?;
    }
    let workspace = args.workspace.as_deref().map(workspace_dir).transpose()?;
    let (provider, record) = provider::resolve(&args.provider, None)?;
    let secrets = secrets_of(&provider);
    let client = ModelClient::new(provider).context("cannot set up the model client")?;

    let director_model = args
        .director_model
        .clone()
        .unwrap_or_else(|| args.model.clone());
    let verifier_count = args
        .verifiers
        .unwrap_or_else(|| u32::try_from(args.verifier_model.len()).unwrap_or(1).max(1));
    let verifiers = (0..verifier_count)
        .map(|index| {
            let model = if args.verifier_model.is_empty() {
                args.model.clone()
            } else {
                args.verifier_model[index as usize % args.verifier_model.len()].clone()
            };
            RoleConfig::new(format!("verifier-{}", index + 1), model)
                .with_context_window(args.context_window)
                .with_reasoning_effort(args.verifier_effort.map(|e| e.as_str().to_string()))
        })
        .collect();
    let params = RunParams {
        run_id: args.run_id.clone(),
        run_root: None,
        solver: RoleConfig::new("solver", &args.model)
            .with_context_window(args.context_window)
            .with_reasoning_effort(args.solver_effort.map(|e| e.as_str().to_string())),
        director: RoleConfig::new("director", director_model)
            .with_context_window(args.context_window)
            .with_reasoning_effort(args.director_effort.map(|e| e.as_str().to_string())),
        verifiers,
    };
    let mut timeouts = Timeouts::default();
    if let Some(secs) = args.provider.timeout_secs {
        timeouts = timeouts_of(secs);
    }
    let mut budgets = infty_store::Budgets::default();
    args.budgets.apply(&mut budgets);
    let options = RunExecutionOptions {
        objective,
        timeouts,
        budgets,
        verification_policy: match args.verification_policy {
            PolicyArg::All => VerificationPolicy::All,
            PolicyArg::Majority => VerificationPolicy::Majority,
        },
        workspace,
        provider: record,
        sandbox,
        ..RunExecutionOptions::default()
    };
    drive(
        args.json,
        client,
        secrets,
        runs_root,
        |orchestrator, progress| async move {
            let spawned = orchestrator.spawn_run(params, options)?;
            progress.set_run(spawned.run_id(), spawned.run_dir());
            orchestrator.drive_run(spawned).await
        },
    )
}

/// Continues a stopped run.
pub fn resume(runs_root: &Utf8Path, args: ResumeArgs) -> Result<u8> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let meta = store.metadata().clone();
    if meta.status == RunStatus::Succeeded {
        return Err(CoreError::AlreadySucceeded {
            run_id: meta.run_id,
        }
        .into());
    }
    let (provider, record) = provider::resolve(&args.provider, Some(&meta.options.provider))?;
    let secrets = secrets_of(&provider);
    let client = ModelClient::new(provider).context("cannot set up the model client")?;
    let sandbox =
        crate::sandbox::for_resume(&args.sandbox, &meta.options.sandbox).map_err(Coded::usage)?;
    let mut overrides = ResumeOverrides {
        provider: Some(record),
        sandbox: Some(sandbox),
        ..ResumeOverrides::default()
    };
    if let Some(secs) = args.provider.timeout_secs {
        overrides.timeouts = Some(timeouts_of(secs));
    }
    if args.budgets.any() {
        let mut budgets = meta.options.budgets;
        args.budgets.apply(&mut budgets);
        overrides.budgets = Some(budgets);
    }
    if let Some(model) = &args.model {
        for role in &meta.roles {
            overrides.models.insert(role.role.clone(), model.clone());
        }
    }
    let run_id = args.run_id.clone();
    drive(
        args.json,
        client,
        secrets,
        runs_root,
        |orchestrator, progress| async move {
            progress.set_run(&run_id, store.dir());
            orchestrator.resume_run(&run_id, overrides).await
        },
    )
}

/// The values no tool output may carry into the records: the API key.
fn secrets_of(provider: &infty_model::ProviderConfig) -> Vec<String> {
    provider
        .api_key
        .iter()
        .map(|key| key.expose().to_owned())
        .collect()
}

fn timeouts_of(secs: u64) -> Timeouts {
    Timeouts {
        solver_turn_secs: secs,
        director_secs: secs,
        verifier_secs: secs,
    }
}

fn workspace_dir(path: &Utf8Path) -> Result<Utf8PathBuf> {
    let canonical = path
        .canonicalize_utf8()
        .map_err(|error| Coded::usage(format!("workspace {path}: {error}")))?;
    if !canonical.is_dir() {
        return Err(Coded::usage(format!("workspace {path} is not a folder")));
    }
    Ok(canonical)
}

/// Runs `body` on a runtime with live progress and Ctrl-C handling, then reports.
fn drive<F, Fut>(
    json: bool,
    client: ModelClient,
    secrets: Vec<String>,
    runs_root: &Utf8Path,
    body: F,
) -> Result<u8>
where
    F: FnOnce(InftyOrchestrator, Arc<TerminalProgress>) -> Fut,
    Fut: Future<Output = Result<RunOutcome, CoreError>>,
{
    let progress = Arc::new(TerminalProgress::new());
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        watch_ctrl_c(cancel.clone());
        let orchestrator = InftyOrchestrator::with_runs_root(Arc::new(client), runs_root)
            .with_progress(progress.clone())
            .with_cancellation(cancel)
            .with_secrets(secrets);
        body(orchestrator, progress.clone()).await
    });
    report(result, json, &progress)
}

/// The first Ctrl-C cancels the run cleanly; a second one exits at once.
fn watch_ctrl_c(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        }
    });
}

fn report(
    result: Result<RunOutcome, CoreError>,
    json: bool,
    progress: &TerminalProgress,
) -> Result<u8> {
    match result {
        Ok(outcome) => {
            progress.summary(&outcome.run_id, outcome.run_dir.as_str(), "succeeded");
            if json {
                let value = serde_json::json!({
                    "run_id": outcome.run_id,
                    "status": "succeeded",
                    "run_dir": outcome.run_dir,
                    "deliverable_path": outcome.deliverable_path,
                    "summary": outcome.summary,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("run {} succeeded", outcome.run_id);
                println!("deliverable: {}", outcome.deliverable_path);
                if let Some(summary) = &outcome.summary {
                    println!("summary: {summary}");
                }
            }
            Ok(0)
        }
        Err(CoreError::Interrupted { run_id }) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"run_id": run_id, "status": "interrupted"})
                );
            }
            Err(anyhow::Error::new(Coded {
                code: EXIT_INTERRUPTED,
                message: format!(
                    "run {run_id} was interrupted; continue it with `infty resume {run_id}`"
                ),
            }))
        }
        Err(error) => {
            if json {
                let (run_id, status) = match &error {
                    CoreError::RunFailed { run_id, .. } => (Some(run_id.clone()), "failed"),
                    CoreError::BudgetExhausted { run_id, .. } => {
                        (Some(run_id.clone()), "budget_exhausted")
                    }
                    _ => (None, "error"),
                };
                println!(
                    "{}",
                    serde_json::json!({"run_id": run_id, "status": status, "error": error.to_string()})
                );
            }
            let hint = match &error {
                CoreError::RunFailed { run_id, .. } | CoreError::BudgetExhausted { run_id, .. } => {
                    format!("; continue it with `infty resume {run_id}`")
                }
                _ => String::new(),
            };
            Err(anyhow::anyhow!("{error}{hint}"))
        }
    }
}
