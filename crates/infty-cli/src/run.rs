//! `infty create` and `infty resume`: build the roles, drive the run with live progress,
//! report the outcome.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use infty_core::events::Terminal;
use infty_core::tools::ToolProvider;
use infty_core::{
    CoreError, InftyOrchestrator, ResumeOverrides, RoleConfig, RunExecutionOptions, RunOutcome,
    RunParams,
};
use infty_model::ModelClient;
use infty_store::{McpServerRecord, Role, RunStatus, RunStore, Timeouts, VerificationPolicy};
use tokio_util::sync::CancellationToken;

use crate::args::{CreateArgs, PolicyArg, ResumeArgs};
use crate::config::ConfigFile;
use crate::output_caps::OutputCaps;
use crate::terminal::TerminalProgress;
use crate::{
    Coded, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_STOPPED, EXIT_TERMINATED, EXIT_USAGE_LIMITED,
    provider,
};

/// The exit code of a run that ended this way; `signal` is the code of the signal that
/// stopped it, when one did (130 for Ctrl-C, 143 for SIGTERM).
pub(crate) fn exit_code(ending: &Terminal, signal: Option<u8>) -> u8 {
    match ending.status() {
        RunStatus::Succeeded => 0,
        RunStatus::Interrupted => signal.unwrap_or(EXIT_INTERRUPTED),
        RunStatus::BudgetExhausted | RunStatus::Blocked => EXIT_STOPPED,
        RunStatus::UsageLimited => EXIT_USAGE_LIMITED,
        RunStatus::Failed | RunStatus::Created | RunStatus::Queued | RunStatus::Running => {
            EXIT_FAILED
        }
    }
}

/// Whether `create --resume-if-exists --run-id ID` names a run that exists, to be
/// continued with [`continue_existing`] rather than created.
pub(crate) fn exists(runs_root: &Utf8Path, args: &CreateArgs) -> Result<bool> {
    match (&args.run_id, args.resume_if_exists) {
        (Some(id), true) => {
            infty_store::validate_run_id(id).map_err(|error| Coded::usage(error.to_string()))?;
            Ok(runs_root.join(id).join(infty_store::RUN_JSON).exists())
        }
        _ => Ok(false),
    }
}

/// Creates a run and drives it to its end.
pub(crate) fn create(
    runs_root: &Utf8Path,
    args: CreateArgs,
    file: &ConfigFile,
    sandbox: infty_store::SandboxSettings,
) -> Result<u8> {
    let NewRun {
        provider,
        params,
        mut options,
    } = plan(&args, file, provider::resolve)?;
    options.sandbox = sandbox;
    let secrets = secrets_of(&provider);
    let client = ModelClient::new(provider).context("cannot set up the model client")?;
    let run_dir = runs_root.join(params.run_id.as_deref().unwrap_or("new-run"));
    let servers = McpStart {
        records: options.mcp_servers.clone(),
        cwd: options.workspace.clone(),
        sandbox: if options.mcp_servers.is_empty() {
            None
        } else {
            crate::mcp::sandbox_for(&options.sandbox, &run_dir, options.workspace.as_deref())?
        },
    };
    drive(
        args.json,
        args.wait_on_limit,
        client,
        secrets,
        runs_root,
        servers,
        |orchestrator, progress, mcp_servers| async move {
            let options = RunExecutionOptions {
                mcp_servers,
                ..options
            };
            let spawned = orchestrator.spawn_run(params, options)?;
            progress.set_run(spawned.run_id(), spawned.run_dir());
            orchestrator.drive_run(spawned).await
        },
    )
}

/// A run as `create`'s flags describe it, not yet created.
pub(crate) struct NewRun {
    /// Where its models are served.
    pub provider: infty_model::ProviderConfig,
    /// Its roles.
    pub params: RunParams,
    /// Its objective and limits.
    pub options: RunExecutionOptions,
}

/// How the provider flags become a provider: [`provider::resolve`] for a run driven here,
/// [`provider::resolve_unkeyed`] for one that another machine drives with its own key.
type ResolveProvider = fn(
    &crate::args::ProviderArgs,
    Option<&infty_store::ProviderRecord>,
) -> Result<(infty_model::ProviderConfig, infty_store::ProviderRecord)>;

/// Reads `create`'s flags and the config file into a run to create (shared by `create`
/// and `submit`).
pub(crate) fn plan(
    args: &CreateArgs,
    file: &ConfigFile,
    resolve: ResolveProvider,
) -> Result<NewRun> {
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
    let mcp_servers = crate::mcp::records(&args.mcp, &args.mcp_config)?;
    let (provider, record) = resolve(&args.provider, None)?;
    let defaults = OutputCaps::defaults(&provider.name);
    let configured = args.role_max_output_tokens;
    let caps = OutputCaps {
        solver: configured.solver.unwrap_or(defaults.solver),
        director: configured.director.unwrap_or(defaults.director),
        verifier: configured.verifier.unwrap_or(defaults.verifier),
    }
    .overridden(args.max_output_tokens);

    let director_model = args
        .director_model
        .clone()
        .unwrap_or_else(|| args.model.clone());
    let verifier_count = args
        .verifiers
        .unwrap_or_else(|| u32::try_from(args.verifier_model.len()).unwrap_or(1).max(1));
    let verifier_models: Vec<String> = (0..verifier_count)
        .map(|index| {
            if args.verifier_model.is_empty() {
                args.model.clone()
            } else {
                args.verifier_model[index as usize % args.verifier_model.len()].clone()
            }
        })
        .collect();
    let mut models = vec![args.model.as_str(), director_model.as_str()];
    models.extend(verifier_models.iter().map(String::as_str));
    let windows = crate::window::context_windows(&provider, args.context_window, &models);
    let window = |model: &str| windows.get(model).copied().flatten();
    let summary = |role: Option<crate::args::SummaryArg>| {
        args.reasoning_summary
            .or(role)
            .map(|s| s.as_str().to_string())
    };
    let choice =
        |choice: Option<crate::args::ToolChoiceArg>| choice.map(Into::into).unwrap_or_default();
    let verifiers = verifier_models
        .iter()
        .enumerate()
        .map(|(index, model)| {
            RoleConfig::new(Role::verifier(index + 1), model)
                .with_context_window(window(model))
                .with_max_output_tokens(Some(caps.verifier))
                .with_reasoning_effort(args.verifier_effort.map(|e| e.as_str().to_string()))
                .with_reasoning_summary(summary(args.role_summaries.verifiers))
                .with_tool_choice(choice(args.verifier_tool_choice))
        })
        .collect();
    let params = RunParams {
        run_id: args.run_id.clone(),
        run_root: None,
        solver: RoleConfig::new(Role::Solver, &args.model)
            .with_context_window(window(&args.model))
            .with_max_output_tokens(Some(caps.solver))
            .with_reasoning_effort(args.solver_effort.map(|e| e.as_str().to_string()))
            .with_reasoning_summary(summary(args.role_summaries.solver))
            .with_tool_choice(choice(args.solver_tool_choice)),
        director: RoleConfig::new(Role::Director, &director_model)
            .with_context_window(window(&director_model))
            .with_max_output_tokens(Some(caps.director))
            .with_reasoning_effort(args.director_effort.map(|e| e.as_str().to_string()))
            .with_reasoning_summary(summary(args.role_summaries.director))
            .with_tool_choice(choice(args.director_tool_choice)),
        verifiers,
    };
    let mut timeouts = Timeouts::default();
    if let Some(secs) = args.budgets.timeout_secs {
        timeouts = timeouts_of(secs);
    }
    let mut budgets = infty_store::Budgets::default();
    args.budgets.apply(&mut budgets);
    let mut models: Vec<&str> = vec![&params.solver.model, &params.director.model];
    models.extend(params.verifiers.iter().map(|v| v.model.as_str()));
    let prices = crate::config::prices(file, &record.base_url, models);
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
        checks: crate::config::checks(file, &args.checks),
        stall: file.stall.policy(),
        prices,
        mcp_servers,
        max_tool_steps: args
            .max_tool_steps
            .unwrap_or(infty_store::RunOptions::DEFAULT_MAX_TOOL_STEPS),
        ..RunExecutionOptions::default()
    };
    Ok(NewRun {
        provider,
        params,
        options,
    })
}

/// `create --resume-if-exists` on a run that exists: a run that already succeeded reports
/// its outcome again (so a restarted job sees success), any other is resumed with the
/// provider and budget flags given to `create`.
pub(crate) fn continue_existing(
    runs_root: &Utf8Path,
    args: CreateArgs,
    file: &ConfigFile,
) -> Result<u8> {
    let run_id = args.run_id.clone().unwrap_or_default();
    let store = RunStore::open_id(runs_root, &run_id)?;
    let meta = store.metadata();
    if meta.status == RunStatus::Succeeded
        && let Some(outcome) = &meta.outcome
    {
        let outcome = RunOutcome {
            run_id: run_id.clone(),
            run_dir: store.dir().to_path_buf(),
            deliverable_path: store.dir().join(&outcome.deliverable_path),
            summary: outcome.summary.clone(),
        };
        let progress = TerminalProgress::new();
        return report(Ok(outcome), args.json, &progress, None);
    }
    drop(store);
    resume(
        runs_root,
        ResumeArgs {
            run_id,
            provider: args.provider,
            budgets: args.budgets,
            model: None,
            wait_on_limit: args.wait_on_limit,
            accept_edited_record: false,
            max_output_tokens: args.max_output_tokens,
            sandbox: args.sandbox,
            stream: args.stream,
            json: args.json,
        },
        file,
    )
}

/// What a resume of a run uses: its `run.json`, changed by the flags typed now, resolved
/// without driving anything (so `infty config --run` shows what `resume` would do).
pub(crate) struct ResumePlan {
    store: RunStore,
    meta: infty_store::RunMetadata,
    provider: infty_model::ProviderConfig,
    overrides: ResumeOverrides,
    /// Each setting with its source (flag or recorded).
    pub(crate) settings: crate::settings::Settings,
}

/// Resolves the resume of the run `args.run_id` under `runs_root`.
pub(crate) fn plan_resume(
    runs_root: &Utf8Path,
    args: &ResumeArgs,
    file: &ConfigFile,
) -> Result<ResumePlan> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let meta = store.metadata().clone();
    let (provider, record) = provider::resolve(&args.provider, Some(&meta.options.provider))?;
    // Runs recorded before caps existed get the defaults of their provider.
    let defaults = OutputCaps::defaults(&provider.name).overridden(args.max_output_tokens);
    let sandbox =
        crate::sandbox::for_resume(&args.sandbox, &meta.options.sandbox).map_err(Coded::usage)?;
    let mut overrides = ResumeOverrides {
        provider: Some(record),
        sandbox: Some(sandbox),
        accept_edited_record: args.accept_edited_record,
        ..ResumeOverrides::default()
    };
    if let Some(secs) = args.budgets.timeout_secs {
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
    // Models the run has no price for yet (a new `--model`, a price added to the config
    // file) are priced now; recorded prices stay, so `show` and the budget keep agreeing.
    let base_url = overrides
        .provider
        .as_ref()
        .map_or(meta.options.provider.base_url.clone(), |p| {
            p.base_url.clone()
        });
    let models: Vec<String> = meta
        .roles
        .iter()
        .map(|role| {
            overrides
                .models
                .get(&role.role)
                .unwrap_or(&role.model)
                .clone()
        })
        .filter(|model| !meta.options.prices.contains_key(model))
        .collect();
    overrides.prices = crate::config::prices(file, &base_url, models.iter().map(String::as_str));
    for role in &meta.roles {
        let cap = args
            .max_output_tokens
            .or(role.max_output_tokens)
            .unwrap_or_else(|| defaults.for_role(&role.role));
        overrides.max_output_tokens.insert(role.role.clone(), cap);
    }
    let api_key_set = provider.api_key.is_some();
    let settings = crate::settings::for_resume(&meta, args, &overrides, api_key_set);
    Ok(ResumePlan {
        store,
        meta,
        provider,
        overrides,
        settings,
    })
}

/// Continues a stopped run.
pub(crate) fn resume(runs_root: &Utf8Path, args: ResumeArgs, file: &ConfigFile) -> Result<u8> {
    let ResumePlan {
        store,
        meta,
        provider,
        mut overrides,
        settings,
    } = plan_resume(runs_root, &args, file)?;
    if meta.status == RunStatus::Succeeded {
        return Err(CoreError::AlreadySucceeded {
            run_id: meta.run_id,
        }
        .into());
    }
    match serde_json::to_string(&settings) {
        Ok(json) => tracing::info!(settings = %json, "the settings of a resumed run"),
        Err(error) => tracing::warn!(%error, "cannot log the settings of a resumed run"),
    }
    let secrets = secrets_of(&provider);
    let client = ModelClient::new(provider).context("cannot set up the model client")?;
    let run_id = args.run_id.clone();
    let servers = McpStart {
        records: meta.options.mcp.clone(),
        cwd: meta.options.workspace.clone(),
        sandbox: if meta.options.mcp.is_empty() {
            None
        } else {
            let settings = overrides.sandbox.as_ref().unwrap_or(&meta.options.sandbox);
            crate::mcp::sandbox_for(settings, store.dir(), meta.options.workspace.as_deref())?
        },
    };
    drive(
        args.json,
        args.wait_on_limit,
        client,
        secrets,
        runs_root,
        servers,
        |orchestrator, progress, mcp_servers| async move {
            if !mcp_servers.is_empty() {
                overrides.mcp_servers = Some(mcp_servers);
            }
            progress.set_run(&run_id, store.dir());
            orchestrator.resume_run(&run_id, overrides).await
        },
    )
}

/// The values no tool output may carry into the records: the API key.
pub(crate) fn secrets_of(provider: &infty_model::ProviderConfig) -> Vec<String> {
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

/// The MCP servers a run starts with, and where stdio servers start.
struct McpStart {
    records: Vec<McpServerRecord>,
    cwd: Option<Utf8PathBuf>,
    /// The shell tool's sandbox, for stdio servers.
    sandbox: Option<infty_core::tools::SandboxSpec>,
}

/// Runs `body` on a runtime with live progress and signal handling, then reports. With
/// `wait_on_limit`, a run stopped by a usage limit waits until the limit lifts and is
/// resumed, as often as it takes.
///
/// The run's MCP servers are started first (a server that cannot start stops here, before
/// anything is written) and stopped when the run ends, however it ends; `body` gets their
/// records as started, to put in `run.json`.
fn drive<F, Fut>(
    json: bool,
    wait_on_limit: bool,
    client: ModelClient,
    secrets: Vec<String>,
    runs_root: &Utf8Path,
    servers: McpStart,
    body: F,
) -> Result<u8>
where
    F: FnOnce(InftyOrchestrator, Arc<TerminalProgress>, Vec<McpServerRecord>) -> Fut,
    Fut: Future<Output = Result<RunOutcome, CoreError>>,
{
    let progress = Arc::new(TerminalProgress::new());
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let signal = Arc::new(AtomicU8::new(0));
    let result = runtime.block_on(async {
        let tools = match crate::mcp::start(&servers.records, servers.cwd, servers.sandbox).await {
            Ok(tools) => tools,
            Err(error) => {
                if json {
                    let value = serde_json::json!({"run_id": null, "status": "error", "error": error.to_string()});
                    println!("{value}");
                }
                return Err(error);
            }
        };
        let cancel = CancellationToken::new();
        watch_signals(cancel.clone(), signal.clone());
        let mut orchestrator = InftyOrchestrator::with_runs_root(Arc::new(client), runs_root)
            .with_progress(progress.clone())
            .with_cancellation(cancel.clone())
            .with_secrets(secrets);
        let mut records = Vec::new();
        if let Some(tools) = &tools {
            orchestrator = orchestrator.with_tool_provider(tools.clone());
            records = tools.records();
        }
        let mut result = body(orchestrator.clone(), progress.clone(), records).await;
        while let Err(CoreError::Stopped {
            run_id,
            ending: Terminal::UsageLimited { resume_after, .. },
        }) = &result
        {
            if !wait_on_limit {
                break;
            }
            let wait = (*resume_after - time::OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(std::time::Duration::ZERO);
            progress.waiting_on_limit(run_id, *resume_after);
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
            let run_id = run_id.clone();
            progress.rearm();
            result = orchestrator
                .resume_run(&run_id, infty_core::ResumeOverrides::default())
                .await;
        }
        if let Some(tools) = &tools {
            tools.shutdown().await;
        }
        anyhow::Ok(result)
    })?;
    let signal = match signal.load(Ordering::SeqCst) {
        0 => None,
        code => Some(code),
    };
    report(result, json, &progress, signal)
}

/// The first Ctrl-C or SIGTERM cancels the run cleanly (status `interrupted`); a second one
/// exits at once. `signal` keeps the exit code of the first (130 or 143).
fn watch_signals(cancel: CancellationToken, signal: Arc<AtomicU8>) {
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        if let Some(code) = next_signal(&mut term).await {
            signal.store(code, Ordering::SeqCst);
            cancel.cancel();
            if let Some(code) = next_signal(&mut term).await {
                std::process::exit(i32::from(code));
            }
        }
    });
}

/// The exit code of the next Ctrl-C or SIGTERM; `None` if signals cannot be watched.
async fn next_signal(term: &mut Option<tokio::signal::unix::Signal>) -> Option<u8> {
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.ok().map(|()| EXIT_INTERRUPTED),
        code = async {
            match term.as_mut() {
                Some(term) => term.recv().await.map(|()| EXIT_TERMINATED),
                None => std::future::pending().await,
            }
        } => code,
    }
}

fn report(
    result: Result<RunOutcome, CoreError>,
    json: bool,
    progress: &TerminalProgress,
    signal: Option<u8>,
) -> Result<u8> {
    match result {
        Ok(outcome) => {
            let ending = Terminal::Succeeded {
                deliverable_path: (outcome.deliverable_path.strip_prefix(&outcome.run_dir))
                    .unwrap_or(&outcome.deliverable_path)
                    .to_string(),
                summary: outcome.summary.clone(),
            };
            progress.summary(&outcome.run_id, outcome.run_dir.as_str(), &ending);
            if json {
                let value = serde_json::json!({
                    "run_id": outcome.run_id,
                    "status": ending.status(),
                    "run_dir": outcome.run_dir,
                    "deliverable_path": outcome.deliverable_path,
                    "summary": outcome.summary,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("run {} {}", outcome.run_id, ending.label());
                println!("deliverable: {}", outcome.deliverable_path);
                if let Some(summary) = &outcome.summary {
                    println!("summary: {summary}");
                }
            }
            Ok(0)
        }
        Err(CoreError::Stopped { run_id, ending }) => {
            let code = exit_code(&ending, signal);
            if json {
                let mut value = serde_json::json!({
                    "run_id": run_id,
                    "status": ending.status(),
                });
                if let Some(reason) = ending.reason() {
                    value["error"] = format!("run {run_id} {ending}").into();
                    value["reason"] = reason.into();
                }
                if let Some(at) = ending.resume_after() {
                    value["resume_after"] = crate::inspect::timestamp(at).into();
                }
                println!("{value}");
            }
            let hint = match &ending {
                Terminal::Blocked { .. } => format!(
                    "; tell the Solver what to do with `infty send {run_id} MESSAGE`, then `infty resume {run_id}`"
                ),
                Terminal::UsageLimited { .. } => format!(
                    "; continue it with `infty resume {run_id}` once the limit lifts (or use --wait-on-limit)"
                ),
                Terminal::BudgetExhausted { .. } => {
                    format!("; continue it with a larger budget: `infty resume {run_id} --max-...`")
                }
                _ => format!("; continue it with `infty resume {run_id}`"),
            };
            Err(anyhow::Error::new(Coded {
                code,
                message: format!("run {run_id} {ending}{hint}"),
            }))
        }
        Err(error) => {
            let run_id = match &error {
                CoreError::RecordBroken { run_id, .. } => Some(run_id.clone()),
                _ => None,
            };
            if json {
                let status = if run_id.is_some() {
                    "record_broken"
                } else {
                    "error"
                };
                println!(
                    "{}",
                    serde_json::json!({"run_id": run_id, "status": status, "error": error.to_string()})
                );
            }
            match run_id {
                Some(run_id) => Err(anyhow::anyhow!(
                    "{error}; inspect it with `infty show {run_id}`, and continue from it as it is with `infty resume {run_id} --accept-edited-record`"
                )),
                // One line: the error's own text already says what its sources said.
                None => Err(anyhow::anyhow!("{error}")),
            }
        }
    }
}
