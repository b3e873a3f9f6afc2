//! Shared pieces of the end-to-end tests: a scripted server routed by role, a temporary
//! runs root, and running the real binary.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use infty_model::test_support::{ResponsesSse, ScriptedReply, ScriptedServer};
use serde_json::Value;

/// A fake key: the tests check it never lands in a file.
pub(crate) const SECRET: &str = "sk-test-DO-NOT-LEAK-4242";

/// Routes a request to the queue of the role named in its instructions.
pub(crate) fn route_by_role(body: &Value) -> String {
    let instructions = body
        .get("instructions")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            body.get("messages")
                .and_then(|m| m.get(0))
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    instructions
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("Your role name in this run: "))
        .map(|role| role.trim_end_matches('.').to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// A scripted server plus a temporary runs root.
pub(crate) struct World {
    pub server: ScriptedServer,
    pub home: tempfile::TempDir,
}

impl World {
    pub(crate) fn new() -> World {
        World::with_router(route_by_role)
    }

    /// A world whose server routes requests with `router` instead of by role alone.
    pub(crate) fn with_router(router: impl Fn(&Value) -> String + Send + Sync + 'static) -> World {
        World {
            server: ScriptedServer::start(router),
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn runs_root(&self) -> PathBuf {
        self.home.path().join("runs")
    }

    /// Queues a reply with text for `role`.
    pub(crate) fn say(&self, role: &str, text: &str) {
        let id = format!("resp_{}_{}", role, fastrand_id());
        self.server.push(
            role,
            ScriptedReply::sse(ResponsesSse::new(&id).text(text).usage(100, 20).build()),
        );
    }

    /// Queues a tool call for `role`.
    pub(crate) fn call(&self, role: &str, call_id: &str, tool: &str, arguments: &Value) {
        let id = format!("resp_{}_{}", role, fastrand_id());
        self.server.push(
            role,
            ScriptedReply::sse(
                ResponsesSse::new(&id)
                    .function_call(call_id, tool, &arguments.to_string())
                    .usage(100, 20)
                    .build(),
            ),
        );
    }

    /// Scripts the Solver writing `path` with `content` through `write_file`, then
    /// delivering it.
    pub(crate) fn write_and_deliver(&self, path: &str, content: &str) {
        self.call(
            "solver",
            "call_write",
            "write_file",
            &serde_json::json!({"path": path, "content": content}),
        );
        self.say(
            "solver",
            &serde_json::json!({"type": "final_delivery", "deliverable_path": path, "summary": null})
                .to_string(),
        );
    }

    /// The `infty` binary as a plain process with a clean environment pointing at this world.
    pub(crate) fn infty_process(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("infty"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("INFTY_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env("OPENAI_API_KEY", SECRET)
            .arg("--runs-root")
            .arg(self.runs_root());
        cmd
    }

    /// The `infty` binary, for assertions.
    pub(crate) fn infty(&self) -> Command {
        Command::from_std(self.infty_process())
    }

    /// Starts `infty create` in the background (stdout and stderr discarded).
    pub(crate) fn spawn_create(
        &self,
        run_id: &str,
        objective: &str,
        extra: &[&str],
    ) -> std::process::Child {
        let mut cmd = self.infty_process();
        cmd.args(["create", "--objective", objective, "--run-id", run_id])
            .args(["--base-url", &self.server.base_url()])
            .args(["--timeout-secs", "60"])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        cmd.spawn().unwrap()
    }

    /// Waits until the run's journal has an event for which `ready` holds; fails after a
    /// generous deadline with the journal in the message.
    pub(crate) fn wait_for_event(&self, run_id: &str, ready: impl Fn(&Value) -> bool) {
        let path = self.run_dir(run_id).join("events.jsonl");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let found = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .any(|event| ready(&event));
            if found {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "event never came; journal:\n{text}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `infty resume` against this world's server.
    pub(crate) fn resume(&self, run_id: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.infty()
            .args(["resume", run_id])
            .args(["--base-url", &self.server.base_url()])
            .args(extra)
            .assert()
    }

    pub(crate) fn create(
        &self,
        run_id: &str,
        objective: &str,
        extra: &[&str],
    ) -> assert_cmd::assert::Assert {
        self.infty()
            .args(["create", "--objective", objective, "--run-id", run_id])
            .args(["--base-url", &self.server.base_url()])
            .args(["--timeout-secs", "30"])
            .args(extra)
            .assert()
    }

    pub(crate) fn run_dir(&self, run_id: &str) -> PathBuf {
        self.runs_root().join(run_id)
    }

    pub(crate) fn run_json(&self, run_id: &str) -> Value {
        read_json(&self.run_dir(run_id).join("run.json"))
    }

    /// The kinds of the journal's events, in order.
    /// The items of `role`'s rollout in `run_id`, in order (other entries left out).
    pub(crate) fn rollout_items(&self, run_id: &str, role: &str) -> Vec<Value> {
        let path = self.run_dir(run_id).join(format!("rollouts/{role}.jsonl"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["entry"] == "item")
            .map(|entry| entry["item"].clone())
            .collect()
    }

    pub(crate) fn journal_kinds(&self, run_id: &str) -> Vec<String> {
        std::fs::read_to_string(self.run_dir(run_id).join("events.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                let value: Value = serde_json::from_str(line).unwrap();
                value["kind"].as_str().unwrap_or("?").to_string()
            })
            .filter(|kind| !matches!(kind.as_str(), "usage_recorded"))
            .collect()
    }

    /// Fails if the fake key appears in any file under the home folder.
    pub(crate) fn assert_secret_nowhere(&self) {
        for path in files_under(self.home.path()) {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(SECRET),
                "the API key leaked into {}",
                path.display()
            );
        }
    }
}

pub(crate) fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn fastrand_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Insta settings that redact times, temp paths and durations in CLI output and JSON.
pub(crate) fn settings(world: &World) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    let root = world.home.path().to_string_lossy().to_string();
    settings.add_filter(&regex_escape(&root), "[HOME]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    settings.add_filter(r"\[\d{2}:\d{2}:\d{2}\]", "[CLOCK]");
    settings.add_filter(r"\b\d{2}:\d{2}:\d{2}\b", "[CLOCK]");
    settings.add_filter(r"in \d+m\d{2}s", "in [DURATION]");
    settings.add_filter(r"pid \d+", "pid [PID]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "[SERVER]");
    settings
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl World {
    /// Writes `$INFTY_HOME/config.toml`.
    pub(crate) fn write_config(&self, text: &str) {
        std::fs::write(self.home.path().join("config.toml"), text).unwrap();
    }

    /// The standard output of a successful `infty` call with `args`.
    pub(crate) fn stdout_of(&self, args: &[&str]) -> String {
        let output = self
            .infty()
            .args(args)
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(output.stdout).unwrap()
    }
}

/// The standard error of a finished command.
pub(crate) fn stderr_text(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}
