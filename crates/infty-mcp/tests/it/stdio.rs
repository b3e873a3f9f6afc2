//! The stdio test server as a child process: tools listed and named, calls and their
//! results, a crash (one restart, then errors), a hang (timeout), output cut to the budget,
//! a server that cannot start, and nothing left running after shutdown.

use infty_core::tools::ToolProvider;
use infty_mcp::{HostEnv, McpTools};
use infty_store::McpServerRecord;
use serde_json::json;

use super::{counter_in, received, stdio_record};

fn env() -> HostEnv {
    HostEnv::of([
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("OPENAI_API_KEY", "sk-never-passed".to_string()),
    ])
}

async fn start(record: McpServerRecord) -> McpTools {
    McpTools::start(&[record], &env(), None).await.unwrap()
}

#[tokio::test]
async fn tools_are_listed_named_and_offered_to_their_roles() {
    let dir = tempfile::tempdir().unwrap();
    let tools = start(McpServerRecord {
        roles: vec!["solver".into(), "verifier".into()],
        tools: Some(vec!["echo".into(), "add".into(), "labels".into()]),
        ..stdio_record("t", &counter_in(&dir), 10)
    })
    .await;
    let names = |role: &str| -> Vec<String> {
        tools
            .definitions(role)
            .into_iter()
            .map(|definition| definition.name)
            .collect()
    };
    assert_eq!(names("solver"), ["t__add", "t__echo", "t__labels"]);
    assert_eq!(names("verifier-1"), names("solver"));
    assert!(names("director").is_empty());
    assert_eq!(
        tools.records()[0].offered,
        ["t__echo", "t__add", "t__labels"]
    );
    insta::assert_json_snapshot!("stdio_definitions", tools.definitions("solver"));
    tools.shutdown().await;
}

#[tokio::test]
async fn calls_reach_the_server_without_the_nulls_of_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let counter = counter_in(&dir);
    let tools = start(stdio_record("t", &counter, 10)).await;
    let result = tools
        .call("t__echo", r#"{"text": "hi", "times": null}"#, 1000)
        .await;
    assert!(result.ok, "{}", result.output);
    assert_eq!(result.output, "hi");
    let result = tools.call("t__add", r#"{"a": 2, "b": 40.5}"#, 1000).await;
    assert_eq!(result.output, "42.5");
    // The server's own refusal is a failed result with its message.
    let result = tools.call("t__echo", r#"{"text": 7}"#, 1000).await;
    assert!(!result.ok);
    assert_eq!(
        result.output,
        "error: MCP server t failed the call of `t__echo`: `text` must be a string"
    );
    let result = tools.call("t__echo", "[1]", 1000).await;
    assert!(!result.ok);
    assert_eq!(received(&counter).len(), 3);
    assert_eq!(
        received(&counter)[0],
        json!({"tool": "echo", "arguments": {"text": "hi"}})
    );
    tools.shutdown().await;
}

#[tokio::test]
async fn a_large_result_is_cut_like_shell_output() {
    let dir = tempfile::tempdir().unwrap();
    let tools = start(stdio_record("t", &counter_in(&dir), 10)).await;
    let result = tools.call("t__big", r#"{"bytes": 100000}"#, 200).await;
    assert!(result.ok);
    assert!(result.output.len() < 300, "{}", result.output.len());
    assert!(result.output.starts_with("line 1\n"), "{}", result.output);
    assert!(
        result.output.contains("bytes omitted ..."),
        "{}",
        result.output
    );
    tools.shutdown().await;
}

#[tokio::test]
async fn a_crashed_server_is_restarted_once_then_its_tools_fail() {
    let dir = tempfile::tempdir().unwrap();
    let counter = counter_in(&dir);
    let tools = start(stdio_record("t", &counter, 10)).await;
    let crash = tools.call("t__crash", "{}", 1000).await;
    assert!(!crash.ok);
    assert_eq!(
        crash.output,
        "error: MCP server t stopped during this call of `t__crash`, so its effects are unknown; check before retrying. It will be restarted for the next call."
    );
    let echo = tools.call("t__echo", r#"{"text": "back"}"#, 1000).await;
    assert!(echo.ok, "{}", echo.output);
    assert_eq!(echo.output, "back");
    let crash = tools.call("t__crash", "{}", 1000).await;
    assert!(
        crash.output.ends_with(
            "It was already restarted once, so its tools are unavailable for the rest of this run."
        ),
        "{}",
        crash.output
    );
    let echo = tools.call("t__echo", r#"{"text": "again"}"#, 1000).await;
    assert!(!echo.ok);
    assert_eq!(
        echo.output,
        "error: MCP server t is unavailable for the rest of this run (it stopped during a call; it was already restarted once)"
    );
    // Every call that reached a server reached it once: none was sent again.
    let tools_called: Vec<_> = received(&counter)
        .iter()
        .map(|call| call["tool"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tools_called, ["crash", "echo", "crash"]);
    tools.shutdown().await;
}

#[tokio::test]
async fn a_hanging_call_times_out_and_the_server_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let tools = start(stdio_record("t", &counter_in(&dir), 1)).await;
    let hang = tools.call("t__hang", "{}", 1000).await;
    assert!(!hang.ok);
    assert_eq!(
        hang.output,
        "error: `t__hang` did not finish within 1s (MCP server t), so its effects are unknown; check before retrying"
    );
    let echo = tools
        .call("t__echo", r#"{"text": "still here"}"#, 1000)
        .await;
    assert_eq!(echo.output, "still here");
    tools.shutdown().await;
}

#[tokio::test]
async fn a_server_that_cannot_start_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let failing = McpServerRecord {
        args: vec!["--fail".into()],
        ..stdio_record("db", &counter_in(&dir), 10)
    };
    let error = McpTools::start(&[failing], &env(), None).await.unwrap_err();
    let message = error.to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(
        message.starts_with("mcp server db could not start: the handshake failed"),
        "{message}"
    );
    assert!(
        message.contains("its last words: test server: cannot open its database"),
        "{message}"
    );

    let missing = McpServerRecord {
        command: Some("/nonexistent/mcp-server".into()),
        ..stdio_record("gone", &counter_in(&dir), 10)
    };
    let error = McpTools::start(&[missing], &env(), None).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "mcp server gone could not start: cannot run `/nonexistent/mcp-server`: No such file or directory (os error 2)"
    );
}

#[tokio::test]
async fn shutdown_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker-for-this-test");
    let tools = start(stdio_record("t", &marker, 10)).await;
    let running = || {
        let out = std::process::Command::new("pgrep")
            .args(["-f", marker.to_str().unwrap()])
            .output()
            .unwrap();
        !out.stdout.is_empty()
    };
    assert!(running());
    tools.shutdown().await;
    assert!(!running(), "the server outlived its shutdown");
}

#[tokio::test]
async fn the_server_gets_an_allowlisted_environment() {
    // `env` is not a test-server tool: check the environment through /proc instead.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("env-marker");
    let record = McpServerRecord {
        env: [("MODE".to_string(), "ro".to_string())].into(),
        ..stdio_record("t", &marker, 10)
    };
    let tools = start(record).await;
    let out = std::process::Command::new("pgrep")
        .args(["-f", marker.to_str().unwrap()])
        .output()
        .unwrap();
    let pid = String::from_utf8(out.stdout).unwrap();
    let pid = pid.lines().next().unwrap().trim();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let mut names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let text = String::from_utf8_lossy(entry);
            text.split('=').next().unwrap().to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["MODE", "PATH"]);
    tools.shutdown().await;
}
