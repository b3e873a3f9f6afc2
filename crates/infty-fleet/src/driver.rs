//! Driving a delivered run through the library: resume semantics for every delivery.
//!
//! Whether a run is new (`queued`), was left `running` by a worker that died, or was
//! interrupted by a drain, the worker does the same thing: `resume_run` from its folder.
//! The journal says what was done, the rollouts what each role said, and a tool call cut by
//! a crash is reported to the model as interrupted, never run again.

use std::sync::Arc;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use futures::FutureExt;
use futures::future::BoxFuture;
use infty_core::tools::ToolProvider;
use infty_core::{CoreError, InftyOrchestrator, ProgressReporter, ResumeOverrides};
use infty_model::ModelApi;
use infty_store::{McpServerRecord, RunMetadata, RunStatus, RunStore, StoreError};
use tokio_util::sync::CancellationToken;

use crate::worker::{Disposition, RunDriver};

/// Whether a run in `status` never needs a driver again, so its message is acknowledged.
pub fn stops_for_good(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Succeeded | RunStatus::Failed | RunStatus::BudgetExhausted | RunStatus::Blocked
    )
}

/// Builds the model client a run needs from what its `run.json` recorded (provider, key
/// variable) and the worker's own environment, and starts the tools it recorded beyond
/// infty's own (its MCP servers).
pub trait ModelFactory: Send + Sync + 'static {
    /// The client, the resume settings and the secret values (the API key, redacted from
    /// every tool result) for the run described by `meta`.
    fn for_run(&self, meta: &RunMetadata) -> Result<RunModel, String>;

    /// Starts the tool servers the run in `run_dir` recorded (`options.mcp`); the worker
    /// shuts them down when the drive ends, however it ends. `Ok(None)` when it recorded
    /// none (the default); the error names the server that could not start.
    fn tools_for_run(
        &self,
        meta: &RunMetadata,
        run_dir: &Utf8Path,
    ) -> BoxFuture<'static, Result<Option<RunTools>, String>> {
        let _ = (meta, run_dir);
        futures::future::ready(Ok(None)).boxed()
    }
}

/// Tool servers started for one drive of a run.
pub struct RunTools {
    /// What the servers offer, to every role the run's records allow.
    pub provider: Arc<dyn ToolProvider>,
    /// The servers as started (with the tools each offered), for `run.json`.
    pub records: Vec<McpServerRecord>,
}

/// What a worker needs to drive one run: its model client, resume settings and secrets.
pub struct RunModel {
    /// The client.
    pub model: Arc<dyn ModelApi>,
    /// The settings the resume takes.
    pub overrides: ResumeOverrides,
    /// Values cut out of every tool result before it is recorded.
    pub secrets: Vec<String>,
}

/// A [`RunDriver`] over `InftyOrchestrator::resume_run`.
pub struct CoreRunDriver<F> {
    runs_root: Utf8PathBuf,
    models: Arc<F>,
    progress: Option<Arc<dyn ProgressReporter>>,
    retry_after: Duration,
}

impl<F: ModelFactory> CoreRunDriver<F> {
    /// Drives runs under `runs_root` with clients from `models`. A run it cannot drive now
    /// (driven by another live process, a transient error) is released to be delivered
    /// again after `retry_after`.
    pub fn new(runs_root: impl Into<Utf8PathBuf>, models: F, retry_after: Duration) -> Self {
        CoreRunDriver {
            runs_root: runs_root.into(),
            models: Arc::new(models),
            progress: None,
            retry_after,
        }
    }

    /// Reports every driven run's progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn ProgressReporter>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn release(&self, reason: String) -> Disposition {
        Disposition::Release {
            delay: Some(self.retry_after),
            reason,
        }
    }

    fn open(&self, run_id: &str) -> Result<RunStore, Disposition> {
        RunStore::open_id(&self.runs_root, run_id).map_err(|error| match error {
            StoreError::InvalidRunId { .. } => Disposition::Reject(error.to_string()),
            error if !run_dir(&self.runs_root, run_id).exists() => {
                Disposition::Reject(error.to_string())
            }
            error => self.release(error.to_string()),
        })
    }
}

fn run_dir(root: &Utf8Path, run_id: &str) -> Utf8PathBuf {
    root.join(run_id)
}

impl<F: ModelFactory> RunDriver for CoreRunDriver<F> {
    fn drive(&self, run_id: String, cancel: CancellationToken) -> BoxFuture<'static, Disposition> {
        let store = match self.open(&run_id) {
            Ok(store) => store,
            Err(disposition) => return futures::future::ready(disposition).boxed(),
        };
        if stops_for_good(store.metadata().status) {
            return futures::future::ready(Disposition::Finished).boxed();
        }
        let RunModel {
            model,
            mut overrides,
            secrets,
        } = match self.models.for_run(store.metadata()) {
            Ok(found) => found,
            Err(reason) => return futures::future::ready(self.release(reason)).boxed(),
        };
        let starting = self.models.tools_for_run(store.metadata(), store.dir());
        drop(store);
        let mut orchestrator = InftyOrchestrator::with_runs_root(model, &self.runs_root)
            .with_cancellation(cancel)
            .with_secrets(secrets);
        if let Some(progress) = &self.progress {
            orchestrator = orchestrator.with_progress(progress.clone());
        }
        let retry_after = self.retry_after;
        async move {
            let tools = match starting.await {
                Ok(tools) => tools,
                // Perhaps only this machine lacks the server: let another worker try.
                Err(reason) => {
                    return Disposition::Release {
                        delay: Some(retry_after),
                        reason,
                    };
                }
            };
            if let Some(tools) = &tools {
                orchestrator = orchestrator.with_tool_provider(tools.provider.clone());
                overrides.mcp_servers = Some(tools.records.clone());
            }
            let result = orchestrator.resume_run(&run_id, overrides).await;
            if let Some(tools) = &tools {
                tools.provider.shutdown().await;
            }
            match result {
                Ok(_) | Err(CoreError::AlreadySucceeded { .. }) => Disposition::Finished,
                Err(CoreError::Stopped { ending, .. }) => match ending.status() {
                    status if stops_for_good(status) => {
                        tracing::info!(run_id, %status, "run stopped for good");
                        Disposition::Finished
                    }
                    RunStatus::UsageLimited => Disposition::Release {
                        // Parked: deliver it again once the provider's limit has lifted.
                        delay: ending.resume_after().map(|at| {
                            let wait = at - time::OffsetDateTime::now_utc();
                            Duration::try_from(wait).unwrap_or(Duration::ZERO)
                        }),
                        reason: ending.to_string(),
                    },
                    _ => Disposition::Release {
                        delay: None,
                        reason: ending.to_string(),
                    },
                },
                Err(error) => Disposition::Release {
                    delay: Some(retry_after),
                    reason: error.to_string(),
                },
            }
        }
        .boxed()
    }

    fn give_up(&self, run_id: String, reason: String) -> BoxFuture<'static, Disposition> {
        let store = match self.open(&run_id) {
            Ok(store) => store,
            Err(disposition) => return futures::future::ready(disposition).boxed(),
        };
        let status = store.metadata().status;
        drop(store);
        let disposition = if stops_for_good(status) {
            Disposition::Finished
        } else {
            match infty_core::fail_stopped_run(&self.runs_root, &run_id, &reason) {
                Ok(()) | Err(CoreError::AlreadySucceeded { .. }) => Disposition::Finished,
                Err(error) => self.release(error.to_string()),
            }
        };
        futures::future::ready(disposition).boxed()
    }
}
