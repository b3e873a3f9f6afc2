//! Progress callbacks for user interfaces that watch a run as it is driven.
//!
//! Every callback is fired by the driver at the moment the matching event is journaled, so a
//! reporter sees what `events.jsonl` records, plus the streaming details (text deltas, a role
//! starting to think) the journal leaves out. All methods default to doing nothing. A
//! reporter must return quickly: it is called on the driver's task.

use std::time::Duration;

use camino::Utf8Path;
use infty_signals::{VerifierDecision, VerifierVerdict};
use infty_store::{BrokenLine, TokenUsage};

use crate::events::{CompactionCause, Note};
use crate::flow::Terminal;
use crate::tools::Plan;

/// Receives a run's progress.
#[allow(unused_variables)]
pub trait ProgressReporter: Send + Sync {
    /// The driver took the run (fresh or resumed).
    fn run_started(&self, run_id: &str, run_dir: &Utf8Path, resumed: bool) {}
    /// The objective went to the Solver.
    fn objective_posted(&self, objective: &str) {}
    /// A role's turn started; it is thinking until `role_message`.
    fn role_thinking(&self, role: &str) {}
    /// Streamed text of a role's reply, as it arrives.
    fn text_delta(&self, role: &str, delta: &str) {}
    /// A role finished its turn with this text.
    fn role_message(&self, role: &str, text: &str) {}
    /// The Solver's reply carried no valid signal.
    fn invalid_signal(&self, error: &str, consecutive: u32) {}
    /// The Solver asked the Director.
    fn direction_request(&self, prompt: &str) {}
    /// The Director's answer went to the Solver.
    fn directive(&self, directive: &str, rationale: Option<&str>) {}
    /// The Solver claimed it is done.
    fn final_delivery(&self, deliverable_path: &str, summary: Option<&str>) {}
    /// The delivered path was refused before verification.
    fn deliverable_rejected(&self, reason: &str) {}
    /// A Verifier gave its verdict.
    fn verifier_verdict(&self, role: &str, verdict: &VerifierVerdict) {}
    /// A Verifier gave no verdict and is replaced by a fresh session.
    fn verifier_replaced(&self, role: &str, reason: &str) {}
    /// A verification round ended.
    fn verification_summary(&self, round: u32, overall: VerifierDecision) {}
    /// A role started a tool call.
    fn tool_call_started(&self, role: &str, tool: &str, arguments: &str) {}
    /// A tool call finished.
    fn tool_call_finished(&self, role: &str, tool: &str, ok: bool, output: &str) {}
    /// A role updated its plan.
    fn plan_updated(&self, role: &str, plan: &Plan) {}
    /// A role's history was compacted.
    fn compaction(
        &self,
        role: &str,
        prompt_tokens: u64,
        kept_items: usize,
        cause: CompactionCause,
    ) {
    }
    /// A role's turn used these tokens.
    fn usage(&self, role: &str, usage: &TokenUsage) {}
    /// A role's turn cost this many US dollars (0 when its model has no price).
    fn cost(&self, role: &str, cost_usd: f64) {}
    /// A budget is nearly spent.
    fn budget_warning(&self, reason: &str) {}
    /// The deliverable changed while the Verifiers judged it: the round's verdicts are void.
    fn verdicts_voided(&self, round: u32, changed: &[String]) {}
    /// The run continues from a record changed outside infty, accepted by the operator.
    fn record_edit_accepted(&self, broken: &[BrokenLine]) {}
    /// A role's response stopped at its output cap of `max_output_tokens` tokens.
    fn output_capped(&self, role: &str, max_output_tokens: u32) {}
    /// The model client retries a request.
    fn model_retry(&self, role: &str, attempt: u32, max: u32, delay: Duration, reason: &str) {}
    /// These roles' tools run without the OS sandbox, as asked: worth a warning.
    fn sandbox_off(&self, roles: &[String]) {}
    /// The run was interrupted.
    fn interrupted(&self) {}
    /// A completion check finished.
    fn check_finished(&self, name: &str, passed: bool, exit_code: Option<i32>, timed_out: bool) {}
    /// The Solver repeats itself; the Director is asked with this evidence.
    fn stall_detected(&self, evidence: &str, escalation: u32) {}
    /// A budget ran out; the Solver writes its hand-off in one last turn.
    fn handoff_requested(&self, reason: &str) {}
    /// The run ended (in any way).
    fn run_finished(&self, terminal: &Terminal) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressReporter for NoProgress {}

/// Calls the reporter's callback that matches a journal note.
pub(crate) fn dispatch(reporter: &dyn ProgressReporter, note: &Note) {
    match note {
        Note::ObjectivePosted { objective } => reporter.objective_posted(objective),
        Note::InvalidSignal { error, consecutive } => reporter.invalid_signal(error, *consecutive),
        Note::DirectionRequested { prompt } => reporter.direction_request(prompt),
        Note::DirectiveIssued {
            directive,
            rationale,
            ..
        } => reporter.directive(directive, rationale.as_deref()),
        Note::FinalDelivery {
            deliverable_path,
            summary,
        } => reporter.final_delivery(deliverable_path, summary.as_deref()),
        Note::DeliverableRejected { reason } => reporter.deliverable_rejected(reason),
        Note::VerdictRecorded {
            role,
            verdict,
            reasons,
            suggestions,
        } => reporter.verifier_verdict(
            role,
            &VerifierVerdict {
                verdict: *verdict,
                reasons: reasons.clone(),
                suggestions: suggestions.clone(),
            },
        ),
        Note::VerifierNoVerdict { role, error } => reporter.verifier_replaced(role, error),
        Note::VerificationSummary { round, overall, .. } => {
            reporter.verification_summary(*round, *overall)
        }
        Note::BudgetWarning { reason } => reporter.budget_warning(reason),
        Note::Compacted {
            role,
            prompt_tokens,
            kept_items,
            cause,
        } => reporter.compaction(role, *prompt_tokens, *kept_items, *cause),
        Note::RunInterrupted => reporter.interrupted(),
        Note::CheckFinished {
            name,
            passed,
            exit_code,
            timed_out,
            ..
        } => reporter.check_finished(name, *passed, *exit_code, *timed_out),
        Note::StallDetected {
            evidence,
            escalation,
        } => reporter.stall_detected(evidence, *escalation),
        Note::HandoffRequested { reason } => reporter.handoff_requested(reason),
        Note::OutputCapped {
            role,
            max_output_tokens,
        } => reporter.output_capped(role, *max_output_tokens),
        Note::SandboxOff { roles } => reporter.sandbox_off(roles),
        // Reported through their own richer callbacks, or only journaled.
        Note::DriverStarted { .. }
        | Note::DirectorReasked { .. }
        | Note::DirectorFailed { .. }
        | Note::VerificationStarted { .. }
        | Note::VerifierReplaced { .. }
        | Note::ToolCallStarted { .. }
        | Note::ToolCallFinished { .. }
        | Note::ModelRetry { .. }
        | Note::RunSucceeded { .. }
        | Note::RunFailed { .. }
        | Note::BudgetExhausted { .. }
        | Note::RunBlocked { .. }
        | Note::RunUsageLimited { .. }
        | Note::RecordSealed => {}
        Note::RecordEditAccepted { broken } => reporter.record_edit_accepted(broken),
        Note::VerdictsVoided { round, changed } => reporter.verdicts_voided(*round, changed),
    }
}
