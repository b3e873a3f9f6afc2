//! What the orchestrator sends to the roles: [`DirectorRequest`], [`VerificationRequest`]
//! and [`VerificationFeedback`] (with one [`VerifierReport`] per Verifier).
//!
//! They live here so that the orchestrator and anything reading its traffic share one
//! definition. This module must never parse model replies leniently: these are the
//! orchestrator's own payloads, written and read with plain serde.

use serde::{Deserialize, Serialize};

use crate::reply::{VerifierDecision, VerifierVerdict};

/// Pretty JSON for a payload. These types hold only strings, lists and enums, so
/// serialization cannot fail; the fallback exists only to keep the API infallible.
fn pretty<T: Serialize>(payload: &T) -> String {
    serde_json::to_string_pretty(payload).unwrap_or_else(|_| String::from("{}"))
}

/// A Solver's direction request as forwarded to the Director.
///
/// ```
/// use infty_signals::DirectorRequest;
///
/// let request = DirectorRequest { prompt: "CSV or JSON?".into(), objective: None };
/// let json = serde_json::to_string(&request).unwrap();
/// assert_eq!(json, r#"{"type":"direction_request","prompt":"CSV or JSON?","objective":null}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename = "direction_request",
    from = "wire::DirectorRequest"
)]
pub struct DirectorRequest {
    /// The Solver's question or report.
    pub prompt: String,
    /// The run's objective, when the Director should see it again.
    #[serde(default)]
    pub objective: Option<String>,
}

impl DirectorRequest {
    /// Pretty-printed JSON, ready to send.
    #[must_use]
    pub fn to_json(&self) -> String {
        pretty(self)
    }
}

/// A Solver's final delivery as sent to each Verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename = "verification_request",
    from = "wire::VerificationRequest"
)]
pub struct VerificationRequest {
    /// The deliverable's path, as the Solver gave it.
    pub deliverable_path: String,
    /// The Solver's summary, if any.
    #[serde(default)]
    pub summary: Option<String>,
    /// The run's objective.
    #[serde(default)]
    pub objective: Option<String>,
}

impl VerificationRequest {
    /// Pretty-printed JSON, ready to send.
    #[must_use]
    pub fn to_json(&self) -> String {
        pretty(self)
    }
}

/// All Verifiers' verdicts, aggregated and sent back to the Solver.
///
/// ```
/// use infty_signals::{VerificationFeedback, VerifierDecision, VerifierReport};
///
/// let feedback = VerificationFeedback::from_reports(vec![
///     VerifierReport { role: "verifier-1".into(), verdict: VerifierDecision::Pass, reasons: vec![], suggestions: vec![] },
///     VerifierReport { role: "verifier-2".into(), verdict: VerifierDecision::Fail, reasons: vec!["no tests".into()], suggestions: vec![] },
/// ]);
/// assert_eq!(feedback.overall, VerifierDecision::Fail);
/// assert!(feedback.to_json().contains(r#""type": "verification_feedback""#));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename = "verification_feedback",
    from = "wire::VerificationFeedback"
)]
pub struct VerificationFeedback {
    /// Pass only if every Verifier passed (and pass when there are none).
    pub overall: VerifierDecision,
    /// One report per Verifier, in the order given.
    pub verdicts: Vec<VerifierReport>,
}

impl VerificationFeedback {
    /// Aggregates reports: `overall` is pass iff every report passes; no reports is a pass.
    #[must_use]
    pub fn from_reports(verdicts: Vec<VerifierReport>) -> Self {
        let overall = if verdicts.iter().all(|report| report.verdict.is_pass()) {
            VerifierDecision::Pass
        } else {
            VerifierDecision::Fail
        };
        Self { overall, verdicts }
    }

    /// Pretty-printed JSON, ready to send.
    #[must_use]
    pub fn to_json(&self) -> String {
        pretty(self)
    }
}

/// One Verifier's verdict, named by its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifierReport {
    /// The Verifier's role name (e.g. `verifier-1`).
    pub role: String,
    /// Its decision.
    pub verdict: VerifierDecision,
    /// Its reasons.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Its suggestions.
    #[serde(default)]
    pub suggestions: Vec<String>,
}

impl VerifierReport {
    /// Names a parsed verdict with the role that gave it.
    ///
    /// ```
    /// use infty_signals::{parse_verdict, VerifierReport};
    ///
    /// let verdict = parse_verdict(r#"{"verdict":"pass"}"#).unwrap();
    /// let report = VerifierReport::from_verdict("verifier-1", verdict);
    /// assert!(report.verdict.is_pass());
    /// ```
    #[must_use]
    pub fn from_verdict(role: impl Into<String>, verdict: VerifierVerdict) -> Self {
        Self {
            role: role.into(),
            verdict: verdict.verdict,
            reasons: verdict.reasons,
            suggestions: verdict.suggestions,
        }
    }

    /// Pretty-printed JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        pretty(self)
    }
}

/// The payloads as read from JSON. serde ignores a struct's `tag` when deserializing, so
/// these mirrors require `type` to hold the right word: a `verification_request` must
/// never be read as a `direction_request`.
mod wire {
    use serde::Deserialize;

    use crate::reply::VerifierDecision;

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum DirectionRequestTag {
        DirectionRequest,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum VerificationRequestTag {
        VerificationRequest,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum VerificationFeedbackTag {
        VerificationFeedback,
    }

    #[derive(Deserialize)]
    pub(super) struct DirectorRequest {
        #[serde(rename = "type")]
        _tag: DirectionRequestTag,
        prompt: String,
        #[serde(default)]
        objective: Option<String>,
    }

    impl From<DirectorRequest> for super::DirectorRequest {
        fn from(wire: DirectorRequest) -> Self {
            Self {
                prompt: wire.prompt,
                objective: wire.objective,
            }
        }
    }

    #[derive(Deserialize)]
    pub(super) struct VerificationRequest {
        #[serde(rename = "type")]
        _tag: VerificationRequestTag,
        deliverable_path: String,
        #[serde(default)]
        summary: Option<String>,
        #[serde(default)]
        objective: Option<String>,
    }

    impl From<VerificationRequest> for super::VerificationRequest {
        fn from(wire: VerificationRequest) -> Self {
            Self {
                deliverable_path: wire.deliverable_path,
                summary: wire.summary,
                objective: wire.objective,
            }
        }
    }

    #[derive(Deserialize)]
    pub(super) struct VerificationFeedback {
        #[serde(rename = "type")]
        _tag: VerificationFeedbackTag,
        overall: VerifierDecision,
        verdicts: Vec<super::VerifierReport>,
    }

    impl From<VerificationFeedback> for super::VerificationFeedback {
        fn from(wire: VerificationFeedback) -> Self {
            Self {
                overall: wire.overall,
                verdicts: wire.verdicts,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(verdict: VerifierDecision) -> VerifierReport {
        VerifierReport {
            role: "v".into(),
            verdict,
            reasons: vec![],
            suggestions: vec![],
        }
    }

    #[test]
    fn overall_passes_only_when_every_report_passes() {
        use VerifierDecision::{Fail, Pass};
        let cases: &[(&[VerifierDecision], VerifierDecision)] = &[
            (&[], Pass),
            (&[Pass], Pass),
            (&[Pass, Pass], Pass),
            (&[Fail], Fail),
            (&[Pass, Fail], Fail),
            (&[Fail, Pass], Fail),
        ];
        for (decisions, overall) in cases {
            let reports = decisions.iter().copied().map(report).collect();
            assert_eq!(
                VerificationFeedback::from_reports(reports).overall,
                *overall
            );
        }
    }

    #[test]
    fn tagged_payloads_refuse_the_wrong_tag() {
        let wrong = r#"{"type":"verification_request","prompt":"p","objective":null}"#;
        assert!(serde_json::from_str::<DirectorRequest>(wrong).is_err());
        assert!(serde_json::from_str::<DirectorRequest>(r#"{"prompt":"p"}"#).is_err());
        let right = r#"{"type":"direction_request","prompt":"p"}"#;
        let request: DirectorRequest = serde_json::from_str(right).unwrap();
        assert_eq!(request.objective, None);
    }
}
