//! Read-only browsing of a folder a model wrote (the deliverable), for people looking at it
//! through the dashboard: list a folder, read a file, never anything outside the root.
//!
//! The model is assumed hostile: it names files `<script>`, plants symbolic links to
//! `/etc/shadow` and swaps files while they are read. So a relative path with `..`, an
//! absolute path or a NUL byte is refused before touching the disk, the path is resolved with
//! symbolic links followed and must stay under the root, and the file finally opened is
//! checked again through its descriptor (on Linux, `/proc/self/fd`), so a swap between the
//! check and the open cannot serve a file from outside. This module must never write, and
//! never follow a path it has not checked.

use std::fs::{self, File};
use std::io::{self, Read};

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};

/// Why a path cannot be shown.
#[derive(thiserror::Error, Debug)]
pub enum BrowseError {
    /// The path leaves the root (by `..`, an absolute path or a symbolic link).
    #[error("`{path}` is outside {root}")]
    Outside {
        /// The path asked for.
        path: String,
        /// The root it must stay in.
        root: Utf8PathBuf,
    },
    /// Nothing is there.
    #[error("`{path}` does not exist in {root}")]
    Missing {
        /// The path asked for.
        path: String,
        /// The root.
        root: Utf8PathBuf,
    },
    /// It is neither a file nor a folder (a socket, a fifo, a device).
    #[error("`{path}` is not a file or a folder")]
    NotAFile {
        /// The path asked for.
        path: String,
    },
    /// Reading failed.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path asked for.
        path: String,
        /// The OS error.
        source: io::Error,
    },
}

/// What a path holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Browsed {
    /// A folder: its entries, folders first, then by name.
    Folder(Vec<FolderEntry>),
    /// A file.
    File(FileView),
}

/// One entry of a listed folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderEntry {
    /// Its name (lossy if not UTF-8).
    pub name: String,
    /// Whether it is a folder (symbolic links count as what they point to).
    pub is_folder: bool,
    /// Its size in bytes (0 for folders).
    pub size: u64,
    /// A symbolic link leading outside the root (or nowhere): listed, never followed.
    pub leads_outside: bool,
}

/// A file's content, capped.
#[derive(Debug, Clone, PartialEq)]
pub struct FileView {
    /// Its size in bytes.
    pub size: u64,
    /// Its text when it is UTF-8 without NUL bytes, at most the cap; `None` when binary.
    pub text: Option<String>,
    /// Whether the text stops before the end of the file.
    pub truncated: bool,
}

/// Shows `relative` (a `/`-separated path under `root`, `""` for the root itself), reading
/// at most `max_bytes` of a file.
pub fn browse(root: &Utf8Path, relative: &str, max_bytes: u64) -> Result<Browsed, BrowseError> {
    let outside = || BrowseError::Outside {
        path: relative.to_owned(),
        root: root.to_owned(),
    };
    let io_error = |source| BrowseError::Io {
        path: relative.to_owned(),
        source,
    };
    let asked = Utf8Path::new(relative);
    if relative.contains('\0')
        || asked
            .components()
            .any(|c| !matches!(c, Utf8Component::Normal(_) | Utf8Component::CurDir))
    {
        return Err(outside());
    }
    let root_canon = fs::canonicalize(root).map_err(io_error)?;
    let resolved = match fs::canonicalize(root.join(asked)) {
        Ok(path) => path,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A dangling link is still a link out as far as the viewer is concerned.
            return Err(BrowseError::Missing {
                path: relative.to_owned(),
                root: root.to_owned(),
            });
        }
        Err(e) => return Err(io_error(e)),
    };
    if !resolved.starts_with(&root_canon) {
        return Err(outside());
    }
    let meta = fs::metadata(&resolved).map_err(io_error)?;
    if meta.is_dir() {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&resolved).map_err(io_error)? {
            let entry = entry.map_err(io_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // A link is shown as what it points to only if that stays inside.
            let target = fs::canonicalize(entry.path())
                .ok()
                .filter(|t| t.starts_with(&root_canon));
            let meta = target.as_ref().and_then(|t| fs::metadata(t).ok());
            entries.push(FolderEntry {
                leads_outside: target.is_none(),
                name,
                is_folder: meta.as_ref().is_some_and(fs::Metadata::is_dir),
                size: meta
                    .as_ref()
                    .filter(|m| m.is_file())
                    .map_or(0, fs::Metadata::len),
            });
        }
        entries.sort_by(|a, b| {
            b.is_folder
                .cmp(&a.is_folder)
                .then_with(|| a.name.cmp(&b.name))
        });
        return Ok(Browsed::Folder(entries));
    }
    if !meta.is_file() {
        return Err(BrowseError::NotAFile {
            path: relative.to_owned(),
        });
    }
    let file = open_confined(&resolved, &root_canon).map_err(|e| match e {
        Opened::Outside => outside(),
        Opened::Io(e) => io_error(e),
    })?;
    let size = file.metadata().map_err(io_error)?.len();
    let mut bytes = Vec::new();
    file.take(max_bytes)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    let truncated = (bytes.len() as u64) < size;
    let text = if bytes.contains(&0) {
        None
    } else {
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            // A cut in the middle of a character is still text.
            Err(e) if truncated && e.utf8_error().error_len().is_none() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).ok()
            }
            Err(_) => None,
        }
    };
    Ok(Browsed::File(FileView {
        size,
        text,
        truncated,
    }))
}

enum Opened {
    Outside,
    Io(io::Error),
}

/// Opens `path`, then checks where the descriptor really points: a component swapped for
/// a link between the check and the open is caught here (Linux; elsewhere the resolved path
/// is all there is).
fn open_confined(path: &std::path::Path, root: &std::path::Path) -> Result<File, Opened> {
    let file = File::open(path).map_err(Opened::Io)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let real =
            fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).map_err(Opened::Io)?;
        if !real.starts_with(root) {
            return Err(Opened::Outside);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        fs::create_dir_all(path.join("deliverable/sub")).unwrap();
        fs::write(path.join("deliverable/a.txt"), "hello").unwrap();
        fs::write(path.join("deliverable/sub/b.bin"), [0u8, 1, 2]).unwrap();
        fs::write(path.join("secret.txt"), "top secret").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(path.join("secret.txt"), path.join("deliverable/out"))
                .unwrap();
            std::os::unix::fs::symlink("/etc", path.join("deliverable/etc")).unwrap();
            std::os::unix::fs::symlink("a.txt", path.join("deliverable/in")).unwrap();
        }
        (dir, path)
    }

    fn show(root: &Utf8Path, path: &str) -> Result<Browsed, String> {
        browse(&root.join("deliverable"), path, 4).map_err(|e| {
            e.to_string()
                .replace(root.as_str(), "<root>")
                .replace("<root>/deliverable", "<deliverable>")
        })
    }

    #[test]
    fn files_and_folders_inside_are_shown() {
        let (_guard, root) = root();
        let Browsed::Folder(entries) = show(&root, "").unwrap() else {
            panic!("not a folder")
        };
        let names: Vec<_> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_folder, e.size, e.leads_outside))
            .collect();
        assert_eq!(
            names,
            [
                ("sub", true, 0, false),
                ("a.txt", false, 5, false),
                ("etc", false, 0, true),
                ("in", false, 5, false),
                ("out", false, 0, true)
            ]
        );
        let file = |text: Option<&str>, size, truncated| {
            Ok(Browsed::File(FileView {
                size,
                text: text.map(str::to_owned),
                truncated,
            }))
        };
        assert_eq!(show(&root, "a.txt"), file(Some("hell"), 5, true));
        assert_eq!(show(&root, "./in"), file(Some("hell"), 5, true));
        assert_eq!(show(&root, "sub/b.bin"), file(None, 3, false));
    }

    #[test]
    fn escapes_are_refused() {
        let (_guard, root) = root();
        let outside = |p: &str| Err(format!("`{p}` is outside <deliverable>"));
        for path in [
            "../secret.txt",
            "sub/../../secret.txt",
            "/etc/passwd",
            "out",
            "etc/passwd",
            "etc",
            "a.txt\0",
        ] {
            assert_eq!(show(&root, path), outside(path), "{path:?}");
        }
        assert_eq!(
            show(&root, "nope"),
            Err("`nope` does not exist in <deliverable>".to_owned())
        );
    }
}
