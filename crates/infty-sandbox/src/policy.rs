//! What a sandboxed command may touch. Plain data, passed to the helper as JSON.
//!
//! This module must never decide what a role may do: infty-core maps its modes
//! (`workspace-write`, `read-only`) onto a policy.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Files, folders and network of a sandboxed command.
///
/// Everything is readable (and executable) except the hidden paths; only the writable
/// folders (and `/dev/null`-like devices) can be written. Paths that do not exist are
/// skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxPolicy {
    /// Folders the command may create, change and delete things in (and below).
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Folders the command may read but never write, even when they lie inside a writable
    /// folder: they are bound read-only. A writable folder inside one of them is writable.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Files and folders replaced by empty, read-only ones (credentials, other runs). A
    /// writable or read-only folder inside a hidden one stays visible.
    #[serde(default)]
    pub hidden: Vec<PathBuf>,
    /// Whether the command reaches the network; if not, it gets a network namespace of its
    /// own with nothing but a loopback interface (down).
    #[serde(default)]
    pub allow_network: bool,
}
