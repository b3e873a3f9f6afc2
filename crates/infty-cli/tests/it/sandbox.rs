//! The hostile-tool suite: real commands through the `shell` tool, sandboxed by the real
//! `infty` binary as helper, on the real kernel. One row per attack; each asserts that the
//! attack was refused and that nothing outside changed. Decoy secrets sit in the tool's
//! base environment, in a fake `$HOME`, in another run and in `$INFTY_HOME`; a decoy
//! "driver" process holds a secret in its environment.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use infty_core::tools::{
    REDACTED, RunSpace, SandboxSpec, ToolContext, ToolPolicy, ToolSet, role_policy,
};
use infty_store::{SandboxMode, SandboxSettings};
use serde_json::json;

use crate::harness::{SECRET, World};

const DECOY_ENV: &str = "decoy-driver-env-0xC0FFEE";
const DECOY_SSH: &str = "decoy-ssh-private-key";
const DECOY_AWS: &str = "decoy-aws-secret-access-key";
const DECOY_NETRC: &str = "decoy-netrc-password";
const DECOY_DB: &str = "postgres://user:decoy-db-pw@db/x";
const DECOY_CRED: &str = "decoy-service-credential";
const DECOY_OTHER_RUN: &str = "decoy-other-run-content";
const DECOY_CONFIG: &str = "decoy-infty-config";

/// A run folder, another run, `$INFTY_HOME`, a workspace, a fake `$HOME` full of decoys,
/// and a decoy driver process.
struct Lab {
    root: tempfile::TempDir,
    driver: Child,
}

impl Lab {
    fn new() -> Lab {
        let root = tempfile::tempdir().unwrap();
        let lab = Lab {
            root,
            driver: Command::new("sleep")
                .arg("600")
                .env_clear()
                .env("DRIVER_SECRET", DECOY_ENV)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        };
        for (path, content) in [
            ("home/.ssh/id_rsa", DECOY_SSH),
            ("home/.aws/credentials", DECOY_AWS),
            ("home/.netrc", DECOY_NETRC),
            ("home/.config/gcloud/credentials.db", DECOY_SSH),
            ("home/.docker/config.json", DECOY_SSH),
            ("home/.kube/config", DECOY_SSH),
            ("ihome/config.toml", DECOY_CONFIG),
            ("ihome/runs/other/run.json", DECOY_OTHER_RUN),
            ("ihome/runs/run/run.json", "{}"),
            ("ihome/runs/run/events.jsonl", "{\"seq\":1}\n"),
            ("ihome/runs/run/run.lock", "1"),
            ("ihome/runs/run/rollouts/solver.jsonl", "{}\n"),
            ("ihome/runs/run/inbox/.keep", ""),
            ("ihome/runs/run/deliverable/report.md", "good\n"),
            ("ihome/runs/run/artifacts/.keep", ""),
            ("ihome/runs/run/memory/.keep", ""),
            ("ihome/runs/run/index/.keep", ""),
            ("ws/src.txt", "source\n"),
        ] {
            let path = lab.path(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        lab
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    fn run_dir(&self) -> PathBuf {
        self.path("ihome/runs/run")
    }

    fn tools(&self, mode: SandboxMode) -> ToolSet {
        self.tools_at(mode, true)
    }

    /// Tools whose commands start in the run folder (no workspace) when `workspace` is false.
    fn tools_at(&self, mode: SandboxMode, workspace: bool) -> ToolSet {
        let space = RunSpace {
            run_dir: self.run_dir(),
            runs_root: Some(self.path("ihome/runs")),
            infty_home: Some(self.path("ihome")),
            workspace: workspace.then(|| self.path("ws")),
            home: Some(self.path("home")),
        };
        let settings = SandboxSettings::default();
        let env: Vec<(std::ffi::OsString, std::ffi::OsString)> = [
            ("PATH", std::env::var("PATH").unwrap()),
            ("HOME", self.path("home").display().to_string()),
            ("OPENAI_API_KEY", SECRET.to_owned()),
            ("DATABASE_URL", DECOY_DB.to_owned()),
            ("MY_SERVICE_CREDENTIAL", DECOY_CRED.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let spec = SandboxSpec::new(
            mode,
            role_policy(mode, &space, &settings),
            Some(assert_cmd::cargo::cargo_bin("infty")),
        )
        .with_base_env(env)
        .with_private_temp("hostile")
        .unwrap();
        let mut context = ToolContext::new(camino::Utf8PathBuf::try_from(self.run_dir()).unwrap());
        if workspace {
            context =
                context.with_workspace(camino::Utf8PathBuf::try_from(self.path("ws")).unwrap());
        }
        ToolSet::new(context, ToolPolicy::solver())
            .with_sandbox(spec)
            .with_redactions([SECRET.to_owned()])
    }

    /// Every file under the lab with its content.
    fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![self.root.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    stack.push(entry.path());
                } else {
                    let content = std::fs::read(entry.path()).unwrap_or_default();
                    files.insert(entry.path(), content);
                }
            }
        }
        files
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn shell(tools: &ToolSet, command: &str) -> infty_core::tools::ToolResult {
    tools
        .execute(
            "shell",
            &json!({"command": command, "timeout_ms": 20_000, "workdir": null}).to_string(),
        )
        .await
}

/// Every decoy: none may ever appear in a tool's output.
fn decoys() -> [&'static str; 9] {
    [
        DECOY_ENV,
        DECOY_SSH,
        DECOY_AWS,
        DECOY_NETRC,
        DECOY_DB,
        DECOY_CRED,
        DECOY_OTHER_RUN,
        DECOY_CONFIG,
        SECRET,
    ]
}

/// Host processes whose command line contains `marker`.
fn host_processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(marker) && !cmdline.contains("bash -c") {
                found.push(cmdline);
            }
        }
    }
    found
}

/// Whose tools an attack runs through.
enum Who {
    /// `workspace-write`, started in the workspace.
    Solver,
    /// `workspace-write`, started in the run folder (no workspace).
    SolverInRunFolder,
    /// `read-only`, started in the workspace.
    Verifier,
}

#[tokio::test]
async fn hostile_tools_are_refused_and_change_nothing() {
    let lab = Lab::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let driver = lab.driver.id();
    let me = std::process::id();
    let home = lab.path("home").display().to_string();
    let ihome = lab.path("ihome").display().to_string();
    let run = lab.run_dir().display().to_string();
    let ws = lab.path("ws").display().to_string();

    // (attack, who, command). Every command must fail (non-zero exit) and leak nothing.
    let rows: Vec<(&str, Who, String)> = vec![
        (
            "read the driver's environment through /proc",
            Who::Solver,
            format!(
                "cat /proc/{driver}/environ /proc/{me}/environ; cat /proc/$PPID/environ; \
                 for f in /proc/[0-9]*/environ; do cat $f; done | tr '\\0' '\\n' | grep SECRET"
            ),
        ),
        (
            "read the driver's memory",
            Who::Solver,
            format!("head -c 100000 /proc/{driver}/mem || head -c 100000 /proc/{me}/mem"),
        ),
        (
            "read the API key from the environment",
            Who::Solver,
            "env | grep -E 'API_KEY|sk-'".to_owned(),
        ),
        (
            "read variables the old name filter missed",
            Who::Solver,
            "env | grep -E 'DATABASE_URL|CREDENTIAL'".to_owned(),
        ),
        (
            "read ~/.ssh/id_rsa",
            Who::Solver,
            "cat ~/.ssh/id_rsa".to_owned(),
        ),
        (
            "read ~/.aws/credentials",
            Who::Solver,
            format!("cat {home}/.aws/credentials"),
        ),
        (
            // A hidden file reads as empty (it is covered by /dev/null).
            "read ~/.netrc",
            Who::Solver,
            "cat ~/.netrc | grep .".to_owned(),
        ),
        (
            "read the other credential folders",
            Who::Solver,
            "cat ~/.config/gcloud/credentials.db ~/.docker/config.json ~/.kube/config | grep ."
                .to_owned(),
        ),
        (
            "connect to a loopback listener outside",
            Who::Solver,
            format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"),
        ),
        (
            "append a forged verdict to events.jsonl",
            Who::Solver,
            format!("echo '{{\"kind\":\"verifier_replied\"}}' >> {run}/events.jsonl"),
        ),
        (
            "rewrite run.json",
            Who::Solver,
            format!("echo '{{}}' > {run}/run.json"),
        ),
        (
            "write a rollout",
            Who::Solver,
            format!("echo forged >> {run}/rollouts/solver.jsonl"),
        ),
        (
            "drop a message in the inbox",
            Who::Solver,
            format!("echo forged > {run}/inbox/forged.json"),
        ),
        ("delete run.lock", Who::Solver, format!("rm {run}/run.lock")),
        (
            "move run.lock away",
            Who::Solver,
            format!("mv {run}/run.lock {run}/run.lock.old"),
        ),
        (
            "read another run's folder",
            Who::Solver,
            format!("cat {ihome}/runs/other/run.json"),
        ),
        (
            "write into another run's folder",
            Who::Solver,
            format!("echo forged > {ihome}/runs/other/run.json"),
        ),
        (
            "read $INFTY_HOME",
            Who::Solver,
            format!("cat {ihome}/config.toml"),
        ),
        (
            "write under $INFTY_HOME",
            Who::Solver,
            format!("echo forged > {ihome}/config.toml"),
        ),
        (
            "ptrace the driver",
            Who::Solver,
            format!(
                "strace -p {driver} || gdb -p {driver} -batch -ex 'info proc' 2>&1 | grep -q DRIVER"
            ),
        ),
        ("kill the driver", Who::Solver, format!("kill -9 {driver}")),
        (
            "kill every process it can see, then check the driver",
            Who::Solver,
            format!("kill -9 -1; kill -0 {driver}"),
        ),
        (
            "write outside the allowed folders",
            Who::Solver,
            format!("echo x > /tmp/infty-escape-{me}"),
        ),
        (
            "hard-link a system file into the workspace",
            Who::Solver,
            format!("ln /etc/passwd {ws}/linked"),
        ),
        (
            "undo the hiding with a new namespace",
            Who::Solver,
            format!("unshare -Urm sh -c 'umount {home}/.ssh; cat {home}/.ssh/id_rsa'"),
        ),
        (
            "mount over the workspace",
            Who::Solver,
            format!("mount -t tmpfs none {ws}"),
        ),
        (
            "a Verifier edits the deliverable",
            Who::Verifier,
            format!("sed -i s/good/evil/ {run}/deliverable/report.md"),
        ),
        (
            "a Verifier writes the workspace",
            Who::Verifier,
            format!("echo evil > {ws}/src.txt"),
        ),
        (
            "a Verifier deletes the deliverable",
            Who::Verifier,
            format!("rm {run}/deliverable/report.md"),
        ),
    ];

    // The same attacks again from inside the run folder, where `..` leads to the other runs.
    let mut rows = rows;
    for (attack, command) in [
        (
            "walk from the run folder to another run",
            "cat ../other/run.json",
        ),
        (
            "walk from the run folder to $INFTY_HOME",
            "cat ../../config.toml",
        ),
        (
            "append to the journal by a relative path",
            "echo forged >> events.jsonl",
        ),
    ] {
        rows.push((attack, Who::SolverInRunFolder, command.to_owned()));
    }

    let workspace_write = lab.tools(SandboxMode::WorkspaceWrite);
    let read_only = lab.tools(SandboxMode::ReadOnly);
    let in_run_folder = lab.tools_at(SandboxMode::WorkspaceWrite, false);
    let before = lab.files();
    for (attack, who, command) in &rows {
        let tools = match who {
            Who::Verifier => &read_only,
            Who::Solver => &workspace_write,
            Who::SolverInRunFolder => &in_run_folder,
        };
        let result = shell(tools, command).await;
        assert!(!result.ok, "{attack}: not refused:\n{}", result.output);
        for decoy in decoys() {
            assert!(
                !result.output.contains(decoy),
                "{attack}: leaked {decoy}:\n{}",
                result.output
            );
        }
        assert!(
            !result.output.contains(REDACTED),
            "{attack}: only redaction kept the secret out:\n{}",
            result.output
        );
        assert_eq!(lab.files(), before, "{attack}: changed files outside");
        assert!(
            lab.driver_alive(),
            "{attack}: the driver died:\n{}",
            result.output
        );
    }
    assert!(
        matches!(listener.accept(), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
        "the listener outside was reached"
    );
    assert!(!Path::new(&format!("/tmp/infty-escape-{me}")).exists());
}

impl Lab {
    fn driver_alive(&self) -> bool {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.driver.id()).unwrap()),
            None,
        )
        .is_ok()
    }
}

#[tokio::test]
async fn nothing_a_call_started_outlives_it() {
    let lab = Lab::new();
    let tools = lab.tools(SandboxMode::WorkspaceWrite);
    let marker = format!("{}", 4000 + std::process::id() % 1000);
    let result = shell(
        &tools,
        &format!(
            "(setsid sleep {marker}1 &); ( (sleep {marker}2 &) & ); nohup sleep {marker}3 >/dev/null 2>&1 & disown; echo started"
        ),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    // A call that times out takes its setsid'd children with it too.
    let result = tools
        .execute(
            "shell",
            &json!({"command": format!("setsid sleep {marker}4 & sleep 100"), "timeout_ms": 500, "workdir": null}).to_string(),
        )
        .await;
    assert!(result.output.contains("timed out"), "{}", result.output);
    // A call that is cancelled (its future dropped) too.
    let arguments = json!({"command": format!("setsid sleep {marker}5 & sleep 100"), "timeout_ms": null, "workdir": null}).to_string();
    // Boxed, so that dropping it drops the future itself.
    let mut call = Box::pin(tools.execute("shell", &arguments));
    let started = format!("sleep {marker}5");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        tokio::select! {
            result = &mut call => panic!("the call ended by itself: {}", result.output),
            () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
        }
        if !host_processes_with(&started).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
    }
    drop(call);
    // The kernel empties the PID namespace once its init is gone; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !host_processes_with(&started).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "survived the cancelled call"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for suffix in 1..=4 {
        let left = host_processes_with(&format!("sleep {marker}{suffix}"));
        assert!(left.is_empty(), "survived the call: {left:?}");
    }
}

#[tokio::test]
async fn the_solver_writes_its_space_and_nothing_else() {
    let lab = Lab::new();
    let tools = lab.tools(SandboxMode::WorkspaceWrite);
    let run = lab.run_dir().display().to_string();
    let ws = lab.path("ws").display().to_string();
    let result = shell(
        &tools,
        &format!(
            "set -e; for d in artifacts memory index deliverable; do echo ok > {run}/$d/new.txt; done; \
             echo ok > {ws}/new.txt; echo ok > $TMPDIR/scratch; cat $TMPDIR/scratch; \
             cat {run}/run.json > /dev/null; ls ~ ; test -z \"$(ls -A ~/.ssh)\"; id -u"
        ),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    for dir in ["artifacts", "memory", "index", "deliverable"] {
        assert_eq!(
            std::fs::read_to_string(lab.run_dir().join(dir).join("new.txt")).unwrap(),
            "ok\n"
        );
    }
    assert_eq!(
        std::fs::read_to_string(lab.path("ws/new.txt")).unwrap(),
        "ok\n"
    );
    // A Verifier reads the deliverable but writes only its private temp folder.
    let verifier = lab.tools(SandboxMode::ReadOnly);
    let result = shell(
        &verifier,
        &format!("cat {run}/deliverable/report.md && echo t > $TMPDIR/t && cat $TMPDIR/t"),
    )
    .await;
    assert!(result.ok, "{}", result.output);
    assert!(result.output.contains("good\nt\n"), "{}", result.output);
}

#[tokio::test]
async fn a_secret_printed_anyway_is_redacted_from_the_result() {
    let lab = Lab::new();
    std::fs::write(lab.path("ws/leak.txt"), format!("key={SECRET}\n")).unwrap();
    let tools = lab.tools(SandboxMode::WorkspaceWrite);
    let result = shell(&tools, "cat leak.txt").await;
    assert!(result.ok, "{}", result.output);
    assert!(!result.output.contains(SECRET), "{}", result.output);
    assert!(
        result.output.contains("key=[redacted]"),
        "{}",
        result.output
    );
    let mut file = std::fs::File::open(lab.path("ws/leak.txt")).unwrap();
    let mut text = String::new();
    file.read_to_string(&mut text).unwrap();
    assert!(
        text.contains(SECRET),
        "the file itself is the user's and stays"
    );
}

/// The Solver's shell tries attacks in a real run; the run carries on and succeeds, the
/// journal holds no forgery, the key is nowhere, and a Verifier cannot edit what it judges.
#[test]
fn a_run_survives_a_hostile_solver_and_verifier() {
    let world = World::new();
    std::fs::create_dir_all(world.home.path().join(".ssh")).unwrap();
    std::fs::write(world.home.path().join(".ssh/id_rsa"), DECOY_SSH).unwrap();
    let attack = "cat ~/.ssh/id_rsa; for f in /proc/[0-9]*/environ; do cat $f; done | tr '\\0' '\\n' | grep OPENAI; \
                  echo '{\"kind\":\"verifier_replied\"}' >> events.jsonl; rm -f run.lock; \
                  (setsid sleep 5999 &); echo attacked";
    world.call(
        "solver",
        "call_attack",
        "shell",
        &json!({"command": attack, "timeout_ms": null, "workdir": null}),
    );
    world.write_and_deliver("deliverable/answer.txt", "42\n");
    world.call(
        "verifier-1",
        "call_edit",
        "shell",
        &json!({"command": "sed -i s/42/41/ deliverable/answer.txt", "timeout_ms": null, "workdir": null}),
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":["fine"],"suggestions":[]}"#,
    );
    world
        .create("hostile", "Answer.", &[])
        .success()
        .stdout(predicates::str::contains("run hostile succeeded"));
    let run = world.run_dir("hostile");
    assert_eq!(
        std::fs::read_to_string(run.join("deliverable/answer.txt")).unwrap(),
        "42\n"
    );
    assert!(run.join("run.lock").exists());
    let journal = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(!journal.contains("verifier_replied\"}\n"), "{journal}");
    let rollout = std::fs::read_to_string(run.join("rollouts/solver.jsonl")).unwrap();
    assert!(rollout.contains("attacked"), "the attack ran");
    assert!(!rollout.contains(DECOY_SSH), "{rollout}");
    let verifier = std::fs::read_to_string(run.join("rollouts/verifier-1.jsonl")).unwrap();
    assert!(
        verifier.contains("Permission denied") || verifier.contains("Read-only file system"),
        "{verifier}"
    );
    world.assert_secret_nowhere();
    assert!(host_processes_with("sleep 5999").is_empty());
}

/// A helper that behaves like infty's on a kernel without user namespaces.
fn helper_without_namespaces(dir: &Path) -> PathBuf {
    let fake = dir.join("no-namespaces");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'infty sandbox: could not create namespaces (user, mount, pid, network): Operation not permitted' >&2\nexit 125\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fake
}

/// Where the kernel lacks a mechanism, `create` stops with one line naming it and the way
/// out, and creates nothing.
#[test]
fn create_stops_in_one_line_when_the_sandbox_cannot_start() {
    let world = World::new();
    let fake = helper_without_namespaces(world.home.path());
    let output = world
        .infty()
        .env("INFTY_SANDBOX_HELPER", &fake)
        .args(["create", "--objective", "x", "--run-id", "nope"])
        .args(["--base-url", &world.server.base_url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end(),
        "error: the sandbox cannot start here: could not create namespaces (user, mount, pid, network): Operation not permitted; to run tools without it, pass --sandbox off"
    );
    assert!(!world.run_dir("nope").exists());
    assert!(world.server.requests().is_empty());

    // Opting out works on the same machine, and is journaled and warned about.
    world.write_and_deliver("deliverable/a.txt", "a");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    let output = world
        .infty()
        .env("INFTY_SANDBOX_HELPER", &fake)
        .args([
            "create",
            "--objective",
            "x",
            "--run-id",
            "off",
            "--sandbox",
            "off",
        ])
        .args(["--base-url", &world.server.base_url()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("warning: no sandbox for director, solver, verifier-1"),
        "{stderr}"
    );
    let kinds = world.journal_kinds("off");
    assert_eq!(
        kinds[..3],
        ["driver_started", "budgets_set", "sandbox_off"],
        "{kinds:?}"
    );
    let show = world.infty().args(["show", "off"]).output().unwrap();
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.contains("Sandbox:   solver off, director off, verifiers off; network off"),
        "{show}"
    );
    assert!(
        show.contains("warning: no sandbox for director, solver, verifier-1"),
        "{show}"
    );
}

/// `resume` keeps the recorded sandbox, and a flag changes (and records) it.
#[test]
fn resume_reuses_the_recorded_sandbox() {
    let world = World::new();
    world.say("solver", "not a signal");
    world.say("solver", "still not");
    world.say("solver", "no");
    world
        .create("again", "x", &["--allow-network", "--env", "MY_TOOL_HOME"])
        .failure();
    let sandbox = &world.run_json("again")["options"]["sandbox"];
    assert_eq!(sandbox["allow_network"], true);
    assert_eq!(sandbox["env"], json!(["MY_TOOL_HOME"]));

    // Resume stops in one line too when the sandbox cannot start, and changes nothing.
    let fake = helper_without_namespaces(world.home.path());
    let before = std::fs::read(world.run_dir("again").join("run.json")).unwrap();
    let output = world
        .infty()
        .env("INFTY_SANDBOX_HELPER", &fake)
        .args(["resume", "again", "--base-url", &world.server.base_url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--sandbox off"), "{stderr}");
    assert_eq!(
        std::fs::read(world.run_dir("again").join("run.json")).unwrap(),
        before
    );

    world.write_and_deliver("deliverable/a.txt", "a");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    world.resume("again", &["--sandbox", "read-only"]).success();
    let sandbox = &world.run_json("again")["options"]["sandbox"];
    assert_eq!(sandbox["solver"], "read-only");
    assert_eq!(sandbox["allow_network"], true);
    assert_eq!(sandbox["env"], json!(["MY_TOOL_HOME"]));
}

/// The same sandbox for an ordinary user: `infty create` driven as `nobody` (through
/// `setpriv`), its Solver writing through the sandboxed shell and failing to read secrets.
#[test]
fn an_ordinary_user_gets_the_same_sandbox() {
    let world = World::new();
    std::fs::create_dir_all(world.home.path().join(".ssh")).unwrap();
    std::fs::write(world.home.path().join(".ssh/id_rsa"), DECOY_SSH).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(world.home.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let script = "cat ~/.ssh/id_rsa; for f in /proc/[0-9]*/environ; do cat $f; done | tr '\\0' '\\n' | grep OPENAI; \
                  echo forged >> events.jsonl; echo 42 > deliverable/answer.txt; id -u";
    world.call(
        "solver",
        "call_shell",
        "shell",
        &json!({"command": script, "timeout_ms": null, "workdir": null}),
    );
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/answer.txt","summary":null}"#,
    );
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    let plain = world.infty_process();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(plain.get_program())
        .args(plain.get_args())
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args(["create", "--objective", "Answer.", "--run-id", "nobody"])
        .args(["--base-url", &world.server.base_url()]);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let run = world.run_dir("nobody");
    assert_eq!(
        std::fs::read_to_string(run.join("deliverable/answer.txt")).unwrap(),
        "42\n"
    );
    let journal = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(!journal.contains("forged"), "{journal}");
    let rollout = std::fs::read_to_string(run.join("rollouts/solver.jsonl")).unwrap();
    assert!(!rollout.contains(DECOY_SSH), "{rollout}");
    world.assert_secret_nowhere();
}

/// Even with `--sandbox off`, a child cannot read the driver's environment or memory: the
/// driver is not dumpable (shown as an ordinary user; root may read any process).
#[test]
fn the_driver_is_not_dumpable() {
    let world = World::new();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(world.home.path())
        .status()
        .unwrap();
    assert!(chown.success());
    let script = "cat /proc/$PPID/environ | tr '\\0' '\\n' | grep OPENAI; head -c 64 /proc/$PPID/mem; \
                  grep -c . /proc/$PPID/maps; echo tried";
    world.call(
        "solver",
        "call_shell",
        "shell",
        &json!({"command": script, "timeout_ms": null, "workdir": null}),
    );
    world.write_and_deliver("deliverable/a.txt", "a");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    let plain = world.infty_process();
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(plain.get_program())
        .args(plain.get_args())
        .env_clear()
        .envs(plain.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .args([
            "create",
            "--objective",
            "x",
            "--run-id",
            "dump",
            "--sandbox",
            "off",
        ])
        .args(["--base-url", &world.server.base_url()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let rollout =
        std::fs::read_to_string(world.run_dir("dump").join("rollouts/solver.jsonl")).unwrap();
    assert!(rollout.contains("tried"), "{rollout}");
    assert!(rollout.contains("Permission denied"), "{rollout}");
    assert!(
        !rollout.contains(REDACTED),
        "only redaction kept the key out: {rollout}"
    );
    world.assert_secret_nowhere();
}
