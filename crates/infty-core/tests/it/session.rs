//! `RoleSession` driving a real `ModelClient` against a scripted server on 127.0.0.1: the
//! model ↔ tool loop, tool failures returned as tool output, the tool-step cap, rollouts
//! written before each step, restore and `resume_turn`, observer callbacks, and compaction.
//! The request bodies the model receives are asserted (and snapshotted) as sent.

use std::fs;
use std::os::unix::fs::symlink;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use infty_core::prompts;
use infty_core::session::{
    CONSTRAINED_REPLY_MESSAGE, DUPLICATE_CALL_ID_OUTPUT, INTERRUPTED_TOOL_OUTPUT, NoObserver,
    OUTPUT_CAP_RETRIES, RoleSession, RolloutEntry, SessionConfig, SessionObserver,
    TOOL_STEP_LIMIT_OUTPUT, output_capped_message,
};
use infty_core::tools::{ToolContext, ToolPolicy, ToolResult, ToolSet};
use infty_model::test_support::{
    CONTEXT_OVERFLOW_BODIES, ResponsesSse, ScriptedReply, ScriptedServer,
};
use infty_model::{
    ApiKey, Item, ModelApi, ModelClient, OutputSchema, ProviderConfig, RetryPolicy, StreamEvent,
    ToolChoice, WireApi,
};
use infty_store::{JsonlWriter, TokenUsage, read_jsonl};
use serde_json::{Value, json};

/// A run folder in a temporary directory, an `outside/` folder next to it that escapes aim
/// at, and a scripted server answering every request from one queue.
struct World {
    _temp: tempfile::TempDir,
    root: Utf8PathBuf,
    run: Utf8PathBuf,
    server: ScriptedServer,
    model: Arc<dyn ModelApi>,
    counter: Mutex<u32>,
}

impl World {
    async fn new() -> World {
        World::with_provider(ProviderConfig::openai()).await
    }

    /// A world whose model client speaks Responses with `provider`'s capabilities.
    async fn with_provider(mut provider: ProviderConfig) -> World {
        let temp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(fs::canonicalize(temp.path()).unwrap()).unwrap();
        let run = root.join("run");
        fs::create_dir_all(run.join("rollouts")).unwrap();
        fs::create_dir_all(root.join("outside")).unwrap();
        fs::write(root.join("outside/secret.txt"), "outside secret\n").unwrap();
        let server = ScriptedServer::start_async(|_| "model".to_string()).await;
        provider.base_url = server.base_url();
        provider.wire_api = WireApi::Responses;
        provider.api_key = Some(ApiKey::new("sk-test"));
        // An exhausted script answers 400, which is never retried; keep any retry short.
        provider.retry = RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        let model: Arc<dyn ModelApi> = Arc::new(ModelClient::new(provider).unwrap());
        World {
            _temp: temp,
            root,
            run,
            server,
            model,
            counter: Mutex::new(0),
        }
    }

    fn next_id(&self) -> String {
        let mut counter = self.counter.lock().unwrap();
        *counter += 1;
        format!("resp_{counter}")
    }

    /// Queues a reply with this text.
    fn say(&self, text: &str, input_tokens: u64) {
        let sse = ResponsesSse::new(&self.next_id())
            .text(text)
            .usage(input_tokens, 10);
        self.server.push("model", ScriptedReply::sse(sse.build()));
    }

    /// Queues a reply with these tool calls, in order.
    fn calls(&self, calls: &[(&str, &str, Value)], input_tokens: u64) {
        let mut sse = ResponsesSse::new(&self.next_id()).usage(input_tokens, 10);
        for (call_id, tool, arguments) in calls {
            sse = sse.function_call(call_id, tool, &arguments.to_string());
        }
        self.server.push("model", ScriptedReply::sse(sse.build()));
    }

    fn tools(&self, policy: ToolPolicy) -> ToolSet {
        let env = vec![
            (
                "PATH".to_string(),
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string()),
            ),
            ("VISIBLE".to_string(), "shown".to_string()),
            ("OPENAI_API_KEY".to_string(), "sk-never-shown".to_string()),
            ("DEPLOY_TOKEN".to_string(), "tok-never-shown".to_string()),
        ];
        let spec = infty_core::tools::SandboxSpec::unsandboxed()
            .with_env_names(["VISIBLE".to_string()])
            .with_base_env(env.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        ToolSet::new(ToolContext::new(self.run.clone()), policy).with_sandbox(spec)
    }

    fn rollout_path(&self) -> Utf8PathBuf {
        self.run.join("rollouts/solver.jsonl")
    }

    fn session(&self, config: SessionConfig, tools: ToolSet) -> RoleSession {
        let writer = JsonlWriter::open(&self.rollout_path()).unwrap();
        RoleSession::new(config, self.model.clone(), tools, writer)
    }

    fn restore(&self, config: SessionConfig, tools: ToolSet) -> RoleSession {
        let writer = JsonlWriter::open(&self.rollout_path()).unwrap();
        RoleSession::restore(
            config,
            self.model.clone(),
            tools,
            &self.rollout_path(),
            writer,
        )
        .unwrap()
    }

    fn rollout(&self) -> Vec<RolloutEntry> {
        read_jsonl(&self.rollout_path()).unwrap()
    }

    /// Every request body received so far.
    fn requests(&self) -> Vec<Value> {
        self.server
            .requests()
            .into_iter()
            .map(|(_, body)| body)
            .collect()
    }

    /// A body as pretty JSON with this world's temporary folder shown as `[TMP]`.
    fn redact(&self, body: &Value) -> String {
        serde_json::to_string_pretty(body)
            .unwrap()
            .replace(self.root.as_str(), "[TMP]")
    }
}

/// The Solver's session settings, as the orchestrator builds them.
fn solver_config() -> SessionConfig {
    SessionConfig {
        role: infty_store::Role::Solver,
        model: "scripted-model".to_string(),
        reasoning_effort: None,
        reasoning_summary: None,
        instructions: format!(
            "{}\n\nYour role name in this run: solver.",
            prompts::SOLVER.trim_end()
        ),
        output_schema: Some(OutputSchema {
            name: infty_signals::schema::SOLVER_SIGNAL_NAME.to_string(),
            schema: infty_signals::schema::solver_signal(),
            strict: true,
        }),
        max_tool_steps: 50,
        context_window: None,
        compact_threshold: 0.8,
        compact_keep_items: 8,
        max_output_tokens: None,
        first_tool_choice: ToolChoice::Auto,
    }
}

/// A short configuration, for tests that look at the input rather than the instructions.
fn small_config() -> SessionConfig {
    SessionConfig {
        instructions: "You are a test role.".to_string(),
        output_schema: None,
        ..solver_config()
    }
}

/// The `function_call_output` items of a request body, as (call id, output).
fn outputs_of(body: &Value) -> Vec<(String, String)> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call_output")
        .map(|item| {
            (
                item["call_id"].as_str().unwrap().to_string(),
                item["output"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One line per input item of a request body: `role: text` or `type call_id ...`.
fn input_outline(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| match item["type"].as_str().unwrap() {
            "message" => {
                let text = match &item["content"] {
                    Value::String(text) => text.clone(),
                    parts => parts[0]["text"].as_str().unwrap().to_string(),
                };
                let first_line = text.lines().next().unwrap_or_default().to_string();
                format!("{}: {first_line}", item["role"].as_str().unwrap())
            }
            "function_call" => format!(
                "function_call {} {}",
                item["call_id"].as_str().unwrap(),
                item["name"].as_str().unwrap()
            ),
            "function_call_output" => {
                format!("function_call_output {}", item["call_id"].as_str().unwrap())
            }
            other => other.to_string(),
        })
        .collect()
}

fn entry_kinds(entries: &[RolloutEntry]) -> Vec<String> {
    entries.iter().map(entry_kind).collect()
}

fn entry_kind(entry: &RolloutEntry) -> String {
    match entry {
        RolloutEntry::Item { item } => match item {
            Item::Message { role, text } => {
                format!("{}: {}", role.as_str(), text.lines().next().unwrap_or(""))
            }
            Item::FunctionCall { call_id, name, .. } => format!("function_call {call_id} {name}"),
            Item::FunctionOutput { call_id, .. } => format!("function_output {call_id}"),
            Item::Reasoning { .. } => "reasoning".to_string(),
        },
        RolloutEntry::TurnCompleted { text } => format!("turn_completed: {text}"),
        RolloutEntry::Compacted { history, .. } => {
            format!("compacted ({} items)", history.len())
        }
    }
}

#[tokio::test]
async fn a_turn_without_tool_calls_returns_the_text() {
    let world = World::new().await;
    world.say(
        r#"{"type":"direction_request","prompt":"Which language?"}"#,
        120,
    );
    let mut session = world.session(solver_config(), world.tools(ToolPolicy::solver()));

    let output = session
        .run_turn("Write a word counter.", &NoObserver)
        .await
        .unwrap();

    assert_eq!(
        output.text,
        r#"{"type":"direction_request","prompt":"Which language?"}"#
    );
    assert_eq!(
        output.usage,
        TokenUsage {
            input_tokens: 120,
            output_tokens: 10,
            total_tokens: 130,
            ..TokenUsage::default()
        }
    );
    assert!(!session.turn_in_flight());
    assert_eq!(
        entry_kinds(&world.rollout()),
        [
            "user: Write a word counter.",
            r#"assistant: {"type":"direction_request","prompt":"Which language?"}"#,
            r#"turn_completed: {"type":"direction_request","prompt":"Which language?"}"#,
        ]
    );
    let requests = world.requests();
    assert_eq!(requests.len(), 1);
    // Instructions, every Solver tool with its JSON Schema, and the signal's structured output.
    insta::assert_snapshot!("solver_first_request", world.redact(&requests[0]));
}

#[tokio::test]
async fn a_tool_call_then_a_reply() {
    let world = World::new().await;
    world.calls(
        &[(
            "call_w",
            "write_file",
            json!({"path": "notes/a.txt", "content": "alpha\n"}),
        )],
        100,
    );
    world.say("written", 150);
    let mut session = world.session(small_config(), world.tools(ToolPolicy::solver()));

    let output = session
        .run_turn("Write a note.", &NoObserver)
        .await
        .unwrap();

    assert_eq!(output.text, "written");
    assert_eq!(output.usage.input_tokens, 250);
    assert_eq!(
        fs::read_to_string(world.run.join("notes/a.txt")).unwrap(),
        "alpha\n"
    );
    let requests = world.requests();
    assert_eq!(requests.len(), 2);
    insta::assert_snapshot!("request_after_a_tool_call", world.redact(&requests[1]));
}

#[tokio::test]
async fn parallel_calls_run_and_are_answered_in_call_order() {
    let world = World::new().await;
    // The read sees the first write and not the second: the calls ran in order.
    world.calls(
        &[
            (
                "call_1",
                "write_file",
                json!({"path": "p.txt", "content": "one\n"}),
            ),
            ("call_2", "read_file", json!({"path": "p.txt"})),
            (
                "call_3",
                "write_file",
                json!({"path": "p.txt", "content": "two\n"}),
            ),
        ],
        100,
    );
    world.say("done", 100);
    let mut session = world.session(small_config(), world.tools(ToolPolicy::solver()));

    session.run_turn("Go.", &NoObserver).await.unwrap();

    let requests = world.requests();
    assert_eq!(
        input_outline(&requests[1]),
        [
            "user: Go.",
            "function_call call_1 write_file",
            "function_call call_2 read_file",
            "function_call call_3 write_file",
            "function_call_output call_1",
            "function_call_output call_2",
            "function_call_output call_3",
        ]
    );
    let outputs = outputs_of(&requests[1]);
    assert!(outputs[1].1.contains("one"), "{}", outputs[1].1);
    assert!(!outputs[1].1.contains("two"), "{}", outputs[1].1);
    assert_eq!(
        fs::read_to_string(world.run.join("p.txt")).unwrap(),
        "two\n"
    );
    // Parallel calls are allowed on the wire.
    assert_eq!(requests[0]["parallel_tool_calls"], json!(true));
}

#[tokio::test]
async fn tool_failures_and_escapes_come_back_as_tool_output() {
    let world = World::new().await;
    symlink(world.root.join("outside"), world.run.join("link_out")).unwrap();
    let mut policy = ToolPolicy::solver();
    policy.max_output_bytes = 2048;
    let cases: Vec<(&str, &str, String)> = vec![
        ("unknown tool", "browse", json!({"url": "x"}).to_string()),
        ("invalid JSON", "read_file", "{\"path\": ".to_string()),
        (
            "parent escape",
            "read_file",
            json!({"path": "../outside/secret.txt"}).to_string(),
        ),
        (
            "absolute outside",
            "read_file",
            json!({"path": world.root.join("outside/secret.txt")}).to_string(),
        ),
        (
            "symlink out, read",
            "read_file",
            json!({"path": "link_out/secret.txt"}).to_string(),
        ),
        (
            "symlink out, write",
            "write_file",
            json!({"path": "link_out/planted.txt", "content": "x"}).to_string(),
        ),
        (
            "shell timeout",
            "shell",
            json!({"command": "echo begun; sleep 30", "timeout_ms": 300, "workdir": null})
                .to_string(),
        ),
        (
            "secrets hidden from shell",
            "shell",
            json!({"command": "echo \"visible=$VISIBLE key=${OPENAI_API_KEY:-unset} token=${DEPLOY_TOKEN:-unset}\"", "timeout_ms": null, "workdir": null}).to_string(),
        ),
    ];
    let mut session = world.session(small_config(), world.tools(policy));
    let mut transcript = String::new();
    for (index, (label, tool, arguments)) in cases.iter().enumerate() {
        let call_id = format!("call_{index}");
        let sse = ResponsesSse::new(&world.next_id()).function_call(&call_id, tool, arguments);
        world.server.push("model", ScriptedReply::sse(sse.build()));
        world.say("noted", 10);

        // The turn goes on after the failure: the model reads it and replies.
        let output = session.run_turn(label, &NoObserver).await.unwrap();
        assert_eq!(output.text, "noted", "{label}");

        let requests = world.requests();
        let (answered, text) = outputs_of(requests.last().unwrap()).pop().unwrap();
        assert_eq!(answered, call_id, "{label}");
        transcript.push_str(&format!(
            "## {label}: {tool} {arguments}\n{}\n\n",
            text.trim_end()
        ));
    }
    assert!(!world.root.join("outside/planted.txt").exists());
    insta::assert_snapshot!(transcript.replace(world.root.as_str(), "[TMP]"));
}

#[tokio::test]
async fn huge_tool_output_is_capped_keeping_head_and_tail() {
    let world = World::new().await;
    let mut policy = ToolPolicy::solver();
    policy.max_output_bytes = 4096;
    world.calls(
        &[(
            "call_big",
            "shell",
            json!({"command": "seq 1 200000", "timeout_ms": null, "workdir": null}),
        )],
        10,
    );
    world.say("seen", 10);
    let mut session = world.session(small_config(), world.tools(policy));

    session.run_turn("Count.", &NoObserver).await.unwrap();

    let (_, output) = outputs_of(&world.requests()[1]).pop().unwrap();
    // About the budget plus a short frame, never the 1.3 MB the command printed.
    assert!(output.len() < 4096 + 512, "{} bytes", output.len());
    let lines: Vec<&str> = output.lines().collect();
    assert!(lines.contains(&"1") && lines.contains(&"2"), "head lost");
    assert!(
        lines.contains(&"199999") && lines.contains(&"200000"),
        "tail lost"
    );
    assert!(!lines.contains(&"100000"), "middle kept");
}

#[tokio::test]
async fn a_required_tool_choice_binds_only_the_first_request_of_a_turn() {
    let world = World::new().await;
    let config = SessionConfig {
        first_tool_choice: ToolChoice::Required,
        ..small_config()
    };
    let list = json!({"path": ".", "depth": null});
    world.calls(&[("call_1", "list_dir", list.clone())], 10);
    world.say("listed", 10);
    world.say("second turn, no tool", 10);
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    session.run_turn("Look around.", &NoObserver).await.unwrap();
    let output = session.run_turn("Again.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "second turn, no tool");
    let choices: Vec<Value> = world
        .requests()
        .iter()
        .map(|body| body["tool_choice"].clone())
        .collect();
    // Each turn opens with a forced call; after a call has run the model may answer.
    assert_eq!(
        choices,
        [json!("required"), json!("auto"), json!("required")]
    );
}

#[tokio::test]
async fn the_tool_step_cap_asks_for_a_reply_without_tools() {
    let world = World::new().await;
    let mut config = small_config();
    config.max_tool_steps = 2;
    let list = json!({"path": ".", "depth": null});
    world.calls(&[("call_1", "list_dir", list.clone())], 10);
    world.calls(&[("call_2", "list_dir", list.clone())], 10);
    // Over the cap the model still tries a call: it is answered, never run.
    let sse = ResponsesSse::new(&world.next_id())
        .text("giving up on tools")
        .function_call(
            "call_3",
            "write_file",
            &json!({"path": "late.txt", "content": "x"}).to_string(),
        );
    world.server.push("model", ScriptedReply::sse(sse.build()));
    world.say("next turn", 10);
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Explore.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "giving up on tools");
    assert!(!world.run.join("late.txt").exists());
    let requests = world.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].get("tools").is_some());
    let last = &requests[2];
    assert!(last.get("tools").is_none(), "{last}");
    assert!(last.get("tool_choice").is_none(), "{last}");
    assert_eq!(
        input_outline(last).last().unwrap(),
        "user: You have used the 2 tool calls allowed in one turn. Do not call tools now: reply with your signal."
    );

    // The next turn's history is consistent: the late call has its output.
    session.run_turn("Continue.", &NoObserver).await.unwrap();
    let outputs = outputs_of(&world.requests()[3]);
    assert_eq!(
        outputs.last().unwrap(),
        &("call_3".to_string(), TOOL_STEP_LIMIT_OUTPUT.to_string())
    );
}

#[tokio::test]
async fn the_tool_step_cap_counts_calls_not_responses() {
    let world = World::new().await;
    let mut config = small_config();
    config.max_tool_steps = 3;
    // One response with 1,000 calls: only the first three run.
    let calls: Vec<(String, Value)> = (0..1000)
        .map(|i| {
            (
                format!("call_{i}"),
                json!({"path": format!("f{i}.txt"), "content": "x"}),
            )
        })
        .collect();
    let borrowed: Vec<(&str, &str, Value)> = calls
        .iter()
        .map(|(id, args)| (id.as_str(), "write_file", args.clone()))
        .collect();
    world.calls(&borrowed, 10);
    world.say("done", 10);
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Write.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "done");
    let written = (0..1000)
        .filter(|i| world.run.join(format!("f{i}.txt")).exists())
        .count();
    assert_eq!(written, 3);
    let requests = world.requests();
    assert_eq!(requests.len(), 2);
    let outputs = outputs_of(&requests[1]);
    assert_eq!(outputs.len(), 1000, "every call is answered");
    assert!(
        outputs[..3]
            .iter()
            .all(|(_, o)| o != TOOL_STEP_LIMIT_OUTPUT)
    );
    assert!(
        outputs[3..]
            .iter()
            .all(|(_, o)| o == TOOL_STEP_LIMIT_OUTPUT)
    );
    assert!(
        requests[1].get("tools").is_none(),
        "the cap is reached: no tools"
    );
}

#[tokio::test]
async fn a_call_id_names_one_call() {
    let world = World::new().await;
    let write = |path: &str| json!({"path": path, "content": "x"});
    // Two calls of one response share an id, and a later response reuses it.
    world.calls(
        &[
            ("call_1", "write_file", write("a.txt")),
            ("call_1", "write_file", write("b.txt")),
        ],
        10,
    );
    world.calls(&[("call_1", "write_file", write("c.txt"))], 10);
    world.say("done", 10);
    let mut session = world.session(small_config(), world.tools(ToolPolicy::solver()));

    session.run_turn("Write.", &NoObserver).await.unwrap();

    assert!(world.run.join("a.txt").exists());
    assert!(
        !world.run.join("b.txt").exists(),
        "a duplicate id never runs"
    );
    assert!(
        world.run.join("c.txt").exists(),
        "an id reused by a later response is a new call"
    );
    let last = world.requests().pop().unwrap();
    let calls: Vec<&str> = last["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["type"] == "function_call")
        .map(|item| item["call_id"].as_str().unwrap())
        .collect();
    // Renamed, so the history the provider sees stays unambiguous.
    assert_eq!(calls, ["call_1", "call_1_dup2", "call_1_dup3"]);
    let outputs = outputs_of(&last);
    assert_eq!(outputs.len(), 3);
    assert_eq!(
        outputs[1],
        (
            "call_1_dup2".to_string(),
            DUPLICATE_CALL_ID_OUTPUT.to_string()
        )
    );
    assert_eq!(outputs[2].0, "call_1_dup3");
    assert_ne!(outputs[2].1, DUPLICATE_CALL_ID_OUTPUT);
}

/// Records every callback, with what the rollout file held at that moment.
struct Recorder {
    rollout: Utf8PathBuf,
    log: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(rollout: &Utf8Path) -> Recorder {
        Recorder {
            rollout: rollout.to_path_buf(),
            log: Mutex::new(Vec::new()),
        }
    }

    fn rollout_state(&self) -> String {
        let entries: Vec<RolloutEntry> = read_jsonl(&self.rollout).unwrap_or_default();
        match entries.last() {
            Some(last) => format!("rollout {}, last: {}", entries.len(), entry_kind(last)),
            None => "rollout empty".to_string(),
        }
    }

    fn record(&self, line: String) {
        self.log.lock().unwrap().push(line);
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl SessionObserver for Recorder {
    fn stream_event(&self, role: &infty_store::Role, event: &StreamEvent) {
        let line = match event {
            // A model call starts: the rollout must already hold everything before it.
            StreamEvent::Created { response_id } => {
                format!(
                    "{role} stream created {response_id} [{}]",
                    self.rollout_state()
                )
            }
            StreamEvent::TextDelta(delta) => {
                let mut log = self.log.lock().unwrap();
                match log.last_mut() {
                    Some(last) if last.starts_with(&format!("{role} stream text ")) => {
                        last.push_str(delta);
                    }
                    _ => log.push(format!("{role} stream text {delta}")),
                }
                return;
            }
            StreamEvent::ReasoningDelta(delta) => format!("{role} stream reasoning {delta}"),
            StreamEvent::ToolCallStarted { call_id, name } => {
                format!("{role} stream tool_call_started {call_id} {name}")
            }
            StreamEvent::Usage(usage) => format!(
                "{role} stream usage in={} out={}",
                usage.input_tokens, usage.output_tokens
            ),
            StreamEvent::Retrying { attempt, .. } => format!("{role} stream retrying {attempt}"),
        };
        self.record(line);
    }

    fn tool_started(&self, role: &infty_store::Role, call_id: &str, tool: &str, arguments: &str) {
        self.record(format!(
            "{role} tool_started {call_id} {tool} {arguments} [{}]",
            self.rollout_state()
        ));
    }

    fn tool_finished(
        &self,
        role: &infty_store::Role,
        call_id: &str,
        tool: &str,
        result: &ToolResult,
    ) {
        self.record(format!(
            "{role} tool_finished {call_id} {tool} ok={} plan={} [{}]",
            result.ok,
            result.plan.is_some(),
            self.rollout_state()
        ));
    }

    fn compacted(
        &self,
        role: &infty_store::Role,
        prompt_tokens: u64,
        kept_items: usize,
        cause: infty_core::events::CompactionCause,
    ) {
        self.record(format!(
            "{role} compacted prompt_tokens={prompt_tokens} kept_items={kept_items}{} [{}]",
            if cause == infty_core::events::CompactionCause::Overflow {
                " cause=overflow"
            } else {
                ""
            },
            self.rollout_state()
        ));
    }

    fn output_capped(&self, role: &infty_store::Role, max_output_tokens: u32) {
        self.record(format!(
            "{role} output_capped {max_output_tokens} [{}]",
            self.rollout_state()
        ));
    }
}

#[tokio::test]
async fn every_callback_fires_and_the_rollout_leads_each_step() {
    let world = World::new().await;
    let mut config = small_config();
    config.context_window = Some(1000);
    config.compact_threshold = 0.5;
    config.compact_keep_items = 2;
    let plan =
        json!({"explanation": null, "plan": [{"step": "count words", "status": "in_progress"}]});
    world.calls(
        &[
            ("call_plan", "update_plan", plan),
            (
                "call_w",
                "write_file",
                json!({"path": "wc.py", "content": "print(1)\n"}),
            ),
        ],
        600,
    );
    world.say("Objective: count words. Next action: reply.", 600);
    world.say("done", 200);
    let recorder = Recorder::new(&world.rollout_path());
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    session.run_turn("Count words.", &recorder).await.unwrap();

    insta::assert_snapshot!(recorder.log());
    // The rollout file as written: what `RoleSession::restore` reads back.
    let rollout = fs::read_to_string(world.rollout_path()).unwrap();
    insta::assert_snapshot!("rollout_with_tools_and_compaction", rollout);
}

#[tokio::test]
async fn a_tool_call_cut_by_a_crash_is_answered_as_interrupted_and_never_rerun() {
    let world = World::new().await;
    let started = world.run.join("started.txt");
    world.calls(
        &[(
            "call_slow",
            "shell",
            json!({"command": "echo run >> started.txt; sleep 30; echo done > finished.txt", "timeout_ms": null, "workdir": null}),
        )],
        10,
    );
    {
        let mut session = world.session(small_config(), world.tools(ToolPolicy::solver()));
        let turn = session.run_turn("Build it.", &NoObserver);
        // Written, not only created: the shell creates the file before `echo` writes to it.
        let command_started = async {
            while !fs::read_to_string(&started).is_ok_and(|text| !text.is_empty()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        // The driver dies while the command runs: the turn's future is dropped.
        tokio::select! {
            _ = turn => panic!("the turn finished although its command sleeps"),
            () = command_started => {}
        }
    }
    assert_eq!(
        entry_kinds(&world.rollout()),
        ["user: Build it.", "function_call call_slow shell"]
    );

    world.say("checked the state", 10);
    let mut session = world.restore(small_config(), world.tools(ToolPolicy::solver()));
    assert!(session.turn_in_flight());
    let output = session
        .resume_turn("this message is not posted again", &NoObserver)
        .await
        .unwrap();

    assert_eq!(output.text, "checked the state");
    let requests = world.requests();
    assert_eq!(
        input_outline(&requests[1]),
        [
            "user: Build it.",
            "function_call call_slow shell",
            "function_call_output call_slow"
        ]
    );
    assert_eq!(
        outputs_of(&requests[1]),
        [("call_slow".to_string(), INTERRUPTED_TOOL_OUTPUT.to_string())]
    );
    assert_eq!(fs::read_to_string(&started).unwrap(), "run\n", "re-run");
    assert!(!world.run.join("finished.txt").exists());
    assert!(!session.turn_in_flight());
    assert_eq!(
        entry_kinds(&world.rollout()),
        [
            "user: Build it.",
            "function_call call_slow shell",
            "function_output call_slow",
            "assistant: checked the state",
            "turn_completed: checked the state",
        ]
    );
}

#[tokio::test]
async fn a_restored_session_between_turns_posts_the_next_message() {
    let world = World::new().await;
    world.say("first reply", 10);
    let mut session = world.session(small_config(), world.tools(ToolPolicy::solver()));
    session.run_turn("First.", &NoObserver).await.unwrap();
    let history = session.history().to_vec();
    drop(session);

    world.say("second reply", 10);
    let mut session = world.restore(small_config(), world.tools(ToolPolicy::solver()));
    assert_eq!(session.history(), history);
    assert!(!session.turn_in_flight());
    let output = session.resume_turn("Second.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "second reply");
    assert_eq!(
        input_outline(&world.requests()[1]),
        ["user: First.", "assistant: first reply", "user: Second."]
    );
}

/// A session whose compaction triggers at `threshold` of a 1000-token window.
fn compacting_config(threshold: f64, keep: usize) -> SessionConfig {
    SessionConfig {
        context_window: Some(1000),
        compact_threshold: threshold,
        compact_keep_items: keep,
        ..small_config()
    }
}

fn is_compaction_request(body: &Value) -> bool {
    input_outline(body)
        .last()
        .is_some_and(|last| last == &format!("user: {}", prompts::COMPACT.lines().next().unwrap()))
}

#[tokio::test]
async fn compaction_triggers_exactly_at_the_threshold() {
    // (prompt tokens of the last response, window share, compacts before the next call)
    let cases = [
        (0, 0.5, false),
        (499, 0.5, false),
        (500, 0.5, true),
        (501, 0.5, true),
        (799, 0.8, false),
        (800, 0.8, true),
        // A share of zero is no threshold at all, not "always".
        (999, 0.0, false),
        // A share above one is capped at the whole window.
        (999, 1.5, false),
        (1000, 1.5, true),
    ];
    for (tokens, share, compacts) in cases {
        let world = World::new().await;
        world.say("first", tokens);
        let mut session = world.session(
            compacting_config(share, 2),
            world.tools(ToolPolicy::solver()),
        );
        session.run_turn("One.", &NoObserver).await.unwrap();
        if compacts {
            world.say("Objective: one, two.", tokens);
        }
        world.say("second", 10);
        session.run_turn("Two.", &NoObserver).await.unwrap();

        let requests = world.requests();
        let case = format!("{tokens} tokens at share {share}");
        assert_eq!(requests.len(), if compacts { 3 } else { 2 }, "{case}");
        assert_eq!(is_compaction_request(&requests[1]), compacts, "{case}");
        let kinds = entry_kinds(&world.rollout());
        assert_eq!(
            kinds.iter().any(|kind| kind.starts_with("compacted")),
            compacts,
            "{case}"
        );
    }
}

#[tokio::test]
async fn compaction_mid_turn_restarts_from_the_summary_and_survives_restore() {
    let world = World::new().await;
    world.calls(
        &[(
            "call_1",
            "write_file",
            json!({"path": "a.txt", "content": "a\n"}),
        )],
        100,
    );
    world.calls(
        &[
            ("call_2", "read_file", json!({"path": "a.txt"})),
            ("call_3", "list_dir", json!({"path": ".", "depth": null})),
        ],
        900,
    );
    world.say(
        "Objective: write a.txt.\nPlan: done: write, read; remaining: reply.\nNext action: reply.",
        950,
    );
    world.say("done", 200);
    let recorder = Recorder::new(&world.rollout_path());
    let config = compacting_config(0.8, 3);
    let mut session = world.session(config.clone(), world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Write a.txt.", &recorder).await.unwrap();

    // The summary call's tokens count with the turn's.
    assert_eq!(output.usage.input_tokens, 100 + 900 + 950 + 200);
    assert_eq!(output.usage.output_tokens, 40);
    let requests = world.requests();
    assert_eq!(requests.len(), 4);
    // The summary is asked of the whole history, without tools or structured output.
    assert!(is_compaction_request(&requests[2]));
    assert!(requests[2].get("tools").is_none());
    assert!(requests[2].get("text").is_none());
    // The next call starts from the summary; the turn's message, cut from the kept tail,
    // is restated; the kept tail keeps both parallel calls with their outputs.
    insta::assert_snapshot!(
        "request_after_compaction",
        world.redact(&json!({"input": requests[3]["input"]}))
    );
    assert_eq!(
        input_outline(&requests[3]),
        [
            "user: Your earlier conversation was compacted. Your hand-off summary of it:",
            "user: Write a.txt.",
            "function_call call_2 read_file",
            "function_call call_3 list_dir",
            "function_call_output call_2",
            "function_call_output call_3",
        ]
    );
    assert!(
        recorder
            .log()
            .contains("solver compacted prompt_tokens=900 kept_items=4")
    );

    // The rollout holds the compaction; a restored session has the compacted history.
    let rollout = world.rollout();
    let compacted: Vec<&RolloutEntry> = rollout
        .iter()
        .filter(|entry| matches!(entry, RolloutEntry::Compacted { .. }))
        .collect();
    assert_eq!(compacted.len(), 1);
    let RolloutEntry::Compacted { summary, history } = compacted[0] else {
        unreachable!()
    };
    assert!(summary.starts_with("Objective: write a.txt."));
    assert_eq!(history.len(), 6);
    let live = session.history().to_vec();
    drop(session);
    let mut restored = world.restore(config, world.tools(ToolPolicy::solver()));
    assert_eq!(restored.history(), live);
    assert!(!restored.turn_in_flight());

    world.say("again", 10);
    restored.run_turn("Next.", &NoObserver).await.unwrap();
    let outline = input_outline(&world.requests()[4]);
    assert_eq!(
        outline.first().unwrap(),
        "user: Your earlier conversation was compacted. Your hand-off summary of it:"
    );
    assert_eq!(outline.len(), 8);
}

#[tokio::test]
async fn an_empty_summary_keeps_the_history() {
    let world = World::new().await;
    world.say("first", 900);
    world.say("   ", 900);
    world.say("second", 10);
    let mut session = world.session(compacting_config(0.5, 1), world.tools(ToolPolicy::solver()));
    session.run_turn("One.", &NoObserver).await.unwrap();
    session.run_turn("Two.", &NoObserver).await.unwrap();

    let requests = world.requests();
    assert!(is_compaction_request(&requests[1]));
    assert_eq!(
        input_outline(&requests[2]),
        ["user: One.", "assistant: first", "user: Two."]
    );
    assert!(
        !entry_kinds(&world.rollout())
            .iter()
            .any(|kind| kind.starts_with("compacted"))
    );
}

/// The text of the last user message of a Responses request body.
fn last_user_text(body: &Value) -> String {
    body["input"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|item| item["role"] == "user")
        .and_then(|item| item["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_reply_cut_at_the_output_cap_is_sent_back_then_answered() {
    let world = World::new().await;
    // Reported by the server (`response.incomplete`), then only by the count of generated
    // tokens reaching the cap (llama.cpp's `/v1/responses`), then a complete reply.
    let cut = ResponsesSse::new(&world.next_id())
        .text("{\"type\": \"direction_req")
        .usage(100, 64)
        .build_incomplete("max_output_tokens");
    world.server.push("model", ScriptedReply::sse(cut));
    let counted = ResponsesSse::new(&world.next_id())
        .text("{\"type\": \"final_deli")
        .usage(120, 64)
        .build();
    world.server.push("model", ScriptedReply::sse(counted));
    world.say("short enough", 140);
    let mut config = small_config();
    config.max_output_tokens = Some(64);
    let recorder = Recorder::new(&world.rollout_path());
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Reply.", &recorder).await.unwrap();

    assert_eq!(output.text, "short enough");
    assert_eq!(output.usage.output_tokens, 64 + 64 + 10);
    let requests = world.requests();
    assert_eq!(requests.len(), 3);
    for body in &requests {
        assert_eq!(
            body["max_output_tokens"], 64,
            "every request carries the cap"
        );
    }
    assert_eq!(last_user_text(&requests[0]), "Reply.");
    for body in &requests[1..] {
        assert_eq!(last_user_text(body), output_capped_message(64));
    }
    let capped: Vec<String> = recorder
        .log()
        .lines()
        .filter(|line| line.contains("output_capped"))
        .map(str::to_string)
        .collect();
    assert_eq!(capped.len(), 2, "{}", recorder.log());
    assert!(
        capped[0].starts_with("solver output_capped 64"),
        "{capped:?}"
    );
}

#[tokio::test]
async fn a_reply_that_keeps_hitting_the_cap_ends_the_turn_with_its_text() {
    let world = World::new().await;
    for _ in 0..=OUTPUT_CAP_RETRIES {
        let cut = ResponsesSse::new(&world.next_id())
            .text("{\"type\": ")
            .usage(100, 32)
            .build_incomplete("max_output_tokens");
        world.server.push("model", ScriptedReply::sse(cut));
    }
    let mut config = small_config();
    config.max_output_tokens = Some(32);
    let mut session = world.session(config, world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Reply.", &NoObserver).await.unwrap();

    // The cut text becomes the reply: the caller parses it (and refuses it) as usual.
    assert_eq!(output.text, "{\"type\": ");
    assert_eq!(
        world.requests().len(),
        usize::try_from(OUTPUT_CAP_RETRIES).unwrap() + 1
    );
    assert!(world.server.remaining().values().all(|n| *n == 0));
}

#[tokio::test]
async fn where_a_schema_excludes_tools_the_constrained_reply_is_asked_without_tools() {
    // llama.cpp ignores `tools` when a schema comes with them: the schema goes only with a
    // request of its own, after the free-text reply.
    let world = World::with_provider(ProviderConfig::llama_cpp()).await;
    world.calls(&[("call_l", "list_dir", json!({"path": "."}))], 100);
    world.say("I listed the folder and I am done.", 120);
    world.say(r#"{"type":"direction_request","prompt":"What next?"}"#, 140);
    let mut session = world.session(solver_config(), world.tools(ToolPolicy::solver()));

    let output = session.run_turn("Look around.", &NoObserver).await.unwrap();

    assert_eq!(
        output.text,
        r#"{"type":"direction_request","prompt":"What next?"}"#
    );
    let requests = world.requests();
    assert_eq!(requests.len(), 3);
    for body in &requests[..2] {
        assert!(body["tools"].is_array(), "tools offered");
        assert!(body.get("response_format").is_none() && body.get("text").is_none());
    }
    let last = &requests[2];
    assert!(last.get("tools").is_none(), "no tools with the schema");
    assert_eq!(
        last["response_format"]["json_schema"]["name"],
        infty_signals::schema::SOLVER_SIGNAL_NAME
    );
    assert_eq!(last_user_text(last), CONSTRAINED_REPLY_MESSAGE);
}

#[tokio::test]
async fn other_providers_send_the_schema_with_the_tools_and_ask_once() {
    let world = World::new().await;
    world.say(r#"{"type":"direction_request","prompt":"What next?"}"#, 100);
    let mut session = world.session(solver_config(), world.tools(ToolPolicy::solver()));

    session.run_turn("Look around.", &NoObserver).await.unwrap();

    let requests = world.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0]["tools"].is_array());
    assert_eq!(requests[0]["text"]["format"]["type"], "json_schema");
}

impl World {
    /// Queues the provider's refusal of a prompt longer than the context window.
    fn refuse_as_too_long(&self) {
        let (_, status, body) = CONTEXT_OVERFLOW_BODIES[0];
        self.server
            .push("model", ScriptedReply::error(status, body));
    }
}

/// A session that keeps `keep` items and knows no context window: only refusals compact it.
fn keeping(keep: usize) -> SessionConfig {
    SessionConfig {
        compact_keep_items: keep,
        ..small_config()
    }
}

#[tokio::test]
async fn every_servers_refusal_as_too_long_compacts_and_the_turn_goes_on() {
    for (server_name, status, body) in CONTEXT_OVERFLOW_BODIES {
        let world = World::new().await;
        world.say("first", 100);
        world.calls(
            &[(
                "call_1",
                "write_file",
                json!({"path": "a.txt", "content": "a\n"}),
            )],
            100,
        );
        world
            .server
            .push("model", ScriptedReply::error(status, body));
        world.say("Objective: two. Done: wrote a.txt.", 50);
        world.say("done", 60);
        let recorder = Recorder::new(&world.rollout_path());
        let config = keeping(2);
        let mut session = world.session(config.clone(), world.tools(ToolPolicy::solver()));
        session.run_turn("One.", &recorder).await.unwrap();

        let output = session.run_turn("Two.", &recorder).await.unwrap();

        assert_eq!(output.text, "done", "{server_name}");
        // The refused request's tokens are not reported; the summary's count with the turn's.
        assert_eq!(output.usage.input_tokens, 100 + 50 + 60, "{server_name}");
        let requests = world.requests();
        assert_eq!(requests.len(), 5, "{server_name}");
        // The summary is asked of the dropped items only, without tools.
        assert!(is_compaction_request(&requests[3]), "{server_name}");
        assert!(requests[3].get("tools").is_none(), "{server_name}");
        assert_eq!(
            input_outline(&requests[3])[..3],
            ["user: One.", "assistant: first", "user: Two."],
            "{server_name}"
        );
        // The refused request is asked again from the summary, the turn's message and the
        // kept call with its output, tools still on offer.
        assert_eq!(
            input_outline(&requests[4]),
            [
                "user: Your earlier conversation was compacted. Your hand-off summary of it:",
                "user: Two.",
                "function_call call_1 write_file",
                "function_call_output call_1",
            ],
            "{server_name}"
        );
        assert!(requests[4].get("tools").is_some(), "{server_name}");
        assert!(
            recorder
                .log()
                .contains("solver compacted prompt_tokens=100 kept_items=2 cause=overflow"),
            "{server_name}: {}",
            recorder.log()
        );
        let live = session.history().to_vec();
        drop(session);
        let restored = world.restore(config, world.tools(ToolPolicy::solver()));
        assert_eq!(restored.history(), live, "{server_name}");
    }
}

#[tokio::test]
async fn a_summary_too_long_to_ask_for_is_asked_of_the_later_half() {
    let world = World::new().await;
    world.say("first", 100);
    world.say("second", 100);
    world.refuse_as_too_long();
    world.refuse_as_too_long();
    world.say("Objective: three.", 50);
    world.say("third", 60);
    let mut session = world.session(keeping(2), world.tools(ToolPolicy::solver()));
    session.run_turn("One.", &NoObserver).await.unwrap();
    session.run_turn("Two.", &NoObserver).await.unwrap();

    let output = session.run_turn("Three.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "third");
    let requests = world.requests();
    assert_eq!(requests.len(), 6);
    let compact = format!("user: {}", prompts::COMPACT.lines().next().unwrap());
    assert_eq!(
        input_outline(&requests[3]),
        [
            "user: One.",
            "assistant: first",
            "user: Two.",
            compact.as_str()
        ]
    );
    assert_eq!(
        input_outline(&requests[4]),
        ["user: Two.", compact.as_str()]
    );
    assert_eq!(
        input_outline(&requests[5]),
        [
            "user: Your earlier conversation was compacted. Your hand-off summary of it:",
            "assistant: second",
            "user: Three.",
        ]
    );
}

#[tokio::test]
async fn items_no_summary_can_be_asked_for_are_dropped_with_a_note() {
    let world = World::new().await;
    world.say("first", 100);
    world.refuse_as_too_long();
    world.refuse_as_too_long();
    world.refuse_as_too_long();
    world.say("second", 60);
    let mut session = world.session(keeping(1), world.tools(ToolPolicy::solver()));
    session.run_turn("One.", &NoObserver).await.unwrap();

    let output = session.run_turn("Two.", &NoObserver).await.unwrap();

    assert_eq!(output.text, "second");
    let requests = world.requests();
    assert_eq!(requests.len(), 5);
    let RolloutEntry::Compacted { summary, history } = world
        .rollout()
        .into_iter()
        .find(|entry| matches!(entry, RolloutEntry::Compacted { .. }))
        .unwrap()
    else {
        unreachable!()
    };
    assert!(
        summary.contains("the 2 earlier items of your conversation no longer fitted"),
        "{summary}"
    );
    assert_eq!(history.len(), 2);
    assert_eq!(input_outline(&requests[4])[1..], ["user: Two."]);
}

#[tokio::test]
async fn a_refusal_compaction_cannot_cure_fails_the_turn_with_the_refusal() {
    // A first message alone: nothing to drop, so nothing is asked before failing.
    let world = World::new().await;
    world.refuse_as_too_long();
    let mut session = world.session(keeping(8), world.tools(ToolPolicy::solver()));
    let error = session.run_turn("Go.", &NoObserver).await.unwrap_err();
    assert!(error.is_context_overflow(), "{error}");
    assert!(
        error
            .to_string()
            .contains("maximum context length is 128000 tokens"),
        "{error}"
    );
    assert_eq!(world.requests().len(), 1);

    // Compacted to its summary and the turn's message, the prompt still does not fit.
    let world = World::new().await;
    world.say("first", 100);
    world.refuse_as_too_long();
    world.say("Objective: two.", 50);
    world.refuse_as_too_long();
    let mut session = world.session(keeping(2), world.tools(ToolPolicy::solver()));
    session.run_turn("One.", &NoObserver).await.unwrap();
    let error = session.run_turn("Two.", &NoObserver).await.unwrap_err();
    assert!(error.is_context_overflow(), "{error}");
    let requests = world.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(
        input_outline(&requests[3]),
        [
            "user: Your earlier conversation was compacted. Your hand-off summary of it:",
            "user: Two.",
        ]
    );
    assert_eq!(server_remaining(&world), 0);
    let compactions = world
        .rollout()
        .iter()
        .filter(|entry| matches!(entry, RolloutEntry::Compacted { .. }))
        .count();
    assert_eq!(compactions, 1);
}

fn server_remaining(world: &World) -> usize {
    world.server.remaining().values().sum()
}
