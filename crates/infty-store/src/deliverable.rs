//! Deliverable path checks: the path a Solver names in `final_delivery` must exist and stay
//! inside the run folder once symlinks are followed.
//!
//! Files and folders are accepted (a deliverable may be a report or a whole project);
//! anything else (sockets, fifos, devices) is refused. Every refusal says why, because the
//! reason goes back to the Solver. This module must never turn a refusal into a
//! placeholder path, and never create, change or remove anything.

use std::fs;
use std::io;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

use crate::DeliverableError;

/// Resolves `candidate` (relative to `run_dir`, or absolute) to its canonical absolute path.
pub(crate) fn resolve(
    run_dir: &Utf8Path,
    candidate: &str,
) -> Result<Utf8PathBuf, DeliverableError> {
    let owned = || candidate.to_owned();
    if candidate.trim().is_empty() {
        return Err(DeliverableError::Blank);
    }
    if candidate.contains('\0') {
        return Err(DeliverableError::NulByte { candidate: owned() });
    }
    let run_dir_canon = canonical(run_dir, candidate)?;
    let path = Utf8Path::new(candidate);
    let full = if path.is_absolute() {
        path.to_owned()
    } else {
        if climbs_out(path) {
            return Err(DeliverableError::ClimbsOut { candidate: owned() });
        }
        run_dir_canon.join(path)
    };
    let resolved = match fs::canonicalize(&full) {
        Ok(resolved) => resolved,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let is_link = fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
            return Err(if is_link {
                DeliverableError::DanglingSymlink { candidate: owned() }
            } else {
                DeliverableError::Missing {
                    candidate: owned(),
                    run_dir: run_dir_canon.to_string(),
                }
            });
        }
        Err(e) => {
            return Err(DeliverableError::Unresolvable {
                candidate: owned(),
                reason: e.to_string(),
            });
        }
    };
    let resolved = Utf8PathBuf::from_path_buf(resolved)
        .map_err(|_| DeliverableError::NonUtf8 { candidate: owned() })?;
    if resolved == run_dir_canon {
        return Err(DeliverableError::IsRunDir { candidate: owned() });
    }
    if !resolved.starts_with(&run_dir_canon) {
        let normal = normalize(&full);
        let looked_inside = normal.starts_with(&run_dir_canon) || normal.starts_with(run_dir);
        return Err(if looked_inside {
            DeliverableError::SymlinkLeadsOutside {
                candidate: owned(),
                resolved: resolved.to_string(),
            }
        } else {
            DeliverableError::OutsideRunDir {
                candidate: owned(),
                run_dir: run_dir_canon.to_string(),
            }
        });
    }
    let file_type = fs::metadata(&resolved)
        .map_err(|e| DeliverableError::Unresolvable {
            candidate: owned(),
            reason: e.to_string(),
        })?
        .file_type();
    if file_type.is_file() || file_type.is_dir() {
        Ok(resolved)
    } else {
        Err(DeliverableError::NotFileOrDir {
            candidate: owned(),
            kind: kind_name(&file_type),
        })
    }
}

fn canonical(run_dir: &Utf8Path, candidate: &str) -> Result<Utf8PathBuf, DeliverableError> {
    let unresolvable = |reason: String| DeliverableError::Unresolvable {
        candidate: candidate.to_owned(),
        reason,
    };
    let canon = fs::canonicalize(run_dir)
        .map_err(|e| unresolvable(format!("the run folder {run_dir} cannot be resolved: {e}")))?;
    Utf8PathBuf::from_path_buf(canon).map_err(|_| {
        unresolvable(format!(
            "the run folder {run_dir} resolves to a non-UTF-8 path"
        ))
    })
}

/// True when a relative path goes above its starting folder at some point.
fn climbs_out(path: &Utf8Path) -> bool {
    let mut depth: usize = 0;
    for component in path.components() {
        match component {
            Utf8Component::Normal(_) => depth += 1,
            Utf8Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Utf8Component::CurDir => {}
            Utf8Component::RootDir | Utf8Component::Prefix(_) => return true,
        }
    }
    false
}

/// Removes `.` and resolves `..` without touching the disk.
fn normalize(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for component in path.components() {
        match component {
            Utf8Component::CurDir => {}
            Utf8Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_str()),
        }
    }
    out
}

fn kind_name(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "named pipe";
        }
        if file_type.is_socket() {
            return "socket";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "device";
        }
    }
    let _ = file_type;
    "special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climbing() {
        let cases = [
            ("a", false),
            ("a/b/../c", false),
            ("a/..", false),
            ("./a", false),
            ("..", true),
            ("../a", true),
            ("a/../../b", true),
            ("a/./../..", true),
        ];
        for (path, climbs) in cases {
            assert_eq!(climbs_out(Utf8Path::new(path)), climbs, "{path}");
        }
    }

    #[test]
    fn normalizing() {
        let cases = [("/a/b/../c", "/a/c"), ("/a/./b", "/a/b"), ("/..", "/")];
        for (path, normal) in cases {
            assert_eq!(normalize(Utf8Path::new(path)), normal, "{path}");
        }
    }
}
