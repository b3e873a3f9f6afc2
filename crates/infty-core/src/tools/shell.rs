//! The `shell` tool: one command line run by `bash -c`, bounded in time and output.
//!
//! The command starts through the role's sandbox (`process::sandboxed_command`), in its own
//! process group, with no stdin and the allowlisted environment. When it finishes, times
//! out, or the call is dropped, the whole group is killed, so a `sleep 100 &` left behind
//! dies with it; under the sandbox, the PID namespace also takes the ones that `setsid`. Output is read while the command runs into
//! bounded captures (head and tail), so a chatty command cannot exhaust memory.
//! This module must never leave a process group running behind a finished or dropped call.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::capture::OutputCapture;
use super::confine::{self, Access};
use super::process::{self, SandboxSpec};
use super::{ToolContext, ToolError, ToolPolicy, ToolResult};

/// How long to keep reading after the group is killed: only a process that left the group
/// (`setsid`) can still hold the pipes open, and it is not worth waiting for.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShellArgs {
    command: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    workdir: Option<String>,
}

/// Kills the process group when dropped, whatever happened to the call.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH (nothing left in the group) is the usual, harmless outcome.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the command ended.
pub(crate) enum Ending {
    Exited(ExitStatus),
    TimedOut(Duration),
}

/// A finished command of [`run_command`]: how it ended and its captured output.
pub(crate) struct CommandRun {
    pub(crate) ending: Ending,
    stdout: OutputCapture,
    stderr: OutputCapture,
}

impl CommandRun {
    /// Whether it exited 0 in time.
    pub(crate) fn success(&self) -> bool {
        matches!(&self.ending, Ending::Exited(status) if status.success())
    }

    /// How it ended, then its labelled output, within `budget` bytes of output.
    pub(crate) fn render(&self, budget: usize) -> String {
        render(&self.ending, &self.stdout, &self.stderr, budget)
    }
}

pub(crate) async fn run(
    context: &ToolContext,
    policy: &ToolPolicy,
    sandbox: &SandboxSpec,
    args: ShellArgs,
) -> Result<ToolResult, ToolError> {
    let cwd = match args.workdir.as_deref() {
        None => context.base_dir().to_path_buf(),
        Some(workdir) => {
            let context = context.clone();
            let workdir = workdir.to_owned();
            tokio::task::spawn_blocking(move || resolve_workdir(&context, &workdir))
                .await
                .map_err(|error| ToolError::Interrupted {
                    detail: error.to_string(),
                })??
        }
    };
    let timeout = match args.timeout_ms {
        None => policy.shell_default_timeout,
        Some(ms) => Duration::from_millis(ms.max(1)).min(policy.shell_max_timeout),
    };
    let run = run_command(
        &args.command,
        &cwd,
        sandbox,
        timeout,
        policy.max_output_bytes,
    )
    .await?;
    Ok(ToolResult {
        output: run.render(policy.max_output_bytes),
        ok: run.success(),
        plan: None,
    })
}

/// Runs `command_line` by `bash -c` in `cwd` under `sandbox` (its policy, allowlisted
/// environment and private temp folder): no stdin, its own process group, killed when it
/// finishes, times out or the call is dropped; each stream captured (head and tail) within
/// `max_output_bytes`. The shell tool and completion checks both run their commands here.
pub(crate) async fn run_command(
    command_line: &str,
    cwd: &camino::Utf8Path,
    sandbox: &SandboxSpec,
    timeout: Duration,
    max_output_bytes: usize,
) -> Result<CommandRun, ToolError> {
    let mut command = process::sandboxed_command(sandbox, "bash", ["-c", command_line])?;
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|source| ToolError::Spawn { source })?;
    let mut guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    };
    tracing::debug!(command = %command_line, %cwd, ?timeout, "shell started");

    // Each stream may use the whole budget while reading; `render` shares it out after.
    let mut stdout_capture = OutputCapture::new(max_output_bytes);
    let mut stderr_capture = OutputCapture::new(max_output_bytes);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();

    let ending = {
        let reading = futures::future::join(
            pump(stdout, &mut stdout_capture),
            pump(stderr, &mut stderr_capture),
        );
        tokio::pin!(reading);
        let mut read_done = false;
        let waited = {
            let waiting = tokio::time::timeout(timeout, child.wait());
            tokio::pin!(waiting);
            loop {
                tokio::select! {
                    _ = &mut reading, if !read_done => read_done = true,
                    waited = &mut waiting => break waited,
                }
            }
        };
        // Finished or not, nothing the command started may outlive the call.
        guard.kill();
        let ending = match waited {
            Ok(Ok(status)) => Ending::Exited(status),
            Ok(Err(source)) => {
                return Err(ToolError::Io {
                    action: "wait for",
                    path: "bash".to_owned(),
                    source,
                });
            }
            Err(_) => {
                // Reap the killed shell so it leaves no zombie.
                let _ = child.wait().await;
                Ending::TimedOut(timeout)
            }
        };
        if !read_done {
            let _ = tokio::time::timeout(DRAIN_GRACE, &mut reading).await;
        }
        ending
    };

    Ok(CommandRun {
        ending,
        stdout: stdout_capture,
        stderr: stderr_capture,
    })
}

fn resolve_workdir(context: &ToolContext, workdir: &str) -> Result<camino::Utf8PathBuf, ToolError> {
    let target = confine::resolve(context, workdir, Access::Read)?;
    // Checked without following links, like the file tools; the shell itself is not
    // confined by this (the sandbox is what confines it).
    target
        .root()?
        .folder(&target.relative)
        .map_err(|error| target.refused(error, "open"))?;
    Ok(target.path())
}

/// Reads `stream` to its end into `capture`.
async fn pump(stream: Option<impl AsyncRead + Unpin>, capture: &mut OutputCapture) {
    let Some(mut stream) = stream else {
        return;
    };
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => capture.push(&buffer[..read]),
        }
    }
}

/// The text the model reads: how the command ended, then its labelled output, within
/// `budget` bytes of output shared by the two streams.
fn render(
    ending: &Ending,
    stdout: &OutputCapture,
    stderr: &OutputCapture,
    budget: usize,
) -> String {
    let mut text = match ending {
        Ending::Exited(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code: {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "exit status unknown".to_owned(),
        },
        Ending::TimedOut(timeout) => format!(
            "timed out after {} ms (the command and everything it started were killed)",
            timeout.as_millis()
        ),
    };
    text.push('\n');
    if stdout.is_empty() && stderr.is_empty() {
        text.push_str("(no output)\n");
        return text;
    }
    let (stdout_budget, stderr_budget) =
        share_budget(budget, stdout.total_bytes(), stderr.total_bytes());
    for (label, capture, share) in [
        ("stdout", stdout, stdout_budget),
        ("stderr", stderr, stderr_budget),
    ] {
        if capture.is_empty() {
            continue;
        }
        text.push_str(&format!("--- {label} ---\n"));
        text.push_str(&capture.render(share));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    text
}

/// Splits `budget` between two streams: each gets half, and what one does not need goes to
/// the other.
fn share_budget(budget: usize, first: u64, second: u64) -> (usize, usize) {
    let half = budget / 2;
    let need = |total: u64| usize::try_from(total).unwrap_or(usize::MAX);
    let (first, second) = (need(first), need(second));
    if first <= half {
        (first, (budget - first).min(second))
    } else if second <= budget - half {
        ((budget - second).min(first), second)
    } else {
        (half, budget - half)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_sharing() {
        let cases = [
            (100, 10, 10, (10, 10)),
            (100, 10, 500, (10, 90)),
            (100, 500, 10, (90, 10)),
            (100, 500, 500, (50, 50)),
            (100, 0, 500, (0, 100)),
            (101, 500, 500, (50, 51)),
        ];
        for (budget, first, second, expected) in cases {
            assert_eq!(
                share_budget(budget, first, second),
                expected,
                "{budget} {first} {second}"
            );
        }
    }
}
