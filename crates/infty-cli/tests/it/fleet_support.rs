//! What the fleet's end-to-end tests and its benchmark share: a real `nats-server`, a
//! model server routed by stage, and `infty submit` / `infty worker` processes.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use infty_model::test_support::{ResponsesSse, ScriptedReply};
use serde_json::{Value, json};

use crate::harness::{World, route_by_role};

/// A `nats-server` with JetStream on a free loopback port, its store in a temp folder.
pub(crate) struct Nats {
    child: Child,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    pub(crate) fn start() -> Nats {
        let store = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = spawn_nats(port, &store.path().to_path_buf());
        Nats { child, port, store }
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server and starts it again on the same port and store.
    pub(crate) fn restart(&mut self) {
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

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Routes by role, and the Solver by stage: `solver-works` before its tool ran,
/// `solver-delivers` after.
pub(crate) fn route_by_stage(body: &Value) -> String {
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

pub(crate) fn fleet_world() -> World {
    World::with_router(route_by_stage)
}

/// Queues the replies of `runs` whole runs.
pub(crate) fn script_runs(world: &World, runs: usize) {
    for _ in 0..runs {
        script_work(world);
        script_delivery(world);
    }
}

pub(crate) fn script_work(world: &World) {
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

/// The Solver's delivery and the Verifier's pass.
pub(crate) fn script_delivery(world: &World) {
    script_delivery_only(world);
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

/// The Solver's delivery alone.
pub(crate) fn script_delivery_only(world: &World) {
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
}

pub(crate) fn submit(world: &World, nats: &Nats, run_id: &str) -> String {
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

pub(crate) fn spawn_worker(world: &World, nats: &Nats, extra: &[&str]) -> Child {
    let mut cmd = world.infty_process();
    cmd.args(["worker", "--queue", &nats.url()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

pub(crate) fn status(world: &World, run_id: &str) -> String {
    world.run_json(run_id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until `done` holds; fails after a generous deadline with `what`.
pub(crate) fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the exit code.
pub(crate) fn terminate(mut worker: Child) -> (Option<i32>, String) {
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
