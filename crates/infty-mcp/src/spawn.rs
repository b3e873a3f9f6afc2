//! The only place infty starts the process of a stdio MCP server.
//!
//! Every stdio server goes through [`spawn_stdio`], so the sandbox that confines the shell
//! tool's processes can confine these too by changing this one function. The process gets an
//! allowlisted environment ([`BASE_ENV`] from infty's own, plus what the server's record
//! names), never infty's whole environment with its API key; it leads its own process group,
//! so that stopping it stops what it started; and it is killed if its handle is dropped.
//! This module never reads or logs the values of the variables it passes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;

use rmcp::transport::TokioChildProcess;
use tokio::process::ChildStderr;

/// Variables a stdio server inherits from infty's environment, when they are set.
pub const BASE_ENV: [&str; 7] = ["PATH", "HOME", "LANG", "TERM", "TZ", "USER", "TMPDIR"];

/// A stdio server's process, fully resolved: program, arguments, its whole environment.
#[derive(Clone)]
pub struct StdioLaunch {
    /// The server's name (for messages).
    pub server: String,
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its entire environment.
    pub env: Vec<(OsString, OsString)>,
    /// The folder it starts in; `None` is infty's current folder.
    pub cwd: Option<PathBuf>,
    /// Whether it runs in the shell's sandbox (`false`: the configuration turned it off).
    pub sandboxed: bool,
    /// The sandbox it starts under, when it is sandboxed and the caller gave one.
    pub sandbox: Option<Box<infty_core::tools::SandboxSpec>>,
}

impl std::fmt::Debug for StdioLaunch {
    /// Names the variables, never their values (a pass-through variable may hold a token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.env.iter().map(|(name, _)| name).collect();
        f.debug_struct("StdioLaunch")
            .field("server", &self.server)
            .field("command", &self.command)
            .field("args", &self.args)
            .field("env", &names)
            .field("cwd", &self.cwd)
            .field("sandboxed", &self.sandboxed)
            .field("sandbox", &self.sandbox)
            .finish()
    }
}

/// A started stdio server: the transport rmcp speaks over, its process group, its stderr.
pub struct Spawned {
    /// The transport over the process's stdin and stdout.
    pub transport: TokioChildProcess,
    /// The process group it leads (its pid), to stop whatever it started.
    pub process_group: Option<u32>,
    /// Its standard error, for diagnostics.
    pub stderr: Option<ChildStderr>,
}

/// Starts the server process of `launch`.
///
/// With a sandbox (the shell tool's, see `launch.sandbox`), the command starts through core's
/// one process seam, `infty_core::tools::sandboxed_command`, then gets the server's own
/// variables; without one, it starts with exactly `launch.env`.
pub fn spawn_stdio(launch: &StdioLaunch) -> std::io::Result<Spawned> {
    let mut command = match &launch.sandbox {
        Some(spec) => infty_core::tools::sandboxed_command(spec, &launch.command, &launch.args)
            .map_err(|error| std::io::Error::other(error.to_string()))?,
        None => {
            let mut command = tokio::process::Command::new(&launch.command);
            command.args(&launch.args).env_clear();
            command
        }
    };
    // Under the sandbox, TMPDIR stays the private temp folder the spec made.
    let sandboxed = launch.sandbox.is_some();
    command
        .envs(
            launch
                .env
                .iter()
                .filter(|(name, _)| !(sandboxed && name == "TMPDIR"))
                .map(|(k, v)| (k, v)),
        )
        .kill_on_drop(true)
        .process_group(0);
    if let Some(cwd) = &launch.cwd {
        command.current_dir(cwd);
    }
    let (transport, stderr) = TokioChildProcess::builder(command)
        .stderr(Stdio::piped())
        .spawn()?;
    let process_group = transport.id();
    Ok(Spawned {
        transport,
        process_group,
        stderr,
    })
}

/// Kills what is left of a server's process group (its children included).
pub fn kill_group(process_group: u32) {
    let Ok(pid) = i32::try_from(process_group) else {
        return;
    };
    // The group may be gone already; nothing to report then.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}
