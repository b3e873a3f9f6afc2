//! The orchestration state machine: inputs in, actions out.
//!
//! **Architecture invariant:** this module is pure. It performs no IO, spawns nothing,
//! reads no clock (time is an argument of [`Flow::step`]) and never fails. The driver
//! ([`crate::orchestrator`]) asks [`Flow::outstanding`] which call to make, makes it, and
//! feeds the result back as an [`Input`]. Because every input is journaled before it is
//! stepped, the state of a run is the fold of its journal's inputs, which is how resume
//! rebuilds it.
//!
//! Every policy of DESIGN §3.5 lives here: invalid signals sent back with the contract
//! restated, a Director re-asked once then forwarded raw, deliverables refused before any
//! Verifier is called, verdicts aggregated under `all` or `majority`, a Verifier without a
//! verdict replaced and asked once more, passing Verifiers rotated, and budgets.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use infty_signals::{
    DirectiveResponse, DirectorRequest, FinalDelivery, SolverSignal, VerificationFeedback,
    VerificationRequest, VerifierDecision, VerifierReport, VerifierVerdict, parse_directive,
    parse_solver_signal, parse_verdict,
};
use infty_store::{
    Budgets, CheckSpec, DeliverableFingerprint, Role, StallPolicy, VerificationPolicy,
};
use serde::Serialize;
use time::OffsetDateTime;

use crate::events::{CheckResult, DeliverableCheck, FailureKind, Input, Note, Terminal};
use crate::prompts;

mod stall;

use stall::{StallWatch, TurnVerdict};

/// How many times a failing Director call is tried before the run fails.
pub const DIRECTOR_ATTEMPTS: u32 = 3;

/// A call the driver must make; its result comes back as an [`Input`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum Call {
    /// Run a Solver turn with this message; answer with `SolverReplied` or `SolverFailed`.
    PostToSolver {
        /// The user message of the turn.
        message: String,
    },
    /// Ask the Director; answer with `DirectorReplied` or `DirectorFailed`.
    AskDirector {
        /// The user message of the turn.
        message: String,
    },
    /// Validate the delivered path; answer with `DeliverableChecked`.
    CheckDeliverable {
        /// The path as the Solver gave it.
        path: String,
    },
    /// Ask these Verifiers in parallel; answer each with `VerifierReplied` or `VerifierFailed`.
    AskVerifiers {
        /// The Verifiers to ask.
        roles: Vec<Role>,
        /// The user message of their turn.
        message: String,
    },
    /// Give these Verifiers fresh sessions; answer with `VerifiersReplaced`.
    ReplaceVerifiers {
        /// The Verifiers to replace.
        roles: Vec<Role>,
    },
    /// Run this completion check; answer with `CheckFinished`.
    RunCheck {
        /// The check.
        check: CheckSpec,
    },
}

impl Call {
    /// The role a call's turn goes to, for calls that post a turn to a single role.
    pub fn role(&self) -> Option<Role> {
        match self {
            Call::PostToSolver { .. } => Some(Role::Solver),
            Call::AskDirector { .. } => Some(Role::Director),
            _ => None,
        }
    }
}

/// What a step produced besides the next call.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Journal this note and tell the progress reporter.
    Record {
        /// The note.
        note: Note,
    },
    /// The run is over.
    Finish {
        /// How it ended.
        terminal: Terminal,
    },
}

/// The fixed facts of a run the state machine needs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlowConfig {
    /// The objective.
    pub objective: String,
    /// The run id.
    pub run_id: String,
    /// The run folder, as shown to the Solver.
    pub run_dir: String,
    /// The folder relative paths resolve against (run folder or workspace).
    pub base_dir: String,
    /// Verifier role names, in order.
    pub verifiers: Vec<Role>,
    /// How verdicts are aggregated.
    pub policy: VerificationPolicy,
    /// Limits.
    pub budgets: Budgets,
    /// Invalid Solver replies in a row before the run fails.
    pub max_invalid_signals: u32,
    /// Completion checks, run in order after each valid delivery, before any Verifier.
    pub checks: Vec<CheckSpec>,
    /// When repeated work counts as a stall.
    pub stall: StallPolicy,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Idle,
    Solver {
        message: String,
    },
    Director {
        message: String,
        prompt: String,
        reasked: bool,
        failures: u32,
    },
    Checking {
        delivery: FinalDelivery,
    },
    /// Completion checks of a delivery, one after another.
    Checks {
        round: u32,
        deliverable_path: String,
        summary: Option<String>,
        passed: Vec<CheckResult>,
        /// What was delivered, carried on to the Verifiers.
        fingerprint: Option<DeliverableFingerprint>,
    },
    /// A budget ran out: the Solver's last turn, for its hand-off notes.
    Handoff {
        message: String,
        reason: String,
        /// What the Solver would have been sent, for a resume with a larger budget.
        resume_message: String,
    },
    Verifying {
        round: u32,
        deliverable_path: String,
        summary: Option<String>,
        message: String,
        pending: BTreeSet<Role>,
        verdicts: BTreeMap<Role, VerifierVerdict>,
        retried: BTreeSet<Role>,
        /// What was delivered, to compare with what the Verifiers leave.
        fingerprint: Option<DeliverableFingerprint>,
    },
    Done(Terminal),
}

/// The orchestration state machine of one run.
#[derive(Debug, Clone)]
pub struct Flow {
    config: FlowConfig,
    phase: Phase,
    /// The phase a failed, exhausted or interrupted run stopped in, for `Resumed`.
    parked: Option<Phase>,
    solver_turns: u32,
    invalid_in_row: u32,
    rounds: u32,
    tokens: u64,
    active: Duration,
    last_at: Option<OffsetDateTime>,
    finalize_sent: bool,
    replacements: BTreeSet<Role>,
    queued: Vec<(Role, String)>,
    cost_usd: f64,
    stall: StallWatch,
    /// The hand-off turn for the current exhaustion was given; a resume that is still out
    /// of budget stops at once.
    handoff_given: bool,
}

impl Flow {
    /// A state machine for a run that has not started.
    pub fn new(config: FlowConfig) -> Flow {
        Flow {
            phase: Phase::Idle,
            parked: None,
            solver_turns: 0,
            invalid_in_row: 0,
            rounds: 0,
            tokens: 0,
            active: Duration::ZERO,
            last_at: None,
            finalize_sent: false,
            replacements: BTreeSet::new(),
            queued: Vec::new(),
            cost_usd: 0.0,
            stall: StallWatch::new(config.stall),
            handoff_given: false,
            config,
        }
    }

    /// The run's fixed facts.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// Lets a resumed run use other budgets than it started with.
    pub fn set_budgets(&mut self, budgets: Budgets) {
        self.config.budgets = budgets;
    }

    /// Solver turns completed so far.
    pub fn solver_turns(&self) -> u32 {
        self.solver_turns
    }

    /// Verification rounds started so far.
    pub fn verification_rounds(&self) -> u32 {
        self.rounds
    }

    /// Tokens used so far, all roles together.
    pub fn total_tokens(&self) -> u64 {
        self.tokens
    }

    /// Cost in US dollars so far, all roles together.
    pub fn total_cost_usd(&self) -> f64 {
        self.cost_usd
    }

    /// Time spent driving the run (gaps between a stop and a resume excluded).
    pub fn active_time(&self) -> Duration {
        self.active
    }

    /// How the run ended, once it has.
    pub fn terminal(&self) -> Option<&Terminal> {
        match &self.phase {
            Phase::Done(terminal) => Some(terminal),
            _ => None,
        }
    }

    /// Whether the run has started (an objective was posted).
    pub fn started(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The call the run is waiting on, if any. Derived from the state alone, so a resumed run
    /// re-issues exactly the call that was in flight when it stopped.
    pub fn outstanding(&self) -> Option<Call> {
        if matches!(self.phase, Phase::Done(_) | Phase::Idle) {
            return None;
        }
        if !self.replacements.is_empty() {
            return Some(Call::ReplaceVerifiers {
                roles: self.replacements.iter().cloned().collect(),
            });
        }
        match &self.phase {
            Phase::Solver { message } => Some(Call::PostToSolver {
                message: self.with_budget_lines(message),
            }),
            Phase::Handoff { message, .. } => Some(Call::PostToSolver {
                message: message.clone(),
            }),
            Phase::Checks { passed, .. } => {
                self.config
                    .checks
                    .get(passed.len())
                    .map(|check| Call::RunCheck {
                        check: check.clone(),
                    })
            }
            Phase::Director { message, .. } => Some(Call::AskDirector {
                message: message.clone(),
            }),
            Phase::Checking { delivery } => Some(Call::CheckDeliverable {
                path: delivery.deliverable_path.clone(),
            }),
            Phase::Verifying {
                pending, message, ..
            } if !pending.is_empty() => Some(Call::AskVerifiers {
                roles: pending.iter().cloned().collect(),
                message: message.clone(),
            }),
            _ => None,
        }
    }

    /// Feeds one input at time `now` and returns what to record and whether the run ended.
    pub fn step(&mut self, input: Input, now: OffsetDateTime) -> Vec<Action> {
        self.advance_clock(&input, now);
        let mut out = Vec::new();
        match input {
            Input::Started => self.on_started(&mut out),
            Input::Resumed => self.on_resumed(&mut out),
            Input::SolverReplied { text } => self.on_solver_replied(&text, &mut out),
            Input::SolverFailed { error, failure } => {
                self.on_solver_failed(error, failure, &mut out)
            }
            Input::SolverWork {
                fingerprint,
                summary,
            } => self.stall.work(fingerprint, summary),
            Input::DirectorReplied { text } => self.on_director_replied(&text, &mut out),
            Input::DirectorFailed { error, failure } => {
                self.on_director_failed(error, failure, &mut out)
            }
            Input::DeliverableChecked { check } => self.on_deliverable_checked(check, &mut out),
            Input::DeliverableRechecked { check } => self.on_deliverable_rechecked(check, &mut out),
            Input::VerifierReplied { role, text } => match parse_verdict(&text) {
                Ok(verdict) => self.on_verdict(role, verdict, &mut out),
                Err(error) => self.on_verifier_failed(
                    role,
                    format!("its reply had no valid verdict: {error}"),
                    &mut out,
                ),
            },
            Input::VerifierFailed {
                role,
                error,
                failure,
            } => {
                if let FailureKind::UsageLimited { resume_after } = failure {
                    if matches!(&self.phase, Phase::Verifying { pending, .. } if pending.contains(&role))
                    {
                        self.usage_limited(&role, error, resume_after, &mut out);
                    }
                } else if failure.is_permanent() {
                    if matches!(&self.phase, Phase::Verifying { pending, .. } if pending.contains(&role))
                    {
                        let reason = format!("verifier {role} cannot be asked: {error}");
                        self.terminate(Terminal::Failed { reason }, &mut out);
                    }
                } else {
                    self.on_verifier_failed(role, error, &mut out)
                }
            }
            Input::CheckFinished { result } => self.on_check_finished(result, &mut out),
            Input::VerifiersReplaced { roles } => {
                for role in roles {
                    if self.replacements.remove(&role) {
                        out.push(record(Note::VerifierReplaced { role }));
                    }
                }
            }
            Input::MessageDelivered { role, text, .. } => self.on_message(role, text),
            Input::UsageRecorded {
                usage, cost_usd, ..
            } => {
                self.tokens = self.tokens.saturating_add(usage.total_tokens);
                if cost_usd.is_finite() && cost_usd > 0.0 {
                    self.cost_usd += cost_usd;
                }
            }
            Input::BudgetsSet { budgets } => self.config.budgets = budgets,
            Input::Cancel => {
                if !matches!(self.phase, Phase::Done(_)) {
                    self.terminate(Terminal::Interrupted, &mut out);
                }
            }
        }
        out
    }

    fn advance_clock(&mut self, input: &Input, now: OffsetDateTime) {
        if let (Some(last), false) = (self.last_at, matches!(input, Input::Resumed)) {
            let gap = now - last;
            if gap.is_positive() {
                self.active += gap.unsigned_abs();
            }
        }
        self.last_at = Some(now);
    }

    fn on_started(&mut self, out: &mut Vec<Action>) {
        if self.phase != Phase::Idle {
            return;
        }
        let message = prompts::render(
            prompts::OBJECTIVE,
            &[
                ("objective", self.config.objective.trim()),
                ("run_id", &self.config.run_id),
                ("run_dir", &self.config.run_dir),
                ("base_dir", &self.config.base_dir),
            ],
        );
        out.push(record(Note::ObjectivePosted {
            objective: self.config.objective.clone(),
        }));
        self.enter_solver(message, out);
    }

    fn on_resumed(&mut self, out: &mut Vec<Action>) {
        match &self.phase {
            Phase::Idle => self.on_started(out),
            Phase::Done(Terminal::Succeeded { .. }) => {}
            Phase::Done(_) => {
                self.invalid_in_row = 0;
                // An operator looked at the run: repetitions before the stop are forgiven.
                self.stall.reset();
                let Some(parked) = self.parked.take() else {
                    return;
                };
                match parked {
                    Phase::Solver { message } => self.enter_solver(message, out),
                    Phase::Director {
                        message,
                        prompt,
                        reasked,
                        ..
                    } => {
                        self.phase = Phase::Director {
                            message,
                            prompt,
                            reasked,
                            failures: 0,
                        }
                    }
                    Phase::Verifying {
                        round,
                        deliverable_path,
                        summary,
                        message,
                        pending,
                        verdicts,
                        fingerprint,
                        ..
                    } => {
                        self.phase = Phase::Verifying {
                            round,
                            deliverable_path,
                            summary,
                            message,
                            pending,
                            verdicts,
                            retried: BTreeSet::new(),
                            fingerprint,
                        }
                    }
                    other => self.phase = other,
                }
            }
            // A run that stopped without a terminal (a crash) simply continues.
            _ => {}
        }
    }

    fn on_solver_failed(&mut self, error: String, failure: FailureKind, out: &mut Vec<Action>) {
        match &self.phase {
            Phase::Handoff { reason, .. } => {
                // The hand-off turn is a courtesy: the run stops for its budget either way.
                let reason = reason.clone();
                self.solver_turns += 1;
                self.end_handoff(reason, out);
            }
            Phase::Solver { .. } => {
                if let FailureKind::UsageLimited { resume_after } = failure {
                    self.usage_limited(&Role::Solver, error, resume_after, out);
                    return;
                }
                self.solver_turns += 1;
                let reason = match failure {
                    FailureKind::ContextOverflow => format!(
                        "the Solver's conversation no longer fits its model's context window, not even compacted to its hand-off summary and current message: {error}"
                    ),
                    _ => format!("the Solver's turn failed: {error}"),
                };
                self.terminate(Terminal::Failed { reason }, out);
            }
            _ => {}
        }
    }

    /// Stops the run until the provider's limit lifts; the call in flight is made again on
    /// resume, so nothing the role was asked is lost.
    fn usage_limited(
        &mut self,
        role: &Role,
        error: String,
        resume_after: OffsetDateTime,
        out: &mut Vec<Action>,
    ) {
        let reason = format!("{role}: {error}");
        self.terminate(
            Terminal::UsageLimited {
                reason,
                resume_after,
            },
            out,
        );
    }

    fn on_solver_replied(&mut self, text: &str, out: &mut Vec<Action>) {
        if let Phase::Handoff { reason, .. } = &self.phase {
            let reason = reason.clone();
            self.solver_turns += 1;
            self.end_handoff(reason, out);
            return;
        }
        if !matches!(self.phase, Phase::Solver { .. }) {
            return;
        }
        self.solver_turns += 1;
        let signal = parse_solver_signal(text);
        let key = match &signal {
            Ok(SolverSignal::DirectionRequest(request)) => {
                Some(format!("asked the Director {:?}", request.prompt.trim()))
            }
            Ok(SolverSignal::FinalDelivery(delivery)) => Some(format!(
                "delivered {} again",
                delivery.deliverable_path.trim()
            )),
            // Invalid replies have their own policy.
            Err(_) => None,
        };
        if let Some(key) = key {
            match self.stall.turn(&key) {
                TurnVerdict::Fine => {}
                TurnVerdict::Stalled { evidence } => {
                    self.escalate_stall(evidence, &signal, out);
                    return;
                }
                TurnVerdict::Blocked { evidence } => {
                    let reason = format!(
                        "the Solver kept repeating itself after {} escalation(s) to the Director: {evidence}",
                        self.config.stall.escalations
                    );
                    let message = prompts::render(prompts::BLOCKED_RESUME, &[("reason", &reason)]);
                    self.phase = Phase::Solver { message };
                    self.terminate(Terminal::Blocked { reason }, out);
                    return;
                }
            }
        }
        match signal {
            Err(error) => {
                self.invalid_in_row += 1;
                let error = error.to_string();
                out.push(record(Note::InvalidSignal {
                    error: error.clone(),
                    consecutive: self.invalid_in_row,
                }));
                let message = prompts::render(prompts::INVALID_SIGNAL, &[("error", &error)]);
                if self.invalid_in_row >= self.config.max_invalid_signals.max(1) {
                    // Park the correction so a resume starts by sending it.
                    self.phase = Phase::Solver { message };
                    let reason = format!(
                        "the Solver sent {} replies in a row without a valid signal; last error: {error}",
                        self.invalid_in_row
                    );
                    self.terminate(Terminal::Failed { reason }, out);
                } else {
                    self.enter_solver(message, out);
                }
            }
            Ok(SolverSignal::DirectionRequest(request)) => {
                self.invalid_in_row = 0;
                out.push(record(Note::DirectionRequested {
                    prompt: request.prompt.clone(),
                }));
                let payload = DirectorRequest {
                    prompt: request.prompt.clone(),
                    objective: Some(self.config.objective.clone()),
                };
                self.phase = Phase::Director {
                    message: payload.to_json(),
                    prompt: request.prompt,
                    reasked: false,
                    failures: 0,
                };
                self.attach_queued(Role::DIRECTOR);
            }
            Ok(SolverSignal::FinalDelivery(delivery)) => {
                self.invalid_in_row = 0;
                out.push(record(Note::FinalDelivery {
                    deliverable_path: delivery.deliverable_path.clone(),
                    summary: delivery.summary.clone(),
                }));
                self.phase = Phase::Checking { delivery };
            }
        }
    }

    fn on_director_replied(&mut self, text: &str, out: &mut Vec<Action>) {
        let Phase::Director {
            prompt, reasked, ..
        } = &self.phase
        else {
            return;
        };
        let (prompt, reasked) = (prompt.clone(), *reasked);
        let (directive, raw) = match parse_directive(text) {
            Ok(directive) => (directive, false),
            Err(error) if !reasked => {
                let error = error.to_string();
                out.push(record(Note::DirectorReasked {
                    error: error.clone(),
                }));
                self.phase = Phase::Director {
                    message: prompts::render(prompts::DIRECTOR_RETRY, &[("error", &error)]),
                    prompt,
                    reasked: true,
                    failures: 0,
                };
                return;
            }
            Err(_) => {
                let raw_text = text.trim();
                let directive = if raw_text.is_empty() {
                    "The Director gave no usable answer; proceed with your best judgement."
                        .to_string()
                } else {
                    raw_text.to_string()
                };
                (
                    DirectiveResponse {
                        directive,
                        rationale: None,
                    },
                    true,
                )
            }
        };
        out.push(record(Note::DirectiveIssued {
            directive: directive.directive.clone(),
            rationale: directive.rationale.clone(),
            raw,
        }));
        self.enter_solver(directive_message(&directive), out);
    }

    /// Asks the Director about the Solver's repetition; its directive goes to the Solver as
    /// any other. A repeated delivery is not verified again.
    fn escalate_stall(
        &mut self,
        evidence: String,
        signal: &Result<SolverSignal, infty_signals::SignalError>,
        out: &mut Vec<Action>,
    ) {
        let escalation = self.stall.escalated();
        out.push(record(Note::StallDetected {
            evidence: evidence.clone(),
            escalation,
        }));
        let request = match signal {
            Ok(SolverSignal::DirectionRequest(request)) => request.prompt.clone(),
            _ => String::new(),
        };
        let prompt = prompts::render(
            prompts::STALLED,
            &[("evidence", &evidence), ("request", request.trim())],
        );
        let payload = DirectorRequest {
            prompt: prompt.clone(),
            objective: Some(self.config.objective.clone()),
        };
        self.phase = Phase::Director {
            message: payload.to_json(),
            prompt,
            reasked: false,
            failures: 0,
        };
        self.attach_queued(Role::DIRECTOR);
    }

    fn on_director_failed(&mut self, error: String, failure: FailureKind, out: &mut Vec<Action>) {
        if !matches!(self.phase, Phase::Director { .. }) {
            return;
        }
        if let FailureKind::UsageLimited { resume_after } = failure {
            self.usage_limited(&Role::Director, error, resume_after, out);
            return;
        }
        if failure.is_permanent() {
            let reason = format!("the Director cannot be asked: {error}");
            self.terminate(Terminal::Failed { reason }, out);
            return;
        }
        let Phase::Director { failures, .. } = &mut self.phase else {
            return;
        };
        *failures += 1;
        let attempts = *failures;
        out.push(record(Note::DirectorFailed {
            error: error.clone(),
            attempts,
        }));
        if attempts >= DIRECTOR_ATTEMPTS {
            let reason = format!("the Director failed {attempts} times in a row: {error}");
            self.terminate(Terminal::Failed { reason }, out);
        }
    }

    fn on_deliverable_checked(&mut self, check: DeliverableCheck, out: &mut Vec<Action>) {
        let Phase::Checking { delivery } = &self.phase else {
            return;
        };
        let summary = delivery.summary.clone();
        match check {
            DeliverableCheck::Refused { reason } => {
                out.push(record(Note::DeliverableRejected {
                    reason: reason.clone(),
                }));
                let message = prompts::render(
                    prompts::DELIVERABLE_REJECTED,
                    &[("reason", &reason), ("run_dir", &self.config.run_dir)],
                );
                self.enter_solver(message, out);
            }
            DeliverableCheck::Accepted { path, fingerprint } => {
                if self.config.verifiers.is_empty() && self.config.checks.is_empty() {
                    self.terminate(
                        Terminal::Succeeded {
                            deliverable_path: path,
                            summary,
                        },
                        out,
                    );
                    return;
                }
                if let Some(max) = self.config.budgets.max_verification_rounds
                    && self.rounds >= max
                {
                    let reason = format!("all {max} verification rounds were used");
                    self.terminate(Terminal::BudgetExhausted { reason }, out);
                    return;
                }
                self.rounds += 1;
                if self.config.checks.is_empty() {
                    self.start_verifiers(path, summary, &[], fingerprint, out);
                } else {
                    self.phase = Phase::Checks {
                        round: self.rounds,
                        deliverable_path: path,
                        summary,
                        passed: Vec::new(),
                        fingerprint,
                    };
                }
            }
        }
    }

    fn on_check_finished(&mut self, result: CheckResult, out: &mut Vec<Action>) {
        let Phase::Checks {
            round,
            deliverable_path,
            summary,
            passed,
            fingerprint,
        } = &mut self.phase
        else {
            return;
        };
        // A result for another check than the one outstanding (a stale journal line) is ignored.
        if self.config.checks.get(passed.len()).map(|c| &c.name) != Some(&result.name) {
            return;
        }
        let round = *round;
        out.push(record(Note::CheckFinished {
            round,
            name: result.name.clone(),
            passed: result.passed,
            exit_code: result.exit_code,
            timed_out: result.timed_out,
        }));
        if !result.passed {
            let ending = match (result.timed_out, result.exit_code) {
                (true, _) => "it timed out and was killed".to_string(),
                (false, Some(code)) => format!("it exited with code {code}"),
                (false, None) => "it was killed by a signal".to_string(),
            };
            let check = if result.name.trim() == result.command.trim() {
                format!("`{}`", result.command.trim())
            } else {
                format!("`{}` (`{}`)", result.name, result.command.trim())
            };
            let message = prompts::render(
                prompts::CHECK_FAILED,
                &[
                    ("check", &check),
                    ("ending", &ending),
                    ("output", result.output.trim_end()),
                ],
            );
            if let Some(max) = self.config.budgets.max_verification_rounds
                && self.rounds >= max
            {
                let reason = format!("all {max} verification rounds were used");
                self.exhaust(reason, message, out);
                return;
            }
            self.enter_solver(message, out);
            return;
        }
        passed.push(result);
        if passed.len() < self.config.checks.len() {
            return;
        }
        let (path, summary, passed, fingerprint) = (
            deliverable_path.clone(),
            summary.clone(),
            std::mem::take(passed),
            fingerprint.take(),
        );
        if self.config.verifiers.is_empty() {
            self.terminate(
                Terminal::Succeeded {
                    deliverable_path: path,
                    summary,
                },
                out,
            );
            return;
        }
        self.start_verifiers(path, summary, &passed, fingerprint, out);
    }

    /// Asks every Verifier about the delivery; passing checks ride along as evidence.
    fn start_verifiers(
        &mut self,
        path: String,
        summary: Option<String>,
        checks: &[CheckResult],
        fingerprint: Option<DeliverableFingerprint>,
        out: &mut Vec<Action>,
    ) {
        let request = VerificationRequest {
            deliverable_path: path.clone(),
            summary: summary.clone(),
            objective: Some(self.config.objective.clone()),
        };
        let message = if checks.is_empty() {
            request.to_json()
        } else {
            let mut value = serde_json::to_value(&request).unwrap_or_default();
            if let serde_json::Value::Object(map) = &mut value {
                let evidence: Vec<serde_json::Value> = checks
                    .iter()
                    .map(|check| {
                        serde_json::json!({
                            "name": check.name,
                            "command": check.command,
                            "exit_code": check.exit_code,
                            "output": check.output,
                        })
                    })
                    .collect();
                map.insert("checks_passed".into(), evidence.into());
            }
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| request.to_json())
        };
        let roles: BTreeSet<Role> = self.config.verifiers.iter().cloned().collect();
        out.push(record(Note::VerificationStarted {
            round: self.rounds,
            roles: self.config.verifiers.clone(),
        }));
        self.phase = Phase::Verifying {
            round: self.rounds,
            deliverable_path: path,
            summary,
            message,
            pending: roles,
            verdicts: BTreeMap::new(),
            retried: BTreeSet::new(),
            fingerprint,
        };
    }

    /// The deliverable being verified, when its fingerprint was taken: the driver must
    /// fingerprint it again after each batch of Verifier answers
    /// ([`Input::DeliverableRechecked`]).
    pub fn deliverable_under_verification(&self) -> Option<&str> {
        match &self.phase {
            Phase::Verifying {
                deliverable_path,
                fingerprint: Some(_),
                ..
            } => Some(deliverable_path),
            _ => None,
        }
    }

    fn on_deliverable_rechecked(&mut self, check: DeliverableCheck, out: &mut Vec<Action>) {
        let Phase::Verifying {
            round,
            deliverable_path,
            fingerprint: Some(before),
            ..
        } = &self.phase
        else {
            return;
        };
        let (changed, why) = match &check {
            DeliverableCheck::Accepted {
                fingerprint: Some(after),
                ..
            } => (before.changed_paths(after), None),
            // Not comparable: count the whole deliverable as changed.
            DeliverableCheck::Accepted {
                fingerprint: None, ..
            } => (vec![deliverable_path.clone()], None),
            DeliverableCheck::Refused { reason } => {
                (vec![deliverable_path.clone()], Some(reason.clone()))
            }
        };
        if changed.is_empty() {
            return;
        }
        let round = *round;
        out.push(record(Note::VerdictsVoided {
            round,
            changed: changed.clone(),
        }));
        let mut listed = changed.join(", ");
        if let Some(why) = why {
            listed.push_str(&format!(
                " (it no longer passes the deliverable check: {why})"
            ));
        }
        let message = prompts::render(
            prompts::DELIVERABLE_CHANGED,
            &[("round", &round.to_string()), ("changed", &listed)],
        );
        // Verifiers that touched the deliverable keep no context a later round could lean on.
        self.replacements
            .extend(self.config.verifiers.iter().cloned());
        self.enter_solver(message, out);
    }

    fn on_verdict(&mut self, role: Role, verdict: VerifierVerdict, out: &mut Vec<Action>) {
        let Phase::Verifying {
            pending, verdicts, ..
        } = &mut self.phase
        else {
            return;
        };
        if !pending.remove(&role) {
            return;
        }
        out.push(record(Note::VerdictRecorded {
            role: role.clone(),
            verdict: verdict.verdict,
            reasons: verdict.reasons.clone(),
            suggestions: verdict.suggestions.clone(),
        }));
        verdicts.insert(role, verdict);
        if pending.is_empty() {
            self.conclude_round(out);
        }
    }

    fn on_verifier_failed(&mut self, role: Role, error: String, out: &mut Vec<Action>) {
        let Phase::Verifying {
            pending, retried, ..
        } = &mut self.phase
        else {
            return;
        };
        if !pending.contains(&role) {
            return;
        }
        out.push(record(Note::VerifierNoVerdict {
            role: role.clone(),
            error: error.clone(),
        }));
        if retried.insert(role.clone()) {
            self.replacements.insert(role);
        } else {
            let reason =
                format!("verifier {role} gave no verdict, even from a fresh session: {error}");
            self.terminate(Terminal::Failed { reason }, out);
        }
    }

    fn conclude_round(&mut self, out: &mut Vec<Action>) {
        let Phase::Verifying {
            round,
            deliverable_path,
            summary,
            verdicts,
            ..
        } = &self.phase
        else {
            return;
        };
        let round = *round;
        // Reports follow the configured order of Verifiers, not the order they answered in.
        let answered: Vec<(&Role, &VerifierVerdict)> = self
            .config
            .verifiers
            .iter()
            .filter_map(|role| verdicts.get(role).map(|verdict| (role, verdict)))
            .collect();
        let (mut passed, mut failed) = (Vec::new(), Vec::new());
        for (role, verdict) in &answered {
            if verdict.verdict.is_pass() {
                passed.push((*role).clone());
            } else {
                failed.push((*role).clone());
            }
        }
        let reports: Vec<VerifierReport> = answered
            .iter()
            .map(|(role, verdict)| VerifierReport {
                role: role.to_string(),
                verdict: verdict.verdict,
                reasons: verdict.reasons.clone(),
                suggestions: verdict.suggestions.clone(),
            })
            .collect();
        let overall_pass = match self.config.policy {
            VerificationPolicy::All => failed.is_empty(),
            VerificationPolicy::Majority => passed.len() * 2 > reports.len(),
        };
        let overall = if overall_pass {
            VerifierDecision::Pass
        } else {
            VerifierDecision::Fail
        };
        out.push(record(Note::VerificationSummary {
            round,
            overall,
            passed: passed.clone(),
            failed,
        }));
        if overall_pass {
            let terminal = Terminal::Succeeded {
                deliverable_path: deliverable_path.clone(),
                summary: summary.clone(),
            };
            self.terminate(terminal, out);
            return;
        }
        // Passing Verifiers start the next round fresh, so a later pass is not anchored on an
        // earlier one; failing ones keep their context to check their reasons were addressed.
        self.replacements.extend(passed);
        let feedback = VerificationFeedback {
            overall,
            verdicts: reports,
        };
        if let Some(max) = self.config.budgets.max_verification_rounds
            && self.rounds >= max
        {
            let reason = format!("all {max} verification rounds were used");
            self.exhaust(reason, feedback.to_json(), out);
            return;
        }
        self.enter_solver(feedback.to_json(), out);
    }

    fn on_message(&mut self, role: Role, text: String) {
        let wrapped = prompts::render(prompts::OPERATOR_MESSAGE, &[("message", text.trim())]);
        match (&mut self.phase, role.as_str()) {
            (Phase::Solver { message }, Role::SOLVER)
            | (Phase::Handoff { message, .. }, Role::SOLVER)
            | (Phase::Director { message, .. }, Role::DIRECTOR) => {
                message.push_str("\n\n");
                message.push_str(&wrapped);
            }
            _ => self.queued.push((role, wrapped)),
        }
    }

    fn attach_queued(&mut self, role: &str) {
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.queued)
            .into_iter()
            .partition(|(to, _)| to == role);
        self.queued = rest;
        if let Phase::Solver { message } | Phase::Director { message, .. } = &mut self.phase {
            for (_, text) in mine {
                message.push_str("\n\n");
                message.push_str(&text);
            }
        }
    }

    /// Starts a Solver turn with `message`, unless a budget is spent (then the Solver gets
    /// its hand-off turn); records the budget warning once when a budget is nearly spent.
    /// What is left of the budgets is added when the call is made ([`Flow::outstanding`]).
    fn enter_solver(&mut self, message: String, out: &mut Vec<Action>) {
        if let Some(reason) = self.exhausted_budget() {
            self.exhaust(reason, message, out);
            return;
        }
        self.handoff_given = false;
        if !self.finalize_sent
            && let Some(reason) = self.nearly_exhausted_budget()
        {
            self.finalize_sent = true;
            out.push(record(Note::BudgetWarning { reason }));
        }
        self.phase = Phase::Solver { message };
        self.attach_queued(Role::SOLVER);
    }

    /// A budget ran out: the Solver gets one last turn to write its hand-off notes, then the
    /// run stops. `resume_message` is what a resume with a larger budget sends.
    fn exhaust(&mut self, reason: String, resume_message: String, out: &mut Vec<Action>) {
        if self.handoff_given {
            self.phase = Phase::Solver {
                message: resume_message,
            };
            self.terminate(Terminal::BudgetExhausted { reason }, out);
            return;
        }
        self.handoff_given = true;
        out.push(record(Note::HandoffRequested {
            reason: reason.clone(),
        }));
        let message = prompts::render(prompts::HANDOFF, &[("reason", &reason)]);
        self.phase = Phase::Handoff {
            message,
            reason,
            resume_message,
        };
        self.attach_queued(Role::SOLVER);
    }

    fn end_handoff(&mut self, reason: String, out: &mut Vec<Action>) {
        let Phase::Handoff { resume_message, .. } = &self.phase else {
            return;
        };
        self.phase = Phase::Solver {
            message: resume_message.clone(),
        };
        self.terminate(Terminal::BudgetExhausted { reason }, out);
    }

    /// `message` with what is left of every budget that is set, and the wind-down notice
    /// once one is past 90 %.
    fn with_budget_lines(&self, message: &str) -> String {
        let left = self.budget_left();
        if left.is_empty() {
            return message.to_string();
        }
        let mut text = message.to_string();
        text.push_str("\n\n");
        text.push_str(&prompts::render(
            prompts::BUDGET,
            &[("left", &left.join("; "))],
        ));
        if let Some(reason) = self.nearly_exhausted_budget() {
            text.push_str("\n\n");
            text.push_str(&prompts::render(prompts::FINALIZE, &[("reason", &reason)]));
        }
        text
    }

    /// What is left of each set budget, in words.
    fn budget_left(&self) -> Vec<String> {
        let budgets = &self.config.budgets;
        let mut left = Vec::new();
        if let Some(max) = budgets.max_solver_turns {
            left.push(format!(
                "{} of {max} Solver turns (this one included)",
                max.saturating_sub(self.solver_turns)
            ));
        }
        if let Some(max) = budgets.max_verification_rounds {
            left.push(format!(
                "{} of {max} verification rounds",
                max.saturating_sub(self.rounds)
            ));
        }
        if let Some(max) = budgets.max_total_tokens {
            left.push(format!(
                "{} of {max} tokens",
                max.saturating_sub(self.tokens)
            ));
        }
        if let Some(max) = budgets.max_cost_usd {
            left.push(format!(
                "${:.2} of ${max:.2}",
                (max - self.cost_usd).max(0.0)
            ));
        }
        if let Some(max) = budgets.max_wall_clock_secs {
            left.push(format!(
                "{} of {} of driving time",
                duration_words(max.saturating_sub(self.active.as_secs())),
                duration_words(max)
            ));
        }
        left
    }

    fn exhausted_budget(&self) -> Option<String> {
        let budgets = &self.config.budgets;
        if let Some(max) = budgets.max_solver_turns
            && self.solver_turns >= max
        {
            return Some(format!("the Solver used all {max} of its turns"));
        }
        if let Some(max) = budgets.max_total_tokens
            && self.tokens >= max
        {
            return Some(format!("{} tokens used of a budget of {max}", self.tokens));
        }
        if let Some(max) = budgets.max_wall_clock_secs
            && self.active.as_secs() >= max
        {
            return Some(format!(
                "{}s of driving time used of a budget of {max}s",
                self.active.as_secs()
            ));
        }
        if let Some(max) = budgets.max_cost_usd
            && self.cost_usd >= max
        {
            return Some(format!(
                "${:.4} spent of a budget of ${max:.2}",
                self.cost_usd
            ));
        }
        None
    }

    fn nearly_exhausted_budget(&self) -> Option<String> {
        let budgets = &self.config.budgets;
        if let Some(max) = budgets.max_solver_turns
            && self.solver_turns + 1 >= max
        {
            return Some(format!("this is the last of the Solver's {max} turns"));
        }
        if let Some(max) = budgets.max_total_tokens
            && self.tokens.saturating_mul(10) >= max.saturating_mul(9)
        {
            return Some(format!("{} of {max} tokens used", self.tokens));
        }
        if let Some(max) = budgets.max_wall_clock_secs
            && self.active.as_secs().saturating_mul(10) >= max.saturating_mul(9)
        {
            return Some(format!(
                "{}s of {max}s of driving time used",
                self.active.as_secs()
            ));
        }
        if let Some(max) = budgets.max_cost_usd
            && self.cost_usd * 10.0 >= max * 9.0
        {
            return Some(format!("${:.2} of ${max:.2} spent", self.cost_usd));
        }
        None
    }

    fn terminate(&mut self, terminal: Terminal, out: &mut Vec<Action>) {
        out.push(record(Note::Ended(terminal.clone())));
        let previous = std::mem::replace(&mut self.phase, Phase::Done(terminal.clone()));
        if !matches!(terminal, Terminal::Succeeded { .. }) {
            self.parked = Some(previous);
        }
        out.push(Action::Finish { terminal });
    }
}

/// `1h 05m`, `12m 30s`, `45s`.
fn duration_words(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, (secs / 60) % 60),
    }
}

fn record(note: Note) -> Action {
    Action::Record { note }
}

/// The Solver's view of a directive: the Director's JSON, as the contract describes it.
fn directive_message(directive: &DirectiveResponse) -> String {
    let value = serde_json::json!({
        "type": "directive",
        "directive": directive.directive,
        "rationale": directive.rationale,
    });
    serde_json::to_string_pretty(&value).unwrap_or_else(|_| directive.directive.clone())
}
