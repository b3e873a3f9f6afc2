//! The helper on Linux: namespaces, mounts, Landlock, and PID 1 of the sandbox.
//!
//! Two stages, because a fresh `/proc` can only be mounted from inside the new PID
//! namespace, and Landlock forbids mounting once it is on:
//! - `outer` enters new user, mount, PID (and network) namespaces, arranges the mounts and
//!   starts `init`, whose exit status it passes on;
//! - `init` is PID 1 of the new PID namespace: it mounts `/proc`, enters an inner user
//!   namespace where it is the caller's uid again, restricts itself with Landlock, starts the command and reaps every orphan until the command exits. Its exit
//!   makes the kernel kill whatever is left in the namespace, `setsid` or not.
//!
//! This module must never run the command before every restriction is in place.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, path_beneath_rules,
};
use nix::fcntl::{OFlag, open};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use nix::sys::statvfs::{FsFlags, statvfs};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getegid, geteuid};

use crate::{Failure, INIT_ARG, SandboxPolicy, failure};

/// The Landlock ABI the rules are written for: 6 adds the signal and abstract UNIX socket
/// scopes, without which a sandboxed command could signal the driver.
const LANDLOCK_ABI: ABI = ABI::V6;

/// This process's executable.
pub(crate) const SELF_EXE: &str = "/proc/self/exe";

/// A private, empty `/dev/shm` per command (POSIX shared memory and semaphores work).
const SHM: &str = "/dev/shm";

/// Devices every command may write (discarding output, reading randomness).
const WRITABLE_DEVICES: [&str; 6] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

fn errno(error: nix::Error) -> String {
    error.desc().to_owned()
}

/// Stage one: namespaces and mounts, then `init`.
pub(crate) fn outer(
    json: &OsString,
    policy: &SandboxPolicy,
    command: &[OsString],
) -> Result<i32, Failure> {
    let (uid, gid) = (geteuid(), getegid());
    let mut flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    let mut names = "user, mount, pid";
    if !policy.allow_network {
        flags |= CloneFlags::CLONE_NEWNET;
        names = "user, mount, pid, network";
    }
    unshare(flags)
        .map_err(|error| failure(format!("create namespaces ({names})"))(errno(error)))?;
    // Root of the new user namespace, mapped to the caller: the capabilities it gets only
    // reach what this namespace owns (its mounts, its network), never the host's.
    let map = |file: &str, content: String| {
        std::fs::write(file, content)
            .map_err(|error| failure(format!("write {file}"))(error.to_string()))
    };
    map("/proc/self/setgroups", "deny".to_owned())?;
    map("/proc/self/uid_map", format!("0 {uid} 1"))?;
    map("/proc/self/gid_map", format!("0 {gid} 1"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|error| failure("make the mounts private")(errno(error)))?;
    arrange_mounts(policy)?;
    if Path::new(SHM).is_dir() {
        mount(
            Some("tmpfs"),
            SHM,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=1777"),
        )
        .map_err(|error| failure(format!("mount a private {SHM}"))(errno(error)))?;
    }
    // The working folder was inherited from before the mounts: it still points into the
    // mounts underneath, where `..` would walk past a hidden folder. Enter it again by path,
    // through the new mounts.
    let cwd = std::env::current_dir()
        .map_err(|error| failure("find the working folder")(error.to_string()))?;
    std::env::set_current_dir(&cwd).map_err(|error| {
        failure(format!("enter the working folder {}", cwd.display()))(error.to_string())
    })?;

    // The kernel's link to this very executable: it works even when the file was replaced
    // (an upgrade during a long run) or lies under a hidden folder.
    let status = Command::new(SELF_EXE)
        .arg(INIT_ARG)
        .arg(json)
        .arg("--")
        .args(command)
        .status()
        .map_err(|error| failure("start the sandbox's init")(error.to_string()))?;
    Ok(exit_code(status))
}

/// One mount to make, ordered outermost first so that inner rules win.
enum Step {
    Hide(PathBuf),
    Bind {
        path: PathBuf,
        source: OwnedFd,
        read_only: bool,
    },
}

impl Step {
    fn path(&self) -> &Path {
        match self {
            Step::Hide(path) | Step::Bind { path, .. } => path,
        }
    }
}

/// `path` with its symbolic links resolved (a mount covers what a link points to, and a
/// hidden `~/.ssh` that is a link must hide its target), or as given if it does not exist.
fn real(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn arrange_mounts(policy: &SandboxPolicy) -> Result<(), Failure> {
    let mut steps = Vec::new();
    for path in &policy.hidden {
        if path.symlink_metadata().is_ok() {
            steps.push(Step::Hide(real(path)));
        }
    }
    // Open the bound folders now: once a hidden folder covers them, their paths lead into an
    // empty mount.
    let binds = policy
        .read_only
        .iter()
        .map(|path| (path, true))
        .chain(policy.writable.iter().map(|path| (path, false)));
    for (path, read_only) in binds {
        match open(
            path.as_path(),
            OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_DIRECTORY,
            Mode::empty(),
        ) {
            Ok(source) => steps.push(Step::Bind {
                path: real(path),
                source,
                read_only,
            }),
            Err(nix::Error::ENOENT) => {}
            Err(error) => {
                return Err(failure(format!("open {}", path.display()))(errno(error)));
            }
        }
    }
    steps.sort_by_key(|step| {
        (
            step.path().components().count(),
            !matches!(step, Step::Hide(_)),
        )
    });
    let mut hidden = Vec::new();
    for step in steps {
        match step {
            Step::Hide(path) => {
                if hide(&path)? {
                    hidden.push(path);
                }
            }
            Step::Bind {
                path,
                source,
                read_only,
            } => bind(&path, &source, read_only)?,
        }
    }
    for path in hidden {
        mount(
            None::<&str>,
            path.as_path(),
            None::<&str>,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|error| failure(format!("hide {}", path.display()))(errno(error)))?;
    }
    Ok(())
}

/// Covers `path` with an empty tmpfs (a folder) or `/dev/null` (a file). Returns whether a
/// tmpfs was mounted (to be made read-only once the binds inside it are done).
fn hide(path: &Path) -> Result<bool, Failure> {
    let Ok(meta) = path.symlink_metadata() else {
        // Already covered by an outer hidden folder.
        return Ok(false);
    };
    let hide_failed = |error| failure(format!("hide {}", path.display()))(errno(error));
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=0755,size=64k"),
        )
        .map_err(hide_failed)?;
        Ok(true)
    } else {
        if meta.file_type().is_symlink() {
            // A mount cannot cover a symlink; what it points to is hidden if listed.
            return Ok(false);
        }
        mount(
            Some("/dev/null"),
            path,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(hide_failed)?;
        Ok(false)
    }
}

/// Binds the folder open as `source` at `path`, read-only if asked, keeping the flags the
/// kernel locked on the original mount (a remount that drops them is refused).
fn bind(path: &Path, source: &OwnedFd, read_only: bool) -> Result<(), Failure> {
    let bind_failed = |error| failure(format!("bind {}", path.display()))(errno(error));
    if path.symlink_metadata().is_err() {
        // Inside a hidden folder: make the mount point in its tmpfs.
        std::fs::create_dir_all(path)
            .map_err(|error| failure(format!("bind {}", path.display()))(error.to_string()))?;
    }
    let fd_path = format!("/proc/self/fd/{}", source.as_raw_fd());
    mount(
        Some(fd_path.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(bind_failed)?;
    let kept = statvfs(path)
        .map(|stat| stat.flags())
        .map_err(bind_failed)?;
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if kept.contains(fs) {
            flags |= ms;
        }
    }
    if read_only || kept.contains(FsFlags::ST_RDONLY) {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>).map_err(bind_failed)
}

/// Stage two, PID 1: `/proc`, Landlock, the command, and reaping until it exits.
pub(crate) fn init(policy: &SandboxPolicy, command: &[OsString]) -> Result<i32, Failure> {
    // If the outer stage is killed (the driver's timeout), PID 1 dies and so does the rest.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|error| failure("ask to die with the helper")(errno(error)))?;
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|error| failure("mount /proc for the pid namespace")(errno(error)))?;
    become_the_caller()?;
    restrict_with_landlock(policy)?;

    let (program, args) = command
        .split_first()
        .ok_or_else(|| failure("read the command")("it is empty".to_owned()))?;
    let child = Command::new(program).args(args).spawn().map_err(|error| {
        failure(format!("start {}", program.to_string_lossy()))(error.to_string())
    })?;
    let main = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return Ok(code),
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => {
                return Ok(128 + signal as i32);
            }
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(error) => return Err(failure("wait for the command")(errno(error))),
        }
    }
}

/// Enters one more user namespace in which the command is the caller's own uid and gid, not
/// uid 0: a command started by an ordinary user then holds no capability at all, even
/// inside the sandbox (for root, the caller's uid is 0 anyway).
fn become_the_caller() -> Result<(), Failure> {
    let read_map = |file: &str| -> Result<String, Failure> {
        let map = std::fs::read_to_string(file)
            .map_err(|error| failure(format!("read {file}"))(error.to_string()))?;
        // "0 <outer id> 1", as the outer stage wrote it.
        map.split_whitespace()
            .nth(1)
            .map(str::to_owned)
            .ok_or_else(|| failure(format!("read {file}"))(format!("unexpected map {map:?}")))
    };
    let (uid, gid) = (
        read_map("/proc/self/uid_map")?,
        read_map("/proc/self/gid_map")?,
    );
    unshare(CloneFlags::CLONE_NEWUSER)
        .map_err(|error| failure("create the inner user namespace")(errno(error)))?;
    let map = |file: &str, content: String| {
        std::fs::write(file, content)
            .map_err(|error| failure(format!("write {file}"))(error.to_string()))
    };
    map("/proc/self/setgroups", "deny".to_owned())?;
    map("/proc/self/uid_map", format!("{uid} 0 1"))?;
    map("/proc/self/gid_map", format!("{gid} 0 1"))?;
    Ok(())
}

fn restrict_with_landlock(policy: &SandboxPolicy) -> Result<(), Failure> {
    let landlock_failed = |error: landlock::RulesetError| {
        failure(format!(
            "restrict files with landlock (abi {})",
            LANDLOCK_ABI as i32
        ))(error.to_string())
    };
    let read = AccessFs::from_read(LANDLOCK_ABI);
    let all = AccessFs::from_all(LANDLOCK_ABI);
    let device = AccessFs::from_file(LANDLOCK_ABI);
    let shm = PathBuf::from(SHM);
    let writable: Vec<&PathBuf> = policy
        .writable
        .iter()
        .chain(std::iter::once(&shm))
        .filter(|p| p.exists())
        .collect();
    let devices: Vec<&str> = WRITABLE_DEVICES
        .into_iter()
        .filter(|device| Path::new(device).exists())
        .collect();
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(all)
        .map_err(landlock_failed)?
        .scope(Scope::from_all(LANDLOCK_ABI))
        .map_err(landlock_failed)?
        .create()
        .map_err(landlock_failed)?
        .add_rules(path_beneath_rules(["/"], read))
        .map_err(landlock_failed)?
        .add_rules(path_beneath_rules(writable, all))
        .map_err(landlock_failed)?
        .add_rules(path_beneath_rules(devices, device))
        .map_err(landlock_failed)?
        .restrict_self()
        .map_err(landlock_failed)?;
    if status.ruleset != RulesetStatus::FullyEnforced || !status.no_new_privs {
        return Err(failure(format!(
            "restrict files with landlock (abi {})",
            LANDLOCK_ABI as i32
        ))("the kernel enforces it only partly".to_owned()));
    }
    Ok(())
}

/// The exit code a shell would report for `status`: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}
