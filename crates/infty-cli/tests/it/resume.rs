//! Durable runs: a crash (SIGKILL) or Ctrl-C at various points, then `infty resume`; steering
//! with `infty send`; one driver per run.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::harness::World;

const DELIVER_MARKER: &str = r#"{"type":"final_delivery","deliverable_path":"artifacts/marker.txt","summary":"marker written"}"#;
const PASS: &str = r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#;

fn is_kind(event: &Value, kind: &str) -> bool {
    event["kind"] == kind
}

/// A shell call that leaves a mark, then blocks long enough to be killed in the middle.
fn slow_marking_call(world: &World, call_id: &str) {
    world.call(
        "solver",
        call_id,
        "shell",
        &json!({"command": "echo ran >> artifacts/marker.txt; sleep 20", "timeout_ms": null, "workdir": null}),
    );
}

fn marker_lines(world: &World, run_id: &str) -> usize {
    std::fs::read_to_string(world.run_dir(run_id).join("artifacts/marker.txt"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// The function outputs the Solver sent in its requests after the first `skip` requests.
fn solver_tool_outputs(world: &World) -> Vec<String> {
    world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "solver")
        .flat_map(|(_, body)| body["input"].as_array().cloned().unwrap_or_default())
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| item["output"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn sigkill_during_a_tool_then_resume_never_runs_it_twice() {
    let world = World::new();
    slow_marking_call(&world, "call_slow");
    let mut child = world.spawn_create("killed", "Leave a marker.", &[]);
    world.wait_for_event("killed", |e| is_kind(e, "tool_call_started"));
    // The tool has started; wait until its side effect is visible, then kill the driver.
    while marker_lines(&world, "killed") == 0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(world.run_json("killed")["status"], "running");

    world.say("solver", DELIVER_MARKER);
    world.say("verifier-1", PASS);
    world.resume("killed", &[]).success();

    assert_eq!(world.run_json("killed")["status"], "succeeded");
    assert_eq!(marker_lines(&world, "killed"), 1, "the tool ran twice");
    let outputs = solver_tool_outputs(&world);
    assert!(
        outputs.iter().any(|o| o.starts_with("interrupted")),
        "the Solver was not told the call was interrupted: {outputs:?}"
    );
    let kinds = world.journal_kinds("killed");
    assert_eq!(kinds.iter().filter(|k| *k == "started").count(), 1);
    assert_eq!(kinds.iter().filter(|k| *k == "resumed").count(), 1);
    insta::assert_debug_snapshot!(kinds);
}

#[test]
fn ctrl_c_stops_cleanly_and_the_run_resumes() {
    let world = World::new();
    slow_marking_call(&world, "call_slow");
    let mut child = world.spawn_create("ctrlc", "Leave a marker.", &[]);
    world.wait_for_event("ctrlc", |e| is_kind(e, "tool_call_started"));
    while marker_lines(&world, "ctrlc") == 0 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(world.run_json("ctrlc")["status"], "interrupted");
    let kinds = world.journal_kinds("ctrlc");
    assert_eq!(kinds.last().map(String::as_str), Some("run_interrupted"));

    world.say("solver", DELIVER_MARKER);
    world.say("verifier-1", PASS);
    world.resume("ctrlc", &[]).success();
    assert_eq!(world.run_json("ctrlc")["status"], "succeeded");
    assert_eq!(marker_lines(&world, "ctrlc"), 1);
}

#[test]
fn a_second_driver_is_refused_with_the_pid_of_the_first() {
    let world = World::new();
    slow_marking_call(&world, "call_slow");
    let mut child = world.spawn_create("busy", "Leave a marker.", &[]);
    world.wait_for_event("busy", |e| is_kind(e, "tool_call_started"));
    let assert = world.resume("busy", &[]).code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains(&format!("run busy is being driven by pid {}", child.id())),
        "{stderr}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn send_to_a_running_run_is_delivered_with_the_next_solver_turn() {
    let world = World::new();
    world.call(
        "solver",
        "call_wait",
        "shell",
        &json!({"command": "sleep 3", "timeout_ms": null, "workdir": null}),
    );
    world.say(
        "solver",
        r#"{"type":"direction_request","prompt":"Tabs or spaces?"}"#,
    );
    world.say("director", r#"{"directive":"Spaces.","rationale":null}"#);
    world.call(
        "solver",
        "call_write",
        "write_file",
        &json!({"path": "deliverable/style.txt", "content": "spaces"}),
    );
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/style.txt","summary":null}"#,
    );
    world.say("verifier-1", PASS);
    let mut child = world.spawn_create("steer", "Pick a style.", &[]);
    world.wait_for_event("steer", |e| is_kind(e, "tool_call_started"));
    world
        .infty()
        .args(["send", "steer", "Prefer spaces, four of them."])
        .assert()
        .success();
    assert!(child.wait().unwrap().success());

    // Delivered once, with the Solver turn that follows the Director's answer.
    let requests = world.server.requests();
    let solver_turns: Vec<&Value> = requests
        .iter()
        .filter(|(route, _)| route == "solver")
        .map(|(_, body)| body)
        .collect();
    let mentions = |body: &Value| {
        body.to_string()
            .matches("Prefer spaces, four of them.")
            .count()
    };
    assert_eq!(mentions(solver_turns[1]), 0);
    assert_eq!(mentions(solver_turns[2]), 1);
    let kinds = world.journal_kinds("steer");
    assert_eq!(
        kinds.iter().filter(|k| *k == "message_delivered").count(),
        1
    );
    assert!(world.run_dir("steer").join("inbox/delivered").is_dir());
}

#[test]
fn send_to_a_stopped_run_is_delivered_on_resume_and_a_succeeded_run_is_not_resumed() {
    let world = World::new();
    for reply in ["thinking...", "still thinking", "almost"] {
        world.say("solver", reply);
    }
    world
        .create("stopped", "Answer.", &["--verifiers", "0"])
        .code(1);
    assert_eq!(world.run_json("stopped")["status"], "failed");

    world
        .infty()
        .args([
            "send",
            "stopped",
            "Just write deliverable/a.txt and deliver it.",
        ])
        .assert()
        .success();
    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("stopped", &[]).success();
    let requests = world.server.requests();
    let first_after_resume = &requests[3].1;
    let text = first_after_resume.to_string();
    assert!(text.contains("Just write deliverable/a.txt"), "{text}");
    assert!(text.contains("could not be read as a signal"), "{text}");

    let assert = world.resume("stopped", &[]).code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("already succeeded"), "{stderr}");
}

#[test]
fn an_exhausted_budget_can_be_raised_on_resume() {
    let world = World::new();
    world.say("solver", r#"{"type":"direction_request","prompt":"Go?"}"#);
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    // The hand-off turn: the Solver writes its notes, then the run stops.
    world.call(
        "solver",
        "call_notes",
        "write_file",
        &serde_json::json!({"path": "memory/handoff.md", "content": "asked; told to go"}),
    );
    world.say(
        "solver",
        r#"{"type":"direction_request","prompt":"Hand-off written."}"#,
    );
    world
        .create(
            "budget",
            "Answer.",
            &["--verifiers", "0", "--max-turns", "1"],
        )
        .code(3);
    let run = world.run_json("budget");
    assert_eq!(run["status"], "budget_exhausted");
    assert_eq!(run["error"], "the Solver used all 1 of its turns");
    let notes = std::fs::read_to_string(world.run_dir("budget").join("memory/handoff.md"));
    assert_eq!(notes.unwrap(), "asked; told to go");
    let requests = world.server.requests();
    let handoff = requests[2].1.to_string();
    assert!(handoff.contains("memory/handoff.md"), "{handoff}");

    // Same budget: exhausted again at once, without calling a model.
    let before = world.server.requests().len();
    world.resume("budget", &[]).code(3);
    assert_eq!(world.server.requests().len(), before);

    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("budget", &["--max-turns", "5"]).success();
    let run = world.run_json("budget");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["options"]["budgets"]["max_solver_turns"], 5);
}

/// The Solver writes `deliverable/a.txt` and delivers it.
fn write_and_deliver(world: &World) {
    world.write_and_deliver("deliverable/a.txt", "a");
}

/// The Solver writes `deliverable/a.txt` and delivers it; the Verifier passes it.
fn write_deliver_pass(world: &World) {
    write_and_deliver(world);
    world.say("verifier-1", PASS);
}

/// Where a run is killed, and the replies it needs to finish after the resume.
struct KillPoint {
    name: &'static str,
    /// Scripts the run up to the stall (the stalled request must be the last one made).
    before: fn(&mut World),
    /// An event kind the journal holds before the stalled request is made.
    wait_for: &'static str,
    /// Scripts the rest of the run, answered after the resume.
    after: fn(&World),
}

fn stalled_text(text: &str) -> String {
    infty_model::test_support::ResponsesSse::new("resp_stalled")
        .text(text)
        .build_without_terminal()
}

const SILENCE: std::time::Duration = std::time::Duration::from_secs(5);

fn kill_points() -> Vec<KillPoint> {
    vec![
        KillPoint {
            name: "mid_stream_of_the_solver",
            before: |world| {
                let text = r#"{"type":"final_delivery","deliverable_path":"deliverable/a.txt"#;
                world
                    .server
                    .stall_next("solver", stalled_text(text), SILENCE);
            },
            wait_for: "objective_posted",
            after: write_deliver_pass,
        },
        KillPoint {
            name: "after_a_tool_executed",
            before: |world| {
                world.call(
                    "solver",
                    "call_count",
                    "shell",
                    &json!({"command": "echo ran >> artifacts/marker.txt", "timeout_ms": null, "workdir": null}),
                );
                world
                    .server
                    .stall_next("solver", stalled_text("thinking"), SILENCE);
            },
            wait_for: "tool_call_finished",
            after: |world| {
                world.say("solver", DELIVER_MARKER);
                world.say("verifier-1", PASS);
            },
        },
        KillPoint {
            name: "while_the_director_answers",
            before: |world| {
                world.say(
                    "solver",
                    r#"{"type":"direction_request","prompt":"Which file?"}"#,
                );
                world
                    .server
                    .stall_next("director", stalled_text("{\"directive\":"), SILENCE);
            },
            wait_for: "direction_requested",
            after: |world| {
                world.say(
                    "director",
                    r#"{"directive":"Write a.txt.","rationale":null}"#,
                );
                write_deliver_pass(world);
            },
        },
        KillPoint {
            name: "during_verification",
            before: |world| {
                write_and_deliver(world);
                world
                    .server
                    .stall_next("verifier-1", stalled_text("{\"verdict\":"), SILENCE);
            },
            wait_for: "verification_started",
            after: |world| world.say("verifier-1", PASS),
        },
    ]
}

#[test]
fn sigkill_at_each_point_then_resume_succeeds_with_nothing_lost_or_done_twice() {
    for point in kill_points() {
        let mut world = World::new();
        (point.before)(&mut world);
        // Every scripted reply, then the stalled request.
        let expected = world.server.remaining().values().sum::<usize>() + 1;
        let run_id = point.name.replace('_', "-");
        let mut child = world.spawn_create(&run_id, "Write deliverable/a.txt.", &[]);
        world.wait_for_event(&run_id, |e| is_kind(e, point.wait_for));
        // The stalled request is the last one; wait until the server has seen it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while world.server.requests().len() < expected {
            assert!(
                std::time::Instant::now() < deadline,
                "{}: the stalled request never came",
                point.name
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            world.run_json(&run_id)["status"],
            "running",
            "{}",
            point.name
        );

        (point.after)(&world);
        world.resume(&run_id, &[]).success();
        let run = world.run_json(&run_id);
        assert_eq!(run["status"], "succeeded", "{}", point.name);
        assert!(
            marker_lines(&world, &run_id) <= 1,
            "{}: a tool ran twice",
            point.name
        );
        assert_eq!(
            world.server.remaining().values().sum::<usize>(),
            0,
            "{}: unused replies",
            point.name
        );

        let kinds = world.journal_kinds(&run_id);
        insta::assert_debug_snapshot!(point.name, kinds);
        let rollout =
            std::fs::read_to_string(world.run_dir(&run_id).join("rollouts/solver.jsonl")).unwrap();
        let entries: Vec<String> = rollout
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line).unwrap();
                match value["entry"].as_str().unwrap() {
                    "item" => format!(
                        "item {} {}",
                        value["item"]["type"].as_str().unwrap_or("?"),
                        value["item"]["role"]
                            .as_str()
                            .or(value["item"]["name"].as_str())
                            .unwrap_or("")
                    ),
                    other => other.to_string(),
                }
            })
            .collect();
        insta::assert_debug_snapshot!(format!("{}_solver_rollout", point.name), entries);
    }
}
