//! The async driver through whole runs against a scripted server: every progress callback
//! fires, the journal and run.json follow the run, cancellation leaves a resumable run.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::Utf8PathBuf;
use infty_core::{
    CoreError, InftyOrchestrator, Progress, ProgressReporter, RoleConfig, RunExecutionOptions,
    RunParams,
};
use infty_model::test_support::{ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{ModelClient, ProviderConfig, RetryPolicy};
use infty_store::{Budgets, Role};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Records the name of every event it receives: a note by its journal kind, anything else
/// by its variant.
#[derive(Default)]
struct Recorder {
    seen: Mutex<BTreeSet<String>>,
}

impl Recorder {
    fn names(&self) -> BTreeSet<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl ProgressReporter for Recorder {
    fn report(&self, event: &Progress<'_>) {
        let name = match event {
            Progress::Noted(note) => serde_json::to_value(note).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string(),
            Progress::RunStarted { .. } => "run_started".to_string(),
            Progress::RoleThinking { .. } => "role_thinking".to_string(),
            Progress::TextDelta { .. } => "text_delta".to_string(),
            Progress::RoleMessage { .. } => "role_message".to_string(),
            Progress::ToolCallStarted { .. } => "tool_call_started (with arguments)".to_string(),
            Progress::ToolCallFinished { .. } => "tool_call_finished (with output)".to_string(),
            Progress::PlanUpdated { .. } => "plan_updated".to_string(),
            Progress::Usage { .. } => "usage".to_string(),
            Progress::ModelRetry { .. } => "model_retry (with delay)".to_string(),
            Progress::RunFinished(_) => "run_finished".to_string(),
        };
        self.seen.lock().unwrap().insert(name);
    }
}

fn route(body: &Value) -> String {
    body["instructions"]
        .as_str()
        .and_then(|text| {
            text.lines()
                .rev()
                .find_map(|line| line.strip_prefix("Your role name in this run: "))
        })
        .map(|role| role.trim_end_matches('.').to_string())
        .unwrap_or_default()
}

fn text(id: &str, text: &str, input_tokens: u64) -> ScriptedReply {
    ScriptedReply::sse(
        ResponsesSse::new(id)
            .text(text)
            .usage(input_tokens, 10)
            .build(),
    )
}

fn call(id: &str, call_id: &str, tool: &str, args: Value) -> ScriptedReply {
    ScriptedReply::sse(
        ResponsesSse::new(id)
            .function_call(call_id, tool, &args.to_string())
            .usage(100, 10)
            .build(),
    )
}

fn client(server: &ScriptedServer) -> Arc<ModelClient> {
    let mut provider = ProviderConfig::openai();
    provider.base_url = server.base_url();
    provider.api_key = Some(infty_model::ApiKey::new("sk-scripted"));
    provider.retry = RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        ..RetryPolicy::default()
    };
    Arc::new(ModelClient::new(provider).unwrap())
}

fn params(verifiers: usize) -> RunParams {
    RunParams {
        run_id: Some("run".to_string()),
        run_root: None,
        solver: RoleConfig::new(Role::Solver, "m").with_context_window(Some(1000)),
        director: RoleConfig::new(Role::Director, "m"),
        verifiers: (1..=verifiers)
            .map(|n| RoleConfig::new(Role::verifier(n), "m"))
            .collect(),
    }
}

fn root(dir: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8PathBuf::try_from(dir.path().to_path_buf()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_progress_callback_fires_over_a_run() {
    let server = ScriptedServer::start_async(route).await;
    let s = |reply| server.push("solver", reply);
    // A 503 first (model_retry), then a reply without a signal (invalid_signal).
    server.push(
        "solver",
        ScriptedReply::error(503, r#"{"error":{"message":"overloaded"}}"#),
    );
    s(text("r1", "Working on it.", 100));
    s(call(
        "r2",
        "c_plan",
        "update_plan",
        json!({"explanation": null, "plan": [{"step": "write", "status": "in_progress"}]}),
    ));
    s(text(
        "r3",
        r#"{"type":"direction_request","prompt":"ok?"}"#,
        100,
    ));
    server.push(
        "director",
        text("d1", r#"{"directive":"Go.","rationale":null}"#, 100),
    );
    // A prompt of 900 tokens crosses 80 % of the 1000-token window: the next call compacts.
    s(ScriptedReply::sse(
        ResponsesSse::new("r4")
            .function_call(
                "c_write",
                "write_file",
                &json!({"path": "deliverable/x.txt", "content": "x"}).to_string(),
            )
            .usage(900, 10)
            .build(),
    ));
    s(text("r5", "Summary: x is written; deliver it next.", 100));
    s(text(
        "r6",
        r#"{"type":"final_delivery","deliverable_path":"missing.txt"}"#,
        100,
    ));
    s(text(
        "r7",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/x.txt"}"#,
        100,
    ));
    server.push("verifier-1", text("v1", "no verdict here", 100));
    server.push(
        "verifier-1",
        text(
            "v2",
            r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
            100,
        ),
    );

    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let orchestrator = InftyOrchestrator::with_runs_root(client(&server), root(&dir))
        .with_progress(recorder.clone());
    let outcome = orchestrator
        .execute_new_run(
            params(1),
            RunExecutionOptions {
                objective: "Write x.".to_string(),
                budgets: Budgets {
                    max_total_tokens: Some(1700),
                    ..Budgets::default()
                },
                // Core's tests have no sandbox helper; infty-cli's and infty-sandbox's test it.
                sandbox: infty_store::SandboxSettings::all(infty_store::SandboxMode::Off),
                ..RunExecutionOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(outcome.deliverable_path.ends_with("deliverable/x.txt"));
    assert_eq!(server.remaining().values().sum::<usize>(), 0);

    let expected: BTreeSet<String> = [
        "run_started",
        "driver_started",
        "objective_posted",
        "role_thinking",
        "text_delta",
        "role_message",
        "invalid_signal",
        "direction_requested",
        "directive_issued",
        "final_delivery",
        "deliverable_rejected",
        "verification_started",
        "verdict_recorded",
        "verifier_no_verdict",
        "verifier_replaced",
        "verification_summary",
        "tool_call_started",
        "tool_call_started (with arguments)",
        "tool_call_finished",
        "tool_call_finished (with output)",
        "plan_updated",
        "compacted",
        "usage",
        "budget_warning",
        "model_retry",
        "model_retry (with delay)",
        "run_succeeded",
        "run_finished",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let seen = recorder.names();
    let missing: Vec<_> = expected.difference(&seen).collect();
    assert!(missing.is_empty(), "events never reported: {missing:?}");

    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/run.json")).unwrap())
            .unwrap();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        run["roles"][2]["previous_rollouts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_leaves_an_interrupted_run_that_resumes() {
    let mut server = ScriptedServer::start_async(route).await;
    server.stall_next(
        "solver",
        ResponsesSse::new("slow")
            .text("thinking")
            .build_without_terminal(),
        Duration::from_secs(3),
    );
    let dir = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let cancel = CancellationToken::new();
    let orchestrator = InftyOrchestrator::with_runs_root(client(&server), root(&dir))
        .with_progress(recorder.clone())
        .with_cancellation(cancel.clone());
    let run = tokio::spawn({
        let orchestrator = orchestrator.clone();
        async move {
            orchestrator
                .execute_new_run(
                    params(0),
                    RunExecutionOptions {
                        objective: "Write x.".to_string(),
                        // Core's tests have no sandbox helper; infty-cli's and infty-sandbox's test it.
                        sandbox: infty_store::SandboxSettings::all(infty_store::SandboxMode::Off),
                        ..RunExecutionOptions::default()
                    },
                )
                .await
        }
    });
    while server.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    let result = run.await.unwrap();
    assert!(
        matches!(
            result,
            Err(CoreError::Stopped {
                ending: infty_core::events::Terminal::Interrupted,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(recorder.names().contains("run_interrupted"));
    let run_json = std::fs::read_to_string(dir.path().join("run/run.json")).unwrap();
    assert!(run_json.contains("\"interrupted\""));

    server.push(
        "solver",
        call(
            "r1",
            "c1",
            "write_file",
            json!({"path": "deliverable/x.txt", "content": "x"}),
        ),
    );
    server.push(
        "solver",
        text(
            "r2",
            r#"{"type":"final_delivery","deliverable_path":"deliverable/x.txt"}"#,
            10,
        ),
    );
    let resumed = InftyOrchestrator::with_runs_root(client(&server), root(&dir));
    // Settings run.json does not record come back through the overrides.
    let mut solver = RoleConfig::new(Role::Solver, "m");
    solver.instructions = Some("CUSTOM SOLVER INSTRUCTIONS".to_string());
    let overrides = infty_core::ResumeOverrides {
        roles: [(Role::Solver, solver)].into_iter().collect(),
        ..infty_core::ResumeOverrides::default()
    };
    let outcome = resumed.resume_run("run", overrides).await.unwrap();
    assert_eq!(outcome.run_id, "run");
    let last = server.requests().pop().unwrap().1;
    assert!(
        last["instructions"]
            .as_str()
            .unwrap()
            .starts_with("CUSTOM SOLVER INSTRUCTIONS"),
        "{}",
        last["instructions"]
    );
}

#[test]
fn model_errors_become_failure_kinds() {
    use infty_core::events::FailureKind;
    use infty_core::orchestrator::{DEFAULT_LIMIT_WAIT, failure_kind};
    use infty_core::session::SessionError;
    use infty_model::ModelError;

    let now = time::OffsetDateTime::UNIX_EPOCH;
    let at = |secs: i64| FailureKind::UsageLimited {
        resume_after: now + time::Duration::seconds(secs),
    };
    let retryable = |status: Option<u16>, delay: Option<u64>| ModelError::Retryable {
        url: "u".into(),
        status,
        message: "limit".into(),
        delay: delay.map(Duration::from_secs),
        request_id: None,
    };
    let cases = [
        (retryable(Some(429), Some(7200)), at(7200)),
        (
            ModelError::RetriesExhausted {
                attempts: 5,
                last: Box::new(retryable(Some(429), None)),
            },
            at(DEFAULT_LIMIT_WAIT.as_secs() as i64),
        ),
        (
            ModelError::RetriesExhausted {
                attempts: 5,
                last: Box::new(retryable(Some(503), None)),
            },
            FailureKind::Transient,
        ),
        (
            ModelError::QuotaExceeded {
                url: "u".into(),
                status: Some(429),
                message: "insufficient_quota".into(),
                request_id: None,
            },
            FailureKind::Quota,
        ),
        (
            ModelError::ContextWindowExceeded {
                url: "u".into(),
                status: Some(400),
                message: "too long".into(),
                request_id: None,
            },
            FailureKind::ContextOverflow,
        ),
        (
            ModelError::Auth {
                url: "u".into(),
                status: 401,
                message: "bad key".into(),
                request_id: None,
            },
            FailureKind::Auth,
        ),
        (
            ModelError::InvalidRequest {
                url: "u".into(),
                status: Some(400),
                message: "bad".into(),
                request_id: None,
            },
            FailureKind::Other,
        ),
    ];
    for (source, expected) in cases {
        let text = source.to_string();
        let error = SessionError::Model {
            role: "solver".into(),
            source,
        };
        assert_eq!(failure_kind(&error, now), expected, "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_in_another_case_or_in_the_wrong_place_is_refused_before_any_folder_is_made() {
    // A name in another case never becomes a role: it is refused with the rule it breaks.
    for name in ["Solver", "DIRECTOR", "Verifier-1"] {
        let message = Role::parse(name).unwrap_err().to_string();
        assert!(
            message.contains(&format!("invalid role name `{name}`"))
                && message.contains("lower case"),
            "{message}"
        );
    }
    let server = ScriptedServer::start_async(route).await;
    let dir = tempfile::tempdir().unwrap();
    let orchestrator = InftyOrchestrator::with_runs_root(client(&server), root(&dir));
    let cases = [
        ("solver", Role::Director),
        ("director", Role::verifier(1)),
        ("verifier", Role::Solver),
    ];
    for (slot, role) in cases {
        let name = role.to_string();
        let mut run = params(1);
        match slot {
            "solver" => run.solver = RoleConfig::new(role, "m"),
            "director" => run.director = RoleConfig::new(role, "m"),
            _ => run.verifiers = vec![RoleConfig::new(role, "m")],
        }
        let error = orchestrator
            .spawn_run(
                run,
                RunExecutionOptions {
                    objective: "Write x.".to_string(),
                    ..RunExecutionOptions::default()
                },
            )
            .err()
            .unwrap_or_else(|| panic!("{name} as the {slot} was accepted"));
        let message = error.to_string();
        assert!(
            message.contains(&format!("role {name} is in the wrong place")),
            "{message}"
        );
    }
    assert!(
        !dir.path().join("run").exists(),
        "a refused run left a folder"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_solver_outgrows_the_context_window_compacts_and_succeeds() {
    use infty_model::test_support::CONTEXT_OVERFLOW_BODIES;
    for (server_name, status, body) in CONTEXT_OVERFLOW_BODIES {
        let server = ScriptedServer::start_async(route).await;
        let s = |reply| server.push("solver", reply);
        s(call(
            "r1",
            "c_write",
            "write_file",
            json!({"path": "deliverable/x.txt", "content": "x"}),
        ));
        s(ScriptedReply::error(status, body));
        s(text("r2", "Objective: write x. Done: x is written.", 100));
        s(text(
            "r3",
            r#"{"type":"final_delivery","deliverable_path":"deliverable/x.txt"}"#,
            100,
        ));
        server.push(
            "verifier-1",
            text(
                "v1",
                r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
                100,
            ),
        );
        let dir = tempfile::tempdir().unwrap();
        let orchestrator = InftyOrchestrator::with_runs_root(client(&server), root(&dir));
        let mut run = params(1);
        // No context window known: the provider's refusal alone triggers the compaction.
        run.solver = RoleConfig::new(Role::Solver, "m");
        let outcome = orchestrator
            .execute_new_run(
                run,
                RunExecutionOptions {
                    objective: "Write x.".to_string(),
                    sandbox: infty_store::SandboxSettings::all(infty_store::SandboxMode::Off),
                    ..RunExecutionOptions::default()
                },
            )
            .await
            .unwrap_or_else(|error| panic!("{server_name}: {error}"));
        assert!(outcome.deliverable_path.ends_with("deliverable/x.txt"));
        assert_eq!(
            server.remaining().values().sum::<usize>(),
            0,
            "{server_name}"
        );

        let journal = std::fs::read_to_string(dir.path().join("run/events.jsonl")).unwrap();
        let compactions: Vec<Value> = journal
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|event| event["kind"] == "compacted")
            .collect();
        assert_eq!(compactions.len(), 1, "{server_name}: {journal}");
        assert_eq!(compactions[0]["role"], "solver");
        assert_eq!(compactions[0]["cause"], "overflow");
        assert!(
            !journal.contains("turn_failed") && !journal.contains("solver_failed"),
            "{server_name}: {journal}"
        );
        let retried = &server.requests()[3].1;
        let first = retried["input"][0]["content"].to_string();
        assert!(
            first.contains("Your earlier conversation was compacted"),
            "{server_name}: {first}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_that_run_json_lost_to_a_crash_is_caught_up_from_the_journal_on_resume() {
    let mut server = ScriptedServer::start_async(route).await;
    server.push(
        "solver",
        text("r1", r#"{"type":"direction_request","prompt":"ok?"}"#, 300),
    );
    server.stall_next(
        "director",
        ResponsesSse::new("slow")
            .text("thinking")
            .build_without_terminal(),
        Duration::from_secs(3),
    );
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let orchestrator = InftyOrchestrator::with_runs_root(client(&server), root(&dir))
        .with_cancellation(cancel.clone());
    let options = RunExecutionOptions {
        objective: "Write x.".to_string(),
        sandbox: infty_store::SandboxSettings::all(infty_store::SandboxMode::Off),
        ..RunExecutionOptions::default()
    };
    let run = tokio::spawn({
        let orchestrator = orchestrator.clone();
        async move { orchestrator.execute_new_run(params(0), options).await }
    });
    while !server
        .requests()
        .iter()
        .any(|(route, _)| route == "director")
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cancel.cancel();
    assert!(run.await.unwrap().is_err());
    let path = dir.path().join("run/run.json");
    let read =
        || -> Value { serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap() };
    assert_eq!(read()["usage"]["solver"]["input_tokens"], 300);
    // A crash between the journal's write and run.json's leaves run.json behind.
    let mut behind = read();
    behind["usage"] = json!({});
    std::fs::write(&path, serde_json::to_string_pretty(&behind).unwrap()).unwrap();

    server.push(
        "director",
        text("d1", r#"{"directive":"Go.","rationale":null}"#, 200),
    );
    server.push(
        "solver",
        call(
            "r2",
            "c1",
            "write_file",
            json!({"path": "deliverable/x.txt", "content": "x"}),
        ),
    );
    server.push(
        "solver",
        text(
            "r3",
            r#"{"type":"final_delivery","deliverable_path":"deliverable/x.txt"}"#,
            10,
        ),
    );
    let resumed = InftyOrchestrator::with_runs_root(client(&server), root(&dir));
    resumed
        .resume_run("run", infty_core::ResumeOverrides::default())
        .await
        .unwrap();
    let usage = &read()["usage"];
    // The first turn's 300 come back from the journal; the resumed turns add theirs.
    assert_eq!(usage["solver"]["input_tokens"], 300 + 100 + 10, "{usage}");
    assert_eq!(usage["director"]["input_tokens"], 200, "{usage}");
}
