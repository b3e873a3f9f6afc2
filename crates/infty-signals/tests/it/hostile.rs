//! Hostile replies (the benchmark's cases, ~300 KB each) come back with the right answer.
//! Their speed is measured in `benches/extract.rs`; here only the answers are asserted.

use infty_signals::{DirectionRequest, SignalError, SolverSignal, parse_solver_signal};

const LEN: usize = 300 * 1024;
const VALID: &str = r#"{"type":"direction_request","prompt":"still here?"}"#;

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
}

fn still_here() -> SolverSignal {
    SolverSignal::DirectionRequest(DirectionRequest {
        prompt: "still here?".into(),
    })
}

/// Hostile text that holds no valid signal, and the kind of error it must produce.
#[test]
fn hostile_replies_without_a_signal_get_the_right_error() {
    let deep = LEN / 12;
    let cases: Vec<(&str, String, &str)> = vec![
        ("open braces", repeat_to("{", LEN), "no JSON object found"),
        ("open quoted braces", repeat_to("{\"", LEN), "invalid JSON"),
        ("open keys", repeat_to("{\"a\":", LEN), "invalid JSON"),
        (
            "open arrays of objects",
            repeat_to("{\"a\":[", LEN),
            "invalid JSON",
        ),
        (
            "unterminated strings",
            repeat_to("{\"a\":\"", LEN),
            "invalid JSON",
        ),
        (
            "one long unterminated string",
            format!("{{\"type\":\"{}", "x".repeat(LEN)),
            "invalid JSON",
        ),
        (
            "closed deep nesting",
            format!("{}1{}", "{\"a\":".repeat(deep), "} x".repeat(deep)),
            "invalid JSON",
        ),
        (
            "nested fences",
            repeat_to("```json\n", LEN),
            "no JSON object found",
        ),
        (
            "empty objects",
            repeat_to("{}", LEN),
            "the JSON object in the reply has no \"type\"",
        ),
        (
            "many wrong signals",
            repeat_to(r#"{"type":"x"} "#, LEN),
            "unknown signal type \"x\"",
        ),
    ];
    for (name, reply, expected) in cases {
        let error = parse_solver_signal(&reply).unwrap_err().to_string();
        assert!(error.starts_with(expected), "{name}: {error}");
    }
}

/// The same hostile text followed by a valid signal: the signal is still found.
#[test]
fn a_signal_after_hostile_text_is_found() {
    let prefixes = [
        repeat_to("{", LEN),
        repeat_to("{\"", LEN),
        repeat_to("{\"a\":", LEN),
        repeat_to("{\"a\":[", LEN),
        repeat_to("```json\n", LEN),
        repeat_to("{}", LEN),
        repeat_to(r#"{"type":"x"} "#, LEN),
        repeat_to("lorem ipsum dolor sit amet, ", 1024 * 1024),
        // A stray quote and brace before the signal, as prose might have.
        format!("he said \"{{ {}", repeat_to("{\"a\":", LEN)),
    ];
    for prefix in prefixes {
        let reply = format!("{prefix}\n```json\n{VALID}\n```\n");
        assert_eq!(
            parse_solver_signal(&reply),
            Ok(still_here()),
            "{}",
            &prefix[..20]
        );
    }
}

/// An unterminated string swallows what follows, exactly as a JSON parser would; a valid
/// signal inside it is still tried on its own.
#[test]
fn a_signal_inside_an_unterminated_string_is_found() {
    let reply = format!("{{\"notes\":\"{} {VALID}", "x".repeat(LEN));
    assert_eq!(parse_solver_signal(&reply), Ok(still_here()));
}

#[test]
fn deeply_nested_extra_keys_are_refused_with_a_reason() {
    let deep = format!(
        r#"{{"type":"direction_request","prompt":"p","notes":{}1{}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    match parse_solver_signal(&deep) {
        Err(SignalError::InvalidJson { message, .. }) => {
            assert_eq!(message, "nesting deeper than 16 levels");
        }
        other => panic!("unexpected {other:?}"),
    }
}
