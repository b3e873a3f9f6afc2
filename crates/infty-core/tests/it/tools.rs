//! The tools as a session uses them: `ToolSet::execute` with raw JSON arguments, against
//! real folders in a temporary directory (run folder, workspace, and an outside folder that
//! every escape attempt aims at).

use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::Path;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use infty_core::tools::{
    Plan, PlanStep, StepStatus, ToolContext, ToolName, ToolPolicy, ToolResult, ToolSet,
};
use serde_json::{Value, json};

/// A temporary world: `run/` (the run folder), `ws/` (the workspace) and `outside/`.
struct World {
    _temp: tempfile::TempDir,
    root: Utf8PathBuf,
    run: Utf8PathBuf,
    ws: Utf8PathBuf,
    outside: Utf8PathBuf,
}

impl World {
    fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(fs::canonicalize(temp.path()).unwrap()).unwrap();
        let run = root.join("run");
        let ws = root.join("ws");
        let outside = root.join("outside");
        for folder in [&run, &ws, &outside] {
            fs::create_dir_all(folder).unwrap();
        }
        fs::write(run.join("run.json"), "{\"run_id\":\"r1\"}\n").unwrap();
        fs::write(run.join("events.jsonl"), "").unwrap();
        fs::create_dir_all(run.join("rollouts")).unwrap();
        fs::create_dir_all(run.join("inbox")).unwrap();
        fs::write(outside.join("secret.txt"), "outside secret\n").unwrap();
        World {
            _temp: temp,
            root,
            run,
            ws,
            outside,
        }
    }

    /// Tools for the Solver with the workspace configured.
    fn tools(&self) -> ToolSet {
        self.tools_with(ToolPolicy::solver())
    }

    fn tools_with(&self, policy: ToolPolicy) -> ToolSet {
        let context = ToolContext::new(self.run.clone()).with_workspace(self.ws.clone());
        ToolSet::new(context, policy).with_base_env(test_env())
    }

    fn write(&self, relative: &str, content: impl AsRef<[u8]>) {
        let path = self.root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn link(&self, target: impl AsRef<Path>, relative: &str) {
        symlink(target, self.root.join(relative)).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.root.join(relative)).unwrap()
    }

    /// `text` with this world's temporary folder shown as `[TMP]`.
    fn redact(&self, text: &str) -> String {
        text.replace(self.root.as_str(), "[TMP]")
    }

    /// Runs each call and renders `call => ok|error: output` for a snapshot.
    async fn transcript(&self, tools: &ToolSet, calls: &[(&str, Value)]) -> String {
        let mut out = String::new();
        for (name, arguments) in calls {
            let arguments = self.redact_back(&arguments.to_string());
            let result = tools.execute(name, &arguments).await;
            let status = if result.ok { "ok" } else { "error" };
            let _ = writeln!(
                out,
                "{name} {} => {status}\n{}",
                self.redact(&arguments),
                indent(&self.redact(&result.output))
            );
        }
        out
    }

    /// Lets cases name absolute paths as `[TMP]/...`.
    fn redact_back(&self, text: &str) -> String {
        text.replace("[TMP]", self.root.as_str())
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}\n"))
        .collect::<String>()
}

/// A small environment for `shell`: enough to find programs, plus fake secrets.
fn test_env() -> Vec<(String, String)> {
    vec![
        (
            "PATH".to_owned(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned()),
        ),
        ("HARMLESS".to_owned(), "visible".to_owned()),
        ("LC_ALL".to_owned(), "C".to_owned()),
        (
            "DATABASE_URL".to_owned(),
            "postgres://user:pw@db/x".to_owned(),
        ),
        ("MY_SERVICE_CREDENTIAL".to_owned(), "cred-fake".to_owned()),
        ("FOO_API_KEY".to_owned(), "sk-fake".to_owned()),
        ("OPENAI_API_KEY".to_owned(), "sk-fake".to_owned()),
        ("GitHub_Token".to_owned(), "ghp-fake".to_owned()),
        ("db_password".to_owned(), "hunter2".to_owned()),
        ("CLIENT_SECRET".to_owned(), "shh".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "aws-fake".to_owned()),
    ]
}

async fn call(tools: &ToolSet, name: &str, arguments: Value) -> ToolResult {
    tools.execute(name, &arguments.to_string()).await
}

#[test]
fn tool_sets_are_shareable() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<ToolSet>();
}

#[test]
fn debug_output_hides_the_environment() {
    let world = World::new();
    let shown = format!("{:?}", world.tools());
    assert!(!shown.contains("sk-fake"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("SandboxSpec"), "{shown}");
}

#[test]
fn tool_names_round_trip() {
    let cases = [
        (ToolName::Shell, "shell"),
        (ToolName::ReadFile, "read_file"),
        (ToolName::WriteFile, "write_file"),
        (ToolName::EditFile, "edit_file"),
        (ToolName::ListDir, "list_dir"),
        (ToolName::UpdatePlan, "update_plan"),
    ];
    assert_eq!(cases.len(), ToolName::ALL.len());
    for (tool, name) in cases {
        assert_eq!(tool.as_str(), name);
        assert_eq!(name.parse::<ToolName>().unwrap(), tool);
        assert_eq!(serde_json::to_value(tool).unwrap(), json!(name));
    }
    assert!("Shell".parse::<ToolName>().is_err());
}

#[test]
fn definitions_follow_the_policy() {
    let world = World::new();
    let names = |policy: ToolPolicy| -> Vec<String> {
        world
            .tools_with(policy)
            .definitions()
            .into_iter()
            .map(|definition| definition.name)
            .collect()
    };
    assert_eq!(
        names(ToolPolicy::solver()),
        [
            "shell",
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "update_plan"
        ]
    );
    assert_eq!(names(ToolPolicy::director()), ["read_file", "list_dir"]);
    assert_eq!(
        names(ToolPolicy::verifier()),
        ["shell", "read_file", "list_dir"]
    );
    assert_eq!(
        names(ToolPolicy::solver().with_allowed([ToolName::UpdatePlan])),
        ["update_plan"]
    );
}

#[test]
fn definitions_snapshot() {
    let world = World::new();
    insta::assert_json_snapshot!("definitions", world.tools().definitions());
}

#[tokio::test]
async fn calls_that_cannot_run_become_error_results() {
    let world = World::new();
    world.write("ws/notes.txt", "hello\n");
    let director = world.tools_with(ToolPolicy::director());
    let mut out = String::new();
    let cases: [(&ToolSet, &str, &str); 10] = [
        (&director, "rm_rf", "{}"),
        (&director, "shell", r#"{"command":"ls"}"#),
        (&director, "write_file", r#"{"path":"a","content":"b"}"#),
        (&director, "read_file", r#"{"path": "notes.txt""#),
        (&director, "read_file", "not json"),
        (&director, "read_file", r#"{"file_path":"notes.txt"}"#),
        (&director, "read_file", r#"{"offset":3}"#),
        (
            &director,
            "read_file",
            r#"{"path":"notes.txt","offset":"three"}"#,
        ),
        (
            &director,
            "read_file",
            r#"{"path":"notes.txt","offset":-1}"#,
        ),
        (&director, "list_dir", r#"[]"#),
    ];
    for (tools, name, arguments) in cases {
        let result = tools.execute(name, arguments).await;
        assert!(!result.ok, "{name} {arguments}");
        assert!(result.plan.is_none());
        let _ = writeln!(out, "{name} {arguments} =>\n{}", indent(&result.output));
    }
    insta::assert_snapshot!("unrunnable_calls", out);
}

#[tokio::test]
async fn nulls_and_blank_arguments_mean_defaults() {
    let world = World::new();
    world.write("ws/a.txt", "one\ntwo\n");
    let tools = world.tools();
    let read = call(
        &tools,
        "read_file",
        json!({"path": "a.txt", "offset": null, "limit": null}),
    )
    .await;
    assert!(read.ok, "{}", read.output);
    assert_eq!(read.output, "     1\tone\n     2\ttwo\n");
    let listed = tools.execute("list_dir", "").await;
    assert!(listed.ok, "{}", listed.output);
    assert_eq!(listed.output, "./\n  a.txt\n");
    let listed_nulls = call(&tools, "list_dir", json!({"path": null, "depth": null})).await;
    assert_eq!(listed_nulls, listed);
}

#[tokio::test]
async fn escapes_are_refused() {
    let world = World::new();
    world.write("ws/notes.txt", "inside\n");
    world.write("ws/sub/deep.txt", "deep\n");
    world.link(world.outside.join("secret.txt"), "ws/link_file");
    world.link(&world.outside, "ws/link_dir");
    world.link(world.ws.join("notes.txt"), "ws/inside_link");
    world.link(world.ws.join("sub"), "ws/inside_dir_link");
    world.link(world.ws.join("missing.txt"), "ws/dangling");
    world.link(world.run.join("run.json"), "ws/run_json_link");
    world.link("../outside", "ws/relative_link_dir");
    world.link(world.ws.join("loop_b"), "ws/loop_a");
    world.link(world.ws.join("loop_a"), "ws/loop_b");
    let tools = world.tools();
    let calls = [
        // `..` and absolute paths.
        ("read_file", json!({"path": "../outside/secret.txt"})),
        ("read_file", json!({"path": "sub/../../outside/secret.txt"})),
        (
            "write_file",
            json!({"path": "../escape.txt", "content": "x"}),
        ),
        (
            "write_file",
            json!({"path": "missing/../x.txt", "content": "x"}),
        ),
        ("read_file", json!({"path": "/etc/passwd"})),
        ("read_file", json!({"path": "[TMP]/outside/secret.txt"})),
        ("list_dir", json!({"path": "/"})),
        ("read_file", json!({"path": ""})),
        // Symbolic links leading outside, at the end or on the way.
        ("read_file", json!({"path": "link_file"})),
        ("write_file", json!({"path": "link_file", "content": "x"})),
        ("read_file", json!({"path": "link_dir/secret.txt"})),
        (
            "write_file",
            json!({"path": "link_dir/new/file.txt", "content": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "link_dir/secret.txt", "old_string": "outside", "new_string": "pwned"}),
        ),
        ("list_dir", json!({"path": "link_dir"})),
        ("read_file", json!({"path": "relative_link_dir/secret.txt"})),
        ("read_file", json!({"path": "link_dir/../ws/notes.txt"})),
        ("shell", json!({"command": "pwd", "workdir": "link_dir"})),
        ("shell", json!({"command": "pwd", "workdir": "../outside"})),
        // Dangling links and loops.
        ("read_file", json!({"path": "dangling"})),
        ("write_file", json!({"path": "dangling", "content": "x"})),
        ("read_file", json!({"path": "loop_a"})),
        // The run's own records.
        (
            "write_file",
            json!({"path": "[TMP]/run/run.json", "content": "{}"}),
        ),
        (
            "edit_file",
            json!({"path": "[TMP]/run/events.jsonl", "old_string": "a", "new_string": "b"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/run.lock", "content": "1"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/rollouts/solver.jsonl", "content": "{}"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/inbox/new.json", "content": "{}"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/./rollouts/../run.json", "content": "{}"}),
        ),
        (
            "write_file",
            json!({"path": "run_json_link", "content": "{}"}),
        ),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("escapes", out);
    // Nothing leaked out, nothing outside or protected changed.
    assert!(!out.contains("outside secret"));
    assert_eq!(world.read("outside/secret.txt"), "outside secret\n");
    assert_eq!(world.read("run/run.json"), "{\"run_id\":\"r1\"}\n");
    assert!(!world.root.join("escape.txt").exists());
    assert!(!world.outside.join("new").exists());
    assert!(!world.run.join("inbox/new.json").exists());
    assert!(!world.run.join("run.lock").exists());
    assert!(fs::symlink_metadata(world.ws.join("dangling")).is_ok());
    assert!(!world.ws.join("missing.txt").exists());
}

#[tokio::test]
async fn allowed_paths_work() {
    let world = World::new();
    world.write("ws/notes.txt", "inside\n");
    world.write("ws/sub/deep.txt", "deep\n");
    world.link(world.ws.join("notes.txt"), "ws/inside_link");
    world.link(world.ws.join("sub"), "ws/inside_dir_link");
    world.link(world.run.join("artifacts"), "ws/artifacts_link");
    fs::create_dir_all(world.run.join("artifacts")).unwrap();
    let tools = world.tools();
    let calls = [
        ("read_file", json!({"path": "inside_link"})),
        ("read_file", json!({"path": "inside_dir_link/deep.txt"})),
        ("read_file", json!({"path": "sub/../notes.txt"})),
        ("read_file", json!({"path": "./sub//deep.txt"})),
        ("read_file", json!({"path": "[TMP]/ws/notes.txt"})),
        ("read_file", json!({"path": "[TMP]/run/run.json"})),
        (
            "write_file",
            json!({"path": "inside_link", "content": "through the link\n"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/artifacts/report.md", "content": "# report\n"}),
        ),
        (
            "write_file",
            json!({"path": "artifacts_link/linked.md", "content": "linked\n"}),
        ),
        (
            "write_file",
            json!({"path": "[TMP]/run/memory/run.json", "content": "not the record\n"}),
        ),
        (
            "shell",
            json!({"command": "pwd", "workdir": "inside_dir_link"}),
        ),
        ("shell", json!({"command": "pwd", "workdir": "[TMP]/run"})),
        ("shell", json!({"command": "pwd"})),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("allowed_paths", out);
    // Links are never followed, even ones that stay inside: their targets are untouched.
    let errors = out.matches("=> error").count();
    assert_eq!(errors, 5, "only the five calls through links fail: {out}");
    assert_eq!(world.read("ws/notes.txt"), "inside\n");
    assert!(
        fs::symlink_metadata(world.ws.join("inside_link"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!world.run.join("artifacts/linked.md").exists());
    assert_eq!(world.read("run/memory/run.json"), "not the record\n");
}

#[tokio::test]
async fn without_a_workspace_the_run_folder_is_the_base() {
    let world = World::new();
    let tools = ToolSet::new(ToolContext::new(world.run.clone()), ToolPolicy::solver())
        .with_base_env(test_env());
    let calls = [
        (
            "write_file",
            json!({"path": "deliverable/answer.md", "content": "42\n"}),
        ),
        ("read_file", json!({"path": "run.json"})),
        ("write_file", json!({"path": "run.json", "content": "{}"})),
        ("read_file", json!({"path": "[TMP]/ws/anything"})),
        ("list_dir", json!({"path": null, "depth": 1})),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("run_folder_base", out);
    assert_eq!(world.read("run/deliverable/answer.md"), "42\n");
}

#[tokio::test]
async fn non_ascii_names_and_content() {
    let world = World::new();
    let tools = world.tools();
    let calls = [
        (
            "write_file",
            json!({"path": "données/résumé.md", "content": "naïve ☃ 日本語\nzweite Zeile\n"}),
        ),
        (
            "edit_file",
            json!({"path": "données/résumé.md", "old_string": "☃", "new_string": "⛄"}),
        ),
        ("read_file", json!({"path": "données/résumé.md"})),
        ("list_dir", json!({"path": "données"})),
        ("shell", json!({"command": "cat données/résumé.md"})),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("non_ascii", out);
    assert_eq!(
        world.read("ws/données/résumé.md"),
        "naïve ⛄ 日本語\nzweite Zeile\n"
    );
}

#[tokio::test]
async fn shell_environment_is_an_allowlist() {
    let world = World::new();
    let tools = world.tools();
    let result = call(
        &tools,
        "shell",
        json!({"command": "env | cut -d= -f1 | sort"}),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    let names: Vec<&str> = result.output.lines().collect();
    for secret in [
        "FOO_API_KEY",
        "OPENAI_API_KEY",
        "GitHub_Token",
        "db_password",
        "CLIENT_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "DATABASE_URL",
        "MY_SERVICE_CREDENTIAL",
        // Not a secret, but not asked for either: an allowlist, not a name filter.
        "HARMLESS",
    ] {
        assert!(!names.contains(&secret), "{secret} leaked: {names:?}");
    }
    assert!(names.contains(&"PATH"), "{names:?}");
    assert!(names.contains(&"LC_ALL"), "{names:?}");
    assert!(!result.output.contains("fake"));

    // A name the user passes gets through; its value is redacted if the name looks secret.
    let spec = infty_core::tools::SandboxSpec::unsandboxed()
        .with_env_names(["HARMLESS".to_owned(), "DATABASE_URL".to_owned()])
        .with_base_env(
            test_env()
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
    let tools = world.tools().with_sandbox(spec);
    let result = call(
        &tools,
        "shell",
        json!({"command": "echo $HARMLESS $DATABASE_URL ${OPENAI_API_KEY:-unset}"}),
    )
    .await;
    assert_eq!(
        result.output,
        "exit code: 0\n--- stdout ---\nvisible [redacted] unset\n"
    );
}

#[tokio::test]
async fn shell_reports_how_commands_end() {
    let world = World::new();
    let tools = world.tools();
    let cases = [
        ("echo hello", true),
        ("echo out; echo err >&2; exit 3", false),
        ("true", true),
        ("kill -9 $$", false),
        ("echo -n no newline", true),
        ("printf 'bad \\377 byte\\n'", true),
        ("cat", true),
    ];
    let mut out = String::new();
    for (command, ok) in cases {
        let result = call(&tools, "shell", json!({"command": command})).await;
        assert_eq!(result.ok, ok, "{command}: {}", result.output);
        let _ = writeln!(out, "$ {command}\n{}", indent(&result.output));
    }
    insta::assert_snapshot!("shell_endings", out);
}

#[tokio::test]
async fn shell_output_keeps_head_and_tail() {
    let world = World::new();
    let policy = ToolPolicy {
        max_output_bytes: 120,
        ..ToolPolicy::solver()
    };
    let tools = world.tools_with(policy);
    let result = call(
        &tools,
        "shell",
        json!({"command": "seq 1 100000; echo warning >&2"}),
    )
    .await;
    assert!(result.ok);
    assert!(result.output.len() < 400, "{}", result.output);
    insta::assert_snapshot!("shell_head_and_tail", result.output);

    // A flood well past any pipe buffer: bounded, and the end survives.
    let result = call(
        &tools,
        "shell",
        json!({"command": "head -c 5000000 /dev/zero | tr '\\0' 'x'; echo; echo THE-END"}),
    )
    .await;
    assert!(result.ok);
    assert!(result.output.len() < 400, "{}", result.output);
    assert!(result.output.contains("bytes omitted"));
    assert!(result.output.trim_end().ends_with("THE-END"));
}

/// Whether a process is gone, a zombie, or past the point of no return in the kernel's
/// exit path (`PF_EXITING`, which SIGKILL sets before the process has finished dying).
fn process_is_dead(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return false;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let zombie = fields
        .first()
        .is_some_and(|state| ["Z", "X"].contains(state));
    let flags: u64 = fields
        .get(6)
        .and_then(|flags| flags.parse().ok())
        .unwrap_or(0);
    zombie || flags & PF_EXITING != 0
}

/// Whether anything still has the FIFO at `path` open for reading: opening it for writing
/// without blocking fails with ENXIO exactly when no reader exists.
fn fifo_has_reader(path: &Utf8Path) -> bool {
    match fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(_) => true,
        Err(error) => {
            assert_eq!(error.raw_os_error(), Some(libc::ENXIO), "{error}");
            false
        }
    }
}

fn make_fifo(path: &Utf8Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path.as_str())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A background job that records its pid, then waits on the `gate` FIFO and would write
/// `marker` if it ever got past it.
const GRANDCHILD: &str = "(echo $BASHPID > gc.pid; read line < gate; echo alive > marker) & \
     while [ ! -s gc.pid ]; do sleep 0.01; done";

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let world = World::new();
    make_fifo(&world.ws.join("gate"));
    let tools = world.tools();
    let command = format!("{GRANDCHILD}; echo waiting; sleep 100");
    let result = call(
        &tools,
        "shell",
        json!({"command": command, "timeout_ms": 1000}),
    )
    .await;
    assert!(!result.ok);
    insta::assert_snapshot!("shell_timeout", result.output);
    let pid: i32 = world.read("ws/gc.pid").trim().parse().unwrap();
    assert!(
        process_is_dead(pid),
        "grandchild {pid} survived the timeout"
    );
    assert!(!fifo_has_reader(&world.ws.join("gate")));
    assert!(!world.ws.join("marker").exists());
}

#[tokio::test]
async fn finished_commands_leave_no_background_jobs() {
    let world = World::new();
    make_fifo(&world.ws.join("gate"));
    let tools = world.tools();
    let command = format!("{GRANDCHILD}; echo done");
    let result = call(&tools, "shell", json!({"command": command})).await;
    assert!(result.ok, "{}", result.output);
    assert_eq!(result.output, "exit code: 0\n--- stdout ---\ndone\n");
    let pid: i32 = world.read("ws/gc.pid").trim().parse().unwrap();
    assert!(
        process_is_dead(pid),
        "background job {pid} outlived its command: {:?}",
        fs::read_to_string(format!("/proc/{pid}/stat"))
    );
    assert!(!fifo_has_reader(&world.ws.join("gate")));
}

#[tokio::test]
async fn dropping_the_call_kills_the_process_group() {
    let world = World::new();
    make_fifo(&world.ws.join("gate"));
    let tools = world.tools();
    let command = format!("{GRANDCHILD}; sleep 100");
    let arguments = json!({"command": command}).to_string();
    let pid_file = world.ws.join("gc.pid");
    {
        let running = tools.execute("shell", &arguments);
        tokio::pin!(running);
        // Drive the call until its background job has started, then drop it.
        loop {
            tokio::select! {
                result = &mut running => panic!("the command ended early: {}", result.output),
                () = tokio::time::sleep(Duration::from_millis(10)) => {
                    if fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n')) {
                        break;
                    }
                }
            }
        }
    }
    let pid: i32 = world.read("ws/gc.pid").trim().parse().unwrap();
    // SIGKILL is delivered at once but acted on when the process next runs: wait for it.
    let mut dead = false;
    for _ in 0..1000 {
        if process_is_dead(pid) {
            dead = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dead, "grandchild {pid} survived the dropped call");
    assert!(!fifo_has_reader(&world.ws.join("gate")));
}

#[tokio::test]
async fn read_file_numbers_caps_and_says_how_to_go_on() {
    let world = World::new();
    let lines: String = (1..=10).map(|n| format!("line {n}\n")).collect();
    world.write("ws/ten.txt", lines);
    world.write("ws/long.txt", format!("{}\nshort\n", "é".repeat(3000)));
    world.write("ws/crlf.txt", "one\r\ntwo\r\n");
    world.write("ws/no_newline.txt", "only line");
    world.write("ws/empty.txt", "");
    world.write("ws/binary.bin", b"PNG\x00\x01\x02");
    world.write("ws/latin1.txt", b"caf\xe9\n");
    fs::create_dir_all(world.ws.join("folder")).unwrap();
    let policy = ToolPolicy {
        read_max_lines: 4,
        ..ToolPolicy::solver()
    };
    let tools = world.tools_with(policy);
    let calls = [
        ("read_file", json!({"path": "ten.txt"})),
        (
            "read_file",
            json!({"path": "ten.txt", "offset": 5, "limit": 2}),
        ),
        (
            "read_file",
            json!({"path": "ten.txt", "offset": 9, "limit": 100}),
        ),
        (
            "read_file",
            json!({"path": "ten.txt", "offset": 0, "limit": 1}),
        ),
        ("read_file", json!({"path": "ten.txt", "offset": 11})),
        ("read_file", json!({"path": "ten.txt", "offset": 40})),
        ("read_file", json!({"path": "long.txt"})),
        ("read_file", json!({"path": "crlf.txt"})),
        ("read_file", json!({"path": "no_newline.txt"})),
        ("read_file", json!({"path": "empty.txt"})),
        ("read_file", json!({"path": "binary.bin"})),
        ("read_file", json!({"path": "latin1.txt"})),
        ("read_file", json!({"path": "folder"})),
        ("read_file", json!({"path": "nope.txt"})),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("read_file", out);
}

#[tokio::test]
async fn write_file_creates_and_replaces_atomically() {
    let world = World::new();
    let tools = world.tools();
    let calls = [
        (
            "write_file",
            json!({"path": "a/b/c.txt", "content": "first\n"}),
        ),
        (
            "write_file",
            json!({"path": "a/b/c.txt", "content": "second\n"}),
        ),
        ("write_file", json!({"path": "a/b", "content": "x"})),
        ("write_file", json!({"path": "a/b/c.txt/d", "content": "x"})),
        (
            "write_file",
            json!({"path": "a/b/c.txt/d/e", "content": "x"}),
        ),
        ("write_file", json!({"path": "empty.txt", "content": ""})),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("write_file", out);
    assert_eq!(world.read("ws/a/b/c.txt"), "second\n");
    assert_eq!(world.read("ws/empty.txt"), "");
    // No temporary files left behind.
    let leftovers: Vec<String> = fs::read_dir(world.ws.join("a/b"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["c.txt"]);
}

#[tokio::test]
async fn write_file_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let world = World::new();
    world.write("ws/run.sh", "#!/bin/sh\necho old\n");
    fs::set_permissions(world.ws.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let tools = world.tools();
    let result = call(
        &tools,
        "edit_file",
        json!({"path": "run.sh", "old_string": "old", "new_string": "new"}),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    let mode = fs::metadata(world.ws.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    let ran = call(&tools, "shell", json!({"command": "./run.sh"})).await;
    assert_eq!(ran.output, "exit code: 0\n--- stdout ---\nnew\n");
}

#[tokio::test]
async fn edit_file_replaces_exactly() {
    let world = World::new();
    world.write("ws/code.rs", "let a = 1;\nlet b = 1;\nlet c = 2;\n");
    world.write("ws/crlf.txt", "one\r\ntwo\r\n");
    world.write("ws/binary.bin", b"\x00\x01");
    let tools = world.tools();
    let calls = [
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "= 1;", "new_string": "= 10;"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "= 3;", "new_string": "= 30;"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "  let c = 2;  ", "new_string": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "", "new_string": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "let", "new_string": "let"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "let c = 2;", "new_string": "let c = 20;"}),
        ),
        (
            "edit_file",
            json!({"path": "code.rs", "old_string": "= 1;", "new_string": "= 10;", "replace_all": true}),
        ),
        (
            "edit_file",
            json!({"path": "crlf.txt", "old_string": "one\ntwo", "new_string": "x"}),
        ),
        (
            "edit_file",
            json!({"path": "binary.bin", "old_string": "a", "new_string": "b"}),
        ),
        (
            "edit_file",
            json!({"path": "nope.rs", "old_string": "a", "new_string": "b"}),
        ),
    ];
    let out = world.transcript(&tools, &calls).await;
    insta::assert_snapshot!("edit_file", out);
    assert_eq!(
        world.read("ws/code.rs"),
        "let a = 10;\nlet b = 10;\nlet c = 20;\n"
    );
}

#[tokio::test]
async fn list_dir_shows_a_sorted_bounded_tree() {
    let world = World::new();
    for file in [
        "ws/src/main.rs",
        "ws/src/tools/mod.rs",
        "ws/src/tools/deep/deeper/x.rs",
        "ws/README.md",
        "ws/.git/HEAD",
        "ws/b.txt",
    ] {
        world.write(file, "");
    }
    fs::create_dir_all(world.ws.join("empty")).unwrap();
    world.link("src/main.rs", "ws/a_link");
    world.link(&world.outside, "ws/out_link");
    let tools = world.tools();
    let small = world.tools_with(ToolPolicy {
        list_max_entries: 3,
        ..ToolPolicy::solver()
    });
    let mut out = world
        .transcript(
            &tools,
            &[
                ("list_dir", json!({})),
                ("list_dir", json!({"path": "src", "depth": 1})),
                ("list_dir", json!({"path": "src", "depth": 99})),
                ("list_dir", json!({"path": "empty"})),
                ("list_dir", json!({"path": "README.md"})),
            ],
        )
        .await;
    out.push_str(
        &world
            .transcript(&small, &[("list_dir", json!({"depth": 5}))])
            .await,
    );
    insta::assert_snapshot!("list_dir", out);
}

#[tokio::test]
async fn update_plan_is_persisted_and_returned() {
    let world = World::new();
    let tools = world.tools();
    let result = call(
        &tools,
        "update_plan",
        json!({
            "explanation": "  first pass  ",
            "plan": [
                {"step": "read the objective", "status": "completed"},
                {"step": " write the draft ", "status": "in_progress"},
                {"step": "verify", "status": "pending"},
            ],
        }),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    let expected = Plan {
        explanation: Some("first pass".to_owned()),
        steps: vec![
            PlanStep {
                step: "read the objective".to_owned(),
                status: StepStatus::Completed,
            },
            PlanStep {
                step: "write the draft".to_owned(),
                status: StepStatus::InProgress,
            },
            PlanStep {
                step: "verify".to_owned(),
                status: StepStatus::Pending,
            },
        ],
    };
    assert_eq!(result.plan.as_ref(), Some(&expected));
    insta::assert_snapshot!("update_plan_output", result.output);
    // Persisted in the RUN folder, even though relative paths go to the workspace.
    let saved = world.read("run/memory/plan.json");
    insta::assert_snapshot!("update_plan_file", saved);
    let parsed: Plan = serde_json::from_str(&saved).unwrap();
    assert_eq!(parsed, expected);
    assert!(!world.ws.join("memory").exists());

    let invalid = world
        .transcript(
            &tools,
            &[
                (
                    "update_plan",
                    json!({"explanation": null, "plan": [{"step": "  ", "status": "pending"}]}),
                ),
                (
                    "update_plan",
                    json!({"explanation": null, "plan": [{"step": "x", "status": "done"}]}),
                ),
                ("update_plan", json!({"plan": [{"step": "x"}]})),
            ],
        )
        .await;
    insta::assert_snapshot!("update_plan_invalid", invalid);
    // A failed update leaves the saved plan alone.
    assert_eq!(world.read("run/memory/plan.json"), saved);
}

#[tokio::test]
async fn update_plan_refuses_a_planted_memory_link() {
    let world = World::new();
    world.link(&world.outside, "run/memory");
    let tools = world.tools();
    let result = call(
        &tools,
        "update_plan",
        json!({"explanation": null, "plan": [{"step": "x", "status": "pending"}]}),
    )
    .await;
    assert!(!result.ok);
    assert!(result.plan.is_none());
    assert!(result.output.contains("symbolic link"), "{}", result.output);
    assert!(!world.outside.join("plan.json").exists());
}
