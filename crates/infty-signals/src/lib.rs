//! The JSON contract between infty's roles: the replies the Solver, Director and Verifiers
//! send ([`SolverSignal`], [`DirectiveResponse`], [`VerifierVerdict`]), the payloads the
//! orchestrator sends them ([`DirectorRequest`], [`VerificationRequest`],
//! [`VerificationFeedback`]), tolerant extraction of replies from model text, and
//! strict-mode JSON Schemas ([`schema`]).
//!
//! This crate is an API boundary: third-party tools depend on it alone to speak infty's
//! JSON. It must never depend on another infty crate or on anything beyond `serde`,
//! `serde_json` and `thiserror`, and it must never do IO.
//!
//! # Reading a reply
//!
//! Models wrap JSON in prose and fences. The parsers accept the bare object, a fenced
//! block anywhere (```` ```json ````, ```` ```JSON ````, bare ```` ``` ````, any line
//! ends), or an object embedded in prose. When several objects are present, the last one
//! that is a valid reply wins. Objects nested inside another object are part of it, not
//! candidates of their own. Unknown and `null` keys are ignored.
//!
//! ```
//! use infty_signals::{parse_solver_signal, FinalDelivery, SolverSignal};
//!
//! let reply = "Done. Here is my delivery:\n\n```json\n{\"type\":\"final_delivery\",\
//!              \"deliverable_path\":\"deliverable/report.md\",\"summary\":\"  \"}\n```\n";
//! assert_eq!(
//!     parse_solver_signal(reply).unwrap(),
//!     SolverSignal::FinalDelivery(FinalDelivery {
//!         deliverable_path: "deliverable/report.md".into(),
//!         summary: None, // blank is none
//!     })
//! );
//! ```
//!
//! When no object fits, the error names what was wrong, in words meant to be sent back
//! to the model as they are:
//!
//! ```
//! use infty_signals::parse_solver_signal;
//!
//! let err = parse_solver_signal(r#"{"type":"verification_request"}"#).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     r#"unknown signal type "verification_request"; expected "direction_request" or "final_delivery""#
//! );
//! ```
//!
//! Extraction takes time linear in the reply: hostile text (walls of `{`, unterminated
//! strings, deep nesting) is answered quickly. Objects nested deeper than 16 levels are
//! treated as invalid JSON.

mod error;
mod extract;
mod fields;
mod payload;
mod reply;
pub mod schema;

pub use error::SignalError;
pub use payload::{DirectorRequest, VerificationFeedback, VerificationRequest, VerifierReport};
pub use reply::{
    DirectionRequest, DirectiveResponse, FinalDelivery, SolverSignal, VerifierDecision,
    VerifierVerdict,
};

use reply::ReplyKind;

/// Reads the Solver's signal from a reply.
///
/// The last object with a valid signal wins. When none is valid, the error is that of the
/// last object with a `type`; else the last invalid JSON; else the note that objects were
/// found without a `type`; else "no JSON object found".
///
/// ```
/// use infty_signals::{parse_solver_signal, DirectionRequest, SolverSignal};
///
/// let reply = r#"I tried {"type":"direction_request"} but meant {"type":"direction_request","prompt":"CSV or JSON?","notes":null}"#;
/// assert_eq!(
///     parse_solver_signal(reply).unwrap(),
///     SolverSignal::DirectionRequest(DirectionRequest { prompt: "CSV or JSON?".into() })
/// );
/// ```
///
/// # Errors
///
/// A [`SignalError`] saying what was wrong with the reply, fit to send back to the model.
pub fn parse_solver_signal(text: &str) -> Result<SolverSignal, SignalError> {
    parse(text, &reply::SOLVER)
}

/// Reads the Director's directive from a reply: `{"directive":"…","rationale":"…"|null}`.
///
/// Candidates are chosen as for [`parse_solver_signal`], keyed on `directive`.
///
/// # Errors
///
/// A [`SignalError`] saying what was wrong with the reply, fit to send back to the model.
pub fn parse_directive(text: &str) -> Result<DirectiveResponse, SignalError> {
    parse(text, &reply::DIRECTIVE)
}

/// Reads a Verifier's verdict from a reply:
/// `{"verdict":"pass"|"fail","reasons":[…],"suggestions":[…]}`.
///
/// `verdict` is read case-insensitively; `reasons` and `suggestions` default to empty, and
/// a lone string counts as a list of one. Candidates are chosen as for
/// [`parse_solver_signal`], keyed on `verdict`.
///
/// ```
/// use infty_signals::{parse_verdict, VerifierDecision};
///
/// let verdict = parse_verdict("```\n{\"verdict\":\"Pass\",\"reasons\":\"looks right\"}\n```").unwrap();
/// assert_eq!(verdict.verdict, VerifierDecision::Pass);
/// assert_eq!(verdict.reasons, ["looks right"]);
/// ```
///
/// # Errors
///
/// A [`SignalError`] saying what was wrong with the reply, fit to send back to the model.
pub fn parse_verdict(text: &str) -> Result<VerifierVerdict, SignalError> {
    parse(text, &reply::VERDICT)
}

fn parse<T>(text: &str, kind: &ReplyKind<T>) -> Result<T, SignalError> {
    if text.trim().is_empty() {
        return Err(SignalError::Empty {
            expected: kind.expected,
        });
    }
    let mut found_objects = false;
    let mut best = None;
    let mut keyed_error = None;
    let last_failure = extract::scan(text, |fields| {
        found_objects = true;
        if (kind.has_key)(&fields) {
            match (kind.read)(fields) {
                Ok(reply) => best = Some(reply),
                Err(error) => keyed_error = Some(error),
            }
        }
    });
    if let Some(reply) = best {
        return Ok(reply);
    }
    if let Some(error) = keyed_error {
        return Err(error);
    }
    if let Some(failure) = last_failure {
        let (line, column) = extract::position_in(text, &failure);
        return Err(SignalError::InvalidJson {
            line,
            column,
            message: extract::message_of(&failure.error),
            expected: kind.expected,
        });
    }
    if found_objects {
        return Err(SignalError::Unrecognized {
            key: kind.key,
            expected: kind.expected,
        });
    }
    Err(SignalError::NoJson {
        expected: kind.expected,
    })
}

/// Compiles and runs the README's examples with the doctests, so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
