//! `infty submit` and `infty worker`: the command-line face of `infty-fleet`.
//!
//! `submit` creates the run folder exactly as `create` would, marks it `queued` and puts
//! its id on the work queue; it needs no API key, since the workers drive with their own.
//! `worker` pulls run ids and drives them in this one process; SIGTERM or Ctrl-C drains it
//! (no new runs, running ones interrupted cleanly and handed back to the queue), a second
//! signal exits at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use camino::Utf8Path;
use futures::FutureExt;
use futures::future::BoxFuture;
use infty_core::{InftyOrchestrator, ResumeOverrides};
use infty_fleet::{
    CoreRunDriver, Disposition, ModelFactory, Queue, QueueConfig, RunDriver, RunModel, RunTools,
    Worker,
};
use infty_model::{HttpClients, ModelClient};
use infty_store::RunMetadata;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::args::{ProviderArgs, QueueArgs, SubmitArgs, WorkerArgs};
use crate::config::{ConfigFile, QueueSection};
use crate::{Coded, EXIT_INTERRUPTED, EXIT_TERMINATED, provider, run};

/// Creates the run, records it `queued`, and publishes its id.
pub(crate) fn submit(
    runs_root: &Utf8Path,
    args: SubmitArgs,
    file: &ConfigFile,
    sandbox: infty_store::SandboxSettings,
) -> Result<u8> {
    if args.create.resume_if_exists || args.create.wait_on_limit || args.create.stream {
        return Err(Coded::usage(
            "--resume-if-exists, --wait-on-limit and --stream are for runs driven here, not for `submit`",
        ));
    }
    let config = queue_config(&args.queue, &file.queue, None, None)?;
    let mut new_run = run::plan(&args.create, file, provider::resolve_unkeyed)?;
    // The sandbox the workers will drive it under, recorded now like any other setting.
    new_run.options.sandbox = sandbox;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let json = args.create.json;
    runtime.block_on(async move {
        // Connect first: a dead queue must not leave a queued run that nobody will drive.
        let queue = Queue::connect(config).await?;
        let client = ModelClient::new(new_run.provider).context("cannot set up the model client")?;
        let orchestrator = InftyOrchestrator::with_runs_root(Arc::new(client), runs_root);
        let run_id = orchestrator.queue_run(new_run.params, new_run.options)?;
        let run_dir = runs_root.join(&run_id);
        let sequence = queue.submit(&run_id).await.with_context(|| {
            format!("run {run_id} is created but not queued; submit it again with `infty submit` or drive it with `infty resume {run_id}`")
        })?;
        tracing::info!(run_id, sequence, "run submitted");
        if json {
            let value = serde_json::json!({
                "run_id": run_id,
                "status": "queued",
                "run_dir": run_dir,
                "queue_sequence": sequence,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            println!("{run_id}");
        }
        Ok(0)
    })
}

/// Drives runs from the queue until a signal drains the worker.
pub(crate) fn worker(runs_root: &Utf8Path, args: WorkerArgs, section: &QueueSection) -> Result<u8> {
    let config = queue_config(
        &args.queue,
        section,
        args.ack_wait_secs,
        args.max_deliveries,
    )?;
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let queue = Queue::connect(config).await?;
        let retry_after = queue.config().ack_wait;
        let shutdown = CancellationToken::new();
        let signalled = watch_signals(shutdown.clone())?;
        eprintln!(
            "worker {} on {} (stream {}, consumer {}), {} runs at once",
            std::process::id(),
            queue.config().url,
            queue.config().stream,
            queue.config().consumer,
            args.concurrency
        );
        let driver = Announced(CoreRunDriver::new(
            runs_root,
            CliModels::default(),
            retry_after,
        ));
        let concurrency = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
        let report = Worker::new(queue, driver, concurrency)
            .run(shutdown)
            .await?;
        eprintln!(
            "worker {} stopped: {} finished, {} released, {} given up, {} rejected",
            std::process::id(),
            report.finished,
            report.released,
            report.given_up,
            report.rejected
        );
        let signal = *signalled.lock().unwrap_or_else(|e| e.into_inner());
        Ok(match signal {
            Some(kind) if kind == SignalKind::terminate() => EXIT_TERMINATED,
            Some(_) => EXIT_INTERRUPTED,
            None => 0,
        })
    })
}

/// Which signal started the drain, if any.
type Signalled = Arc<std::sync::Mutex<Option<SignalKind>>>;

/// The first SIGTERM or SIGINT drains; a second one exits at once.
fn watch_signals(shutdown: CancellationToken) -> Result<Signalled> {
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let signalled: Signalled = Arc::default();
    let seen = signalled.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => SignalKind::terminate(),
            _ = int.recv() => SignalKind::interrupt(),
        };
        *seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(first);
        eprintln!("draining: no new runs; running ones are interrupted and handed back");
        shutdown.cancel();
        tokio::select! {
            _ = term.recv() => std::process::exit(i32::from(EXIT_TERMINATED)),
            _ = int.recv() => std::process::exit(i32::from(EXIT_INTERRUPTED)),
        }
    });
    Ok(signalled)
}

/// Flags over `[queue]` over the built-in layout.
fn queue_config(
    args: &QueueArgs,
    section: &QueueSection,
    ack_wait_secs: Option<u64>,
    max_deliveries: Option<u32>,
) -> Result<QueueConfig> {
    let Some(url) = args.queue.clone().or_else(|| section.url.clone()) else {
        return Err(Coded::usage(
            "no queue: pass --queue nats://HOST:PORT (or set INFTY_QUEUE, or [queue] url in the config file)",
        ));
    };
    let mut config = QueueConfig::new(url);
    config.credentials = args.queue_creds.clone().or_else(|| section.creds.clone());
    config.tls_ca = args.queue_ca.clone().or_else(|| section.ca.clone());
    config.require_tls = section.require_tls.unwrap_or(false);
    if let Some(stream) = &section.stream {
        config.stream.clone_from(stream);
    }
    if let Some(subject) = &section.subject {
        config.subject.clone_from(subject);
    }
    if let Some(consumer) = &section.consumer {
        config.consumer.clone_from(consumer);
    }
    if let Some(secs) = ack_wait_secs.or(section.ack_wait_secs) {
        config.ack_wait = Duration::from_secs(secs.max(1));
    }
    if let Some(max) = max_deliveries.or(section.max_deliveries) {
        config.max_deliveries = max.max(1);
    }
    Ok(config)
}

/// A worker drives many runs at once, each with its journal, rollouts and lock open: lift
/// the soft limit of open files to the hard one.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!(%error, "cannot raise the open files limit");
    }
}

/// Clients from what each run recorded, with this machine's key, on HTTP clients the
/// worker's runs share.
#[derive(Default)]
struct CliModels {
    http: HttpClients,
}

impl ModelFactory for CliModels {
    fn for_run(&self, meta: &RunMetadata) -> Result<RunModel, String> {
        let (provider, record) =
            provider::resolve(&ProviderArgs::default(), Some(&meta.options.provider))
                .map_err(|error| format!("{error:#}"))?;
        let secrets = run::secrets_of(&provider);
        let client =
            ModelClient::sharing(provider, &self.http).map_err(|error| error.to_string())?;
        let overrides = ResumeOverrides {
            provider: Some(record),
            ..ResumeOverrides::default()
        };
        Ok(RunModel {
            model: Arc::new(client),
            overrides,
            secrets,
        })
    }

    /// The run's MCP servers, started as `resume` starts them: under the Solver's sandbox
    /// over the run's space, in its workspace.
    fn tools_for_run(
        &self,
        meta: &RunMetadata,
        run_dir: &Utf8Path,
    ) -> BoxFuture<'static, Result<Option<RunTools>, String>> {
        let records = meta.options.mcp.clone();
        let workspace = meta.options.workspace.clone();
        let sandbox = if records.is_empty() {
            Ok(None)
        } else {
            crate::mcp::sandbox_for(&meta.options.sandbox, run_dir, workspace.as_deref())
        };
        async move {
            let sandbox = sandbox.map_err(|error| format!("{error:#}"))?;
            let started = crate::mcp::start(&records, workspace, sandbox)
                .await
                .map_err(|error| format!("{error:#}"))?;
            Ok(started.map(|tools| RunTools {
                records: tools.records(),
                provider: tools,
            }))
        }
        .boxed()
    }
}

/// Prints one line when a run starts and when it stops.
struct Announced<D>(D);

impl<D: RunDriver> RunDriver for Announced<D> {
    fn drive(&self, run_id: String, cancel: CancellationToken) -> BoxFuture<'static, Disposition> {
        eprintln!("run {run_id}: driving");
        let work = self.0.drive(run_id.clone(), cancel);
        async move {
            let disposition = work.await;
            eprintln!("run {run_id}: {}", describe(&disposition));
            disposition
        }
        .boxed()
    }

    fn give_up(&self, run_id: String, reason: String) -> BoxFuture<'static, Disposition> {
        eprintln!("run {run_id}: giving up: {reason}");
        self.0.give_up(run_id, reason)
    }
}

fn describe(disposition: &Disposition) -> String {
    match disposition {
        Disposition::Finished => "stopped for good".to_string(),
        Disposition::Release { reason, .. } => format!("handed back ({reason})"),
        Disposition::Reject(reason) => format!("rejected ({reason})"),
    }
}
