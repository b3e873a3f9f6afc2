//! Confinement of file-tool paths to the allowed folders (the run folder and the workspace).
//!
//! A path the model names is joined to the base folder, then resolved the way the operating
//! system would: every symbolic link followed, `..` applied after links. For a path that does
//! not exist yet, the deepest existing ancestor is resolved and the rest appended (with no
//! `..` allowed in that rest). The resolved path must lie inside an allowed root, and a path
//! to be written must not be one of the run's own records.
//!
//! This guards against a model's mistakes and casual escapes, not against a process racing
//! the file system between the check and the use (the `shell` tool is unconfined anyway).
//! It must never accept a path whose resolution it could not check.

use std::fmt;
use std::fs;
use std::io;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

use super::{ToolContext, ToolError};

/// Run-folder entries no tool may write: the orchestrator's own records.
const PROTECTED_FILES: [&str; 3] = ["run.json", "events.jsonl", "run.lock"];
/// Run-folder subfolders no tool may write into.
const PROTECTED_FOLDERS: [&str; 2] = ["rollouts", "inbox"];

/// Why a path was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The path is empty.
    Empty,
    /// The path holds a NUL byte.
    NulByte,
    /// `..` climbs out of the allowed folders.
    ParentEscape,
    /// `..` follows a folder that does not exist, so where it leads cannot be checked.
    ParentAfterMissing,
    /// An absolute path outside the allowed folders.
    OutsideRoots {
        /// The allowed folders, for the message.
        roots: String,
    },
    /// A symbolic link on the way leads outside the allowed folders.
    SymlinkOutside {
        /// Where the path really leads.
        target: String,
    },
    /// A symbolic link on the way points at nothing.
    DanglingSymlink {
        /// The link, as resolved so far.
        link: String,
    },
    /// The path resolves to something that is not UTF-8.
    NotUtf8,
    /// The file system could not resolve the path (a link loop, no permission).
    Unresolvable {
        /// The part that could not be resolved.
        part: String,
    },
    /// The path is one of the run's own records, which tools never write.
    Protected {
        /// The record, relative to the run folder.
        record: String,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty => f.write_str("the path is empty"),
            Refusal::NulByte => f.write_str("the path contains a NUL byte"),
            Refusal::ParentEscape => f.write_str("`..` leads outside the allowed folders"),
            Refusal::ParentAfterMissing => f.write_str("`..` follows a folder that does not exist"),
            Refusal::OutsideRoots { roots } => {
                write!(f, "it is outside the allowed folders ({roots})")
            }
            Refusal::SymlinkOutside { target } => write!(
                f,
                "it goes through a symbolic link that leads outside the allowed folders (to `{target}`)"
            ),
            Refusal::DanglingSymlink { link } => write!(
                f,
                "it goes through the symbolic link `{link}`, whose target does not exist"
            ),
            Refusal::NotUtf8 => f.write_str("it resolves to a path that is not valid UTF-8"),
            Refusal::Unresolvable { part } => write!(
                f,
                "`{part}` cannot be resolved (a symbolic link loop or no permission)"
            ),
            Refusal::Protected { record } => write!(
                f,
                "`{record}` in the run folder belongs to the orchestrator and is never written by tools (reading is fine)"
            ),
        }
    }
}

/// What the caller will do with the path: writing is checked against the protected records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A path that passed confinement.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The real location, symbolic links resolved.
    pub real: Utf8PathBuf,
    /// Whether `real` exists.
    pub exists: bool,
    /// How to name it to the model: relative to the base folder when inside it.
    pub display: String,
}

/// The allowed roots of a context, resolved once per call.
struct Roots {
    run_dir: Utf8PathBuf,
    run_dir_real: Utf8PathBuf,
    workspace: Option<(Utf8PathBuf, Utf8PathBuf)>,
    base_real: Utf8PathBuf,
}

impl Roots {
    fn of(context: &ToolContext) -> Self {
        let run_dir = normalize(&context.run_dir);
        let run_dir_real = real_or_lexical(&run_dir);
        let workspace = context.workspace.as_deref().map(|workspace| {
            let lexical = normalize(workspace);
            let real = real_or_lexical(&lexical);
            (lexical, real)
        });
        let base_real = match &workspace {
            Some((_, real)) => real.clone(),
            None => run_dir_real.clone(),
        };
        Roots {
            run_dir,
            run_dir_real,
            workspace,
            base_real,
        }
    }

    fn contains_real(&self, path: &Utf8Path) -> bool {
        path.starts_with(&self.run_dir_real)
            || self
                .workspace
                .as_ref()
                .is_some_and(|(_, real)| path.starts_with(real))
    }

    fn contains_lexical(&self, path: &Utf8Path) -> bool {
        self.contains_real(path)
            || path.starts_with(&self.run_dir)
            || self
                .workspace
                .as_ref()
                .is_some_and(|(lexical, _)| path.starts_with(lexical))
    }

    fn describe(&self) -> String {
        match &self.workspace {
            Some((workspace, _)) => {
                format!("run folder `{}`, workspace `{workspace}`", self.run_dir)
            }
            None => format!("run folder `{}`", self.run_dir),
        }
    }
}

/// Resolves `raw` (relative to the base folder, or absolute) and checks it is allowed.
pub(crate) fn resolve(
    context: &ToolContext,
    raw: &str,
    access: Access,
) -> Result<Resolved, ToolError> {
    let refuse = |reason: Refusal| ToolError::PathRefused {
        path: raw.to_owned(),
        reason,
    };
    if raw.is_empty() {
        return Err(refuse(Refusal::Empty));
    }
    if raw.contains('\0') {
        return Err(refuse(Refusal::NulByte));
    }
    let roots = Roots::of(context);
    let joined = normalize(&context.base_dir().join(raw));

    // Lexical first: it names `..` and absolute escapes plainly, before any link is followed.
    let lexical = lexical_resolve(&joined);
    if !roots.contains_lexical(&lexical) {
        let reason = if Utf8Path::new(raw).is_absolute() {
            Refusal::OutsideRoots {
                roots: roots.describe(),
            }
        } else {
            Refusal::ParentEscape
        };
        return Err(refuse(reason));
    }

    let (real, exists) = real_location(&joined).map_err(refuse)?;
    if !roots.contains_real(&real) {
        return Err(refuse(Refusal::SymlinkOutside {
            target: real.to_string(),
        }));
    }
    if access == Access::Write
        && let Some(record) = protected_record(&roots.run_dir_real, &real)
    {
        return Err(refuse(Refusal::Protected { record }));
    }
    let display = match real.strip_prefix(&roots.base_real) {
        Ok(relative) if relative.as_str().is_empty() => ".".to_owned(),
        Ok(relative) => relative.to_string(),
        Err(_) => real.to_string(),
    };
    Ok(Resolved {
        real,
        exists,
        display,
    })
}

/// The real location of `joined`: the deepest existing ancestor resolved by the operating
/// system, with the missing rest appended.
fn real_location(joined: &Utf8Path) -> Result<(Utf8PathBuf, bool), Refusal> {
    for ancestor in joined.ancestors() {
        let Ok(meta) = fs::symlink_metadata(ancestor) else {
            continue;
        };
        let real = match fs::canonicalize(ancestor) {
            Ok(real) => real,
            Err(error) if meta.file_type().is_symlink() && is_missing(&error) => {
                return Err(Refusal::DanglingSymlink {
                    link: ancestor.to_string(),
                });
            }
            // It exists but cannot be resolved (permissions, a loop): refuse rather than guess.
            Err(_) => {
                return Err(Refusal::Unresolvable {
                    part: ancestor.to_string(),
                });
            }
        };
        let mut real = Utf8PathBuf::from_path_buf(real).map_err(|_| Refusal::NotUtf8)?;
        let rest = joined.strip_prefix(ancestor).unwrap_or(Utf8Path::new(""));
        let exists = rest.as_str().is_empty();
        for component in rest.components() {
            match component {
                Utf8Component::Normal(name) => real.push(name),
                Utf8Component::CurDir => {}
                Utf8Component::ParentDir => return Err(Refusal::ParentAfterMissing),
                Utf8Component::RootDir | Utf8Component::Prefix(_) => {}
            }
        }
        return Ok((real, exists));
    }
    // No ancestor exists (a relative base that is gone): nothing here can be checked.
    Err(Refusal::Unresolvable {
        part: joined.to_string(),
    })
}

fn is_missing(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::NotFound
}

/// Which protected record `real` is (or lies in), relative to the run folder.
fn protected_record(run_dir_real: &Utf8Path, real: &Utf8Path) -> Option<String> {
    let relative = real.strip_prefix(run_dir_real).ok()?;
    let mut components = relative.components();
    let first = components.next()?.as_str();
    let is_only = components.next().is_none();
    if PROTECTED_FOLDERS.contains(&first) {
        return Some(format!("{first}/"));
    }
    if is_only && PROTECTED_FILES.contains(&first) {
        return Some(first.to_owned());
    }
    None
}

/// Drops `.` components and repeated separators, keeping `..` (which only the file system
/// can resolve correctly once links are involved).
fn normalize(path: &Utf8Path) -> Utf8PathBuf {
    path.components()
        .filter(|component| !matches!(component, Utf8Component::CurDir))
        .collect()
}

/// Applies `..` by text alone.
fn lexical_resolve(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for component in path.components() {
        match component {
            Utf8Component::ParentDir => {
                out.pop();
            }
            Utf8Component::CurDir => {}
            other => out.push(other.as_str()),
        }
    }
    out
}

/// The root resolved by the file system, or as written when it does not exist (yet).
fn real_or_lexical(path: &Utf8Path) -> Utf8PathBuf {
    fs::canonicalize(path)
        .ok()
        .and_then(|real| Utf8PathBuf::from_path_buf(real).ok())
        .unwrap_or_else(|| lexical_resolve(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_resolution() {
        let cases = [
            ("/a/b/../c", "/a/c"),
            ("/a/./b", "/a/b"),
            ("/a/../../b", "/b"),
            ("/", "/"),
        ];
        for (input, expected) in cases {
            assert_eq!(lexical_resolve(Utf8Path::new(input)), expected, "{input}");
        }
    }

    #[test]
    fn protected_records() {
        let run = Utf8Path::new("/runs/r1");
        let cases = [
            ("/runs/r1/run.json", Some("run.json")),
            ("/runs/r1/events.jsonl", Some("events.jsonl")),
            ("/runs/r1/run.lock", Some("run.lock")),
            ("/runs/r1/rollouts", Some("rollouts/")),
            ("/runs/r1/rollouts/solver.jsonl", Some("rollouts/")),
            ("/runs/r1/inbox/1.json", Some("inbox/")),
            ("/runs/r1/memory/run.json", None),
            ("/runs/r1/artifacts/events.jsonl", None),
            ("/runs/r1/run.json.bak", None),
            ("/elsewhere/run.json", None),
        ];
        for (path, expected) in cases {
            assert_eq!(
                protected_record(run, Utf8Path::new(path)).as_deref(),
                expected,
                "{path}"
            );
        }
    }
}
