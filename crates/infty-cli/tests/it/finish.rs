//! Runs that finish right: completion checks, stall detection, cost, budgets the model sees,
//! usage limits that park a run, SIGTERM, create-or-resume and the exit code of each ending.

use infty_model::test_support::ScriptedReply;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::harness::{World, settings, stderr_text};

const PASS: &str = r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#;

fn ask(prompt: &str) -> String {
    json!({"type": "direction_request", "prompt": prompt}).to_string()
}

fn shell(world: &World, call_id: &str, command: &str) {
    world.call(
        "solver",
        call_id,
        "shell",
        &json!({"command": command, "timeout_ms": null, "workdir": null}),
    );
}

/// The text of the last user message of a recorded request body.
fn last_user_text(body: &Value) -> String {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|item| item["role"] == "user")
        .and_then(|item| {
            item["content"]
                .as_str()
                .or_else(|| item["content"][0]["text"].as_str())
        })
        .unwrap_or_default()
        .to_string()
}

fn requests_of(world: &World, role: &str) -> Vec<Value> {
    world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == role)
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn a_failing_check_goes_back_to_the_solver_and_a_passing_one_is_the_verifiers_evidence() {
    let world = World::new();
    world.write_and_deliver("deliverable/answer.txt", "draft");
    world.write_and_deliver("deliverable/answer.txt", "good");
    world.say("verifier-1", PASS);
    let check = "grep -q good deliverable/answer.txt && echo found it";
    world
        .create("checked", "Write a good answer.", &["--check", check])
        .success();
    let solver = requests_of(&world, "solver");
    // Requests: write, deliver, (check fails) write, deliver.
    let feedback = last_user_text(&solver[2]);
    settings(&world).bind(|| insta::assert_snapshot!("check_failed_feedback", feedback));
    let verifier = requests_of(&world, "verifier-1");
    let request: Value = serde_json::from_str(&last_user_text(&verifier[0])).unwrap();
    assert_eq!(request["checks_passed"][0]["command"], check);
    assert!(
        request["checks_passed"][0]["output"]
            .as_str()
            .unwrap()
            .contains("found it")
    );
    assert_eq!(verifier.len(), 1, "a failing check costs no Verifier call");

    let show: Value =
        serde_json::from_str(&world.stdout_of(&["show", "checked", "--json"])).unwrap();
    let checks: Vec<(u64, bool)> = show["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["round"].as_u64().unwrap(), c["passed"].as_bool().unwrap()))
        .collect();
    assert_eq!(checks, [(1, false), (2, true)]);
    let text = world.stdout_of(&["show", "checked"]);
    assert!(text.contains("Checks:"), "{text}");
    assert!(text.contains("failed (exit code 1)"), "{text}");
}

#[test]
fn a_check_that_times_out_is_killed_and_counts_as_a_round() {
    let world = World::new();
    world.write_config(
        "[[checks]]\nname = \"slow\"\ncommand = \"sleep 30\"\ntimeout_secs = 1\ndir = \"run\"\n",
    );
    world.write_and_deliver("deliverable/answer.txt", "a");
    world.say("solver", &ask("Hand-off written."));
    let assert = world
        .create(
            "slow",
            "Answer.",
            &["--verifiers", "0", "--max-rounds", "1"],
        )
        .code(3);
    let stderr = stderr_text(&assert);
    assert!(stderr.contains("slow: timed out"), "{stderr}");
    let run = world.run_json("slow");
    assert_eq!(run["status"], "budget_exhausted");
    assert_eq!(run["options"]["checks"][0]["timeout_secs"], 1);
    let solver = requests_of(&world, "solver");
    let handoff = last_user_text(&solver[2]);
    assert!(handoff.contains("memory/handoff.md"), "{handoff}");
    let show: Value = serde_json::from_str(&world.stdout_of(&["show", "slow", "--json"])).unwrap();
    assert_eq!(show["checks"][0]["timed_out"], true);
}

#[test]
fn a_looping_solver_is_escalated_then_blocked_and_resumes_after_send() {
    let world = World::new();
    world.write_config("[stall]\nrepeats = 1\nescalations = 1\n");
    std::fs::create_dir_all(world.home.path().join("x")).unwrap();
    for turn in 0..3 {
        shell(&world, &format!("call_{turn}"), "echo same");
        world.say("solver", &ask("What now?"));
    }
    world.say(
        "director",
        r#"{"directive":"Write the answer.","rationale":null}"#,
    );
    world.say(
        "director",
        r#"{"directive":"Stop reading; write.","rationale":null}"#,
    );
    let assert = world
        .create("loop", "Answer.", &["--verifiers", "0"])
        .code(3);
    let stderr = stderr_text(&assert);
    assert!(stderr.contains("blocked"), "{stderr}");
    let run = world.run_json("loop");
    assert_eq!(run["status"], "blocked");
    let reason = run["error"].as_str().unwrap();
    assert!(
        reason.contains(r#"shell {"command":"echo same""#),
        "{reason}"
    );
    assert!(reason.contains("What now?"), "{reason}");
    // The escalation asked the Director with the evidence.
    let director = requests_of(&world, "director");
    assert!(last_user_text(&director[1]).contains("stalled: "));
    assert!(
        world
            .journal_kinds("loop")
            .contains(&"stall_detected".to_string())
    );
    let mut show: Value =
        serde_json::from_str(&world.stdout_of(&["show", "loop", "--json"])).unwrap();
    let blocked = json!({
        "status": show["status"].take(),
        "error": show["error"].take(),
        "cost": show["cost"].take(),
        "checks": show["checks"].take(),
        "stall": show["options"]["stall"].take(),
    });
    settings(&world).bind(|| insta::assert_json_snapshot!("show_blocked", blocked));

    world
        .infty()
        .args([
            "send",
            "loop",
            "The notes are fine; write deliverable/a.txt now.",
        ])
        .assert()
        .success();
    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("loop", &[]).success();
    let resumed = requests_of(&world, "solver")
        .iter()
        .map(last_user_text)
        .find(|text| text.contains("stopped as blocked"))
        .unwrap();
    assert!(resumed.contains("write deliverable/a.txt now"), "{resumed}");
}

#[test]
fn a_busy_but_progressing_solver_is_never_flagged() {
    let world = World::new();
    world.write_config("[stall]\nrepeats = 1\nescalations = 0\n");
    for turn in 0..6 {
        // The same request each turn, but the work differs (a new file each time).
        shell(
            &world,
            &format!("call_{turn}"),
            &format!("echo {turn} > artifacts/step-{turn}.txt; ls artifacts"),
        );
        world.say("solver", &ask("Next step?"));
        world.say("director", r#"{"directive":"Continue.","rationale":null}"#);
    }
    world.write_and_deliver("deliverable/a.txt", "a");
    world
        .create("busy", "Work in steps.", &["--verifiers", "0"])
        .success();
    assert!(
        !world
            .journal_kinds("busy")
            .contains(&"stall_detected".to_string())
    );
}

#[test]
fn cost_is_priced_per_model_and_shown_and_a_cost_budget_stops_the_run() {
    let world = World::new();
    // 100 input and 20 output tokens per response (the harness's usage).
    world.write_config("[prices.\"gpt-5\"]\ninput = 1000.0\noutput = 5000.0\n");
    world.say("solver", &ask("Go?"));
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    world.say("solver", &ask("Hand-off written."));
    // Each call costs 100 × $1000/M + 20 × $5000/M = $0.2; the budget is $0.3.
    let assert = world
        .create(
            "costly",
            "Answer.",
            &["--verifiers", "0", "--max-cost-usd", "0.3"],
        )
        .code(3);
    let stderr = stderr_text(&assert);
    assert!(
        stderr.contains("cost:        solver $0.4000, director $0.2000 (total $0.6000)"),
        "{stderr}"
    );
    let run = world.run_json("costly");
    assert_eq!(run["status"], "budget_exhausted");
    assert_eq!(run["options"]["prices"]["gpt-5"]["input_per_mtok"], 1000.0);
    let show = world.stdout_of(&["show", "costly", "--json"]);
    let mut show: Value = serde_json::from_str(&show).unwrap();
    let cost = show["cost"].take();
    insta::assert_json_snapshot!("cost_in_show", cost);
    let list: Value = serde_json::from_str(&world.stdout_of(&["list", "--json"])).unwrap();
    assert_eq!(list[0]["cost_usd"], 0.6);
    let text = world.stdout_of(&["show", "costly"]);
    assert!(text.contains("$0.6000"), "{text}");
}

#[test]
fn every_solver_message_carries_what_is_left_of_the_budgets() {
    let world = World::new();
    world.write_config("[prices.\"gpt-5\"]\ninput = 1000.0\noutput = 5000.0\n");
    world.say("solver", &ask("Go?"));
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    world.write_and_deliver("deliverable/a.txt", "a");
    world
        .create(
            "budgets",
            "Answer.",
            &[
                "--verifiers",
                "0",
                "--max-turns",
                "10",
                "--max-tokens",
                "100000",
                "--max-cost-usd",
                "5",
                "--max-rounds",
                "2",
            ],
        )
        .success();
    let lines: Vec<String> = requests_of(&world, "solver")
        .iter()
        .map(|body| {
            let text = last_user_text(body);
            text.lines()
                .filter(|line| line.starts_with("Budget left:"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    insta::assert_debug_snapshot!("budget_lines", lines);
}

#[test]
fn a_usage_limit_parks_the_run_and_resume_continues_it() {
    let world = World::new();
    world.server.push(
        "solver",
        ScriptedReply::error(
            429,
            r#"{"error":{"type":"usage_limit_reached","message":"You've hit your usage limit.","resets_in_seconds":7200}}"#,
        ),
    );
    let assert = world
        .create("limited", "Answer.", &["--verifiers", "0", "--json"])
        .code(75);
    let out: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(out["status"], "usage_limited");
    let run = world.run_json("limited");
    assert_eq!(run["status"], "usage_limited");
    let after = time::OffsetDateTime::parse(
        run["resume_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = after - time::OffsetDateTime::now_utc();
    assert!(
        wait > time::Duration::minutes(100) && wait <= time::Duration::hours(2),
        "{wait}"
    );
    let list: Value = serde_json::from_str(&world.stdout_of(&["list", "--json"])).unwrap();
    assert_eq!(list[0]["resume_after"], run["resume_after"]);
    settings(&world).bind(|| insta::assert_json_snapshot!("list_usage_limited", list));

    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("limited", &[]).success();
    assert_eq!(world.run_json("limited")["status"], "succeeded");
}

#[test]
fn insufficient_quota_stays_a_failure() {
    let world = World::new();
    world.server.push(
        "solver",
        ScriptedReply::error(
            429,
            r#"{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota."}}"#,
        ),
    );
    world
        .create("quota", "Answer.", &["--verifiers", "0"])
        .code(1);
    assert_eq!(world.run_json("quota")["status"], "failed");
}

#[test]
fn wait_on_limit_waits_for_the_limit_to_lift_and_continues() {
    let world = World::new();
    // Five 429s outlast the client's four retries; each asks for a one-second wait.
    for _ in 0..5 {
        world.server.push(
            "solver",
            ScriptedReply::error(
                429,
                r#"{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached."}}"#,
            )
            .with_header("retry-after", "1"),
        );
    }
    world.write_and_deliver("deliverable/a.txt", "a");
    let assert = world
        .create("waits", "Answer.", &["--verifiers", "0", "--wait-on-limit"])
        .success();
    let stderr = stderr_text(&assert);
    assert!(
        stderr.contains("waits for the usage limit to lift"),
        "{stderr}"
    );
    let kinds = world.journal_kinds("waits");
    assert!(
        kinds.contains(&"run_usage_limited".to_string()),
        "{kinds:?}"
    );
    assert_eq!(world.run_json("waits")["status"], "succeeded");
}

#[test]
fn sigterm_stops_like_ctrl_c_with_exit_143_and_the_run_resumes() {
    let world = World::new();
    shell(
        &world,
        "call_slow",
        "echo ran >> artifacts/marker.txt; sleep 20",
    );
    let mut child = world.spawn_create("term", "Leave a marker.", &["--verifiers", "0"]);
    let marker = world.run_dir("term").join("artifacts/marker.txt");
    while !marker.exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    assert_eq!(world.run_json("term")["status"], "interrupted");

    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("term", &[]).success();
    assert_eq!(world.run_json("term")["status"], "succeeded");
}

#[test]
fn create_with_resume_if_exists_continues_a_stopped_run_and_reports_a_finished_one() {
    let world = World::new();
    world.say("solver", &ask("Go?"));
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    world.say("solver", &ask("Hand-off written."));
    let args = ["--verifiers", "0", "--max-turns", "1", "--resume-if-exists"];
    world.create("batch", "Answer.", &args).code(3);
    // Without the flag, the id is taken.
    world
        .create("batch", "Answer.", &["--verifiers", "0"])
        .code(1);
    // A restarted job with a larger budget picks up where the run stopped.
    world.write_and_deliver("deliverable/a.txt", "a");
    world
        .create(
            "batch",
            "Answer.",
            &["--verifiers", "0", "--max-turns", "5", "--resume-if-exists"],
        )
        .success();
    assert_eq!(world.run_json("batch")["status"], "succeeded");
    // Once more: nothing to do, and success again.
    let before = world.server.requests().len();
    let assert = world
        .create("batch", "Answer.", &["--resume-if-exists", "--json"])
        .success();
    let out: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(out["status"], "succeeded");
    assert_eq!(world.server.requests().len(), before);
}
