//! The fleet end to end: a real `nats-server` with JetStream, real `infty submit` and
//! `infty worker` processes, and a scripted model server that every run shares.
//!
//! Each run's Solver first runs one shell command that appends a line to
//! `artifacts/marker` (so a tool call run twice shows as two lines), then delivers; its
//! Verifier passes. The server routes by role and by whether the Solver has seen its
//! tool's output yet, so runs in any interleaving get the replies their stage needs.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infty_model::test_support::{ResponsesSse, ScriptedReply};
use serde_json::{Value, json};

use crate::harness::{World, route_by_role};

/// A `nats-server` with JetStream on a free loopback port, its store in a temp folder.
struct Nats {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let store = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn_nats(port, &store.path().to_path_buf());
        Nats { child, port, store }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts it again on the same port and store.
    fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn_nats(self.port, &self.store.path().to_path_buf());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_nats(port: u16, store: &PathBuf) -> Child {
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot start nats-server ({error}): install it (Debian: apt-get install nats-server); .ci/run does"
            )
        });
    // The server logs "Server is ready" once it accepts clients.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines.next().expect("nats-server exited").unwrap();
        if line.contains("Server is ready") {
            break;
        }
        assert!(Instant::now() < deadline, "nats-server never became ready");
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Routes by role, and the Solver by stage: `solver-works` before its tool ran,
/// `solver-delivers` after.
fn route_by_stage(body: &Value) -> String {
    let role = route_by_role(body);
    if role != "solver" {
        return role;
    }
    let saw_output = body["input"].as_array().is_some_and(|items| {
        items
            .iter()
            .any(|item| item["type"] == "function_call_output")
    });
    if saw_output {
        "solver-delivers".to_string()
    } else {
        "solver-works".to_string()
    }
}

fn fleet_world() -> World {
    World::with_router(route_by_stage)
}

/// Queues the replies of `runs` whole runs.
fn script_runs(world: &World, runs: usize) {
    for _ in 0..runs {
        script_work(world);
        script_delivery(world);
    }
}

fn script_work(world: &World) {
    world.server.push(
        "solver-works",
        ScriptedReply::sse(
            ResponsesSse::new("resp_work")
                .function_call(
                    "call_work",
                    "shell",
                    &json!({"command": "echo ran >> artifacts/marker && mkdir -p deliverable && echo done > deliverable/out.txt"})
                        .to_string(),
                )
                .usage(100, 20)
                .build(),
        ),
    );
}

fn script_delivery(world: &World) {
    world.server.push(
        "solver-delivers",
        ScriptedReply::sse(
            ResponsesSse::new("resp_deliver")
                .text(
                    &json!({"type": "final_delivery", "deliverable_path": "deliverable/out.txt", "summary": "done"})
                        .to_string(),
                )
                .usage(100, 20)
                .build(),
        ),
    );
    world.server.push(
        "verifier-1",
        ScriptedReply::sse(
            ResponsesSse::new("resp_verdict")
                .text(r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#)
                .usage(100, 20)
                .build(),
        ),
    );
}

fn submit(world: &World, nats: &Nats, run_id: &str) -> String {
    let output = world
        .infty()
        .args(["submit", "--queue", &nats.url(), "--run-id", run_id])
        .args(["--objective", "Write deliverable/out.txt."])
        .args([
            "--base-url",
            &world.server.base_url(),
            "--timeout-secs",
            "60",
        ])
        .env_remove("OPENAI_API_KEY")
        .assert()
        .success()
        .get_output()
        .clone();
    String::from_utf8(output.stdout).unwrap()
}

fn spawn_worker(world: &World, nats: &Nats, extra: &[&str]) -> Child {
    let mut cmd = world.infty_process();
    cmd.args(["worker", "--queue", &nats.url()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn status(world: &World, run_id: &str) -> String {
    world.run_json(run_id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until `done` holds; fails after a generous deadline with `what`.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit code.
fn terminate(mut worker: Child) -> (Option<i32>, String) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(worker.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = worker.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(worker.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

fn marker_lines(world: &World, run_id: &str) -> usize {
    std::fs::read_to_string(world.run_dir(run_id).join("artifacts/marker"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn journal_count(world: &World, run_id: &str, kind: &str) -> usize {
    world
        .journal_kinds(run_id)
        .iter()
        .filter(|k| *k == kind)
        .count()
}

fn requests_to(world: &World, route: &str) -> usize {
    world
        .server
        .requests()
        .iter()
        .filter(|(r, _)| r == route)
        .count()
}

#[test]
fn submit_records_a_queued_run_without_a_key() {
    let world = fleet_world();
    let nats = Nats::start();
    let stdout = submit(&world, &nats, "queued-1");
    assert_eq!(stdout.trim(), "queued-1");
    assert_eq!(status(&world, "queued-1"), "queued");
    let list = world.stdout_of(&["list", "--json"]);
    let runs: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(runs[0]["status"], "queued");
    let json = world
        .infty()
        .args([
            "submit",
            "--queue",
            &nats.url(),
            "--run-id",
            "queued-2",
            "--json",
        ])
        .args(["--objective", "x", "--base-url", &world.server.base_url()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let value: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["status"], "queued");
    assert_eq!(value["run_id"], "queued-2");
    assert_eq!(value["queue_sequence"], 2);
    world.assert_secret_nowhere();
}

#[test]
fn submit_to_a_dead_queue_fails_and_queues_nothing() {
    let world = fleet_world();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let assert = world
        .infty()
        .args(["submit", "--queue", &url, "--run-id", "never"])
        .args(["--objective", "x", "--base-url", &world.server.base_url()])
        .assert()
        .failure();
    let stderr = crate::harness::stderr_text(&assert);
    assert!(
        stderr.contains("cannot connect to the queue at"),
        "{stderr}"
    );
    assert!(!world.run_dir("never").exists());
}

#[test]
fn a_queue_is_required() {
    let world = fleet_world();
    let assert = world.infty().args(["worker"]).assert().code(2);
    let stderr = crate::harness::stderr_text(&assert);
    assert!(stderr.contains("no queue: pass --queue"), "{stderr}");
}

#[test]
fn three_workers_finish_thirty_runs_exactly_once() {
    let world = fleet_world();
    let nats = Nats::start();
    script_runs(&world, 30);
    let ids: Vec<String> = (1..=30).map(|n| format!("batch-{n:02}")).collect();
    for id in &ids {
        submit(&world, &nats, id);
    }
    let workers: Vec<Child> = (0..3)
        .map(|_| spawn_worker(&world, &nats, &["--concurrency", "4"]))
        .collect();
    wait_until("30 succeeded runs", || {
        ids.iter().all(|id| status(&world, id) == "succeeded")
    });
    for worker in workers {
        let (code, stderr) = terminate(worker);
        assert_eq!(code, Some(143), "{stderr}");
        assert!(stderr.contains("stopped:"), "{stderr}");
    }
    for id in &ids {
        assert_eq!(marker_lines(&world, id), 1, "run {id} ran its tool twice");
        assert_eq!(journal_count(&world, id, "run_succeeded"), 1, "run {id}");
        assert_eq!(journal_count(&world, id, "driver_started"), 1, "run {id}");
    }
    assert_eq!(requests_to(&world, "solver-works"), 30);
    assert_eq!(requests_to(&world, "verifier-1"), 30);
    world.assert_secret_nowhere();
}

#[test]
fn a_killed_workers_run_is_resumed_by_another_without_repeating_its_tool() {
    let mut world = fleet_world();
    let nats = Nats::start();
    script_work(&world);
    // The Solver's request after its tool hangs: the worker dies there.
    world
        .server
        .stall_next("solver-delivers", String::new(), Duration::from_secs(30));
    submit(&world, &nats, "victim");
    let mut first = spawn_worker(&world, &nats, &["--ack-wait-secs", "2"]);
    wait_until("the stalled request", || {
        requests_to(&world, "solver-delivers") == 1
    });
    assert_eq!(marker_lines(&world, "victim"), 1);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(status(&world, "victim"), "running");
    script_delivery(&world);
    let second = spawn_worker(&world, &nats, &["--ack-wait-secs", "2"]);
    wait_until("the resumed run", || {
        status(&world, "victim") == "succeeded"
    });
    let (code, stderr) = terminate(second);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(marker_lines(&world, "victim"), 1, "the tool ran twice");
    assert_eq!(journal_count(&world, "victim", "driver_started"), 2);
    assert_eq!(requests_to(&world, "solver-works"), 1);
}

#[test]
fn runs_finish_exactly_once_across_a_queue_server_restart() {
    let world = fleet_world();
    let mut nats = Nats::start();
    script_runs(&world, 10);
    let ids: Vec<String> = (1..=10).map(|n| format!("restart-{n:02}")).collect();
    for id in &ids[..5] {
        submit(&world, &nats, id);
    }
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            spawn_worker(
                &world,
                &nats,
                &["--concurrency", "2", "--ack-wait-secs", "3"],
            )
        })
        .collect();
    wait_until("a first run to succeed", || {
        ids[..5].iter().any(|id| status(&world, id) == "succeeded")
    });
    nats.restart();
    for id in &ids[5..] {
        submit(&world, &nats, id);
    }
    wait_until("10 succeeded runs", || {
        ids.iter().all(|id| status(&world, id) == "succeeded")
    });
    for worker in workers {
        let (code, stderr) = terminate(worker);
        assert_eq!(code, Some(143), "{stderr}");
    }
    for id in &ids {
        assert_eq!(marker_lines(&world, id), 1, "run {id} ran its tool twice");
        assert_eq!(journal_count(&world, id, "run_succeeded"), 1, "run {id}");
    }
    assert_eq!(requests_to(&world, "solver-works"), 10);
}

#[test]
fn a_run_that_keeps_killing_its_driver_fails_after_the_maximum_deliveries() {
    let mut world = fleet_world();
    let nats = Nats::start();
    submit(&world, &nats, "doomed");
    let flags = ["--ack-wait-secs", "1", "--max-deliveries", "2"];
    // Each delivery's Solver request hangs, and its worker is killed while it waits. (One
    // stall is armed at a time: the server offers every request to every armed stall.)
    for attempt in 1..=2 {
        world
            .server
            .stall_next("solver-works", String::new(), Duration::from_secs(30));
        let mut worker = spawn_worker(&world, &nats, &flags);
        wait_until("the hanging request", || {
            requests_to(&world, "solver-works") == attempt
        });
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
    let last = spawn_worker(&world, &nats, &flags);
    wait_until("the run to fail", || status(&world, "doomed") == "failed");
    let (code, stderr) = terminate(last);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("run doomed: giving up"), "{stderr}");
    let meta = world.run_json("doomed");
    let error = meta["error"].as_str().unwrap();
    assert!(error.contains("delivered 3 times"), "{error}");
    assert_eq!(journal_count(&world, "doomed", "run_failed"), 1);
    assert_eq!(requests_to(&world, "solver-works"), 2);
}

#[test]
fn sigterm_drains_a_worker_and_another_finishes_its_run() {
    let mut world = fleet_world();
    let nats = Nats::start();
    world
        .server
        .stall_next("solver-works", String::new(), Duration::from_secs(30));
    submit(&world, &nats, "drained");
    let worker = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    wait_until("the hanging request", || {
        requests_to(&world, "solver-works") == 1
    });
    let (code, stderr) = terminate(worker);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("1 released"), "{stderr}");
    assert_eq!(status(&world, "drained"), "interrupted");
    // Released at once, not after the 30 s lease.
    script_runs(&world, 1);
    let next = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    wait_until("the run to succeed", || {
        status(&world, "drained") == "succeeded"
    });
    let (code, stderr) = terminate(next);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(marker_lines(&world, "drained"), 1);
}

#[test]
fn a_worker_leaves_a_run_that_a_live_process_drives_alone() {
    let mut world = fleet_world();
    let nats = Nats::start();
    world
        .server
        .stall_next("solver-works", String::new(), Duration::from_secs(60));
    submit(&world, &nats, "held");
    // Someone drives the run by hand; it hangs in its first request.
    let mut by_hand = world.infty_process();
    by_hand
        .args(["resume", "held", "--base-url", &world.server.base_url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut by_hand = by_hand.spawn().unwrap();
    wait_until("the hanging request", || {
        requests_to(&world, "solver-works") == 1
    });
    let worker = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    std::thread::sleep(Duration::from_secs(3));
    let (code, stderr) = terminate(worker);
    by_hand.kill().unwrap();
    by_hand.wait().unwrap();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("run held: handed back"), "{stderr}");
    assert!(stderr.contains("is being driven by"), "{stderr}");
    assert_eq!(journal_count(&world, "held", "driver_started"), 1);
}

/// The example Kubernetes manifests parse, name their objects, and use only flags that
/// `infty` has.
#[test]
fn kubernetes_manifests_parse_and_use_real_flags() {
    use yaml_rust2::{Yaml, YamlLoader};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    let mut kinds = Vec::new();
    let mut worker_args = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().expect("a kind").to_string();
            assert!(
                doc["apiVersion"].as_str().is_some(),
                "{kind} has no apiVersion"
            );
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "{kind} has no name"
            );
            if kind == "Deployment" {
                for container in doc["spec"]["template"]["spec"]["containers"]
                    .as_vec()
                    .unwrap()
                {
                    let args: Vec<String> = container["args"]
                        .as_vec()
                        .unwrap()
                        .iter()
                        .map(|arg| match arg {
                            Yaml::String(text) => text.clone(),
                            other => panic!("argument {other:?} is not a string"),
                        })
                        .collect();
                    worker_args.extend(args);
                }
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Namespace",
            "PersistentVolumeClaim",
            "Service",
            "StatefulSet"
        ]
    );
    assert_eq!(worker_args.first().map(String::as_str), Some("worker"));
    let world = fleet_world();
    let help = world.stdout_of(&["worker", "--help"]);
    for flag in worker_args.iter().filter(|arg| arg.starts_with("--")) {
        assert!(help.contains(flag.as_str()), "`infty worker` has no {flag}");
    }
}
