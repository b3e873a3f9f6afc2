//! The run folder as evidence, and the command as a good citizen of a shell pipeline: a
//! resume that lost a rollout stops instead of starting over, a runs root spelled with `..`
//! works, output into a closed pipe ends quietly, and context windows are known by default.

use std::io::Read;
use std::process::Stdio;

use crate::harness::{World, stderr_text};

/// A run stopped by its turn budget after one Solver turn, ready to resume.
fn stopped_run(world: &World, run_id: &str) {
    world.say("solver", r#"{"type":"direction_request","prompt":"Go?"}"#);
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    world
        .create(run_id, "Answer.", &["--verifiers", "0", "--max-turns", "1"])
        .code(3);
    assert_eq!(world.run_json(run_id)["status"], "budget_exhausted");
}

#[test]
fn resume_with_a_deleted_rollout_stops_with_one_line_naming_the_file() {
    let world = World::new();
    stopped_run(&world, "lost");
    let rollout = world.run_dir("lost").join("rollouts/solver.jsonl");
    std::fs::remove_file(&rollout).unwrap();
    let requests = world.server.requests().len();

    let assert = world.resume("lost", &["--max-turns", "5"]).code(1);

    let stderr = stderr_text(&assert);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // The sealed record notices first (its head file says how many lines there were); an
    // unsealed run gets the missing-rollout error. Either way the file is named.
    assert!(stderr.contains("rollouts/solver.jsonl"), "{stderr}");
    assert!(!rollout.exists(), "an empty rollout must not be created");
    assert_eq!(
        world.server.requests().len(),
        requests,
        "no model was called"
    );
}

#[test]
fn resume_with_an_unreadable_rollout_stops_naming_the_file() {
    let world = World::new();
    stopped_run(&world, "torn");
    let rollout = world.run_dir("torn").join("rollouts/solver.jsonl");
    // A damaged line in the middle (a torn last line alone is repaired).
    let text = std::fs::read_to_string(&rollout).unwrap();
    std::fs::write(&rollout, format!("{{not json\n{text}")).unwrap();

    let assert = world.resume("torn", &["--max-turns", "5"]).code(1);

    let stderr = stderr_text(&assert);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("solver.jsonl"), "{stderr}");
}

#[test]
fn a_runs_root_with_dot_dot_works() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    let root = world.home.path().join("elsewhere/../runs");
    std::fs::create_dir_all(world.home.path().join("elsewhere")).unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("infty").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.home.path())
        .env("NO_COLOR", "1")
        .env("OPENAI_API_KEY", crate::harness::SECRET)
        .arg("--runs-root")
        .arg(&root)
        .args([
            "create",
            "--objective",
            "Write x.",
            "--run-id",
            "dots",
            "--verifiers",
            "0",
            "--base-url",
            &world.server.base_url(),
        ]);
    cmd.assert().success();
    let run = world.run_json("dots");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(world.run_dir("dots").join("deliverable/x.txt")).unwrap(),
        "x"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .create("piped", "Write x.", &["--verifiers", "0"])
        .success();
    for args in [
        &["show", "piped"][..],
        &["show", "piped", "--json"],
        &["list"],
        &["logs", "piped"],
    ] {
        let mut cmd = world.infty_process();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        // The reader leaves before the command writes (like `| head` that has had enough).
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{args:?}: {status} {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn context_windows_are_known_by_default() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .create("known", "Write x.", &["--verifiers", "0"])
        .success();
    for role in world.run_json("known")["roles"].as_array().unwrap() {
        // gpt-5, from the built-in table (the scripted server has no /models sizes).
        assert_eq!(role["context_window"], 400000, "{role}");
    }

    world.write_and_deliver("deliverable/y.txt", "y");
    let assert = world
        .create(
            "unknown",
            "Write y.",
            &["--verifiers", "0", "--model", "my-local-model"],
        )
        .success();
    let stderr = stderr_text(&assert);
    assert!(
        stderr.contains("context window of model my-local-model is unknown"),
        "{stderr}"
    );
    for role in world.run_json("unknown")["roles"].as_array().unwrap() {
        assert!(role.get("context_window").is_none(), "{role}");
    }
}

#[test]
fn a_reasoning_summary_is_sent_only_when_asked_for() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .create("plain", "Write x.", &["--verifiers", "0"])
        .success();
    world.write_and_deliver("deliverable/y.txt", "y");
    world
        .create(
            "summary",
            "Write y.",
            &["--verifiers", "0", "--reasoning-summary", "concise"],
        )
        .success();
    let requests = world.server.requests();
    let (plain, asked) = requests.split_at(2);
    for (_, body) in plain {
        assert!(body.get("reasoning").is_none(), "{body}");
        // gpt-5 reasons: its reasoning must come back replayable.
        assert_eq!(body["include"][0], "reasoning.encrypted_content");
    }
    for (_, body) in asked {
        assert_eq!(body["reasoning"]["summary"], "concise", "{body}");
    }
    let run = world.run_json("summary");
    assert_eq!(run["roles"][0]["reasoning_summary"], "concise");
}
