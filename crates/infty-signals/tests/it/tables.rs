//! Many small replies per parser, each with its outcome, in one snapshot per parser.

use infty_signals::{parse_directive, parse_solver_signal, parse_verdict};

use crate::render;

/// One line per case: name, the reply (escaped), and the outcome.
fn table<T: std::fmt::Debug>(
    cases: &[(&str, &str)],
    parse: fn(&str) -> Result<T, infty_signals::SignalError>,
) -> String {
    cases
        .iter()
        .map(|(name, reply)| {
            format!(
                "{name}\n  in:  {reply:?}\n  out: {}\n",
                render(&parse(reply))
            )
        })
        .collect()
}

#[test]
fn solver_signals() {
    let cases: &[(&str, &str)] = &[
        (
            "bare direction",
            r#"{"type":"direction_request","prompt":"CSV or JSON?"}"#,
        ),
        (
            "bare delivery",
            r#"{"type":"final_delivery","deliverable_path":"deliverable/a.md","summary":"Done."}"#,
        ),
        (
            "delivery without summary",
            r#"{"type":"final_delivery","deliverable_path":"a.md"}"#,
        ),
        (
            "blank summary is none",
            r#"{"type":"final_delivery","deliverable_path":"a.md","summary":" \n "}"#,
        ),
        (
            "strict-mode nulls on direction",
            r#"{"type":"direction_request","prompt":"p","deliverable_path":null,"summary":null}"#,
        ),
        (
            "strict-mode null prompt on delivery",
            r#"{"type":"final_delivery","prompt":null,"deliverable_path":"a.md","summary":null}"#,
        ),
        (
            "extra keys ignored",
            r#"{"type":"final_delivery","deliverable_path":"a.md","claim_path":"c.md","notes":{"n":[1,2]}}"#,
        ),
        (
            "fence json",
            "Here:\n```json\n{\"type\":\"direction_request\",\"prompt\":\"p\"}\n```\n",
        ),
        (
            "fence JSON",
            "```JSON\n{\"type\":\"direction_request\",\"prompt\":\"p\"}\n```",
        ),
        (
            "bare fence",
            "```\n{\"type\":\"direction_request\",\"prompt\":\"p\"}\n```",
        ),
        (
            "fence with CRLF",
            "Sure.\r\n```json\r\n{\r\n  \"type\": \"direction_request\",\r\n  \"prompt\": \"p\"\r\n}\r\n```\r\n",
        ),
        (
            "unclosed fence",
            "```json\n{\"type\":\"direction_request\",\"prompt\":\"p\"}",
        ),
        (
            "object in prose",
            r#"I will now ask: {"type":"direction_request","prompt":"p"} and wait."#,
        ),
        (
            "last valid wins",
            r#"{"type":"direction_request","prompt":"first"} {"type":"direction_request","prompt":"second"}"#,
        ),
        (
            "last valid wins over a later invalid",
            r#"{"type":"direction_request","prompt":"good"} then {"type":"direction_request","prompt":""}"#,
        ),
        (
            "braces and escaped quotes in strings",
            r#"{"type":"direction_request","prompt":"use {\"a\": \"}\"} here"}"#,
        ),
        (
            "unicode",
            r#"{"type":"final_delivery","deliverable_path":"deliverable/résumé-日本.md","summary":"✓ fertig 🎉"}"#,
        ),
        (
            "unicode escapes",
            r#"{"type":"direction_request","prompt":"caf\u00e9 \ud83c\udf89"}"#,
        ),
        (
            "pretty printed",
            "{\n  \"type\": \"direction_request\",\n  \"prompt\": \"p\"\n}",
        ),
        (
            "inside an array",
            r#"[{"type":"direction_request","prompt":"p"}]"#,
        ),
        (
            "duplicate keys: the later wins",
            r#"{"type":"direction_request","prompt":"a","prompt":"b"}"#,
        ),
        (
            "nested signal is part of its object",
            r#"{"type":"final_delivery","deliverable_path":" ","previous":{"type":"direction_request","prompt":"p"}}"#,
        ),
        (
            "signal inside broken json",
            r#"{"wrapper": {"type":"direction_request","prompt":"p"} oops"#,
        ),
        ("empty", ""),
        ("whitespace", " \n\t "),
        ("prose only", "I am still working on it."),
        (
            "prose with braces",
            "I wrote fn main() { println!(\"hi\"); } today.",
        ),
        (
            "blank prompt",
            r#"{"type":"direction_request","prompt":"   "}"#,
        ),
        ("missing prompt", r#"{"type":"direction_request"}"#),
        (
            "null prompt",
            r#"{"type":"direction_request","prompt":null}"#,
        ),
        (
            "number prompt",
            r#"{"type":"direction_request","prompt":42}"#,
        ),
        (
            "blank path",
            r#"{"type":"final_delivery","deliverable_path":""}"#,
        ),
        ("missing path", r#"{"type":"final_delivery","summary":"s"}"#),
        (
            "summary not a string",
            r#"{"type":"final_delivery","deliverable_path":"a.md","summary":["s"]}"#,
        ),
        (
            "unknown type",
            r#"{"type":"verification_request","deliverable_path":"a.md"}"#,
        ),
        ("type not a string", r#"{"type":7,"prompt":"p"}"#),
        ("no type", r#"{"prompt":"p"}"#),
        ("null type", r#"{"type":null,"prompt":"p"}"#),
        (
            "truncated object",
            r#"Here: {"type":"direction_request","prompt":"p""#,
        ),
        (
            "bad json after prose",
            "ok\nthen {\"type\": \"direction_request\" \"prompt\": \"p\"}",
        ),
        (
            "keyed error beats json error",
            r#"{"type":"direction_request"} {"type": oops}"#,
        ),
        (
            "last keyed error wins",
            r#"{"type":"bogus"} {"type":"direction_request"}"#,
        ),
        (
            "huge unknown type is shortened",
            &format!(r#"{{"type":"{}"}}"#, "x".repeat(200)),
        ),
    ];
    insta::assert_snapshot!(table(cases, parse_solver_signal));
}

#[test]
fn directives() {
    let cases: &[(&str, &str)] = &[
        (
            "bare",
            r#"{"directive":"Write tests first.","rationale":"They pin the contract."}"#,
        ),
        ("null rationale", r#"{"directive":"Go.","rationale":null}"#),
        ("missing rationale", r#"{"directive":"Go."}"#),
        ("blank rationale", r#"{"directive":"Go.","rationale":""}"#),
        (
            "fenced with prose",
            "My advice:\n```json\n{\"directive\":\"Go.\"}\n```",
        ),
        (
            "extra keys",
            r#"{"directive":"Go.","confidence":0.9,"type":"directive"}"#,
        ),
        (
            "last wins",
            r#"{"directive":"First."} {"directive":"Second."}"#,
        ),
        ("blank directive", r#"{"directive":" "}"#),
        ("directive not a string", r#"{"directive":["a","b"]}"#),
        (
            "rationale not a string",
            r#"{"directive":"Go.","rationale":3}"#,
        ),
        ("no directive key", r#"{"answer":"Go."}"#),
        ("null directive", r#"{"directive":null}"#),
        ("prose only", "Just keep going."),
        ("empty", ""),
        ("truncated", r#"{"directive":"Go"#),
    ];
    insta::assert_snapshot!(table(cases, parse_directive));
}

#[test]
fn verdicts() {
    let cases: &[(&str, &str)] = &[
        (
            "pass",
            r#"{"verdict":"pass","reasons":["ok"],"suggestions":[]}"#,
        ),
        (
            "fail",
            r#"{"verdict":"fail","reasons":["no tests"],"suggestions":["add tests"]}"#,
        ),
        ("lists default to empty", r#"{"verdict":"pass"}"#),
        (
            "null lists",
            r#"{"verdict":"fail","reasons":null,"suggestions":null}"#,
        ),
        ("capitalised verdict", r#"{"verdict":"PASS"}"#),
        ("padded verdict", r#"{"verdict":" Fail "}"#),
        (
            "lone string reason",
            r#"{"verdict":"fail","reasons":"missing table"}"#,
        ),
        ("fenced", "```json\n{\"verdict\":\"pass\"}\n```"),
        (
            "last wins",
            r#"{"verdict":"fail"} on reflection {"verdict":"pass"}"#,
        ),
        ("unknown verdict", r#"{"verdict":"maybe"}"#),
        ("verdict not a string", r#"{"verdict":true}"#),
        (
            "reason not a string",
            r#"{"verdict":"fail","reasons":["a",{"b":1}]}"#,
        ),
        (
            "reasons an object",
            r#"{"verdict":"fail","reasons":{"a":"b"}}"#,
        ),
        ("no verdict key", r#"{"result":"pass"}"#),
        ("prose only", "Looks good to me."),
        ("empty", "   "),
    ];
    insta::assert_snapshot!(table(cases, parse_verdict));
}

/// Realistic replies kept as files; one snapshot lists every fixture with its outcome.
#[test]
fn fixture_replies() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert!(!names.is_empty());
    let report: String = names
        .iter()
        .map(|name| {
            let reply = std::fs::read_to_string(dir.join(name)).unwrap();
            let outcome = if name.starts_with("directive") {
                render(&parse_directive(&reply))
            } else if name.starts_with("verdict") {
                render(&parse_verdict(&reply))
            } else {
                render(&parse_solver_signal(&reply))
            };
            format!("{name}\n  {outcome}\n")
        })
        .collect();
    insta::assert_snapshot!(report);
}
