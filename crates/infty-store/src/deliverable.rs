//! Deliverable path checks: the path a Solver names in `final_delivery` must exist and stay
//! inside the run folder once symlinks are followed; and the deliverable's fingerprint, so
//! that what the Verifiers judged is known to be what the Solver delivered.
//!
//! Files and folders are accepted (a deliverable may be a report or a whole project);
//! anything else (sockets, fifos, devices) is refused, and so is a symbolic link inside it
//! that leads out of the run folder, or a file with more than one name (a hard link, whose
//! other name may be anywhere). Every refusal says why, naming the path, because the
//! reason goes back to the Solver. This module must never turn a refusal into a
//! placeholder path, and never create, change or remove anything.

use std::fs;
use std::io::{self, Read};

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::DeliverableError;

/// What was delivered, file by file: enough to tell whether any of it changed since.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeliverableFingerprint {
    /// Every file and symbolic link of the deliverable, by path.
    pub files: Vec<FileFingerprint>,
}

/// One delivered file (or symbolic link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// Its path, relative to the run folder.
    pub path: String,
    /// Its size in bytes (of the link's target text, for a link).
    pub size: u64,
    /// SHA-256 of its content (of the link's target text, for a link), hex.
    pub sha256: String,
    /// Where it points, when it is a symbolic link (links are recorded, not followed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl DeliverableFingerprint {
    /// The paths that differ between `self` and `later`: changed, added or removed.
    pub fn changed_paths(&self, later: &DeliverableFingerprint) -> Vec<String> {
        use std::collections::BTreeMap;
        let index = |fp: &DeliverableFingerprint| -> BTreeMap<String, FileFingerprint> {
            fp.files
                .iter()
                .map(|f| (f.path.clone(), f.clone()))
                .collect()
        };
        let (before, after) = (index(self), index(later));
        let mut changed: Vec<String> = before
            .iter()
            .filter(|(path, file)| after.get(*path) != Some(*file))
            .map(|(path, _)| path.clone())
            .collect();
        changed.extend(
            after
                .keys()
                .filter(|path| !before.contains_key(*path))
                .cloned(),
        );
        changed.sort();
        changed
    }
}

/// Fingerprints the deliverable at `resolved` (a path [`resolve`] accepted), refusing links
/// that lead out of the run folder and files with several names.
pub(crate) fn fingerprint(
    run_dir: &Utf8Path,
    resolved: &Utf8Path,
    candidate: &str,
) -> Result<DeliverableFingerprint, DeliverableError> {
    let run_dir_canon = canonical(run_dir, candidate)?;
    let mut files = Vec::new();
    let mut pending = vec![resolved.to_owned()];
    while let Some(path) = pending.pop() {
        let unresolvable = |e: io::Error| DeliverableError::Unresolvable {
            candidate: path.to_string(),
            reason: e.to_string(),
        };
        let relative = path
            .strip_prefix(&run_dir_canon)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| path.to_string());
        let meta = fs::symlink_metadata(&path).map_err(unresolvable)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(unresolvable)?;
            let target = target.to_string_lossy().into_owned();
            // A dangling link is judged by where it would lead: its target may appear later.
            let leads_to = match fs::canonicalize(&path) {
                Ok(real) => real.to_string_lossy().into_owned(),
                Err(_) => normalize(&parent_dir_of(&path).join(&target)).to_string(),
            };
            if !Utf8Path::new(&leads_to).starts_with(&run_dir_canon) {
                return Err(DeliverableError::LinkLeadsOutside {
                    candidate: candidate.to_owned(),
                    path: relative,
                    target: leads_to,
                });
            }
            files.push(FileFingerprint {
                path: relative,
                size: target.len() as u64,
                sha256: hex(&Sha256::digest(target.as_bytes())),
                link: Some(target),
            });
        } else if kind.is_dir() {
            let mut children = Vec::new();
            for entry in fs::read_dir(&path).map_err(unresolvable)? {
                let entry = entry.map_err(unresolvable)?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    return Err(DeliverableError::NonUtf8 {
                        candidate: format!("{relative}/{}", name.to_string_lossy()),
                    });
                };
                children.push(path.join(name));
            }
            // Reversed so that the stack pops them in name order.
            children.sort();
            pending.extend(children.into_iter().rev());
        } else if kind.is_file() {
            let links = link_count(&meta);
            if links > 1 {
                return Err(DeliverableError::HardLinked {
                    candidate: candidate.to_owned(),
                    path: relative,
                    links,
                });
            }
            let (size, sha256) = hash_file(&path).map_err(unresolvable)?;
            files.push(FileFingerprint {
                path: relative,
                size,
                sha256,
                link: None,
            });
        } else {
            return Err(DeliverableError::NotFileOrDir {
                candidate: relative,
                kind: kind_name(&kind),
            });
        }
    }
    Ok(DeliverableFingerprint { files })
}

fn parent_dir_of(path: &Utf8Path) -> Utf8PathBuf {
    path.parent().map(Utf8Path::to_owned).unwrap_or_default()
}

#[cfg(unix)]
fn link_count(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
fn link_count(_meta: &fs::Metadata) -> u64 {
    1
}

fn hash_file(path: &Utf8Path) -> io::Result<(u64, String)> {
    let mut file = fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut size = 0_u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

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
