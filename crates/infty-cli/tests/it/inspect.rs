//! `list`, `show` and `logs`: what people and programs read about runs, in text and JSON,
//! and `--stream` progress of a scripted run.

use std::io::BufRead;

use camino::Utf8PathBuf;
use infty_core::events::{Note, Terminal};
use infty_signals::VerifierDecision;
use infty_store::{Role, RoleRecord, RunInit, RunStatus, RunStore};
use serde_json::{Value, json};

use crate::harness::{World, settings, stderr_text};

/// A delivery the Verifier fails, then one it passes.
fn script_fail_then_pass(world: &World) {
    world.call(
        "solver",
        "call_1",
        "write_file",
        &json!({"path": "deliverable/poem.md", "content": "roses"}),
    );
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/poem.md","summary":"a poem"}"#,
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"fail","reasons":["too short","no title"],"suggestions":["add a title"]}"#,
    );
    world.call("solver", "call_2", "shell", &json!({"command": "exit 3"}));
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/poem.md","summary":"a better poem"}"#,
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":["fine now"],"suggestions":[]}"#,
    );
}

#[test]
fn show_and_list_json_are_stable() {
    let world = World::new();
    script_fail_then_pass(&world);
    let assert = world
        .create("poem", "Write a poem.", &["--stream"])
        .success();
    let progress = stderr_text(&assert);
    let show: Value = serde_json::from_str(&world.stdout_of(&["show", "poem", "--json"])).unwrap();
    let list: Value = serde_json::from_str(&world.stdout_of(&["list", "--json"])).unwrap();
    let show_text = world.stdout_of(&["show", "poem"]);
    let logs = world.stdout_of(&["logs", "poem"]);
    settings(&world).bind(|| {
        insta::assert_snapshot!("stream_progress", progress);
        insta::assert_json_snapshot!("show_json", show, {
            ".recent_events[].event.pid" => "[PID]",
            ".options.provider.base_url" => "[SERVER]",
        });
        insta::assert_json_snapshot!("list_json", list);
        insta::assert_snapshot!("show_verdicts_text", show_text);
        insta::assert_snapshot!("logs_text", logs);
    });
}

#[test]
fn logs_json_prints_the_journal_lines_as_they_are() {
    let world = World::new();
    script_fail_then_pass(&world);
    world.create("raw", "Write a poem.", &[]).success();
    let journal = std::fs::read_to_string(world.run_dir("raw").join("events.jsonl")).unwrap();
    let printed = world.stdout_of(&["logs", "raw", "--json"]);
    assert_eq!(printed, journal);
    // Following a run that already stopped prints everything and returns.
    let followed = world.stdout_of(&["logs", "raw", "--json", "--follow"]);
    assert_eq!(followed, journal);
}

#[test]
fn logs_follow_tails_a_run_driven_by_another_process() {
    let world = World::new();
    let root = Utf8PathBuf::from_path_buf(world.runs_root()).unwrap();
    let mut store = RunStore::create(
        &root,
        Some("tailed"),
        RunInit {
            objective: "watch me".into(),
            roles: vec![RoleRecord::new(Role::Solver, "m", None)],
            ..RunInit::default()
        },
    )
    .unwrap();
    store.set_status(RunStatus::Running).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("infty"))
        .env_clear()
        .env("HOME", world.home.path())
        .env("INFTY_HOME", world.home.path())
        .args(["--runs-root", root.as_str(), "logs", "tailed", "--follow"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();

    // The driver stand-in writes an event, waits until the follower printed it, and so on:
    // each line can only have come from following, not from a read after the end.
    let (printed_tx, printed_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let mut journal = store.journal().unwrap();
        let notes = [
            Note::ObjectivePosted {
                objective: "watch me".into(),
            },
            Note::DirectionRequested {
                prompt: "which way?".into(),
            },
            Note::VerificationStarted {
                round: 1,
                roles: vec![infty_store::Role::verifier(1)],
            },
            Note::VerdictRecorded {
                role: infty_store::Role::verifier(1),
                verdict: VerifierDecision::Pass,
                reasons: vec![],
                suggestions: vec![],
            },
        ];
        for note in &notes {
            journal.append(note, true).unwrap();
            printed_rx.recv().unwrap();
        }
        // The run ends: its last event, then the status a follower stops on.
        journal
            .append(
                &Note::Ended(Terminal::Succeeded {
                    deliverable_path: "deliverable/x.md".into(),
                    summary: None,
                }),
                true,
            )
            .unwrap();
        store.set_status(RunStatus::Succeeded).unwrap();
    });
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(lines.next().unwrap().unwrap());
        printed_tx.send(()).unwrap();
    }
    writer.join().unwrap();
    // The run stopped: the follower prints what is left and exits on its own.
    got.extend(lines.map(Result::unwrap));
    assert!(child.wait().unwrap().success());
    let got = got.join("\n");
    settings(&world).bind(|| insta::assert_snapshot!("logs_follow", got));
}

#[test]
fn logs_errors_are_one_line() {
    let world = World::new();
    let cases: &[(&str, &[&str], i32)] = &[
        ("logs_unknown_run", &["logs", "nope"], 1),
        ("logs_invalid_id", &["logs", "../up"], 2),
    ];
    for (name, args, code) in cases {
        let assert = world.infty().args(*args).assert().code(*code);
        let stderr = stderr_text(&assert);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        settings(&world).bind(|| insta::assert_snapshot!(*name, stderr));
    }
}
