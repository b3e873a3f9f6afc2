//! Throughput of reply extraction: typical replies against `serde_json::from_str` on the
//! bare object, and hostile replies that must stay linear (target: 300 KB under 50 ms).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use infty_signals::{SolverSignal, parse_solver_signal};

const HOSTILE_LEN: usize = 300 * 1024;

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
}

/// A ~4 KB direction request, bare.
fn typical_object() -> String {
    let prompt = "I finished the parser and its tests; the remaining question is whether the \
                  report should list failures first or in file order. "
        .repeat(30);
    serde_json::json!({ "type": "direction_request", "prompt": prompt }).to_string()
}

/// The same object in a fenced block with prose around it, as models write it.
fn typical_fenced_reply(object: &str) -> String {
    format!(
        "Progress so far: the parser is done and all tests pass.\n\nHere is my request:\n\n```json\n{object}\n```\n\nThanks!\n"
    )
}

/// Hostile replies, each about 300 KB, by name.
fn hostile_replies() -> Vec<(&'static str, String)> {
    let valid = r#"{"type":"direction_request","prompt":"still here?"}"#;
    vec![
        ("open_braces", repeat_to("{", HOSTILE_LEN)),
        ("open_quoted_braces", repeat_to("{\"", HOSTILE_LEN)),
        ("open_keys", repeat_to("{\"a\":", HOSTILE_LEN)),
        // A stray quote first, so the structural pass sees every other `{` inside a string
        // and can prove nothing about it: the worst case known for this design.
        (
            "open_keys_after_stray_quote",
            format!("{{\"{}", repeat_to("{\"a\":", HOSTILE_LEN)),
        ),
        ("open_arrays_of_objects", repeat_to("{\"a\":[", HOSTILE_LEN)),
        ("unterminated_strings", repeat_to("{\"a\":\"", HOSTILE_LEN)),
        (
            "long_unterminated_string",
            format!("{{\"type\":\"{}", "x".repeat(HOSTILE_LEN)),
        ),
        ("closed_deep_nesting", {
            let depth = HOSTILE_LEN / 12;
            format!("{}1{}", "{\"a\":".repeat(depth), "} x".repeat(depth))
        }),
        ("nested_fences", repeat_to("```json\n", HOSTILE_LEN)),
        ("empty_objects", repeat_to("{}", HOSTILE_LEN)),
        (
            "many_wrong_signals",
            repeat_to(r#"{"type":"x"} "#, HOSTILE_LEN),
        ),
        (
            "prose_then_object",
            format!(
                "{}{valid}",
                repeat_to("lorem ipsum dolor sit amet, ", 1024 * 1024)
            ),
        ),
    ]
}

fn typical(c: &mut Criterion) {
    let object = typical_object();
    let fenced = typical_fenced_reply(&object);
    let mut group = c.benchmark_group("typical_4kb");
    group.bench_function("serde_json_from_str_bare", |b| {
        b.iter(|| serde_json::from_str::<SolverSignal>(black_box(&object)).unwrap())
    });
    group.bench_function("parse_solver_signal_bare", |b| {
        b.iter(|| parse_solver_signal(black_box(&object)).unwrap())
    });
    group.bench_function("parse_solver_signal_fenced", |b| {
        b.iter(|| parse_solver_signal(black_box(&fenced)).unwrap())
    });
    group.finish();
}

fn hostile(c: &mut Criterion) {
    let mut group = c.benchmark_group("hostile_300kb");
    group.sample_size(10);
    for (name, reply) in hostile_replies() {
        group.bench_function(name, |b| b.iter(|| parse_solver_signal(black_box(&reply))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = typical, hostile
}
criterion_main!(benches);
