//! The orchestration policies of DESIGN §3.5, end to end through the `infty` binary.

use infty_model::test_support::{ChatSse, ResponsesSse, ScriptedReply};
use serde_json::{Value, json};

use crate::harness::World;

const PASS: &str = r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#;
const FAIL: &str =
    r#"{"verdict":"fail","reasons":["the file is empty"],"suggestions":["write the answer"]}"#;

fn write(world: &World, path: &str, content: &str) {
    world.call(
        "solver",
        &format!("call_{}", path.replace(['/', '.'], "_")),
        "write_file",
        &json!({"path": path, "content": content}),
    );
}

fn deliver(path: &str) -> String {
    json!({"type": "final_delivery", "deliverable_path": path, "summary": null}).to_string()
}

fn solver_inputs(world: &World) -> Vec<Value> {
    world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "solver")
        .map(|(_, body)| body)
        .collect()
}

/// The text of the last user message of a request.
fn last_user_text(body: &Value) -> String {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|item| item["role"] == "user")
        .map(|item| item["content"].to_string())
        .unwrap_or_default()
}

#[test]
fn signals_wrapped_in_prose_and_fences_are_understood() {
    let world = World::new();
    world.say(
        "solver",
        "Let me think.\n\n```JSON\r\n{\"type\":\"direction_request\",\"prompt\":\"Is {x} fine?\"}\r\n```\r\nThanks!",
    );
    world.say(
        "director",
        "Sure thing: {\"directive\":\"Yes, go.\",\"rationale\":\"it is fine\"} — good luck.",
    );
    write(&world, "deliverable/x.txt", "x");
    world.say(
        "solver",
        "I considered {\"type\":\"final_delivery\"} but here is the real one: {\"type\":\"final_delivery\",\"deliverable_path\":\"deliverable/x.txt\",\"summary\":\"x\"}",
    );
    world.say(
        "verifier-1",
        "```\n{\"verdict\":\"pass\",\"reasons\":[],\"suggestions\":[]}\n```",
    );
    world.create("wrapped", "Write x.", &[]).success();
    let kinds = world.journal_kinds("wrapped");
    assert!(!kinds.contains(&"invalid_signal".to_string()), "{kinds:?}");
    let directive = last_user_text(&solver_inputs(&world)[1]);
    assert!(directive.contains("Yes, go."), "{directive}");
}

#[test]
fn a_malformed_solver_reply_is_sent_back_and_the_solver_recovers() {
    let world = World::new();
    world.say("solver", "I am done, the file is written.");
    write(&world, "deliverable/x.txt", "x");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.create("malformed", "Write x.", &[]).success();
    let correction = last_user_text(&solver_inputs(&world)[1]);
    assert!(
        correction.contains("could not be read as a signal"),
        "{correction}"
    );
    assert!(correction.contains("no JSON object found"), "{correction}");
    let kinds = world.journal_kinds("malformed");
    assert_eq!(kinds.iter().filter(|k| *k == "invalid_signal").count(), 1);
}

#[test]
fn escapes_in_final_delivery_are_refused_with_a_reason() {
    let world = World::new();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let absolute = outside.path().join("secret.txt");
    // The Solver plants a symlink to the outside file with the shell, then tries to deliver
    // it, then an absolute path outside, then `..`; finally a real file.
    world.call(
        "solver",
        "call_link",
        "shell",
        &json!({"command": format!("ln -s {} deliverable/link.txt", absolute.display()), "timeout_ms": null, "workdir": null}),
    );
    world.say("solver", &deliver("deliverable/link.txt"));
    world.say("solver", &deliver(absolute.to_str().unwrap()));
    world.say("solver", &deliver("../../x"));
    write(&world, "deliverable/x.txt", "x");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.create("escapes", "Write x.", &[]).success();

    let inputs = solver_inputs(&world);
    let refusals: Vec<String> = inputs[2..5].iter().map(last_user_text).collect();
    for refusal in &refusals {
        assert!(refusal.contains("refused before verification"), "{refusal}");
    }
    let kinds = world.journal_kinds("escapes");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "deliverable_rejected")
            .count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "verification_started")
            .count(),
        1
    );
    assert_eq!(
        world.run_json("escapes")["outcome"]["deliverable_path"],
        "deliverable/x.txt"
    );
}

#[test]
fn a_failing_verdict_goes_back_to_the_solver_then_a_pass_ends_the_run() {
    let world = World::new();
    write(&world, "deliverable/x.txt", "");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", FAIL);
    write(&world, "deliverable/x.txt", "the answer");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.create("rework", "Write the answer.", &[]).success();
    let feedback = last_user_text(&solver_inputs(&world)[2]);
    assert!(feedback.contains("verification_feedback"), "{feedback}");
    assert!(feedback.contains("the file is empty"), "{feedback}");
    // The failing Verifier kept its session: its second request holds the first round.
    let verifier: Vec<Value> = world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "verifier-1")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(verifier.len(), 2);
    assert!(verifier[1].to_string().contains("the file is empty"));
    // Nothing is posted to the Solver after the pass.
    assert_eq!(solver_inputs(&world).len(), 4);
}

#[test]
fn rate_limits_server_errors_and_cut_streams_mid_run_are_absorbed() {
    let world = World::new();
    world.server.push(
        "solver",
        ScriptedReply::error(429, r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#)
            .with_header("retry-after-ms", "20"),
    );
    world.server.push(
        "solver",
        ScriptedReply::error(
            500,
            r#"{"error":{"message":"The server had an error","type":"server_error"}}"#,
        ),
    );
    world.server.push(
        "solver",
        ScriptedReply::sse(
            ResponsesSse::new("resp_cut")
                .text("{\"type\":")
                .build_without_terminal(),
        ),
    );
    write(&world, "deliverable/x.txt", "x");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.server.push(
        "verifier-1",
        ScriptedReply::error(503, r#"{"error":{"message":"overloaded"}}"#),
    );
    world.say("verifier-1", PASS);
    let assert = world.create("flaky", "Write x.", &[]).success();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(stderr.contains("retrying"), "{stderr}");
    let kinds = world.journal_kinds("flaky");
    assert_eq!(
        kinds.iter().filter(|k| *k == "model_retry").count(),
        4,
        "{kinds:?}"
    );
    assert_eq!(world.run_json("flaky")["status"], "succeeded");
}

#[test]
fn several_verifiers_all_must_pass_and_passing_ones_are_rotated() {
    let world = World::new();
    write(&world, "deliverable/x.txt", "x");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.say("verifier-2", FAIL);
    world.say("verifier-3", PASS);
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.say("verifier-2", PASS);
    world.say("verifier-3", PASS);
    world
        .create("panel", "Write x.", &["--verifiers", "3"])
        .success();
    let run = world.run_json("panel");
    let roles: Vec<&Value> = run["roles"].as_array().unwrap().iter().collect();
    let previous = |name: &str| {
        roles
            .iter()
            .find(|r| r["role"] == name)
            .map(|r| r["previous_rollouts"].as_array().unwrap().len())
            .unwrap()
    };
    // Passing Verifiers got fresh sessions for round two; the failing one kept its own.
    assert_eq!(previous("verifier-1"), 1);
    assert_eq!(previous("verifier-2"), 0);
    assert_eq!(previous("verifier-3"), 1);
    let kinds = world.journal_kinds("panel");
    assert_eq!(kinds.iter().filter(|k| *k == "verdict_recorded").count(), 6);
}

#[test]
fn the_majority_policy_accepts_two_of_three() {
    let world = World::new();
    write(&world, "deliverable/x.txt", "x");
    world.say("solver", &deliver("deliverable/x.txt"));
    world.say("verifier-1", PASS);
    world.say("verifier-2", FAIL);
    world.say("verifier-3", PASS);
    world
        .create(
            "vote",
            "Write x.",
            &["--verifiers", "3", "--verification-policy", "majority"],
        )
        .success();
    assert_eq!(
        world.run_json("vote")["options"]["verification_policy"],
        "majority"
    );
}

#[test]
fn the_chat_completions_wire_api_drives_a_whole_run() {
    let world = World::new();
    let chat =
        |text: &str| ScriptedReply::sse(ChatSse::new("chatcmpl").text(text).usage(50, 10).build());
    world.server.push(
        "solver",
        ScriptedReply::sse(
            ChatSse::new("chatcmpl")
                .function_call(
                    "call_w",
                    "write_file",
                    &json!({"path": "deliverable/x.txt", "content": "x"}).to_string(),
                )
                .build(),
        ),
    );
    world
        .server
        .push("solver", chat(&deliver("deliverable/x.txt")));
    world.server.push("verifier-1", chat(PASS));
    world
        .create("chat", "Write x.", &["--wire-api", "chat"])
        .success();
    let requests = world.server.requests();
    assert!(
        requests
            .iter()
            .all(|(_, body)| body.get("messages").is_some())
    );
    assert_eq!(
        world.run_json("chat")["options"]["provider"]["wire_api"],
        "chat"
    );
    assert_eq!(
        std::fs::read_to_string(world.run_dir("chat").join("deliverable/x.txt")).unwrap(),
        "x"
    );
}

#[test]
fn the_solver_works_in_a_workspace_while_its_deliverable_stays_in_the_run() {
    let world = World::new();
    let project = tempfile::tempdir().unwrap();
    std::fs::write(project.path().join("lib.txt"), "old").unwrap();
    world.call(
        "solver",
        "call_edit",
        "edit_file",
        &json!({"path": "lib.txt", "old_string": "old", "new_string": "new", "replace_all": null}),
    );
    world.call(
        "solver",
        "call_note",
        "shell",
        &json!({"command": "pwd > pwd.txt", "timeout_ms": null, "workdir": null}),
    );
    let run_dir = world.run_dir("ws");
    let deliverable = run_dir.join("deliverable/report.md");
    write(&world, deliverable.to_str().unwrap(), "edited lib.txt");
    world.say("solver", &deliver("deliverable/report.md"));
    world.say("verifier-1", PASS);
    world
        .create(
            "ws",
            "Edit lib.txt.",
            &["--workspace", project.path().to_str().unwrap()],
        )
        .success();
    assert_eq!(
        std::fs::read_to_string(project.path().join("lib.txt")).unwrap(),
        "new"
    );
    let pwd = std::fs::read_to_string(project.path().join("pwd.txt")).unwrap();
    assert_eq!(
        std::path::Path::new(pwd.trim()).canonicalize().unwrap(),
        project.path().canonicalize().unwrap()
    );
    assert!(deliverable.is_file());
    assert_eq!(
        world.run_json("ws")["options"]["workspace"],
        project.path().canonicalize().unwrap().to_str().unwrap()
    );
}
