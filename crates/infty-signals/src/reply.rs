//! The replies the roles send to the orchestrator: [`SolverSignal`], [`DirectiveResponse`]
//! and [`VerifierVerdict`], and how each is read from a candidate's [`Fields`].
//!
//! The rules here are the contract of DESIGN §3.1 (blank `prompt` refused, blank `summary`
//! is none, unknown `type` named, extra keys ignored). This module must never look at raw
//! text; finding the object is `extract`'s job.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{SignalError, quote};
use crate::fields::{Fields, optional_text, required_text, text_list, word};

/// What the Solver says to the orchestrator at the end of a turn.
///
/// Serialized internally tagged on `type`:
///
/// ```
/// use infty_signals::{DirectionRequest, SolverSignal};
///
/// let signal = SolverSignal::DirectionRequest(DirectionRequest { prompt: "Which format?".into() });
/// let json = serde_json::to_string(&signal).unwrap();
/// assert_eq!(json, r#"{"type":"direction_request","prompt":"Which format?"}"#);
/// assert_eq!(serde_json::from_str::<SolverSignal>(&json).unwrap(), signal);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SolverSignal {
    /// The Solver asks the Director for guidance.
    DirectionRequest(DirectionRequest),
    /// The Solver hands in its deliverable for verification.
    FinalDelivery(FinalDelivery),
}

/// The Solver's question or progress report for the Director.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectionRequest {
    /// The question or report; never blank when parsed.
    pub prompt: String,
}

/// The Solver's claim that the objective is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalDelivery {
    /// Path of the deliverable, relative to the run folder as the model wrote it; never
    /// blank when parsed. Checking that it stays inside the run folder is the store's job.
    pub deliverable_path: String,
    /// A short description of the deliverable; `None` when absent, `null` or blank.
    #[serde(default)]
    pub summary: Option<String>,
}

/// The Director's answer to a direction request.
///
/// ```
/// use infty_signals::parse_directive;
///
/// let reply = parse_directive(r#"{"directive":"Ship the CSV first.","rationale":null}"#).unwrap();
/// assert_eq!(reply.directive, "Ship the CSV first.");
/// assert_eq!(reply.rationale, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectiveResponse {
    /// What the Solver should do next; never blank when parsed.
    pub directive: String,
    /// Why; `None` when absent, `null` or blank.
    #[serde(default)]
    pub rationale: Option<String>,
}

/// One Verifier's judgement of a deliverable.
///
/// ```
/// use infty_signals::{parse_verdict, VerifierDecision};
///
/// let verdict = parse_verdict(r#"{"verdict":"fail","reasons":["no tests"]}"#).unwrap();
/// assert_eq!(verdict.verdict, VerifierDecision::Fail);
/// assert_eq!(verdict.reasons, ["no tests"]);
/// assert!(verdict.suggestions.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierVerdict {
    /// Pass or fail.
    pub verdict: VerifierDecision,
    /// Why; empty when absent or `null`.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// What to change; empty when absent or `null`.
    #[serde(default)]
    pub suggestions: Vec<String>,
}

/// A Verifier's decision, `"pass"` or `"fail"` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerifierDecision {
    /// The deliverable meets the objective.
    Pass,
    /// The deliverable does not meet the objective.
    Fail,
}

impl VerifierDecision {
    /// Whether this is [`VerifierDecision::Pass`].
    ///
    /// ```
    /// assert!(infty_signals::VerifierDecision::Pass.is_pass());
    /// ```
    #[must_use]
    pub fn is_pass(self) -> bool {
        self == Self::Pass
    }

    /// The JSON spelling, `"pass"` or `"fail"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
        }
    }
}

impl fmt::Display for VerifierDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one kind of reply looks like, for choosing among candidates and for errors.
pub(crate) struct ReplyKind<T> {
    /// The key whose presence makes an object look like this reply.
    pub(crate) key: &'static str,
    /// Template of the reply, quoted in errors.
    pub(crate) expected: &'static str,
    /// Whether a candidate carries the key.
    pub(crate) has_key: fn(&Fields) -> bool,
    /// Reads the reply from a candidate that carries the key.
    pub(crate) read: fn(Fields) -> Result<T, SignalError>,
}

pub(crate) const SOLVER: ReplyKind<SolverSignal> = ReplyKind {
    key: "type",
    expected: r#"{"type":"direction_request","prompt":"..."} or {"type":"final_delivery","deliverable_path":"...","summary":"..."}"#,
    has_key: |fields| fields.kind.is_some(),
    read: read_solver_signal,
};

pub(crate) const DIRECTIVE: ReplyKind<DirectiveResponse> = ReplyKind {
    key: "directive",
    expected: r#"{"directive":"...","rationale":"..."}"#,
    has_key: |fields| fields.directive.is_some(),
    read: read_directive,
};

pub(crate) const VERDICT: ReplyKind<VerifierVerdict> = ReplyKind {
    key: "verdict",
    expected: r#"{"verdict":"pass" or "fail","reasons":["..."],"suggestions":["..."]}"#,
    has_key: |fields| fields.verdict.is_some(),
    read: read_verdict,
};

fn read_solver_signal(fields: Fields) -> Result<SolverSignal, SignalError> {
    let kind = match fields.kind {
        Some(kind) => word(kind, "the signal", "type")?,
        None => {
            return Err(SignalError::Unrecognized {
                key: SOLVER.key,
                expected: SOLVER.expected,
            });
        }
    };
    match kind.as_str() {
        "direction_request" => Ok(SolverSignal::DirectionRequest(DirectionRequest {
            prompt: required_text(fields.prompt, "direction_request", "prompt")?,
        })),
        "final_delivery" => Ok(SolverSignal::FinalDelivery(FinalDelivery {
            deliverable_path: required_text(
                fields.deliverable_path,
                "final_delivery",
                "deliverable_path",
            )?,
            summary: optional_text(fields.summary, "final_delivery", "summary")?,
        })),
        _ => Err(SignalError::UnknownType {
            found: quote(&kind),
        }),
    }
}

fn read_directive(fields: Fields) -> Result<DirectiveResponse, SignalError> {
    Ok(DirectiveResponse {
        directive: required_text(fields.directive, "the directive", "directive")?,
        rationale: optional_text(fields.rationale, "the directive", "rationale")?,
    })
}

fn read_verdict(fields: Fields) -> Result<VerifierVerdict, SignalError> {
    let said = match fields.verdict {
        Some(verdict) => word(verdict, "the verdict", "verdict")?,
        None => {
            return Err(SignalError::MissingField {
                object: "the verdict",
                field: "verdict",
            });
        }
    };
    // Models write "Pass" or " FAIL " often enough; the meaning is not in doubt.
    let verdict = match said.trim().to_ascii_lowercase().as_str() {
        "pass" => VerifierDecision::Pass,
        "fail" => VerifierDecision::Fail,
        _ => {
            return Err(SignalError::UnknownVerdict {
                found: quote(&said),
            });
        }
    };
    Ok(VerifierVerdict {
        verdict,
        reasons: text_list(fields.reasons, "the verdict", "reasons")?,
        suggestions: text_list(fields.suggestions, "the verdict", "suggestions")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_spell_as_in_json() {
        for decision in [VerifierDecision::Pass, VerifierDecision::Fail] {
            let json = serde_json::to_string(&decision).unwrap();
            assert_eq!(json, format!("\"{decision}\""));
            assert_eq!(decision.is_pass(), decision == VerifierDecision::Pass);
        }
    }

    #[test]
    fn final_delivery_serializes_a_null_summary_and_reads_a_missing_one() {
        let signal = SolverSignal::FinalDelivery(FinalDelivery {
            deliverable_path: "a.md".into(),
            summary: None,
        });
        let json = serde_json::to_string(&signal).unwrap();
        assert_eq!(
            json,
            r#"{"type":"final_delivery","deliverable_path":"a.md","summary":null}"#
        );
        let back: SolverSignal =
            serde_json::from_str(r#"{"type":"final_delivery","deliverable_path":"a.md"}"#).unwrap();
        assert_eq!(back, signal);
    }
}
