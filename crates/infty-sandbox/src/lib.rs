//! The OS sandbox of infty's tool processes, and the only crate with platform code.
//!
//! A [`SandboxPolicy`] says what a sandboxed command may touch: folders it may write,
//! folders it may only read (bound read-only, so no enclosing writable folder can open them
//! up), paths hidden behind empty mounts (credential files, other runs), and whether the
//! network is reachable. [`helper_command`] turns a policy and a command line into the argv
//! of a helper executable that applies the policy to itself and then runs the command;
//! [`run_helper_if_requested`], called first thing in that executable's `main`, is the
//! helper. [`probe`] checks at run start that the kernel has every mechanism a policy needs,
//! and [`harden_current_process`] keeps the driving process's memory and environment out of
//! its children's reach.
//!
//! Why a helper process: restricting a process after `fork` and before `exec` needs
//! `unsafe` (`pre_exec`); re-executing a helper that restricts itself, then spawns the
//! command, does not. Codex's Linux sandbox works the same way.
//!
//! This crate must never weaken a policy silently: a mechanism that is missing is an error,
//! never a downgrade. It knows nothing of runs, roles or models; the caller (infty-core)
//! maps its modes onto a policy.

mod error;
#[cfg(target_os = "linux")]
mod linux;
mod policy;

use std::ffi::OsString;
use std::path::Path;

pub use error::SandboxError;
pub use policy::SandboxPolicy;

/// The first argument that makes an executable act as the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox";
/// The helper's second stage, PID 1 of the new PID namespace (internal).
const INIT_ARG: &str = "__sandbox-init";
/// A command that only says it ran, so that [`probe`] needs no program from the system.
const NOOP_ARG: &str = "__sandbox-noop";
/// What the no-op command prints: proof that the helper really applied the policy and ran
/// it (an executable that ignores its arguments and exits 0 is no helper).
const NOOP_MARKER: &str = "infty-sandbox: policy applied";

/// Exit code of the helper when it could not apply the policy; its stderr then holds one
/// line `infty sandbox: could not <mechanism>: <detail>`.
pub const HELPER_FAILED: i32 = 125;
/// The prefix of the helper's failure line on stderr.
pub const FAILURE_PREFIX: &str = "infty sandbox: could not ";

/// The argv (after the program) that runs `program args` under `policy` through `helper`:
/// `helper __sandbox POLICY-JSON -- program args...`.
///
/// The caller spawns `helper` with these arguments, its own environment (already
/// allowlisted: the helper passes it on unchanged), working folder and stdio.
pub fn helper_command(
    policy: &SandboxPolicy,
    program: impl Into<OsString>,
    args: impl IntoIterator<Item = impl Into<OsString>>,
) -> Result<Vec<OsString>, SandboxError> {
    let json = serde_json::to_string(policy).map_err(|source| SandboxError::Policy {
        detail: source.to_string(),
    })?;
    let mut argv = vec![
        OsString::from(HELPER_ARG),
        OsString::from(json),
        OsString::from("--"),
        program.into(),
    ];
    argv.extend(args.into_iter().map(Into::into));
    Ok(argv)
}

/// Acts as the sandbox helper when this process was started as one (its first argument is
/// [`HELPER_ARG`]), and never returns then; otherwise returns at once.
///
/// Call it first in `main`, before any thread is started (namespaces cannot be entered by a
/// multi-threaded process) and before argument parsing.
pub fn run_helper_if_requested() {
    let mut args = std::env::args_os().skip(1);
    let Some(first) = args.next() else {
        return;
    };
    let stage = match first.to_str() {
        Some(HELPER_ARG) => Stage::Outer,
        Some(INIT_ARG) => Stage::Init,
        Some(NOOP_ARG) => {
            println!("{NOOP_MARKER}");
            std::process::exit(0)
        }
        _ => return,
    };
    let rest: Vec<OsString> = args.collect();
    let code = match helper_main(stage, rest) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("{FAILURE_PREFIX}{failure}");
            HELPER_FAILED
        }
    };
    std::process::exit(code);
}

/// Which part of the helper this process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Enters the namespaces, arranges the mounts, starts `Init`.
    Outer,
    /// PID 1 of the new PID namespace: `/proc`, Landlock, the command, reaping.
    Init,
}

/// A mechanism that could not be applied, and why.
#[derive(Debug)]
struct Failure {
    mechanism: String,
    detail: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.mechanism, self.detail)
    }
}

fn failure(mechanism: impl Into<String>) -> impl FnOnce(String) -> Failure {
    let mechanism = mechanism.into();
    move |detail| Failure { mechanism, detail }
}

fn helper_main(stage: Stage, rest: Vec<OsString>) -> Result<i32, Failure> {
    let mut rest = rest.into_iter();
    let json = rest
        .next()
        .ok_or_else(|| failure("read the policy")("missing".to_owned()))?;
    let policy: SandboxPolicy = serde_json::from_str(&json.to_string_lossy())
        .map_err(|error| failure("read the policy")(error.to_string()))?;
    if rest.next().as_deref() != Some(std::ffi::OsStr::new("--")) {
        return Err(failure("read the command")("expected `--`".to_owned()));
    }
    let command: Vec<OsString> = rest.collect();
    if command.is_empty() {
        return Err(failure("read the command")("it is empty".to_owned()));
    }
    run_stage(stage, &json, &policy, &command)
}

#[cfg(target_os = "linux")]
fn run_stage(
    stage: Stage,
    json: &OsString,
    policy: &SandboxPolicy,
    command: &[OsString],
) -> Result<i32, Failure> {
    match stage {
        Stage::Outer => linux::outer(json, policy, command),
        Stage::Init => linux::init(policy, command),
    }
}

#[cfg(not(target_os = "linux"))]
fn run_stage(
    _stage: Stage,
    _json: &OsString,
    _policy: &SandboxPolicy,
    _command: &[OsString],
) -> Result<i32, Failure> {
    Err(failure("sandbox a process")(
        "this operating system has no sandbox in infty yet".to_owned(),
    ))
}

/// Checks that `helper` can apply `policy` on this machine, by running a command that does
/// nothing under it. The error names the missing mechanism.
pub fn probe(helper: &Path, policy: &SandboxPolicy) -> Result<(), SandboxError> {
    let argv = helper_command(policy, helper.as_os_str(), [NOOP_ARG])?;
    let output = std::process::Command::new(helper)
        .args(argv)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| SandboxError::Helper {
            helper: helper.to_path_buf(),
            source,
        })?;
    if output.status.success() && String::from_utf8_lossy(&output.stdout).contains(NOOP_MARKER) {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(
        match stderr
            .lines()
            .find_map(|line| line.strip_prefix(FAILURE_PREFIX))
        {
            Some(line) => {
                let (mechanism, detail) = line.split_once(": ").unwrap_or((line, ""));
                SandboxError::Unavailable {
                    mechanism: mechanism.to_owned(),
                    detail: detail.to_owned(),
                }
            }
            None => SandboxError::NotAHelper {
                helper: helper.to_path_buf(),
                status: output.status.to_string(),
            },
        },
    )
}

/// The sandbox helper named by `INFTY_SANDBOX_HELPER`, else the current executable (as
/// `/proc/self/exe` on Linux, which a child resolves to its parent's executable even when
/// the file was replaced since).
///
/// The variable is for packagers and tests (a helper installed elsewhere, or a fake one that
/// simulates a kernel without a mechanism). Tool processes never receive it.
pub fn default_helper() -> Option<std::path::PathBuf> {
    match std::env::var_os(HELPER_ENV) {
        Some(path) if !path.is_empty() => Some(path.into()),
        #[cfg(target_os = "linux")]
        _ => Some(std::path::PathBuf::from(linux::SELF_EXE)),
        #[cfg(not(target_os = "linux"))]
        _ => std::env::current_exe().ok(),
    }
}

/// The variable [`default_helper`] reads.
pub const HELPER_ENV: &str = "INFTY_SANDBOX_HELPER";

/// Makes the calling process unreadable by its children and other processes of the same
/// user: not dumpable, so `/proc/PID/environ`, `/proc/PID/mem` and `ptrace` are refused.
///
/// Call it at the start of a driver's `main` (the `infty` binary does). It changes nothing
/// else: the process keeps working normally (no core dumps, though).
pub fn harden_current_process() -> Result<(), SandboxError> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_dumpable(false).map_err(|errno| SandboxError::Unavailable {
            mechanism: "make the driver undumpable (PR_SET_DUMPABLE)".to_owned(),
            detail: errno.desc().to_owned(),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_argv_carries_the_policy_then_the_command() {
        let policy = SandboxPolicy {
            writable: vec!["/w".into()],
            ..SandboxPolicy::default()
        };
        let argv = helper_command(&policy, "bash", ["-c", "echo hi"]).unwrap();
        let argv: Vec<String> = argv.into_iter().map(|a| a.into_string().unwrap()).collect();
        assert_eq!(
            argv,
            [
                "__sandbox",
                r#"{"writable":["/w"],"read_only":[],"hidden":[],"allow_network":false}"#,
                "--",
                "bash",
                "-c",
                "echo hi"
            ]
        );
    }
}
