//! infty-sandbox's integration tests: the real helper binary on the real kernel, as root and
//! as an ordinary user (through `setpriv`), and the probe's verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use infty_sandbox::{SandboxError, SandboxPolicy, helper_command, probe};

fn helper() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_infty-sandbox"))
}

/// Runs `bash -c script` under `policy`, optionally as the user `nobody`.
fn sandboxed(policy: &SandboxPolicy, script: &str, as_nobody: bool) -> Output {
    let argv = helper_command(policy, "bash", ["-c", script]).unwrap();
    let mut command = if as_nobody {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(helper());
        command
    } else {
        Command::new(helper())
    };
    command
        .args(argv)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .output()
        .unwrap()
}

/// A folder tree that `nobody` can traverse: `writable/`, `hidden/secret`, `outside/`.
fn lab() -> (tempfile::TempDir, SandboxPolicy) {
    let root = tempfile::tempdir().unwrap();
    for dir in ["writable", "hidden", "outside"] {
        std::fs::create_dir(root.path().join(dir)).unwrap();
    }
    std::fs::write(root.path().join("hidden/secret"), "decoy-secret").unwrap();
    std::fs::write(root.path().join("outside/file"), "outside").unwrap();
    for path in [root.path(), &root.path().join("outside")] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(
        root.path().join("writable"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    let policy = SandboxPolicy {
        writable: vec![root.path().join("writable")],
        read_only: vec![],
        hidden: vec![root.path().join("hidden")],
        allow_network: false,
    };
    (root, policy)
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Root and an ordinary user get the same sandbox: one row per attack.
#[test]
fn the_sandbox_holds_for_root_and_for_an_ordinary_user() {
    for as_nobody in [false, true] {
        let (root, policy) = lab();
        let dir = root.path().display().to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut outsider = Command::new("sleep").arg("600").spawn().unwrap();
        let outsider_pid = outsider.id();
        let rows = [
            ("write outside", format!("echo x > {dir}/outside/new")),
            ("overwrite outside", format!("echo x > {dir}/outside/file")),
            ("read a hidden folder", format!("cat {dir}/hidden/secret")),
            (
                "write a hidden folder",
                format!("echo x > {dir}/hidden/new"),
            ),
            (
                "connect to loopback outside",
                format!("exec 3<>/dev/tcp/127.0.0.1/{port}"),
            ),
            (
                "signal a process outside",
                format!("kill -9 {outsider_pid}"),
            ),
            (
                "ptrace a process outside",
                format!("strace -p {outsider_pid}"),
            ),
            ("mount", format!("mount -t tmpfs none {dir}/writable")),
        ];
        for (attack, script) in &rows {
            let output = sandboxed(&policy, script, as_nobody);
            assert!(
                !output.status.success(),
                "{attack} (nobody: {as_nobody}): {}",
                text(&output)
            );
            assert!(
                !text(&output).contains("decoy-secret"),
                "{attack}: {}",
                text(&output)
            );
        }
        assert!(
            outsider.try_wait().unwrap().is_none(),
            "the outsider was killed"
        );
        outsider.kill().unwrap();
        let _ = outsider.wait();
        assert!(!root.path().join("outside/new").exists());
        assert_eq!(
            std::fs::read_to_string(root.path().join("outside/file")).unwrap(),
            "outside"
        );
        assert_eq!(
            std::fs::read_to_string(root.path().join("hidden/secret")).unwrap(),
            "decoy-secret"
        );

        let output = sandboxed(
            &policy,
            &format!(
                "echo ok > {dir}/writable/new && cat {dir}/outside/file && echo && ls /proc | grep -c '^[0-9]'"
            ),
            as_nobody,
        );
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(
            std::fs::read_to_string(root.path().join("writable/new")).unwrap(),
            "ok\n"
        );
        // Only the sandbox's own processes are visible: init, bash, ls, grep.
        let visible: u32 = String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap()
            .parse()
            .unwrap();
        assert!(visible <= 4, "{}", text(&output));

        // Inside, the command is the caller (not uid 0 of the namespace), without capabilities.
        let output = sandboxed(&policy, "id -u; grep CapEff /proc/self/status", as_nobody);
        let expected_uid = if as_nobody { "65534" } else { "0" };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            stdout.starts_with(&format!("{expected_uid}\n")),
            "{}",
            text(&output)
        );
        if as_nobody {
            assert!(
                stdout.contains("CapEff:\t0000000000000000"),
                "{}",
                text(&output)
            );
        }
    }
}

/// A pathname UNIX socket of a daemon is unreachable once hidden (Landlock does not cover
/// `connect`), and `/dev/shm` is private and writable.
#[test]
fn hidden_sockets_cannot_be_reached_and_shm_is_private() {
    let (root, mut policy) = lab();
    let socket = root.path().join("daemon.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let connect = format!(
        "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect(\"{}\")'",
        socket.display()
    );
    let output = sandboxed(&policy, &connect, false);
    assert!(
        output.status.success(),
        "not hidden, reachable: {}",
        text(&output)
    );
    let _ = listener.accept().unwrap();
    policy.hidden.push(socket.clone());
    let output = sandboxed(&policy, &connect, false);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(listener.accept().is_err());

    let marker = format!("infty-shm-{}", std::process::id());
    let output = sandboxed(
        &policy,
        &format!("echo x > /dev/shm/{marker} && cat /dev/shm/{marker}"),
        false,
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(!Path::new("/dev/shm").join(&marker).exists());
}

/// A credential folder that is a symbolic link is hidden where it points.
#[test]
fn a_hidden_symlink_hides_its_target() {
    let (root, mut policy) = lab();
    let link = root.path().join("link-to-hidden");
    std::os::unix::fs::symlink(root.path().join("hidden"), &link).unwrap();
    policy.hidden = vec![link.clone()];
    let output = sandboxed(
        &policy,
        &format!(
            "cat {}/secret; cat {}/hidden/secret",
            link.display(),
            root.path().display()
        ),
        false,
    );
    assert!(!output.status.success(), "{}", text(&output));
    assert!(!text(&output).contains("decoy-secret"), "{}", text(&output));
}

#[test]
fn exit_codes_pass_through_and_signals_become_128_plus() {
    let (_root, policy) = lab();
    for (script, code) in [("exit 0", 0), ("exit 3", 3), ("kill -9 $$", 137)] {
        let output = sandboxed(&policy, script, false);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{script}: {}",
            text(&output)
        );
    }
}

#[test]
fn the_probe_accepts_the_helper_and_names_what_is_missing() {
    for allow_network in [false, true] {
        let policy = SandboxPolicy {
            allow_network,
            ..SandboxPolicy::default()
        };
        probe(&helper(), &policy).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-helper");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'infty sandbox: could not create namespaces (user, mount, pid, network): Operation not permitted' >&2\nexit 125\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let error = probe(&fake, &SandboxPolicy::default()).unwrap_err();
    assert!(
        matches!(&error, SandboxError::Unavailable { mechanism, .. } if mechanism == "create namespaces (user, mount, pid, network)"),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "the sandbox cannot start here: could not create namespaces (user, mount, pid, network): Operation not permitted"
    );

    // An executable that ignores its arguments and succeeds is no helper.
    let error = probe(Path::new("/bin/true"), &SandboxPolicy::default()).unwrap_err();
    assert!(
        matches!(error, SandboxError::NotAHelper { .. }),
        "{error:?}"
    );
}
