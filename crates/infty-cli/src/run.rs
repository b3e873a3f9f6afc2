//! `infty create`: build the roles, drive the run with live progress, report the outcome.

use std::sync::Arc;

use anyhow::{Context, Result};
use camino::Utf8Path;
use infty_core::{
    CoreError, InftyOrchestrator, RoleConfig, RunExecutionOptions, RunOutcome, RunParams,
};
use infty_model::ModelClient;
use infty_store::Timeouts;
use tokio_util::sync::CancellationToken;

use crate::args::CreateArgs;
use crate::terminal::TerminalProgress;
use crate::{Coded, EXIT_INTERRUPTED, provider};

/// Creates a run and drives it to its end.
pub fn create(runs_root: &Utf8Path, args: CreateArgs) -> Result<u8> {
    let objective = args.objective.clone().unwrap_or_default();
    if objective.trim().is_empty() {
        return Err(Coded::usage("the objective is empty"));
    }
    if let Some(id) = &args.run_id {
        infty_store::validate_run_id(id).map_err(|error| Coded::usage(error.to_string()))?;
    }
    let (provider, record) = provider::resolve(&args.provider)?;
    let client = ModelClient::new(provider).context("cannot set up the model client")?;

    let director_model = args
        .director_model
        .clone()
        .unwrap_or_else(|| args.model.clone());
    let verifier_model = args
        .verifier_model
        .clone()
        .unwrap_or_else(|| args.model.clone());
    let params = RunParams {
        run_id: args.run_id.clone(),
        run_root: None,
        solver: RoleConfig::new("solver", &args.model),
        director: RoleConfig::new("director", director_model)
            .with_reasoning_effort(args.director_effort.map(|e| e.as_str().to_string())),
        verifiers: (1..=args.verifiers)
            .map(|n| RoleConfig::new(format!("verifier-{n}"), &verifier_model))
            .collect(),
    };
    let mut timeouts = Timeouts::default();
    if let Some(secs) = args.provider.timeout_secs {
        timeouts.solver_turn_secs = secs;
        timeouts.director_secs = secs;
        timeouts.verifier_secs = secs;
    }
    let options = RunExecutionOptions {
        objective,
        timeouts,
        provider: record,
        ..RunExecutionOptions::default()
    };

    let progress = Arc::new(TerminalProgress::new());
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        let cancel = CancellationToken::new();
        watch_ctrl_c(cancel.clone());
        let orchestrator = InftyOrchestrator::with_runs_root(Arc::new(client), runs_root)
            .with_progress(progress.clone())
            .with_cancellation(cancel);
        let spawned = orchestrator.spawn_run(params, options)?;
        progress.set_run(spawned.run_id(), spawned.run_dir());
        orchestrator.drive_run(spawned).await
    });
    report(result, args.json, &progress)
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
                    "run {run_id} was interrupted; resume it with `infty resume {run_id}`"
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
            Err(error.into())
        }
    }
}
