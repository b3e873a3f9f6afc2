//! The two error types of the store: [`StoreError`] for everything that touches the run
//! folder, and [`DeliverableError`] for a deliverable path that is refused.
//!
//! Variants are named for what the caller does next, and every message names the thing it
//! is about (path, run id, role). This module must never format secrets into a message.

use std::io;

use camino::Utf8PathBuf;

use crate::metadata::RunStatus;

/// Everything that can go wrong while creating, opening, reading or writing a run folder.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// The run id breaks the id rules; pick another one.
    #[error("invalid run id `{id}`: {reason}")]
    InvalidRunId {
        /// The refused id.
        id: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The role name cannot be used to name files in the run folder.
    #[error("invalid role name `{role}`: {reason}")]
    InvalidRole {
        /// The refused role name.
        role: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A run with this id already has a `run.json`; resume it or choose another id.
    #[error("run {run_id} already exists at {path}")]
    AlreadyExists {
        /// The id asked for.
        run_id: String,
        /// The existing run folder.
        path: Utf8PathBuf,
    },
    /// No run with this id lives under the runs root.
    #[error("no run {run_id} under {root}")]
    NotFound {
        /// The id asked for.
        run_id: String,
        /// The runs root that was searched.
        root: Utf8PathBuf,
    },
    /// The folder has no `run.json`, so it is not a run folder (or its creation never finished).
    #[error("{path} is not a run folder: it has no run.json")]
    NotARun {
        /// The folder that was opened.
        path: Utf8PathBuf,
    },
    /// `run.json` exists but cannot be understood; repair or remove the run folder.
    #[error("run metadata {path} is corrupt: {reason}")]
    CorruptMetadata {
        /// Path of the `run.json`.
        path: Utf8PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// `run.json` was written by a different version of infty.
    #[error(
        "run metadata {path} has schema_version {found}, this infty reads schema_version {supported}"
    )]
    UnsupportedSchema {
        /// Path of the `run.json`.
        path: Utf8PathBuf,
        /// The version found in the file.
        found: u64,
        /// The version this crate reads and writes.
        supported: u32,
    },
    /// A JSON-lines file (journal, rollout) is damaged somewhere other than a torn last line.
    #[error("{path} is corrupt at line {line}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: Utf8PathBuf,
        /// 1-based line number of the damage.
        line: u64,
        /// What is wrong with that line.
        reason: String,
    },
    /// A queued inbox message cannot be read; remove or fix the file.
    #[error("inbox message {path} is corrupt: {reason}")]
    CorruptMessage {
        /// The message file.
        path: Utf8PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// Another live process holds the run's lock; wait for it or stop it.
    #[error("run {run_id} is being driven by {}", describe_holder(*.pid))]
    Locked {
        /// The locked run.
        run_id: String,
        /// The pid written by the holder, when it could be read.
        pid: Option<u32>,
    },
    /// The requested status change is not allowed from the current status.
    #[error("run {run_id} cannot go from status {from} to {to}")]
    InvalidTransition {
        /// The run.
        run_id: String,
        /// Its current status.
        from: RunStatus,
        /// The status that was asked for.
        to: RunStatus,
    },
    /// The role is not one of the run's roles.
    #[error("run {run_id} has no role `{role}`")]
    UnknownRole {
        /// The run.
        run_id: String,
        /// The role asked for.
        role: String,
    },
    /// No inbox message, pending or delivered, has this id.
    #[error("no inbox message `{id}` in {dir}")]
    UnknownMessage {
        /// The message id asked for.
        id: String,
        /// The inbox folder.
        dir: Utf8PathBuf,
    },
    /// An inbox message must carry some text.
    #[error("refusing to queue an empty message for role `{role}`")]
    EmptyMessage {
        /// The role it was meant for.
        role: String,
    },
    /// A value cannot be stored as asked (not a JSON object, reserved key, not serializable).
    #[error("cannot record {what} in {path}: {reason}")]
    Unserializable {
        /// What was being written (an event, a rollout item, run metadata).
        what: &'static str,
        /// The file it was meant for.
        path: Utf8PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// The metadata would store something that looks like a secret; store the variable's
    /// name, never its value.
    #[error("refusing to store {field} in run.json: {reason}")]
    SecretRefused {
        /// The offending field.
        field: &'static str,
        /// Why it looks like a secret.
        reason: &'static str,
    },
    /// An earlier write failed and could not be rolled back; reopen the file (which repairs it).
    #[error("{path} must be reopened: an earlier write failed and could not be rolled back")]
    WriterBroken {
        /// The file.
        path: Utf8PathBuf,
    },
    /// Neither `INFTY_HOME` nor `HOME` names a usable folder.
    #[error("cannot find the infty home: set INFTY_HOME or HOME to a UTF-8 path")]
    NoHome,
    /// A path on disk is not valid UTF-8, which the store does not handle.
    #[error("path {path} is not valid UTF-8")]
    NonUtf8Path {
        /// The path, lossily converted for display.
        path: String,
    },
    /// The operating system refused an operation on a file or folder.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done ("read", "write", "create folder", ...).
        action: &'static str,
        /// The file or folder.
        path: Utf8PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<Utf8PathBuf>,
        source: io::Error,
    ) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

fn describe_holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process (pid not yet written)".to_owned(),
    }
}

/// Why a deliverable path was refused. Every message says what is wrong with the path, in
/// words a model can act on, because the orchestrator sends it back to the Solver.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DeliverableError {
    /// The path is empty or only whitespace.
    #[error("the deliverable path is empty")]
    Blank,
    /// The path contains a NUL byte, which no file name can.
    #[error("the deliverable path contains a NUL byte")]
    NulByte {
        /// The path as given.
        candidate: String,
    },
    /// A relative path climbs out of the run folder with `..`.
    #[error("the deliverable path `{candidate}` climbs out of the run folder with `..`")]
    ClimbsOut {
        /// The path as given.
        candidate: String,
    },
    /// Nothing exists at the path.
    #[error(
        "the deliverable `{candidate}` does not exist (relative paths start at the run folder {run_dir})"
    )]
    Missing {
        /// The path as given.
        candidate: String,
        /// The run folder relative paths are resolved against.
        run_dir: String,
    },
    /// The path is a symbolic link whose target does not exist.
    #[error("the deliverable `{candidate}` is a symbolic link to something that does not exist")]
    DanglingSymlink {
        /// The path as given.
        candidate: String,
    },
    /// An absolute path that is not inside the run folder.
    #[error("the deliverable `{candidate}` is outside the run folder {run_dir}")]
    OutsideRunDir {
        /// The path as given.
        candidate: String,
        /// The run folder.
        run_dir: String,
    },
    /// The path looks inside the run folder but a symbolic link on the way leads outside.
    #[error(
        "the deliverable `{candidate}` follows a symbolic link out of the run folder to {resolved}"
    )]
    SymlinkLeadsOutside {
        /// The path as given.
        candidate: String,
        /// Where it really leads.
        resolved: String,
    },
    /// The path is the run folder itself.
    #[error(
        "the deliverable `{candidate}` is the run folder itself; name a file or folder inside it"
    )]
    IsRunDir {
        /// The path as given.
        candidate: String,
    },
    /// The path exists but is neither a regular file nor a folder (socket, fifo, device).
    #[error("the deliverable `{candidate}` is a {kind}, not a file or folder")]
    NotFileOrDir {
        /// The path as given.
        candidate: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// A symbolic link inside the deliverable leads out of the run folder.
    #[error(
        "the deliverable `{candidate}` contains `{path}`, a symbolic link that leads out of the run folder to {target}"
    )]
    LinkLeadsOutside {
        /// The path as given.
        candidate: String,
        /// The link, relative to the run folder.
        path: String,
        /// Where it leads.
        target: String,
    },
    /// A file of the deliverable has more than one name: a hard link, possibly to a file
    /// outside the run folder.
    #[error(
        "the deliverable `{candidate}` contains `{path}`, a file with {links} names (a hard link, maybe to a file outside the run folder); deliver a copy instead"
    )]
    HardLinked {
        /// The path as given.
        candidate: String,
        /// The file, relative to the run folder.
        path: String,
        /// How many names it has.
        links: u64,
    },
    /// The resolved path is not valid UTF-8.
    #[error("the deliverable `{candidate}` resolves to a path that is not valid UTF-8")]
    NonUtf8 {
        /// The path as given.
        candidate: String,
    },
    /// The operating system refused to resolve the path (permissions, loops, ...).
    #[error("the deliverable `{candidate}` cannot be resolved: {reason}")]
    Unresolvable {
        /// The path as given.
        candidate: String,
        /// The operating system's reason.
        reason: String,
    },
}
