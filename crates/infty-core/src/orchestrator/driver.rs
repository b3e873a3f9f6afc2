//! The driver of one run: opens its sessions, runs the calls the flow asks for, feeds
//! their results back and keeps `run.json` current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::Utf8PathBuf;
use futures::future::join_all;
use infty_model::{ModelApi, OutputSchema, ToolChoice};
use infty_store::{
    OutcomeRecord, Role, RunStatus, RunStore, SandboxMode, TokenUsage, TurnToolChoice, read_journal,
};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::recorder::Recorder;
use super::{
    CoreError, DEFAULT_LIMIT_WAIT, InftyOrchestrator, RoleConfig, RunOutcome, mode_of, nonzero,
};
use crate::events::{DeliverableCheck, FailureKind, Input, Note, RunEvent, Terminal};
use crate::flow::{Action, Call, Flow, FlowConfig};
use crate::progress::{Progress, ProgressReporter};
use crate::prompts;
use crate::session::{RoleSession, SessionConfig, SessionError};
use crate::telemetry;
use crate::tools::{RunSpace, SandboxSpec, ToolContext, ToolProvider, ToolSet};
use crate::work::{WorkLog, fingerprint_path};

pub(super) struct Driver {
    store: RunStore,
    flow: Flow,
    reporter: Arc<Recorder>,
    sessions: HashMap<Role, RoleSession>,
    roles: HashMap<Role, RoleConfig>,
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
    pub(super) startup_notes: Vec<Note>,
    sandbox_helper: Option<std::path::PathBuf>,
    secrets: Vec<String>,
    /// Usage journaled in the batch being fed, for run.json once the batch is durable.
    unwritten_usage: Vec<(Role, TokenUsage, f64)>,
    _lock: infty_store::RunLock,
}

impl Driver {
    pub(super) fn open(
        orchestrator: &InftyOrchestrator,
        mut store: RunStore,
        lock: infty_store::RunLock,
        roles: Vec<RoleConfig>,
        resumed: bool,
    ) -> Result<Driver, CoreError> {
        let meta = store.metadata().clone();
        let options = &meta.options;
        let run_dir = store.dir().to_path_buf();
        let base_dir = options.workspace.clone().unwrap_or_else(|| run_dir.clone());
        let verifiers: Vec<Role> = roles
            .iter()
            .filter(|role| role.role.is_verifier())
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
            let mut journaled_usage = std::collections::BTreeMap::new();
            for entry in read_journal::<RunEvent>(&store.events_path())? {
                let entry = entry?;
                if let RunEvent::Input(input) = entry.event {
                    match &input {
                        Input::MessageDelivered { id, .. } => {
                            delivered.insert(id.clone());
                        }
                        Input::BudgetsSet { .. } => budgets_journaled = true,
                        Input::UsageRecorded {
                            role,
                            usage,
                            cost_usd,
                        } => {
                            let (tokens, cost): &mut (TokenUsage, f64) =
                                journaled_usage.entry(role.to_string()).or_default();
                            *tokens += *usage;
                            *cost += *cost_usd;
                        }
                        _ => {}
                    }
                    flow.step(input, entry.at);
                }
            }
            // run.json's usage is written after the journal's: a crash between the two
            // left it behind, never ahead.
            store.catch_up_usage(&journaled_usage)?;
        }
        let reporter = Arc::new(Recorder {
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
            unwritten_usage: Vec::new(),
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
            workspace: options.workspace.clone(),
        };
        let tools = match &self.tool_provider {
            Some(provider) => {
                let mut policy = role.tools.clone();
                let offered = provider.definitions(role.role.as_str());
                policy.external.extend(offered.into_iter().map(|d| d.name));
                ToolSet::new(context, policy).with_provider(provider.clone(), role.role.as_str())
            }
            None => ToolSet::new(context, role.tools.clone()),
        };
        let tools = tools
            .with_sandbox(self.sandbox_spec(role)?)
            .with_redactions(self.secrets.iter().cloned());
        let output_schema = role.structured_output.then(|| match &role.role {
            Role::Solver => OutputSchema {
                name: infty_signals::schema::SOLVER_SIGNAL_NAME.to_string(),
                schema: infty_signals::schema::solver_signal(),
                strict: true,
            },
            Role::Director => OutputSchema {
                name: infty_signals::schema::DIRECTIVE_NAME.to_string(),
                schema: infty_signals::schema::directive(),
                strict: true,
            },
            Role::Verifier(_) => OutputSchema {
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
                    .unwrap_or_else(|| prompts::instructions(&role.role))
                    .trim_end(),
                role.role
            ),
            output_schema,
            max_tool_steps: nonzero(options.max_tool_steps, 200),
            context_window: role.context_window,
            compact_threshold: role.compact_threshold,
            compact_keep_items: 8,
            max_output_tokens: role.max_output_tokens,
            first_tool_choice: match role.tool_choice {
                TurnToolChoice::Auto => ToolChoice::Auto,
                TurnToolChoice::Required => ToolChoice::Required,
            },
        };
        if restore {
            let relative = self.store.rollout_path(role.role.as_str()).ok_or_else(|| {
                CoreError::Setup(format!("run.json has no rollout for role {}", role.role))
            })?;
            let path = self.store.dir().join(relative);
            // Checked before the writer opens (and so creates) the file: a resume must never
            // mistake a lost rollout for an empty history.
            if !path.is_file() {
                return Err(CoreError::RolloutMissing {
                    role: role.role.to_string(),
                    path,
                });
            }
            let writer = self.store.rollout_writer(role.role.as_str())?;
            Ok(RoleSession::restore(
                config,
                self.model.clone(),
                tools,
                &path,
                writer,
            )?)
        } else {
            let writer = self.store.rollout_writer(role.role.as_str())?;
            Ok(RoleSession::new(config, self.model.clone(), tools, writer))
        }
    }

    /// [`Driver::run`] inside the run's span, which records how it ended.
    pub(super) async fn run_traced(self) -> Result<RunOutcome, CoreError> {
        let span = telemetry::run_span(self.store.run_id(), self.resumed);
        let result = self.run().instrument(span.clone()).await;
        telemetry::record_run(&span, &result);
        result
    }

    /// The sandbox of `role`'s processes: its kind's mode from `run.json`, this run's space.
    fn sandbox_spec(&self, role: &RoleConfig) -> Result<SandboxSpec, CoreError> {
        let mode = mode_of(&self.store.metadata().options.sandbox, &role.role);
        self.sandbox_spec_for(mode, role.role.as_str())
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

    pub(super) async fn run(mut self) -> Result<RunOutcome, CoreError> {
        self.store.set_status(RunStatus::Running)?;
        self.progress.report(&Progress::RunStarted {
            run_id: self.store.run_id(),
            run_dir: self.store.dir(),
            resumed: self.resumed,
        });
        self.record(Note::DriverStarted {
            pid: std::process::id(),
            resumed: self.resumed,
        })?;
        for note in std::mem::take(&mut self.startup_notes) {
            // Durable: the acceptance of an edited record must not be lost to a crash.
            self.progress.report(&Progress::Noted(&note));
            self.reporter.append(&RunEvent::Note(note), true)?;
        }
        // Budgets may change between drives: journal them, so that a later fold judges each
        // input by the budgets in force when it came.
        let budgets = self.store.metadata().options.budgets;
        if !self.flow.started() || self.flow.config().budgets != budgets || !self.budgets_journaled
        {
            // Synced with the `started` (or `resumed`) that follows, and it with the first
            // call's inputs.
            self.feed_batched(Input::BudgetsSet { budgets }, false)?;
        }
        let settings = self.store.metadata().options.sandbox.clone();
        if settings.any_off() {
            let mut roles: Vec<Role> = self
                .roles
                .values()
                .filter(|role| mode_of(&settings, &role.role) == SandboxMode::Off)
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
        // Synced with what the first call produces: a crash before it loses nothing that
        // was done.
        self.feed_batched(first, false)?;
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
            // A check of the deliverable costs nothing to redo: its input is synced with
            // the next call's.
            let sync = !matches!(call, Call::CheckDeliverable { .. });
            let cancel = self.cancel.clone();
            let inputs = tokio::select! {
                biased;
                () = cancel.cancelled() => vec![Input::Cancel],
                inputs = self.execute(call) => inputs?,
            };
            // What one call produced is journaled with one fsync, after its last input.
            let last = inputs.iter().rposition(|input| *input != Input::Cancel);
            for (index, input) in inputs.into_iter().enumerate() {
                if input == Input::Cancel {
                    // Not journaled: a resumed run continues where it was cut.
                    let actions = self.flow.step(Input::Cancel, OffsetDateTime::now_utc());
                    self.apply(actions)?;
                } else {
                    self.feed_batched(input, sync && Some(index) == last)?;
                }
            }
        }
    }

    /// Journals an input durably, steps the state machine, and applies the actions.
    fn feed(&mut self, input: Input) -> Result<(), CoreError> {
        self.feed_batched(input, true)
    }

    /// [`Driver::feed`] for one of the inputs a call produced: only the batch's `last` is
    /// synced, and its fsync makes the lines before it durable too.
    fn feed_batched(&mut self, input: Input, last: bool) -> Result<(), CoreError> {
        if let Some(error) = self.reporter.take_error() {
            return Err(error.into());
        }
        if let Input::UsageRecorded {
            role,
            usage,
            cost_usd,
        } = &input
        {
            self.progress.report(&Progress::Usage {
                role: role.as_str(),
                usage,
                cost_usd: *cost_usd,
            });
            self.unwritten_usage.push((role.clone(), *usage, *cost_usd));
        }
        self.reporter
            .append(&RunEvent::Input(input.clone()), last)?;
        if last {
            // run.json changes with what it shows: usage here, once the journal holds it
            // durably (so run.json is never ahead of it), status and outcome where they
            // change. Other inputs leave it alone: the journal is their record.
            let additions = std::mem::take(&mut self.unwritten_usage);
            if !additions.is_empty() {
                let additions: Vec<(&str, TokenUsage, f64)> = additions
                    .iter()
                    .map(|(role, usage, cost)| (role.as_str(), *usage, *cost))
                    .collect();
                self.store.add_usage_and_cost(&additions)?;
            }
        }
        let actions = self.flow.step(input, OffsetDateTime::now_utc());
        self.apply(actions)
    }

    fn feed_terminal(&mut self, terminal: Terminal) -> Result<(), CoreError> {
        // Only used when the state machine stalls, which would be a bug: record it and stop.
        self.record(Note::Ended(terminal.clone()))?;
        self.store.set_status_with(terminal.status(), |meta| {
            meta.error = terminal.reason().map(str::to_string);
        })?;
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
        self.progress.report(&Progress::Noted(&note));
        let durable = matches!(note, Note::Ended(_));
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
                Ok(match self.turn(Role::SOLVER, &message, limit).await {
                    Ok((text, usage)) => {
                        let (fingerprint, summary) = self.solver_work(&text);
                        vec![
                            self.usage_input(&Role::Solver, usage),
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
                Ok(match self.turn(Role::DIRECTOR, &message, limit).await {
                    Ok((text, usage)) => vec![
                        self.usage_input(&Role::Director, usage),
                        Input::DirectorReplied { text },
                    ],
                    Err((error, failure)) => vec![Input::DirectorFailed { error, failure }],
                })
            }
            Call::RunCheck { check } => {
                let workspace = self.store.metadata().options.workspace.clone();
                let thinker = format!("check {}", check.name);
                self.progress
                    .report(&Progress::RoleThinking { role: &thinker });
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
                self.progress.report(&Progress::RoleMessage {
                    role: &thinker,
                    text: &result.output,
                });
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
                    if let Some(session) = self.sessions.remove(role.as_str()) {
                        taken.push(session);
                    }
                }
                let reporter = self.reporter.clone();
                let progress = self.progress.clone();
                let results = join_all(taken.iter_mut().map(|session| {
                    let reporter = reporter.clone();
                    let progress = progress.clone();
                    let message = message.clone();
                    let span = self.turn_span(session.role().as_str());
                    async move {
                        progress.report(&Progress::RoleThinking {
                            role: session.role().as_str(),
                        });
                        let outcome = tokio::time::timeout(
                            limit,
                            session.resume_turn(&message, reporter.as_ref()),
                        )
                        .instrument(span.clone())
                        .await;
                        telemetry::record_turn(&span, &outcome);
                        (session.role().clone(), flatten_turn(outcome, limit))
                    }
                }))
                .await;
                for session in taken {
                    self.sessions.insert(session.role().clone(), session);
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
                            self.progress.report(&Progress::RoleMessage {
                                role: role.as_str(),
                                text: &text,
                            });
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
                    self.store.rotate_rollout(role.as_str())?;
                    let config = self
                        .roles
                        .get(role.as_str())
                        .cloned()
                        .ok_or_else(|| CoreError::Setup(format!("unknown verifier {role}")))?;
                    let session = self.open_session(&config, false)?;
                    self.sessions.insert(config.role.clone(), session);
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
    fn usage_input(&self, role: &Role, usage: TokenUsage) -> Input {
        let cost_usd = self
            .roles
            .get(role.as_str())
            .and_then(|config| self.store.metadata().options.prices.get(&config.model))
            .map_or(0.0, |price| price.cost_usd(&usage));
        Input::UsageRecorded {
            role: role.clone(),
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
        self.progress.report(&Progress::RoleThinking { role });
        let outcome = tokio::time::timeout(limit, session.resume_turn(message, reporter.as_ref()))
            .instrument(span.clone())
            .await;
        telemetry::record_turn(&span, &outcome);
        let result = flatten_turn(outcome, limit);
        if let Ok((text, _)) = &result {
            self.progress.report(&Progress::RoleMessage { role, text });
        }
        result
    }

    fn finish(mut self, terminal: Terminal) -> Result<RunOutcome, CoreError> {
        self.progress.report(&Progress::RunFinished(&terminal));
        // The lengths of a record that stopped cleanly, so a later cut is found. Best effort:
        // without it only that one check is lost, and the run's outcome must still be kept.
        if let Err(error) = self.store.save_record_head() {
            tracing::warn!(run_id = self.store.run_id(), %error, "cannot save the record's head");
        }
        let run_id = self.store.run_id().to_string();
        if !matches!(terminal, Terminal::Succeeded { .. }) {
            self.store.set_status_with(terminal.status(), |meta| {
                meta.error = terminal.reason().map(str::to_string);
                meta.resume_after = terminal.resume_after();
            })?;
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
                self.store.set_status_with(RunStatus::Succeeded, |meta| {
                    meta.outcome = Some(outcome);
                    meta.error = None;
                })?;
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
