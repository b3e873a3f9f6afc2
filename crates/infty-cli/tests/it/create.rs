//! Whole runs through the real binary.

use serde_json::{Value, json};

use crate::harness::{World, read_json, settings};

/// The Solver asks the Director, writes a file with a tool call, delivers it; the Verifier passes.
fn script_happy_path(world: &World) {
    world.say(
        "solver",
        r#"{"type":"direction_request","prompt":"Should the answer be a number or prose?"}"#,
    );
    world.say(
        "director",
        r#"{"directive":"A number, with one line of justification.","rationale":null}"#,
    );
    world.call(
        "solver",
        "call_write",
        "write_file",
        &json!({"path": "deliverable/answer.md", "content": "42\n\nSix times seven.\n"}),
    );
    world.say(
        "solver",
        "Done. ```json\n{\"type\":\"final_delivery\",\"deliverable_path\":\"deliverable/answer.md\",\"summary\":\"The answer is 42.\"}\n```",
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
}

#[test]
fn create_drives_a_whole_run_to_success() {
    let world = World::new();
    script_happy_path(&world);
    let output = world
        .create("e2e", "What is six times seven?", &["--json"])
        .success()
        .get_output()
        .clone();

    // The result on stdout, as JSON.
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "succeeded");
    assert_eq!(result["run_id"], "e2e");

    // The deliverable the Solver wrote through its tool.
    let run_dir = world.run_dir("e2e");
    let answer = std::fs::read_to_string(run_dir.join("deliverable/answer.md")).unwrap();
    assert!(answer.starts_with("42"));

    // run.json records the outcome and each role's rollout.
    let run = world.run_json("e2e");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["outcome"]["deliverable_path"], "deliverable/answer.md");
    for role in run["roles"].as_array().unwrap() {
        let rollout = role["rollout_path"].as_str().unwrap();
        assert!(run_dir.join(rollout).is_file(), "missing rollout {rollout}");
    }
    settings(&world).bind(|| {
        insta::assert_json_snapshot!("run_json", run, {
            ".created_at" => "[TIME]",
            ".updated_at" => "[TIME]",
            ".options.provider.base_url" => "[SERVER]",
        });
        insta::assert_debug_snapshot!("journal_kinds", world.journal_kinds("e2e"));
    });

    // Every scripted reply was used, in the expected order of roles.
    let routes: Vec<String> = world
        .server
        .requests()
        .into_iter()
        .map(|(route, _)| route)
        .collect();
    assert_eq!(
        routes,
        ["solver", "director", "solver", "solver", "verifier-1"]
    );

    // The tool output went back to the Solver in the next request.
    let (_, third) = &world.server.requests()[3];
    let input = third["input"].as_array().unwrap();
    assert!(
        input
            .iter()
            .any(|item| item["type"] == "function_call_output" && item["call_id"] == "call_write")
    );

    // list and show see the run.
    let list = world
        .infty()
        .args(["list", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let list: Value = serde_json::from_slice(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["run_id"], "e2e");
    assert_eq!(list[0]["status"], "succeeded");
    let show = world
        .infty()
        .args(["show", "e2e", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let show: Value = serde_json::from_slice(&show).unwrap();
    assert_eq!(show["outcome"]["deliverable_path"], "deliverable/answer.md");
    assert_eq!(show["roles"].as_array().unwrap().len(), 3);
    assert!(show["usage"]["solver"]["total_tokens"].as_u64().unwrap() > 0);

    world.assert_secret_nowhere();
}

#[test]
fn list_and_show_render_for_people() {
    let world = World::new();
    script_happy_path(&world);
    let assert = world
        .create("people", "What is six times seven?", &[])
        .success();
    let stdout = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let list = world
        .infty()
        .arg("list")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let show = world
        .infty()
        .args(["show", "people"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    settings(&world).bind(|| {
        insta::assert_snapshot!("create_stdout", stdout);
        insta::assert_snapshot!("create_progress", stderr);
        insta::assert_snapshot!("list_text", String::from_utf8(list).unwrap());
        insta::assert_snapshot!("show_text", String::from_utf8(show).unwrap());
    });
}

#[test]
fn escape_attempt_in_final_delivery_is_refused_before_verification() {
    let world = World::new();
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"../../etc/passwd","summary":"sneaky"}"#,
    );
    world.call(
        "solver",
        "call_1",
        "write_file",
        &json!({"path": "deliverable/ok.txt", "content": "fine"}),
    );
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/ok.txt","summary":null}"#,
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    world.create("escape", "Deliver something.", &[]).success();
    let kinds = world.journal_kinds("escape");
    assert!(
        kinds.contains(&"deliverable_rejected".to_string()),
        "{kinds:?}"
    );
    // Only one verification: the refused path never reached a Verifier.
    let verifier_calls = world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "verifier-1")
        .count();
    assert_eq!(verifier_calls, 1);
    let run = read_json(&world.run_dir("escape").join("run.json"));
    assert_eq!(run["outcome"]["deliverable_path"], "deliverable/ok.txt");
}

#[test]
fn openai_base_url_is_honoured_and_runs_root_is_accepted_anywhere() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    let runs_root = world.runs_root();
    // No --base-url: the environment points at the scripted server. --runs-root comes last.
    assert_cmd::Command::cargo_bin("infty")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.home.path())
        .env("OPENAI_API_KEY", crate::harness::SECRET)
        .env("OPENAI_BASE_URL", world.server.base_url())
        .args([
            "create",
            "--objective",
            "Write x.",
            "--run-id",
            "env",
            "--verifiers",
            "0",
        ])
        .arg("--runs-root")
        .arg(&runs_root)
        .assert()
        .success();
    assert_eq!(world.run_json("env")["status"], "succeeded");
    assert_eq!(world.server.requests().len(), 2);
    world.assert_secret_nowhere();
}

#[test]
fn the_context_window_is_recorded_per_role_for_resume() {
    let world = World::new();
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .create(
            "window",
            "Write x.",
            &["--verifiers", "0", "--context-window", "128000"],
        )
        .success();
    let run = world.run_json("window");
    for role in run["roles"].as_array().unwrap() {
        assert_eq!(role["context_window"], 128000, "{role}");
    }
}

#[test]
fn reasoning_efforts_reach_each_role_from_flags_and_config() {
    let world = World::new();
    std::fs::write(
        world.home.path().join("config.toml"),
        "[solver]\neffort = \"high\"\n\n[verifiers]\neffort = \"low\"\n",
    )
    .unwrap();
    world.write_and_deliver("deliverable/x.txt", "x");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    world
        .create("efforts", "Write x.", &["--verifier-effort", "medium"])
        .success();
    let run = world.run_json("efforts");
    let effort = |index: usize| run["roles"][index]["reasoning_effort"].clone();
    assert_eq!(effort(0), "high", "solver from the config file");
    assert_eq!(effort(1), Value::Null, "director: none set");
    assert_eq!(effort(2), "medium", "verifier: the flag wins over the file");
    let requests = world.server.requests();
    assert_eq!(requests[0].1["reasoning"]["effort"], "high");
    let verifier = requests
        .iter()
        .find(|(route, _)| route == "verifier-1")
        .unwrap();
    assert_eq!(verifier.1["reasoning"]["effort"], "medium");
}

#[test]
fn a_required_tool_choice_is_recorded_sent_first_and_kept_on_resume() {
    let world = World::new();
    script_happy_path(&world);
    let output = world
        .create(
            "forced",
            "What is six times seven?",
            &["--json", "--solver-tool-choice", "required"],
        )
        .success()
        .get_output()
        .clone();
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["status"], "succeeded");

    let run = world.run_json("forced");
    let choices: Vec<(String, Value)> = run["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|role| {
            (
                role["role"].as_str().unwrap().to_string(),
                role["tool_choice"].clone(),
            )
        })
        .collect();
    // Only the Solver's is recorded; the others keep the default, left out of run.json.
    assert_eq!(
        choices,
        [
            ("solver".to_string(), json!("required")),
            ("director".to_string(), Value::Null),
            ("verifier-1".to_string(), Value::Null),
        ]
    );
    // Each Solver turn opens with a forced call; the request after a tool ran leaves the
    // choice to the model, and the other roles are never forced.
    let sent: Vec<(String, Value)> = world
        .server
        .requests()
        .into_iter()
        .map(|(route, body)| (route, body["tool_choice"].clone()))
        .collect();
    assert_eq!(
        sent,
        [
            ("solver".to_string(), json!("required")),
            ("director".to_string(), json!("auto")),
            ("solver".to_string(), json!("required")),
            ("solver".to_string(), json!("auto")),
            ("verifier-1".to_string(), json!("auto")),
        ]
    );
}
