//! The orchestrator's payloads: exact JSON (snapshots) and round trips.

use infty_signals::{
    DirectorRequest, VerificationFeedback, VerificationRequest, VerifierDecision, VerifierReport,
    parse_verdict,
};

fn feedback() -> VerificationFeedback {
    VerificationFeedback::from_reports(vec![
        VerifierReport::from_verdict(
            "verifier-1",
            parse_verdict(r#"{"verdict":"pass","reasons":["complete"]}"#).unwrap(),
        ),
        VerifierReport {
            role: "verifier-2".into(),
            verdict: VerifierDecision::Fail,
            reasons: vec!["no summary table".into()],
            suggestions: vec!["add it from notes/summary.csv".into()],
        },
    ])
}

#[test]
fn payload_json_is_exact() {
    let director = DirectorRequest {
        prompt: "CSV or JSON?".into(),
        objective: Some("Summarise the sales data.".into()),
    };
    let verification = VerificationRequest {
        deliverable_path: "deliverable/report.md".into(),
        summary: None,
        objective: Some("Summarise the sales data.".into()),
    };
    insta::assert_snapshot!("director_request", director.to_json());
    insta::assert_snapshot!("verification_request", verification.to_json());
    insta::assert_snapshot!("verification_feedback", feedback().to_json());
}

#[test]
fn payloads_round_trip() {
    let director = DirectorRequest {
        prompt: "p".into(),
        objective: None,
    };
    assert_eq!(
        serde_json::from_str::<DirectorRequest>(&director.to_json()).unwrap(),
        director
    );
    let verification = VerificationRequest {
        deliverable_path: "a.md".into(),
        summary: Some("s".into()),
        objective: None,
    };
    assert_eq!(
        serde_json::from_str::<VerificationRequest>(&verification.to_json()).unwrap(),
        verification
    );
    let feedback = feedback();
    assert_eq!(feedback.overall, VerifierDecision::Fail);
    assert_eq!(
        serde_json::from_str::<VerificationFeedback>(&feedback.to_json()).unwrap(),
        feedback
    );
}

#[test]
fn payloads_refuse_each_others_type() {
    let verification = VerificationRequest {
        deliverable_path: "a.md".into(),
        summary: None,
        objective: None,
    };
    assert!(serde_json::from_str::<DirectorRequest>(&verification.to_json()).is_err());
    assert!(serde_json::from_str::<VerificationFeedback>(&verification.to_json()).is_err());
}
