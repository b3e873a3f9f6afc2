//! Confinement of file-tool paths to the allowed folders (the run folder and the workspace).
//!
//! A path the model names is joined to the base folder and its `.` and `..` applied by text,
//! which is exact because no symbolic link is ever followed below an allowed folder. The
//! result must lie inside an allowed root, and a path to be written must not be one of the
//! run's own records (the names come from `infty_store`). What this module returns is not a
//! path to open but a [`Target`]: an allowed root and a plain relative path below it, which
//! the file tools open through an opened root folder ([`infty_store::Folder`]) in one step,
//! refusing links on the way. So a folder swapped for a link between a check and an open
//! cannot redirect a read or a write: there is no check-then-open.
//!
//! It must never hand out a target whose root is not an allowed folder, nor a relative path
//! with `..` or an absolute part.

use std::fmt;
use std::fs;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use infty_store::{Folder, OpenError, PROTECTED_FILES, PROTECTED_FOLDERS};

use super::{ToolContext, ToolError};

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
    /// An absolute path outside the allowed folders.
    OutsideRoots {
        /// The allowed folders, for the message.
        roots: String,
    },
    /// A part of the path is a symbolic link; file tools never follow links.
    Symlink {
        /// The link, as the model would name it.
        link: String,
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
            Refusal::OutsideRoots { roots } => {
                write!(f, "it is outside the allowed folders ({roots})")
            }
            Refusal::Symlink { link } => write!(
                f,
                "it goes through the symbolic link `{link}`, and file tools never follow links; name the real path instead"
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

/// A path that passed confinement: an allowed root and a plain path below it.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// The allowed folder it lies in (run folder or workspace), as configured.
    root: Utf8PathBuf,
    /// Below `root`: only normal components; empty for the root itself.
    pub relative: Utf8PathBuf,
    /// How to name it to the model: relative to the base folder when inside it.
    pub display: String,
    /// The path as the model gave it, for messages.
    raw: String,
}

impl Target {
    /// Opens the root folder, the one trusted starting point.
    pub(crate) fn root(&self) -> Result<Folder, ToolError> {
        Folder::open(&self.root).map_err(|source| ToolError::Io {
            action: "open",
            path: self.root.to_string(),
            source,
        })
    }

    /// The folder holding the target and the target's name in it; `None` for a root.
    pub(crate) fn parent_and_name(&self) -> Option<(&Utf8Path, &str)> {
        let name = self.relative.file_name()?;
        Some((self.relative.parent().unwrap_or(Utf8Path::new("")), name))
    }

    /// The path, for what needs one (the shell's working folder). Never opened by the file
    /// tools: they go through [`Target::root`].
    pub(crate) fn path(&self) -> Utf8PathBuf {
        self.root.join(&self.relative)
    }

    /// Turns a failed open below the root into the tool error the model reads.
    pub(crate) fn refused(&self, error: OpenError, action: &'static str) -> ToolError {
        let raw = self.raw.clone();
        match error {
            OpenError::Symlink => ToolError::PathRefused {
                path: raw,
                reason: Refusal::Symlink {
                    link: self.first_link(),
                },
            },
            OpenError::Escapes => ToolError::PathRefused {
                path: raw,
                reason: Refusal::ParentEscape,
            },
            OpenError::Missing => ToolError::NotFound { path: raw },
            OpenError::NotAFolder => ToolError::NotAFolder { path: raw },
            OpenError::IsAFolder => ToolError::IsAFolder { path: raw },
            OpenError::NotAFile => ToolError::Io {
                action,
                path: raw,
                source: std::io::Error::other("not a regular file"),
            },
            OpenError::HardLinked { links } => ToolError::HardLinked { path: raw, links },
            OpenError::Io(source) => ToolError::Io {
                action,
                path: raw,
                source,
            },
        }
    }

    /// The first symbolic link on the way, for the message only (found after the refusal,
    /// by a lookup that decides nothing).
    fn first_link(&self) -> String {
        let mut path = self.root.clone();
        let mut shown = Utf8PathBuf::new();
        for component in self.relative.components() {
            path.push(component.as_str());
            shown.push(component.as_str());
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return shown.to_string();
            }
        }
        self.display.clone()
    }
}

/// The allowed roots of a context: each as configured and as resolved by the file system.
struct Roots {
    run_dir: Utf8PathBuf,
    run_dir_real: Utf8PathBuf,
    workspace: Option<(Utf8PathBuf, Utf8PathBuf)>,
    base: Utf8PathBuf,
}

impl Roots {
    fn of(context: &ToolContext) -> Self {
        let run_dir = lexical_resolve(&context.run_dir);
        let run_dir_real = real_or_lexical(&run_dir);
        let workspace = context.workspace.as_deref().map(|workspace| {
            let lexical = lexical_resolve(workspace);
            let real = real_or_lexical(&lexical);
            (lexical, real)
        });
        Roots {
            run_dir,
            run_dir_real,
            workspace,
            base: lexical_resolve(context.base_dir()),
        }
    }

    /// The root `path` lies in (the deepest when they nest) and the rest of `path` below it.
    fn split(&self, path: &Utf8Path) -> Option<(Utf8PathBuf, Utf8PathBuf)> {
        let mut forms = vec![
            (&self.run_dir, &self.run_dir),
            (&self.run_dir_real, &self.run_dir),
        ];
        if let Some((lexical, real)) = &self.workspace {
            forms.push((lexical, lexical));
            forms.push((real, lexical));
        }
        forms
            .into_iter()
            .filter(|(form, _)| path.starts_with(form))
            .max_by_key(|(form, _)| form.as_str().len())
            .and_then(|(form, root)| {
                let rest = path.strip_prefix(form).ok()?;
                Some((root.clone(), rest.to_owned()))
            })
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
) -> Result<Target, ToolError> {
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
    let lexical = lexical_resolve(&roots.base.join(raw));
    let Some((root, relative)) = roots.split(&lexical) else {
        let reason = if Utf8Path::new(raw).is_absolute() {
            Refusal::OutsideRoots {
                roots: roots.describe(),
            }
        } else {
            Refusal::ParentEscape
        };
        return Err(refuse(reason));
    };
    if access == Access::Write {
        // Checked on both spellings of the run folder, and through a workspace that is the
        // run folder under another name.
        let real_root = real_or_lexical(&root).join(&relative);
        let record = protected_record(&roots.run_dir, &lexical)
            .or_else(|| protected_record(&roots.run_dir_real, &lexical))
            .or_else(|| protected_record(&roots.run_dir_real, &real_root));
        if let Some(record) = record {
            return Err(refuse(Refusal::Protected { record }));
        }
    }
    let display = match lexical.strip_prefix(&roots.base) {
        Ok(rest) if rest.as_str().is_empty() => ".".to_owned(),
        Ok(rest) => rest.to_string(),
        Err(_) => lexical.to_string(),
    };
    Ok(Target {
        root,
        relative,
        display,
        raw: raw.to_owned(),
    })
}

/// Which protected record `path` is (or lies in), relative to the run folder.
fn protected_record(run_dir: &Utf8Path, path: &Utf8Path) -> Option<String> {
    let relative = path.strip_prefix(run_dir).ok()?;
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
