//! The real `infty` binary against a real llama.cpp `llama-server` running a real (tiny)
//! model, on both wire APIs. `.ci/llama-server.sh` builds the server and fetches the model;
//! `.ci/run` passes them in `INFTY_LLAMA_SERVER` and `INFTY_LLAMA_MODEL`.
//!
//! No assertion depends on the model being smart, all depend on the protocol being right:
//! the server accepts every request (no retries, no failed turns), every Solver reply parses
//! as a signal (no `invalid_signal`: the schema constrains the output), a tool call the
//! model is made to make (`--solver-tool-choice required`) is run and its output returned
//! to the model, which answers after it, every request is
//! capped, budgets and turn timeouts end runs cleanly, and the server is killed when the
//! test ends, even by a panic. Without the variables the suite is skipped with a notice,
//! unless `CI` or `INFTY_REQUIRE_LLAMA=1` is set: then it fails, so CI never passes it
//! silently.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::World;

const SERVER_ENV: &str = "INFTY_LLAMA_SERVER";
const MODEL_ENV: &str = "INFTY_LLAMA_MODEL";

/// The built server and model, or `None` (with a notice) when this machine has none.
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let get = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match (get(SERVER_ENV), get(MODEL_ENV)) {
        (Some(server), Some(model)) => {
            assert!(
                server.is_file(),
                "{SERVER_ENV}={} is not a file",
                server.display()
            );
            assert!(
                model.is_file(),
                "{MODEL_ENV}={} is not a file",
                model.display()
            );
            Some((server, model))
        }
        _ => {
            let required = std::env::var_os("CI").is_some_and(|v| !v.is_empty())
                || std::env::var("INFTY_REQUIRE_LLAMA").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{SERVER_ENV} and {MODEL_ENV} are not set: run .ci/llama-server.sh (which .ci/run calls) and export the two lines it prints"
            );
            eprintln!(
                "notice: llama-server suite skipped: set {SERVER_ENV} and {MODEL_ENV} (see .ci/llama-server.sh)"
            );
            None
        }
    }
}

/// A running `llama-server`, killed (and reaped) on drop, so a failing test leaves nothing.
struct LlamaServer {
    child: Child,
    port: u16,
    log: PathBuf,
    started_in: Duration,
}

impl LlamaServer {
    /// Starts the server on a free loopback port and waits for `/health`.
    fn start(server: &Path, model: &Path, log_dir: &Path) -> LlamaServer {
        // Not every version takes `--port 0`: pick a free port, and try again should another
        // process take it before the server binds it.
        let mut last_error = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = log_dir.join(format!("llama-server-{attempt}.log"));
            let started = Instant::now();
            let child = Command::new(server)
                .args(["-m"])
                .arg(model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                // The model's own window; one slot, so requests queue instead of sharing it;
                // one thread, so the tests running beside this one keep a core.
                .args(["-c", "8192", "-np", "1", "-t", "1", "--no-webui"])
                // SmolLM2's own template renders no tools, so the server would drop them:
                // ours renders them (see the template's header). Greedy sampling with a
                // fixed seed makes every run of the suite generate the same tokens.
                .arg("--jinja")
                .arg("--chat-template-file")
                .arg(tools_template())
                .args(["--temp", "0", "--seed", "1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
            let mut running = LlamaServer {
                child,
                port,
                log,
                started_in: Duration::ZERO,
            };
            match running.wait_healthy(Duration::from_secs(120)) {
                Ok(()) => {
                    running.started_in = started.elapsed();
                    return running;
                }
                Err(error) => last_error = error,
            }
        }
        panic!("llama-server never became healthy: {last_error}");
    }

    fn wait_healthy(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(format!(
                    "exited with {status}; log tail:\n{}",
                    tail(&log, 20)
                ));
            }
            if http_get(self.port, "/health").is_some_and(|(code, _)| code == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no healthy answer on port {} in {limit:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Generation speeds the server logged (`eval time = ... tokens per second`).
    fn tokens_per_second(&self) -> Vec<f64> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(" eval time =") && !line.contains("prompt eval"))
            .filter_map(|line| {
                let (head, _) = line.rsplit_once(" tokens per second")?;
                head.rsplit([' ', ',']).next()?.parse().ok()
            })
            .collect()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The chat template the server renders tools with (ours, beside this file).
fn tools_template() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/llama-tools.jinja")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A bare HTTP/1.1 GET on loopback: the status code and the body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The journal's events.
fn journal(world: &World, run_id: &str) -> Vec<Value> {
    std::fs::read_to_string(world.run_dir(run_id).join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// What one run against the real server showed.
struct Seen {
    status: String,
    output_tokens: u64,
    elapsed: Duration,
    /// Exit code, stderr tail and journal kinds, for failure messages.
    context: String,
}

/// The objective of the suite's runs.
const HELLO: &str = "Write the word hello to deliverable/hello.txt, then deliver that file.";

/// `infty create` for `objective` against `server` on `wire_api`, to its end; checks the
/// protocol.
fn run_against(
    world: &World,
    server: &LlamaServer,
    run_id: &str,
    wire_api: &str,
    objective: &str,
    extra: &[&str],
) -> Seen {
    let started = Instant::now();
    let output = world
        .infty_process()
        .args(["create", "--run-id", run_id, "--json"])
        .args(["--objective", objective])
        .args(["--provider", "llamacpp", "--base-url", &server.base_url()])
        .args(["--wire-api", wire_api, "--model", "smollm2"])
        .args(["--verifiers", "0"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let run = world.run_json(run_id);
    let events = journal(world, run_id);
    let context = format!(
        "{run_id}: exit {:?}\nstderr:\n{}\njournal kinds: {:?}",
        output.status.code(),
        tail(&stderr, 30),
        kinds(&events)
    );

    // The server took every request: nothing retried, no model error.
    for event in &events {
        let kind = event["kind"].as_str().unwrap_or_default();
        assert_ne!(kind, "model_retry", "{context}\n{event}");
        if matches!(kind, "solver_failed" | "director_failed") {
            let error = event["error"].as_str().unwrap_or_default();
            let refused = event["failure"]["type"] == "context_overflow";
            assert!(error.contains("timed out") || refused, "{context}\n{event}");
        }
    }
    // run.json says what was chosen and what each role may generate.
    assert_eq!(run["options"]["provider"]["name"], "llamacpp", "{context}");
    assert_eq!(
        run["options"]["provider"]["wire_api"], wire_api,
        "{context}"
    );
    for role in run["roles"].as_array().unwrap() {
        assert!(role["max_output_tokens"].as_u64().is_some(), "{context}");
    }
    let status = run["status"].as_str().unwrap_or_default().to_string();
    let output_tokens = run["usage"]
        .as_object()
        .map(|usage| {
            usage
                .values()
                .map(|u| u["output_tokens"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    assert!(!status.is_empty(), "{context}");
    Seen {
        status,
        output_tokens,
        elapsed,
        context,
    }
}

/// Every Solver reply parsed as a signal under the schema. A reply the output cap cut short
/// (journaled as `output_capped`, resent, and after that read as it is) is the one exception:
/// the grammar constrains what is generated, not how long.
fn assert_every_reply_is_a_signal(world: &World, run_id: &str) {
    let events = journal(world, run_id);
    let mut capped = false;
    let mut replies = 0;
    for event in &events {
        match event["kind"].as_str().unwrap_or_default() {
            "output_capped" if event["role"] == "solver" => capped = true,
            "invalid_signal" => {
                assert!(capped, "an uncut Solver reply did not parse: {event}");
                capped = false;
            }
            "direction_requested" | "final_delivery" => {
                capped = false;
            }
            "solver_replied" => replies += 1,
            _ => {}
        }
    }
    // How many replies parsed depends on the model (a 135M one often runs into the cap);
    // that every uncut one did, and that replies came at all, depends on the protocol.
    assert!(replies > 0, "no Solver reply at all: {:?}", kinds(&events));
}

/// The model called a tool, infty ran it, returned its output, and the model answered
/// after it: the journal has the call started and finished, and the Solver's rollout has
/// the call, its output, and a model item after that output.
fn assert_a_tool_call_went_round_trip(world: &World, run_id: &str) {
    let events = journal(world, run_id);
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "tool_call_finished" && e["role"] == "solver")
        .filter_map(|e| e["call_id"].as_str())
        .collect();
    assert!(
        !finished.is_empty(),
        "{run_id}: the Solver ran no tool: {:?}",
        kinds(&events)
    );
    let items = world.rollout_items(run_id, "solver");
    let call_id = finished[0];
    let called = items
        .iter()
        .position(|item| item["type"] == "function_call" && item["call_id"] == call_id)
        .unwrap_or_else(|| panic!("{run_id}: call {call_id} is not in the rollout"));
    let answered = items
        .iter()
        .skip(called)
        .position(|item| item["type"] == "function_output" && item["call_id"] == call_id)
        .map(|at| at + called)
        .unwrap_or_else(|| panic!("{run_id}: call {call_id} has no output in the rollout"));
    assert!(
        items.iter().skip(answered + 1).any(|item| {
            item["type"] == "function_call"
                || (item["type"] == "message" && item["role"] == "assistant")
        }),
        "{run_id}: the model never answered after the output of {call_id}"
    );
}

#[test]
fn a_real_llama_server_on_both_wire_apis() {
    let Some((server_bin, model)) = binaries() else {
        return;
    };
    let world = World::new();
    let suite = Instant::now();
    let server = LlamaServer::start(&server_bin, &model, world.home.path());
    eprintln!(
        "llama-server healthy in {:.2}s",
        server.started_in.as_secs_f64()
    );

    // Detection: the server says it is llama.cpp on /props.
    let (code, props) = http_get(server.port, "/props").unwrap();
    assert_eq!(code, 200);
    assert!(props.contains("default_generation_settings"), "{props}");

    let mut seen = Vec::new();
    for wire_api in ["chat", "responses"] {
        let run_id = format!("real-{wire_api}");
        // One Solver turn (and the Director's answer, should it ask), each response capped:
        // the run ends by its budget, or succeeds should the model deliver a file it wrote.
        let result = run_against(
            &world,
            &server,
            &run_id,
            wire_api,
            HELLO,
            &[
                "--max-turns",
                "1",
                "--max-output-tokens",
                "192",
                "--timeout-secs",
                "120",
                // The first request of the turn must call a tool; two calls at most, then
                // the turn's reply is asked for under the schema.
                "--solver-tool-choice",
                "required",
                "--max-tool-steps",
                "2",
            ],
        );
        assert!(
            matches!(result.status.as_str(), "budget_exhausted" | "succeeded"),
            "{run_id} ended as {}: {}",
            result.status,
            result.context
        );
        assert_every_reply_is_a_signal(&world, &run_id);
        assert_a_tool_call_went_round_trip(&world, &run_id);
        assert_eq!(world.run_json(&run_id)["options"]["max_tool_steps"], 2);
        assert!(result.output_tokens > 0, "{run_id}: no usage recorded");
        eprintln!(
            "{run_id}: {} in {:.1}s, {} output tokens",
            result.status,
            result.elapsed.as_secs_f64(),
            result.output_tokens
        );
        seen.push(result);
    }

    // A turn timeout ends the run cleanly too (failed, resumable), and the server survives
    // the cancelled request.
    let timed_out = run_against(
        &world,
        &server,
        "real-timeout",
        "chat",
        HELLO,
        &["--timeout-secs", "1", "--max-output-tokens", "2048"],
    );
    assert_eq!(timed_out.status, "failed", "{}", timed_out.context);
    assert!(
        kinds(&journal(&world, "real-timeout")).contains(&"solver_failed".to_string()),
        "the timeout is journaled"
    );
    assert_eq!(
        http_get(server.port, "/health").map(|(code, _)| code),
        Some(200)
    );

    // An objective longer than the server's context: llama.cpp refuses the prompt in its own
    // words, infty knows the refusal, finds nothing it could compact (the objective is the
    // turn's own message) and fails the run saying why, without asking again.
    let too_long = format!(
        "Remember these words: {}",
        "alpha beta gamma delta ".repeat(2600)
    );
    let refused = run_against(&world, &server, "real-overflow", "chat", &too_long, &[]);
    assert_eq!(refused.status, "failed", "{}", refused.context);
    let failure = journal(&world, "real-overflow")
        .into_iter()
        .find(|event| event["kind"] == "solver_failed")
        .unwrap_or_else(|| panic!("no solver_failed: {}", refused.context));
    assert_eq!(failure["failure"]["type"], "context_overflow", "{failure}");
    let error = failure["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("exceeds the available context size"),
        "{error}"
    );
    let reason = world.run_json("real-overflow")["error"].to_string();
    assert!(
        reason.contains("not even compacted to its hand-off summary"),
        "{reason}"
    );

    let speeds = server.tokens_per_second();
    let mean = speeds.iter().sum::<f64>() / speeds.len().max(1) as f64;
    eprintln!(
        "llama-server generation: {} responses, mean {mean:.1} tokens/s (min {:.1}, max {:.1}); suite {:.1}s",
        speeds.len(),
        speeds.iter().copied().fold(f64::INFINITY, f64::min),
        speeds.iter().copied().fold(0.0, f64::max),
        suite.elapsed().as_secs_f64()
    );
    assert!(!speeds.is_empty(), "the server logged no generation");
    let pid = server.child.id();
    drop(server);
    // Nothing left running: the process is gone once dropped.
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.contains(") Z ")),
        "llama-server {pid} still runs"
    );
}
