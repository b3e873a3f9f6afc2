//! Completion checks: commands that must exit 0 before any Verifier reads a delivery.
//!
//! A check runs through the same process code as the `shell` tool
//! ([`crate::tools::shell::run_command`]): `bash -c`, its own process group killed at the
//! end or at the time limit, head and tail of the output kept, under a sandbox spec the
//! driver gives (`read-only`, allowlisted environment). So whatever confines a role's
//! commands confines checks too. This module
//! must never spawn a process any other way, nor fail a run: a check that cannot start is a
//! failed check, reported to the Solver.

use std::time::Duration;

use camino::Utf8Path;
use infty_store::{CheckDir, CheckSpec};

use crate::events::CheckResult;
use crate::tools::{SandboxSpec, shell};

/// Output of a check kept for the Solver and the Verifiers (head and tail).
pub(crate) const CHECK_OUTPUT_BYTES: usize = 6 * 1024;

/// Runs `check` in the run folder or the workspace and reports how it ended.
pub(crate) async fn run_check(
    check: &CheckSpec,
    run_dir: &Utf8Path,
    workspace: Option<&Utf8Path>,
    sandbox: &SandboxSpec,
) -> CheckResult {
    let cwd = match (check.dir, workspace) {
        (CheckDir::Workspace, Some(workspace)) => workspace,
        _ => run_dir,
    };
    let timeout = Duration::from_secs(check.timeout_secs.max(1));
    match shell::run_command(&check.command, cwd, sandbox, timeout, CHECK_OUTPUT_BYTES).await {
        Ok(run) => {
            let (exit_code, timed_out) = match &run.ending {
                shell::Ending::Exited(status) => (status.code(), false),
                shell::Ending::TimedOut(_) => (None, true),
            };
            CheckResult {
                name: check.name.clone(),
                command: check.command.clone(),
                passed: run.success(),
                exit_code,
                timed_out,
                output: run.render(CHECK_OUTPUT_BYTES),
            }
        }
        Err(error) => CheckResult {
            name: check.name.clone(),
            command: check.command.clone(),
            passed: false,
            exit_code: None,
            timed_out: false,
            output: format!("the check could not start: {error}"),
        },
    }
}
