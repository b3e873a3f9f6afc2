//! The run journal's vocabulary: what `events.jsonl` records.
//!
//! A journal line is either an [`Input`] to the orchestration state
//! machine (folded again on resume, so the state is a pure function of the journal) or a
//! [`Note`]: something that happened and that people and tools read (`infty logs`, `infty
//! show`), but that never changes the state. Both are tagged with `kind`, and the kinds are
//! disjoint.

use infty_signals::VerifierDecision;
use infty_store::{BrokenLine, Budgets, DeliverableFingerprint, Role, RunStatus, TokenUsage};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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

/// What the state machine is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// The run starts: post the objective.
    Started,
    /// A stopped run is driven again; a failed, exhausted or interrupted run continues where
    /// it stopped.
    Resumed,
    /// The Solver finished a turn with this text.
    SolverReplied {
        /// The Solver's final text of the turn.
        text: String,
    },
    /// The Solver's turn failed (model error or timeout).
    SolverFailed {
        /// What went wrong.
        error: String,
        /// What kind of failure it was: the flow decides on this, never on `error`'s text.
        #[serde(default)]
        failure: FailureKind,
    },
    /// What the Solver's last turn did, fingerprinted by the driver; fed just before that
    /// turn's `SolverReplied`. Stall detection compares these, never counts turns.
    SolverWork {
        /// A hash of the turn's tool calls (name, arguments, output) and, for a delivery,
        /// of the delivered files.
        fingerprint: String,
        /// The same work in a few words, for the evidence of a stall.
        summary: String,
    },
    /// The Director answered.
    DirectorReplied {
        /// Its text.
        text: String,
    },
    /// The Director's call failed.
    DirectorFailed {
        /// What went wrong.
        error: String,
        /// What kind of failure it was.
        #[serde(default)]
        failure: FailureKind,
    },
    /// The driver checked the delivered path.
    DeliverableChecked {
        /// The outcome of the check.
        check: DeliverableCheck,
    },
    /// The driver fingerprinted the deliverable again once Verifiers answered, before their
    /// answers are fed: a deliverable that changed makes the round's verdicts void.
    DeliverableRechecked {
        /// The outcome of the new check (its fingerprint, or why it no longer passes).
        check: DeliverableCheck,
    },
    /// A Verifier answered.
    VerifierReplied {
        /// The Verifier.
        role: Role,
        /// Its text.
        text: String,
    },
    /// A Verifier's call failed.
    VerifierFailed {
        /// The Verifier.
        role: Role,
        /// What went wrong.
        error: String,
        /// What kind of failure it was.
        #[serde(default)]
        failure: FailureKind,
    },
    /// A completion check finished.
    CheckFinished {
        /// How it ended.
        result: CheckResult,
    },
    /// The driver replaced these Verifiers by fresh sessions.
    VerifiersReplaced {
        /// The replaced roles.
        roles: Vec<Role>,
    },
    /// An operator message (from `infty send`) is delivered with the role's next turn.
    MessageDelivered {
        /// Inbox message id.
        id: String,
        /// The addressed role.
        role: Role,
        /// The message.
        text: String,
    },
    /// A role's model call reported token usage.
    UsageRecorded {
        /// The role.
        role: Role,
        /// Tokens of that call.
        usage: TokenUsage,
        /// Their cost in US dollars, priced by the driver when they were recorded (0 when
        /// the model has no price).
        #[serde(default, skip_serializing_if = "is_zero")]
        cost_usd: f64,
    },
    /// The run's budgets from here on (journaled when a drive starts with other budgets than
    /// the journal last said, so a fold decides with the budgets each input met).
    BudgetsSet {
        /// The budgets.
        budgets: Budgets,
    },
    /// Stop now (Ctrl-C); the run can be resumed.
    Cancel,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// What kind of failure ended a role's turn. The driver classifies the model client's typed
/// errors into these; the flow's policies match on them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FailureKind {
    /// The turn ran past its time limit.
    Timeout,
    /// The conversation no longer fits the model's context window.
    ContextOverflow,
    /// A rate or usage limit that did not clear within the client's retries.
    UsageLimited {
        /// When the provider said (or infty guesses) the limit lifts.
        #[serde(with = "time::serde::rfc3339")]
        resume_after: OffsetDateTime,
    },
    /// The account is out of quota or credits (`insufficient_quota`): a person must act.
    Quota,
    /// The key was refused.
    Auth,
    /// A failure that may go away on its own (connection, 5xx, cut streams).
    Transient,
    /// Anything else (and failures journaled before kinds existed).
    #[default]
    Other,
}

impl FailureKind {
    /// Whether asking again, soon, cannot help: a person must act first.
    pub fn is_permanent(&self) -> bool {
        matches!(self, FailureKind::Quota | FailureKind::Auth)
    }
}

/// How a completion check ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// The check's name.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// Whether it exited 0 in time.
    pub passed: bool,
    /// Its exit code, when it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Whether it was killed at its time limit.
    #[serde(default)]
    pub timed_out: bool,
    /// How it ended and the tail of its output, as the model reads it.
    #[serde(default)]
    pub output: String,
}

/// The result of validating a `final_delivery` path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DeliverableCheck {
    /// The path exists inside the run folder.
    Accepted {
        /// The path relative to the run folder.
        path: String,
        /// The delivered files (absent in runs journaled before fingerprints were taken).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fingerprint: Option<DeliverableFingerprint>,
    },
    /// The path was refused.
    Refused {
        /// Why.
        reason: String,
    },
}

/// How a run ended: the one type from which `run.json`'s status and error, the journal's
/// note, the exit code, the progress line and the closing summary are all derived.
///
/// In the journal it is a note whose `kind` names the ending (`run_succeeded`, `run_failed`,
/// `budget_exhausted`, `run_interrupted`, `run_blocked`, `run_usage_limited`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Terminal {
    /// Verification passed.
    #[serde(rename = "run_succeeded")]
    Succeeded {
        /// The deliverable, relative to the run folder.
        deliverable_path: String,
        /// The Solver's summary.
        summary: Option<String>,
    },
    /// The run cannot go on without help; it can be resumed.
    #[serde(rename = "run_failed")]
    Failed {
        /// Why.
        reason: String,
    },
    /// A budget ran out; it can be resumed with a larger budget.
    #[serde(rename = "budget_exhausted")]
    BudgetExhausted {
        /// Which budget.
        reason: String,
    },
    /// Cancelled; it can be resumed.
    #[serde(rename = "run_interrupted")]
    Interrupted,
    /// The Solver kept repeating itself after every escalation; resume after `infty send`.
    #[serde(rename = "run_blocked")]
    Blocked {
        /// The repetition.
        reason: String,
    },
    /// A provider's rate or usage limit did not clear in time; resume after `resume_after`.
    #[serde(rename = "run_usage_limited")]
    UsageLimited {
        /// The provider's message.
        reason: String,
        /// When the run may continue.
        #[serde(with = "time::serde::rfc3339")]
        resume_after: OffsetDateTime,
    },
}

impl Terminal {
    /// The status `run.json` records for this ending.
    pub fn status(&self) -> RunStatus {
        match self {
            Terminal::Succeeded { .. } => RunStatus::Succeeded,
            Terminal::Failed { .. } => RunStatus::Failed,
            Terminal::BudgetExhausted { .. } => RunStatus::BudgetExhausted,
            Terminal::Interrupted => RunStatus::Interrupted,
            Terminal::Blocked { .. } => RunStatus::Blocked,
            Terminal::UsageLimited { .. } => RunStatus::UsageLimited,
        }
    }

    /// Why the run stopped, for endings that have a reason (`run.json`'s `error`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            Terminal::Failed { reason }
            | Terminal::BudgetExhausted { reason }
            | Terminal::Blocked { reason }
            | Terminal::UsageLimited { reason, .. } => Some(reason),
            Terminal::Succeeded { .. } | Terminal::Interrupted => None,
        }
    }

    /// When the run may continue, for a usage limit.
    pub fn resume_after(&self) -> Option<OffsetDateTime> {
        match self {
            Terminal::UsageLimited { resume_after, .. } => Some(*resume_after),
            _ => None,
        }
    }

    /// The ending in words, for progress lines and summaries (`budget exhausted`).
    pub fn label(&self) -> &'static str {
        match self {
            Terminal::Succeeded { .. } => "succeeded",
            Terminal::Failed { .. } => "failed",
            Terminal::BudgetExhausted { .. } => "budget exhausted",
            Terminal::Interrupted => "interrupted",
            Terminal::Blocked { .. } => "blocked",
            Terminal::UsageLimited { .. } => "usage limited",
        }
    }
}

impl std::fmt::Display for Terminal {
    /// The ending as the end of a sentence starting with "run ID ": `failed: why`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Terminal::Succeeded {
                deliverable_path, ..
            } => write!(f, "succeeded: {deliverable_path}"),
            Terminal::Failed { reason } => write!(f, "failed: {reason}"),
            Terminal::BudgetExhausted { reason } => write!(f, "exhausted its budget: {reason}"),
            Terminal::Interrupted => f.write_str("was interrupted"),
            Terminal::Blocked { reason } => write!(f, "is blocked: {reason}"),
            Terminal::UsageLimited {
                reason,
                resume_after,
            } => {
                let at = resume_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                write!(
                    f,
                    "hit a usage limit (it may continue after {at}): {reason}"
                )
            }
        }
    }
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
        roles: Vec<Role>,
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
        roles: Vec<Role>,
    },
    /// A Verifier gave its verdict.
    VerdictRecorded {
        /// The Verifier.
        role: Role,
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
        role: Role,
        /// What went wrong.
        error: String,
    },
    /// A Verifier session was replaced by a fresh one.
    VerifierReplaced {
        /// The Verifier.
        role: Role,
    },
    /// A verification round ended.
    VerificationSummary {
        /// Round number.
        round: u32,
        /// The aggregate decision under the run's policy.
        overall: VerifierDecision,
        /// Verifiers that passed.
        passed: Vec<Role>,
        /// Verifiers that failed.
        failed: Vec<Role>,
    },
    /// A budget is nearly spent; the Solver was told to finalize.
    BudgetWarning {
        /// Which budget.
        reason: String,
    },
    /// A role started a tool call.
    ToolCallStarted {
        /// The role.
        role: Role,
        /// The call id.
        call_id: String,
        /// The tool.
        tool: String,
    },
    /// A tool call finished.
    ToolCallFinished {
        /// The role.
        role: Role,
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
        role: Role,
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
        role: Role,
        /// The cap, in tokens.
        max_output_tokens: u32,
    },
    /// The model client is retrying a request.
    ModelRetry {
        /// The role.
        role: Role,
        /// Attempt number.
        attempt: u32,
        /// Why.
        reason: String,
    },
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
    /// The run stopped, and how; the ending's own `kind` tags the line.
    #[serde(untagged)]
    Ended(Terminal),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How each ending is journaled: these lines are what runs written before `Note::Ended`
    /// hold, so they must read back as the same ending and be written byte for byte the same.
    const ENDINGS: [&str; 6] = [
        r#"{"kind":"run_succeeded","deliverable_path":"deliverable/x.md","summary":null}"#,
        r#"{"kind":"run_failed","reason":"why"}"#,
        r#"{"kind":"budget_exhausted","reason":"turns"}"#,
        r#"{"kind":"run_interrupted"}"#,
        r#"{"kind":"run_blocked","reason":"loop"}"#,
        r#"{"kind":"run_usage_limited","reason":"429","resume_after":"2026-01-02T03:04:05Z"}"#,
    ];

    #[test]
    fn every_ending_is_journaled_as_before_and_reads_back_as_an_ending() {
        for line in ENDINGS {
            let event: RunEvent = serde_json::from_str(line).unwrap();
            let RunEvent::Note(Note::Ended(ending)) = &event else {
                panic!("{line} read as {event:?}");
            };
            assert_eq!(serde_json::to_string(&event).unwrap(), line);
            assert_eq!(
                serde_json::to_string(&Note::Ended(ending.clone())).unwrap(),
                line
            );
        }
    }

    #[test]
    fn notes_and_inputs_still_read_as_themselves_beside_the_untagged_ending() {
        let started: RunEvent = serde_json::from_str(r#"{"kind":"started"}"#).unwrap();
        assert_eq!(started, RunEvent::Input(Input::Started));
        let sealed: RunEvent = serde_json::from_str(r#"{"kind":"record_sealed"}"#).unwrap();
        assert_eq!(sealed, RunEvent::Note(Note::RecordSealed));
        let unknown = serde_json::from_str::<RunEvent>(r#"{"kind":"run_vanished"}"#);
        assert!(unknown.is_err(), "{unknown:?}");
    }
}
