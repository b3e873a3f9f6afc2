//! JSON Schemas of the three replies, for structured outputs in strict mode.
//!
//! Strict mode wants `additionalProperties: false` and every property listed in
//! `required`; optional properties are therefore nullable (`["string","null"]`), and the
//! parser reads `null` as absent. So a `direction_request` written under
//! [`solver_signal`] carries `"deliverable_path": null, "summary": null`, and parses.
//! The `*_EXAMPLES` are replies written to these schemas; the tests check that each one
//! satisfies its schema and parses. This module must never hold anything a strict-mode
//! endpoint would refuse (no `minLength`, `pattern`, `oneOf`, `examples`).
//!
//! ```
//! use infty_signals::schema;
//!
//! let schema = schema::solver_signal();
//! assert_eq!(schema["additionalProperties"], false);
//! assert_eq!(schema::SOLVER_SIGNAL_NAME, "solver_signal");
//! for example in schema::SOLVER_SIGNAL_EXAMPLES {
//!     infty_signals::parse_solver_signal(example).unwrap();
//! }
//! ```

use serde_json::{Value, json};

/// The name to send with [`solver_signal`] (e.g. as `text.format.name`).
pub const SOLVER_SIGNAL_NAME: &str = "solver_signal";
/// The name to send with [`directive`].
pub const DIRECTIVE_NAME: &str = "director_directive";
/// The name to send with [`verdict`].
pub const VERDICT_NAME: &str = "verifier_verdict";

/// Solver replies written to [`solver_signal`], one of each type.
pub const SOLVER_SIGNAL_EXAMPLES: &[&str] = &[
    r#"{"type":"direction_request","prompt":"The data has two date formats; normalise to ISO 8601?","deliverable_path":null,"summary":null}"#,
    r#"{"type":"final_delivery","prompt":null,"deliverable_path":"deliverable/report.md","summary":"Report with three charts."}"#,
    r#"{"type":"final_delivery","prompt":null,"deliverable_path":"deliverable/report.md","summary":null}"#,
];

/// Director replies written to [`directive`].
pub const DIRECTIVE_EXAMPLES: &[&str] = &[
    r#"{"directive":"Normalise every date to ISO 8601 and note the change.","rationale":"Downstream tools expect one format."}"#,
    r#"{"directive":"Write the tests first.","rationale":null}"#,
];

/// Verifier replies written to [`verdict`].
pub const VERDICT_EXAMPLES: &[&str] = &[
    r#"{"verdict":"pass","reasons":["All three charts are present and labelled."],"suggestions":[]}"#,
    r#"{"verdict":"fail","reasons":["The summary table is missing."],"suggestions":["Add the table from notes/summary.csv."]}"#,
];

fn text(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn nullable_text(description: &str) -> Value {
    json!({ "type": ["string", "null"], "description": description })
}

fn text_list(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

/// The strict-mode JSON Schema of a Solver reply.
#[must_use]
pub fn solver_signal() -> Value {
    json!({
        "type": "object",
        "description": "Ask the Director for guidance (direction_request) or hand in the deliverable (final_delivery).",
        "properties": {
            "type": {
                "type": "string",
                "enum": ["direction_request", "final_delivery"],
                "description": "Which signal this is.",
            },
            "prompt": nullable_text("direction_request: the question or progress report for the Director. null for final_delivery."),
            "deliverable_path": nullable_text("final_delivery: path of the deliverable relative to the run folder. null for direction_request."),
            "summary": nullable_text("final_delivery: a short description of the deliverable, or null."),
        },
        "required": ["type", "prompt", "deliverable_path", "summary"],
        "additionalProperties": false,
    })
}

/// The strict-mode JSON Schema of a Director reply.
#[must_use]
pub fn directive() -> Value {
    json!({
        "type": "object",
        "description": "The Director's answer to a direction request.",
        "properties": {
            "directive": text("What the Solver should do next."),
            "rationale": nullable_text("Why, in a sentence or two, or null."),
        },
        "required": ["directive", "rationale"],
        "additionalProperties": false,
    })
}

/// The strict-mode JSON Schema of a Verifier reply.
#[must_use]
pub fn verdict() -> Value {
    json!({
        "type": "object",
        "description": "A Verifier's judgement of the deliverable.",
        "properties": {
            "verdict": {
                "type": "string",
                "enum": ["pass", "fail"],
                "description": "pass if the deliverable meets the objective, else fail.",
            },
            "reasons": text_list("Why, one point per item."),
            "suggestions": text_list("What to change, one point per item; empty when passing."),
        },
        "required": ["verdict", "reasons", "suggestions"],
        "additionalProperties": false,
    })
}
