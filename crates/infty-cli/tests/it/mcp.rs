//! MCP servers through the real binary: the stdio test server of `infty-mcp` (a child
//! process) and its streamable-HTTP form (in this test process, on loopback). Tools offered
//! (request bodies of both wire APIs), called by the scripted Solver, results in the rollout,
//! `show`; a crash mid-run (one restart, then errors); a hang (timeout); a SIGKILL of infty
//! during a call, then resume (interrupted, not sent again); a server that cannot start.

use std::path::{Path, PathBuf};

use infty_model::test_support::{ChatSse, ScriptedReply};
use serde_json::{Value, json};

use crate::harness::{World, read_json, settings};

/// The stdio test server, built beside the `infty` binary by `cargo test --workspace`.
pub(crate) fn test_server() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_infty")).with_file_name("infty-mcp-test-server");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p infty-mcp --features test-server` (cargo test --workspace does)",
        path.display()
    );
    path
}

pub(crate) fn counter(world: &World) -> PathBuf {
    world.home.path().join("calls.jsonl")
}

/// `--mcp t=SERVER --counter FILE`.
pub(crate) fn mcp_flag(world: &World) -> String {
    format!(
        "t={} --counter {}",
        test_server().display(),
        counter(world).display()
    )
}

/// The tools the server received calls for, in order.
pub(crate) fn received(world: &World) -> Vec<String> {
    std::fs::read_to_string(counter(world))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let call: Value = serde_json::from_str(line).unwrap();
            call["tool"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The outputs the Solver's rollout holds for its tool calls, by call id.
pub(crate) fn outputs(world: &World, run_id: &str) -> Vec<(String, String)> {
    world
        .rollout_items(run_id, "solver")
        .iter()
        .filter(|item| item["type"] == "function_output")
        .map(|item| {
            (
                item["call_id"].as_str().unwrap().to_string(),
                item["output"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits (boundedly) until no process has `marker` on its command line; fails if one stays.
pub(crate) fn assert_no_process_with(marker: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &marker.display().to_string()])
            .output()
            .unwrap();
        if out.stdout.is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a server process outlived its run: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn deliver(path: &str) -> String {
    json!({"type": "final_delivery", "deliverable_path": path, "summary": null}).to_string()
}

/// The MCP tools of the first request the Solver's model received.
fn mcp_tools_sent(world: &World) -> Vec<Value> {
    let (_, body) = world
        .server
        .requests()
        .into_iter()
        .find(|(route, _)| route == "solver")
        .unwrap();
    body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|tool| {
            let name = tool["name"].as_str().or(tool["function"]["name"].as_str());
            name.unwrap_or_default().contains("__")
        })
        .cloned()
        .collect()
}

fn write_config(world: &World, text: &str) {
    std::fs::write(world.home.path().join("config.toml"), text).unwrap();
}

#[test]
fn mcp_tools_are_offered_called_journaled_and_shown() {
    let world = World::new();
    world.call(
        "solver",
        "call_echo",
        "t__echo",
        &json!({"text": "hi", "times": null}),
    );
    world.call(
        "solver",
        "call_labels",
        "t__labels",
        &json!({"labels": {"a": "1", "b": "2"}}),
    );
    world.write_and_deliver("deliverable/x.txt", "x");
    let flag = mcp_flag(&world);
    world
        .create(
            "mcp",
            "Use the tools.",
            // The test server counts its calls in a file under the test's HOME, which the
            // sandbox hides from a sandboxed server: these tests run it unsandboxed.
            &["--verifiers", "0", "--sandbox", "off", "--mcp", &flag],
        )
        .success();

    assert_eq!(received(&world), ["echo", "labels"]);
    assert_no_process_with(&counter(&world));
    assert_eq!(
        outputs(&world, "mcp")[..2],
        [
            ("call_echo".to_string(), "hi".to_string()),
            ("call_labels".to_string(), "2 labels".to_string())
        ]
    );
    // The Director was not offered the Solver's server.
    let director_tools: Vec<Value> = world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "director")
        .flat_map(|(_, body)| body["tools"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        director_tools
            .iter()
            .all(|tool| !tool["name"].as_str().unwrap_or_default().contains("__"))
    );
    let kinds = world.journal_kinds("mcp");
    assert!(
        kinds.iter().filter(|k| *k == "tool_call_finished").count() >= 3,
        "{kinds:?}"
    );

    let settings = settings(&world);
    settings.bind(|| {
        insta::assert_json_snapshot!("mcp_tools_sent_responses", mcp_tools_sent(&world));
        insta::assert_json_snapshot!(
            "mcp_run_json_servers",
            world.run_json("mcp")["options"]["mcp"],
            {"[0].command" => "[TEST SERVER]"}
        );
        let show = world.infty().args(["show", "mcp"]).assert().success();
        let text = String::from_utf8(show.get_output().stdout.clone()).unwrap();
        let servers: String = text
            .lines()
            .skip_while(|line| !line.starts_with("MCP servers:"))
            .take(3)
            .collect::<Vec<_>>()
            .join("\n")
            .replace(&test_server().display().to_string(), "[TEST SERVER]");
        insta::assert_snapshot!("mcp_show_servers", servers);
        let show = world
            .infty()
            .args(["show", "mcp", "--json"])
            .assert()
            .success();
        let value: Value = serde_json::from_slice(&show.get_output().stdout).unwrap();
        insta::assert_json_snapshot!(
            "mcp_show_json_servers",
            value["mcp_servers"],
            {"[0].command" => "[TEST SERVER]"}
        );
    });
    world.assert_secret_nowhere();
}

#[test]
fn chat_completions_gets_the_same_tools_nested() {
    let world = World::new();
    let chat = |sse: ChatSse| ScriptedReply::sse(sse.usage(50, 10).build());
    world.server.push(
        "solver",
        chat(ChatSse::new("c1").function_call("call_add", "t__add", r#"{"a":1,"b":2}"#)),
    );
    world.server.push(
        "solver",
        chat(ChatSse::new("c2").function_call(
            "call_w",
            "write_file",
            &json!({"path": "deliverable/x.txt", "content": "x"}).to_string(),
        )),
    );
    world.server.push(
        "solver",
        chat(ChatSse::new("c3").text(&deliver("deliverable/x.txt"))),
    );
    let flag = mcp_flag(&world);
    world
        .create(
            "chat",
            "Add.",
            &["--wire-api", "chat", "--verifiers", "0", "--mcp", &flag],
        )
        .success();
    assert_eq!(outputs(&world, "chat")[0].1, "3");
    insta::assert_json_snapshot!("mcp_tools_sent_chat", mcp_tools_sent(&world));
}

#[test]
fn a_server_that_crashes_is_restarted_once_then_gives_tool_errors() {
    let world = World::new();
    for (id, tool) in [
        ("c1", "t__crash"),
        ("c2", "t__echo"),
        ("c3", "t__crash"),
        ("c4", "t__echo"),
    ] {
        world.call("solver", id, tool, &json!({"text": id}));
    }
    world.write_and_deliver("deliverable/x.txt", "x");
    let flag = mcp_flag(&world);
    world
        .create(
            "crash",
            "Crash it.",
            &["--verifiers", "0", "--sandbox", "off", "--mcp", &flag],
        )
        .success();
    assert_eq!(world.run_json("crash")["status"], "succeeded");
    insta::assert_debug_snapshot!("mcp_crash_outputs", &outputs(&world, "crash")[..4]);
    assert_eq!(received(&world), ["crash", "echo", "crash"]);
}

#[test]
fn a_hanging_call_times_out_as_a_tool_error() {
    let world = World::new();
    write_config(
        &world,
        &format!(
            "[mcp.servers.t]\ncommand = {:?}\nargs = [\"--counter\", {:?}]\ntimeout_secs = 1\n",
            test_server().display().to_string(),
            counter(&world).display().to_string()
        ),
    );
    world.call("solver", "c1", "t__hang", &json!({}));
    world.call(
        "solver",
        "c2",
        "t__echo",
        &json!({"text": "alive", "times": 2}),
    );
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .create("hang", "Hang.", &["--verifiers", "0"])
        .success();
    let outputs = outputs(&world, "hang");
    assert_eq!(
        outputs[0].1,
        "error: `t__hang` did not finish within 1s (MCP server t), so its effects are unknown; check before retrying"
    );
    assert_eq!(outputs[1].1, "alive alive");
    assert_eq!(
        world.run_json("hang")["options"]["mcp"][0]["timeout_secs"],
        1
    );
}

#[test]
fn sigkill_during_an_mcp_call_then_resume_reports_it_interrupted_and_never_resends_it() {
    let world = World::new();
    world.call("solver", "call_hang", "t__hang", &json!({}));
    let flag = mcp_flag(&world);
    let mut child = world.spawn_create(
        "killed",
        "Hang.",
        &["--verifiers", "0", "--sandbox", "off", "--mcp", &flag],
    );
    // The call reached the server: kill the driver while it waits for the answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while received(&world).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never reached the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(world.run_json("killed")["status"], "running");
    // Its stdin closed with the driver, so the server went too.
    assert_no_process_with(&counter(&world));

    world.write_and_deliver("deliverable/x.txt", "x");
    world.resume("killed", &[]).success();
    assert_eq!(world.run_json("killed")["status"], "succeeded");
    let outputs = outputs(&world, "killed");
    assert_eq!(outputs[0].0, "call_hang");
    assert!(outputs[0].1.starts_with("interrupted"), "{outputs:?}");
    assert_eq!(received(&world), ["hang"], "the call was sent again");
    assert_no_process_with(&counter(&world));
    // The resumed run started its server again from run.json.
    assert_eq!(world.run_json("killed")["options"]["mcp"][0]["name"], "t");
}

#[test]
fn a_server_that_cannot_start_stops_create_with_one_line() {
    let world = World::new();
    let flag = format!("db={} --fail", test_server().display());
    let assert = world
        .create("nostart", "x", &["--mcp", &flag])
        .failure()
        .code(1);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    let stderr = stderr.trim_end();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("mcp server db could not start: the handshake failed"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot open its database"), "{stderr}");
    assert!(
        !world.run_dir("nostart").exists(),
        "a run folder was left behind"
    );
    assert!(world.server.requests().is_empty());
    let assert = world
        .create("nostart", "x", &["--mcp", &flag, "--json"])
        .failure()
        .code(1);
    let value: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(value["status"], "error");
    assert_eq!(value["run_id"], Value::Null);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .starts_with("mcp server db could not start")
    );
}

#[test]
fn a_bad_mcp_flag_is_a_usage_error() {
    let world = World::new();
    let assert = world
        .create("bad", "x", &["--mcp", "no-equals-sign"])
        .failure()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("expected NAME=COMMAND [ARGS...] or NAME=URL"),
        "{stderr}"
    );
}

#[test]
fn a_streamable_http_server_is_used_with_headers_from_the_environment() {
    let world = World::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let url = runtime
        .block_on(infty_mcp::test_server::serve_http(
            Some(counter(&world)),
            cancel.clone(),
        ))
        .unwrap();
    write_config(
        &world,
        &format!("[mcp.servers.web]\nurl = {url:?}\nheaders = {{ \"X-Token\" = \"WEB_TOKEN\" }}\n"),
    );
    world.call("solver", "c1", "web__add", &json!({"a": 20, "b": 22}));
    world.write_and_deliver("deliverable/x.txt", "x");
    world
        .infty()
        .env("WEB_TOKEN", "tok-web-DO-NOT-LEAK")
        .args(["create", "--objective", "Add.", "--run-id", "web"])
        .args(["--base-url", &world.server.base_url(), "--verifiers", "0"])
        .assert()
        .success();
    assert_eq!(outputs(&world, "web")[0].1, "42");
    assert_eq!(received(&world), ["add"]);
    let run_json = std::fs::read_to_string(world.run_dir("web").join("run.json")).unwrap();
    assert!(!run_json.contains("tok-web-DO-NOT-LEAK"));
    assert_eq!(
        read_json(&world.run_dir("web").join("run.json"))["options"]["mcp"][0]["headers"],
        json!({"X-Token": "WEB_TOKEN"})
    );
    cancel.cancel();
}
