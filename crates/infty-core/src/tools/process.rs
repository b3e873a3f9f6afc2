//! The one seam every process started for a role goes through: [`sandboxed_command`].
//!
//! A [`SandboxSpec`] is what a role's processes run under: its [`SandboxMode`], the
//! [`SandboxPolicy`] that mode grants in this run (see [`role_policy`]), the helper
//! executable that enforces it, the allowlisted environment and a private temp folder.
//! `shell` spawns through [`sandboxed_command`]; so must every other process a role causes
//! (completion checks, MCP stdio servers): the command it returns already carries the
//! sandbox, the environment and the temp folder, and the caller only adds its working folder
//! and stdio.
//!
//! This module must never start a process outside the spec's sandbox, and never pass an
//! environment variable that is neither allowlisted nor named by the user.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use camino::Utf8Path;
use infty_sandbox::{SandboxError, SandboxPolicy};
use infty_store::{RUN_SUBDIRS, SandboxMode, SandboxSettings};
use tokio::process::Command;

use super::ToolError;

/// Environment variables every tool process receives (when set), besides `LC_*` and the
/// names the user adds.
pub const ENV_ALLOWLIST: [&str; 7] = ["PATH", "HOME", "LANG", "TERM", "TZ", "USER", "TMPDIR"];

/// Credential files and folders under `$HOME` hidden from sandboxed processes.
pub const HIDDEN_UNDER_HOME: [&str; 7] = [
    ".ssh",
    ".aws",
    ".gnupg",
    ".netrc",
    ".config/gcloud",
    ".docker/config.json",
    ".kube",
];

/// Sockets of daemons that act for whoever connects (container engines, systemd, D-Bus,
/// per-user agents, X11). Landlock does not cover `connect` on them, and a root driver's
/// sandbox connects as root, so they are hidden.
pub const HIDDEN_SOCKETS: [&str; 10] = [
    "/run/docker.sock",
    "/var/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/systemd/private",
    "/run/systemd/io.system.ManagedOOM",
    "/run/dbus/system_bus_socket",
    "/var/run/dbus/system_bus_socket",
    "/run/user",
    "/tmp/.X11-unix",
];

/// The folders of the Solver's space, the only parts of the run folder it may write.
const SOLVER_SPACE: [&str; 4] = ["artifacts", "memory", "index", "deliverable"];

/// Whether an environment variable named `name` looks like it holds a secret; the values of
/// such variables that the user passes to tools are redacted from what is recorded.
pub fn looks_secret(name: &str) -> bool {
    const SUFFIXES: [&str; 10] = [
        "_API_KEY",
        "_KEY",
        "_TOKEN",
        "_SECRET",
        "_PASSWORD",
        "_PASSWD",
        "_CREDENTIAL",
        "_CREDENTIALS",
        "_URL",
        "_DSN",
    ];
    const NAMES: [&str; 5] = ["API_KEY", "TOKEN", "SECRET", "PASSWORD", "OPENAI_KEY"];
    let upper = name.to_ascii_uppercase();
    NAMES.contains(&upper.as_str()) || SUFFIXES.iter().any(|suffix| upper.ends_with(suffix))
}

/// Whether `name` passes the allowlist (before the user's additions).
fn allowlisted(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    ENV_ALLOWLIST.contains(&name) || name.starts_with("LC_")
}

/// Where a run's records and the user's secrets are, for [`role_policy`].
#[derive(Clone, Debug, Default)]
pub struct RunSpace {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The folder of all runs (hidden, except this run's folder).
    pub runs_root: Option<PathBuf>,
    /// `$INFTY_HOME` (hidden: config, logs).
    pub infty_home: Option<PathBuf>,
    /// The workspace, if any.
    pub workspace: Option<PathBuf>,
    /// The user's home folder, whose credential files are hidden.
    pub home: Option<PathBuf>,
}

impl RunSpace {
    /// The space of the run in `run_dir`, with the runs root as its parent and `$HOME` and
    /// `$INFTY_HOME` from this process's environment.
    pub fn of_run(run_dir: &Utf8Path, workspace: Option<&Utf8Path>) -> RunSpace {
        RunSpace {
            run_dir: run_dir.into(),
            runs_root: run_dir.parent().map(Into::into),
            infty_home: std::env::var_os("INFTY_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".infty"))),
            workspace: workspace.map(Into::into),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }
}

/// What `mode` lets a role's processes touch in `space`, with the user's extra hidden paths.
///
/// Both modes read the whole system except the hidden paths: the credential files under
/// `$HOME`, `$INFTY_HOME` and the runs root (this run's folder excepted, read-only). The
/// run's records are never writable; `workspace-write` writes the Solver's space and the
/// workspace, `read-only` nothing. The private temp folder is added by [`SandboxSpec`].
pub fn role_policy(
    mode: SandboxMode,
    space: &RunSpace,
    settings: &SandboxSettings,
) -> SandboxPolicy {
    let mut hidden: Vec<PathBuf> = HIDDEN_SOCKETS.iter().map(PathBuf::from).collect();
    if let Some(home) = &space.home {
        hidden.extend(HIDDEN_UNDER_HOME.iter().map(|name| home.join(name)));
    }
    for extra in &settings.hidden {
        match (extra.strip_prefix("~/"), &space.home) {
            (Some(rest), Some(home)) => hidden.push(home.join(rest)),
            _ => hidden.push(PathBuf::from(extra)),
        }
    }
    hidden.extend(space.infty_home.iter().cloned());
    hidden.extend(space.runs_root.iter().cloned());
    let mut writable = Vec::new();
    if mode == SandboxMode::WorkspaceWrite {
        writable.extend(SOLVER_SPACE.iter().map(|name| space.run_dir.join(name)));
        writable.extend(space.workspace.iter().cloned());
    }
    // The run folder is bound read-only: even a workspace that contains it cannot open its
    // records (run.json, events.jsonl, rollouts/, inbox/, run.lock) to writes.
    debug_assert!(SOLVER_SPACE.iter().all(|name| RUN_SUBDIRS.contains(name)));
    SandboxPolicy {
        writable,
        read_only: vec![space.run_dir.clone()],
        hidden,
        allow_network: settings.allow_network,
    }
}

/// How a role's processes are started: mode, policy, helper, environment, temp folder.
///
/// Cheap to clone; the private temp folder is deleted when the last clone is dropped.
#[derive(Clone)]
pub struct SandboxSpec {
    mode: SandboxMode,
    helper: Option<PathBuf>,
    policy: SandboxPolicy,
    env_names: Vec<String>,
    base_env: Option<Vec<(OsString, OsString)>>,
    temp: Option<Arc<tempfile::TempDir>>,
}

impl fmt::Debug for SandboxSpec {
    /// Never prints the base environment's values: it may hold the secrets kept from tools.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxSpec")
            .field("mode", &self.mode)
            .field("helper", &self.helper)
            .field("policy", &self.policy)
            .field("env_names", &self.env_names)
            .field("temp", &self.temp.as_ref().map(|temp| temp.path()))
            .finish_non_exhaustive()
    }
}

impl SandboxSpec {
    /// No sandbox (mode `off`): processes run with the user's rights, with the allowlisted
    /// environment of this process.
    pub fn unsandboxed() -> SandboxSpec {
        SandboxSpec {
            mode: SandboxMode::Off,
            helper: None,
            policy: SandboxPolicy::default(),
            env_names: Vec::new(),
            base_env: None,
            temp: None,
        }
    }

    /// Processes under `policy` (ignored when `mode` is `off`), enforced by `helper`: an
    /// executable whose `main` starts with `infty_sandbox::run_helper_if_requested()`.
    pub fn new(mode: SandboxMode, policy: SandboxPolicy, helper: Option<PathBuf>) -> SandboxSpec {
        SandboxSpec {
            mode,
            helper,
            policy,
            ..SandboxSpec::unsandboxed()
        }
    }

    /// The spec of processes started in `mode` for a run: its policy over `space`, the
    /// variables `settings` passes, and a private temp folder named after `label`. The one
    /// way the driver (roles, checks) and the CLI (MCP servers) build a run's spec.
    pub fn for_run(
        mode: SandboxMode,
        space: &RunSpace,
        settings: &SandboxSettings,
        helper: Option<PathBuf>,
        label: &str,
    ) -> Result<SandboxSpec, ToolError> {
        SandboxSpec::new(mode, role_policy(mode, space, settings), helper)
            .with_env_names(settings.env.iter().cloned())
            .with_private_temp(label)
    }

    /// Also passes these environment variables (by name) to processes.
    pub fn with_env_names(mut self, names: impl IntoIterator<Item = String>) -> SandboxSpec {
        self.env_names.extend(names);
        self
    }

    /// Takes the environment from `env` instead of this process's (still allowlisted).
    pub fn with_base_env(mut self, env: Vec<(OsString, OsString)>) -> SandboxSpec {
        self.base_env = Some(env);
        self
    }

    /// Gives processes a private temp folder (`TMPDIR`, writable), named after `label`,
    /// deleted when the spec is dropped.
    pub fn with_private_temp(mut self, label: &str) -> Result<SandboxSpec, ToolError> {
        let temp = tempfile::Builder::new()
            .prefix(&format!("infty-{label}-"))
            .tempdir()
            .map_err(|source| ToolError::Io {
                action: "create the private temp folder for",
                path: label.to_owned(),
                source,
            })?;
        self.policy.writable.push(temp.path().to_path_buf());
        self.temp = Some(Arc::new(temp));
        Ok(self)
    }

    /// The mode.
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// The policy enforced (unless the mode is `off`).
    pub fn policy(&self) -> &SandboxPolicy {
        &self.policy
    }

    /// The private temp folder, if any.
    pub fn temp_dir(&self) -> Option<&Path> {
        self.temp.as_ref().map(|temp| temp.path())
    }

    /// The environment processes get: the allowlist (`PATH HOME LANG LC_* TERM TZ USER
    /// TMPDIR`) plus the names given, with `TMPDIR` pointing at the private temp folder.
    pub fn environment(&self) -> Vec<(OsString, OsString)> {
        let base = match &self.base_env {
            Some(env) => env.clone(),
            None => std::env::vars_os().collect(),
        };
        let mut env: Vec<(OsString, OsString)> = base
            .into_iter()
            .filter(|(name, _)| {
                allowlisted(name) || self.env_names.iter().any(|given| given.as_str() == name)
            })
            .collect();
        if let Some(temp) = self.temp_dir() {
            env.retain(|(name, _)| name != "TMPDIR");
            env.push(("TMPDIR".into(), temp.as_os_str().to_owned()));
        }
        env
    }

    /// Values of the user-named variables that look secret, to redact from tool output.
    pub fn secret_values(&self) -> Vec<String> {
        self.environment()
            .into_iter()
            .filter(|(name, _)| !allowlisted(name) && name.to_str().is_some_and(looks_secret))
            .filter_map(|(_, value)| value.into_string().ok())
            .collect()
    }

    /// Checks that the sandbox can start on this machine (nothing to check when `off`).
    pub fn probe(&self) -> Result<(), SandboxError> {
        if self.mode == SandboxMode::Off {
            return Ok(());
        }
        let helper = self.helper.as_deref().ok_or_else(missing_helper)?;
        infty_sandbox::probe(helper, &self.policy)
    }
}

fn missing_helper() -> SandboxError {
    SandboxError::Unavailable {
        mechanism: "find the sandbox helper".to_owned(),
        detail: "no helper executable was given".to_owned(),
    }
}

/// The command that runs `program args` for a role under `spec`: through the sandbox
/// helper (unless the mode is `off`), with the spec's environment only.
///
/// THE seam: every process a role causes starts here. The caller sets the working folder,
/// stdio, process group and `kill_on_drop`; when the sandboxed command ends, everything it
/// started is killed by the kernel (PID namespace), `setsid` or not.
pub fn sandboxed_command(
    spec: &SandboxSpec,
    program: impl AsRef<OsStr>,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> Result<Command, ToolError> {
    let program = program.as_ref();
    let args: Vec<OsString> = args
        .into_iter()
        .map(|arg| arg.as_ref().to_owned())
        .collect();
    let mut command = match spec.mode {
        SandboxMode::Off => {
            let mut command = Command::new(program);
            command.args(&args);
            command
        }
        SandboxMode::WorkspaceWrite | SandboxMode::ReadOnly => {
            let helper = spec
                .helper
                .as_deref()
                .ok_or_else(|| ToolError::Sandbox(missing_helper()))?;
            let argv = infty_sandbox::helper_command(&spec.policy, program, args)
                .map_err(ToolError::Sandbox)?;
            let mut command = Command::new(helper);
            command.args(argv);
            command
        }
    };
    command.env_clear().envs(spec.environment());
    Ok(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_names() {
        let cases = [
            ("OPENAI_API_KEY", true),
            ("DATABASE_URL", true),
            ("MY_SERVICE_CREDENTIAL", true),
            ("GITHUB_TOKEN", true),
            ("db_password", true),
            ("SENTRY_DSN", true),
            ("PATH", false),
            ("HOME", false),
            ("TOKENIZERS_PARALLELISM", false),
        ];
        for (name, secret) in cases {
            assert_eq!(looks_secret(name), secret, "{name}");
        }
    }

    #[test]
    fn environment_is_an_allowlist() {
        let spec = SandboxSpec::unsandboxed()
            .with_env_names(["DATABASE_URL".to_owned(), "EXTRA".to_owned()])
            .with_base_env(
                [
                    ("PATH", "/bin"),
                    ("LC_ALL", "C"),
                    ("MY_SERVICE_CREDENTIAL", "cred"),
                    ("DATABASE_URL", "postgres://u:pw@db/x"),
                    ("EXTRA", "plain"),
                    ("OPENAI_API_KEY", "sk-x"),
                ]
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            );
        let names: Vec<String> = spec
            .environment()
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "LC_ALL", "DATABASE_URL", "EXTRA"]);
        assert_eq!(spec.secret_values(), ["postgres://u:pw@db/x"]);
    }

    #[test]
    fn read_only_roles_write_nothing_of_the_run() {
        let space = RunSpace {
            run_dir: "/h/runs/r1".into(),
            runs_root: Some("/h/runs".into()),
            infty_home: Some("/h".into()),
            workspace: Some("/w".into()),
            home: Some("/home/u".into()),
        };
        let settings = SandboxSettings::default();
        let read_only = role_policy(SandboxMode::ReadOnly, &space, &settings);
        assert!(read_only.writable.is_empty());
        assert_eq!(read_only.read_only, [PathBuf::from("/h/runs/r1")]);
        assert!(read_only.hidden.contains(&PathBuf::from("/home/u/.ssh")));
        assert!(read_only.hidden.contains(&PathBuf::from("/h/runs")));
        let solver = role_policy(SandboxMode::WorkspaceWrite, &space, &settings);
        assert_eq!(
            solver.writable,
            [
                "/h/runs/r1/artifacts",
                "/h/runs/r1/memory",
                "/h/runs/r1/index",
                "/h/runs/r1/deliverable",
                "/w"
            ]
            .map(PathBuf::from)
        );
    }
}
