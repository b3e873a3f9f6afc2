//! The run journal's vocabulary: what `events.jsonl` records.
//!
//! A journal line is either an [`Input`] to the orchestration state
//! machine (folded again on resume, so the state is a pure function of the journal) or a
//! [`Note`]: something that happened and that people and tools read (`infty logs`, `infty
//! show`), but that never changes the state. Both are tagged with `kind`, and the kinds are
//! disjoint.

use infty_signals::VerifierDecision;
use infty_store::BrokenLine;
use serde::{Deserialize, Serialize};

use crate::flow::Input;

/// Why a role's history was compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionCause {
    /// The last response's prompt reached the set share of the context window.
    #[default]
    Threshold,
    /// The provider refused the prompt as longer than the model's context window.
    Overflow,
}

impl CompactionCause {
    fn is_threshold(&self) -> bool {
        *self == CompactionCause::Threshold
    }

    /// Why, in words that follow "history compacted": `at 900 prompt tokens`, or that the
    /// provider refused the prompt.
    pub fn explain(self, prompt_tokens: impl std::fmt::Display) -> String {
        match self {
            CompactionCause::Threshold => format!("at {prompt_tokens} prompt tokens"),
            CompactionCause::Overflow => {
                "because the provider refused the prompt as longer than the model's context window"
                    .to_string()
            }
        }
    }
}

/// One journal event: an input to the state machine, or a note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunEvent {
    /// Folded on resume.
    Input(Input),
    /// Informational.
    Note(Note),
}

/// Things worth recording that do not drive the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// A driver started (or resumed) driving the run.
    DriverStarted {
        /// Process id of the driver.
        pid: u32,
        /// Whether this is a resume.
        resumed: bool,
    },
    /// These roles' tools run without the OS sandbox (`--sandbox off`), as asked.
    SandboxOff {
        /// The unsandboxed roles.
        roles: Vec<String>,
    },
    /// The objective went to the Solver.
    ObjectivePosted {
        /// The objective text.
        objective: String,
    },
    /// The Solver's reply carried no valid signal.
    InvalidSignal {
        /// What was wrong, as sent back to the Solver.
        error: String,
        /// How many invalid replies in a row so far.
        consecutive: u32,
    },
    /// The Solver asked the Director.
    DirectionRequested {
        /// The Solver's question or report.
        prompt: String,
    },
    /// The Director's reply did not parse and it was asked again.
    DirectorReasked {
        /// The parse error.
        error: String,
    },
    /// The Director's call failed (timeout or model error).
    DirectorFailed {
        /// The error.
        error: String,
        /// Failures so far for this request.
        attempts: u32,
    },
    /// A directive went to the Solver.
    DirectiveIssued {
        /// The directive.
        directive: String,
        /// Its rationale.
        rationale: Option<String>,
        /// Whether the Director's raw text was forwarded because it never parsed.
        raw: bool,
    },
    /// The Solver claimed it is done.
    FinalDelivery {
        /// The path as the Solver gave it.
        deliverable_path: String,
        /// The Solver's summary.
        summary: Option<String>,
    },
    /// The delivery's path failed validation; no Verifier was called.
    DeliverableRejected {
        /// Why.
        reason: String,
    },
    /// A verification round started.
    VerificationStarted {
        /// Round number, from 1.
        round: u32,
        /// The Verifiers asked.
        roles: Vec<String>,
    },
    /// A Verifier gave its verdict.
    VerdictRecorded {
        /// The Verifier.
        role: String,
        /// Pass or fail.
        verdict: VerifierDecision,
        /// Its reasons.
        reasons: Vec<String>,
        /// Its suggestions.
        suggestions: Vec<String>,
    },
    /// A Verifier errored or gave no verdict; it is replaced and asked once more.
    VerifierNoVerdict {
        /// The Verifier.
        role: String,
        /// What went wrong.
        error: String,
    },
    /// A Verifier session was replaced by a fresh one.
    VerifierReplaced {
        /// The Verifier.
        role: String,
    },
    /// A verification round ended.
    VerificationSummary {
        /// Round number.
        round: u32,
        /// The aggregate decision under the run's policy.
        overall: VerifierDecision,
        /// Verifiers that passed.
        passed: Vec<String>,
        /// Verifiers that failed.
        failed: Vec<String>,
    },
    /// A budget is nearly spent; the Solver was told to finalize.
    BudgetWarning {
        /// Which budget.
        reason: String,
    },
    /// A role started a tool call.
    ToolCallStarted {
        /// The role.
        role: String,
        /// The call id.
        call_id: String,
        /// The tool.
        tool: String,
    },
    /// A tool call finished.
    ToolCallFinished {
        /// The role.
        role: String,
        /// The call id.
        call_id: String,
        /// The tool.
        tool: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A role's history was compacted.
    Compacted {
        /// The role.
        role: String,
        /// Prompt tokens before compaction (of the last response that fitted).
        prompt_tokens: u64,
        /// Items kept verbatim after the summary.
        kept_items: usize,
        /// Why (absent in the journal: the threshold).
        #[serde(default, skip_serializing_if = "CompactionCause::is_threshold")]
        cause: CompactionCause,
    },
    /// A role's response stopped at its output cap (`max_output_tokens`); when it held no
    /// tool call the role was told so and asked again, shorter.
    OutputCapped {
        /// The role.
        role: String,
        /// The cap, in tokens.
        max_output_tokens: u32,
    },
    /// The model client is retrying a request.
    ModelRetry {
        /// The role.
        role: String,
        /// Attempt number.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// The run succeeded.
    RunSucceeded {
        /// Deliverable, relative to the run folder.
        deliverable_path: String,
        /// The Solver's summary.
        summary: Option<String>,
    },
    /// The run failed.
    RunFailed {
        /// Why.
        reason: String,
    },
    /// A budget ran out.
    BudgetExhausted {
        /// Which budget.
        reason: String,
    },
    /// The run was interrupted (Ctrl-C or cancellation).
    RunInterrupted,
    /// A completion check finished.
    CheckFinished {
        /// The verification round it belongs to.
        round: u32,
        /// The check.
        name: String,
        /// Whether it passed.
        passed: bool,
        /// Its exit code, when it exited.
        exit_code: Option<i32>,
        /// Whether it was killed at its time limit.
        timed_out: bool,
    },
    /// The Solver repeated itself; the Director was asked with this evidence.
    StallDetected {
        /// The repetition.
        evidence: String,
        /// Escalations without progress so far, this one included.
        escalation: u32,
    },
    /// A budget ran out; the Solver gets one last turn for its hand-off.
    HandoffRequested {
        /// Which budget.
        reason: String,
    },
    /// The run stopped as blocked.
    RunBlocked {
        /// The repetition.
        reason: String,
    },
    /// The run stopped on a provider's usage limit.
    RunUsageLimited {
        /// The provider's message.
        reason: String,
        /// When it may continue.
        #[serde(with = "time::serde::rfc3339")]
        resume_after: time::OffsetDateTime,
    },
    /// The run was resumed although its record (journal or rollouts) had been changed
    /// outside infty, because the operator accepted it as it is; it was sealed afresh.
    RecordEditAccepted {
        /// The first changed line of each changed file, as found before the reseal.
        broken: Vec<BrokenLine>,
    },
    /// An older run's record, written before records were sealed, was sealed as found.
    RecordSealed,
    /// The deliverable changed while the Verifiers judged it: their verdicts of this round
    /// are void, and the Solver is told.
    VerdictsVoided {
        /// The verification round.
        round: u32,
        /// The delivered files that changed, appeared or disappeared, relative to the run folder.
        changed: Vec<String>,
    },
}
