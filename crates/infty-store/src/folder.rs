//! [`Folder`]: an opened folder, and files reached below it without a race.
//!
//! A path is resolved and opened in one step relative to the opened folder, by the kernel,
//! refusing any symbolic link and any way out (`..` above the folder, an absolute path):
//! Linux's `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`,
//! or, where it is missing, a walk one component at a time with `O_NOFOLLOW`. So there is
//! no window between a check and an open in which a folder can be swapped for a link.
//! Writes are a temp file created in the opened parent folder, synced, renamed over the
//! target and the folder synced: the same mechanism `run.json` is written with.
//!
//! This module must never follow a symbolic link below the folder it was opened on, and
//! never open a file with more than one name for reading (a hard link made elsewhere
//! would otherwise hand out a file from outside).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use camino::{Utf8Component, Utf8Path};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::durable::{DurableWrite, temp_name};

/// Why a path below a [`Folder`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A part of the path is a symbolic link; links are never followed below a folder.
    #[error("a part of the path is a symbolic link")]
    Symlink,
    /// The path leads out of the folder (`..` above it, or an absolute path).
    #[error("the path leads out of the folder")]
    Escapes,
    /// Nothing is there.
    #[error("nothing exists there")]
    Missing,
    /// A part of the path that must be a folder is not one.
    #[error("a part of the path is not a folder")]
    NotAFolder,
    /// A file was wanted and this is a folder.
    #[error("it is a folder")]
    IsAFolder,
    /// A regular file was wanted and this is something else (a fifo, a device, a socket).
    #[error("it is not a regular file")]
    NotAFile,
    /// The file has more than one name (hard links): another one may be anywhere.
    #[error("it has {links} names (hard links)")]
    HardLinked {
        /// How many names it has.
        links: u64,
    },
    /// The operating system refused.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<Errno> for OpenError {
    fn from(errno: Errno) -> Self {
        match errno {
            Errno::LOOP => OpenError::Symlink,
            Errno::XDEV => OpenError::Escapes,
            Errno::NOENT => OpenError::Missing,
            Errno::NOTDIR => OpenError::NotAFolder,
            Errno::ISDIR => OpenError::IsAFolder,
            other => OpenError::Io(other.into()),
        }
    }
}

/// What an entry of a folder is, its links not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A symbolic link.
    Symlink,
    /// A fifo, socket or device.
    Other,
}

impl From<FileType> for EntryKind {
    fn from(kind: FileType) -> Self {
        match kind {
            FileType::RegularFile => EntryKind::File,
            FileType::Directory => EntryKind::Folder,
            FileType::Symlink => EntryKind::Symlink,
            _ => EntryKind::Other,
        }
    }
}

/// One entry of a folder, as [`Folder::entry`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: EntryKind,
    /// Its permission bits.
    pub mode: u32,
    /// How many names it has (more than one: hard links).
    pub links: u64,
}

/// An opened folder: everything below it is reached through it, never by a path again.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
}

impl Folder {
    /// Opens the folder at `path` (links in `path` itself are followed: it is the trusted
    /// starting point, such as a run folder or a workspace).
    pub fn open(path: &Utf8Path) -> io::Result<Folder> {
        let fd = rustix::fs::open(
            path.as_std_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder { fd })
    }

    /// The folder at `relative` below this one.
    pub fn folder(&self, relative: &Utf8Path) -> Result<Folder, OpenError> {
        let fd = open_beneath(&self.fd, relative, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(Folder { fd })
    }

    /// The folder at `relative` below this one, creating the missing folders on the way
    /// (each created, then opened, relative to the one before).
    pub fn create_folders(&self, relative: &Utf8Path) -> Result<Folder, OpenError> {
        let mut current = Folder {
            fd: self.fd.try_clone()?,
        };
        for component in relative.components() {
            let name = match component {
                Utf8Component::Normal(name) => name,
                Utf8Component::CurDir => continue,
                _ => return Err(OpenError::Escapes),
            };
            match rustix::fs::mkdirat(&current.fd, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(errno) => return Err(errno.into()),
            }
            current = current.folder(Utf8Path::new(name))?;
        }
        Ok(current)
    }

    /// The regular file at `relative` below this one, opened for reading. Refused when it
    /// has more than one name: its content may belong to a file outside.
    pub fn file(&self, relative: &Utf8Path) -> Result<File, OpenError> {
        // Non-blocking, so a fifo put in its place cannot hang the open.
        let fd = open_beneath(&self.fd, relative, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let file = File::from(fd);
        let meta = file.metadata()?;
        if meta.is_dir() {
            return Err(OpenError::IsAFolder);
        }
        if !meta.is_file() {
            return Err(OpenError::NotAFile);
        }
        let links = link_count(&meta);
        if links > 1 {
            return Err(OpenError::HardLinked { links });
        }
        Ok(file)
    }

    /// What `name` (one component) is in this folder, its link not followed; `None` when
    /// nothing is there.
    pub fn entry(&self, name: &str) -> Result<Option<Entry>, OpenError> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(Entry {
                kind: FileType::from_raw_mode(stat.st_mode).into(),
                mode: Mode::from_raw_mode(stat.st_mode).bits(),
                #[allow(clippy::useless_conversion)] // `nlink_t` is not 64 bits everywhere
                links: u64::from(stat.st_nlink),
            })),
            Err(Errno::NOENT) => Ok(None),
            Err(errno) => Err(errno.into()),
        }
    }

    /// The entries of this folder (without `.` and `..`), by name.
    pub fn entries(&self) -> io::Result<Vec<(String, EntryKind)>> {
        let mut out = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => self
                    .entry(&name)
                    .ok()
                    .flatten()
                    .map_or(EntryKind::Other, |entry| entry.kind),
                kind => kind.into(),
            };
            out.push((name, kind));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Where the symbolic link `name` in this folder points.
    pub fn read_link(&self, name: &str) -> io::Result<String> {
        let target = rustix::fs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(target.to_string_lossy().into_owned())
    }

    /// Replaces `name` in this folder with `contents` atomically (temp file in this folder,
    /// synced, renamed over `name`, folder synced). With `mode`, the new file gets exactly
    /// those permission bits (to keep an existing file's).
    pub fn write_atomic(&self, name: &str, contents: &[u8], mode: Option<u32>) -> io::Result<()> {
        self.write_atomic_via(name, contents, mode, Durability::Durable, |file| file)
            .map_err(|(_, e)| e)
    }

    /// [`Folder::write_atomic`] with the temp file wrapped by `wrap` (tests inject a full
    /// disk), failing with the step that failed (`create`, `write`, `sync`, `replace`,
    /// `sync folder`). On failure no temp file is left and `name` is untouched.
    /// `durability` says what a crash may leave (see [`Durability`]).
    pub(crate) fn write_atomic_via<W: DurableWrite>(
        &self,
        name: &str,
        contents: &[u8],
        mode: Option<u32>,
        durability: Durability,
        wrap: impl FnOnce(File) -> W,
    ) -> Result<(), (&'static str, io::Error)> {
        let temp = temp_name(name);
        let fd = rustix::fs::openat(
            &self.fd,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode.unwrap_or(0o666)),
        )
        .map_err(|e| ("create", e.into()))?;
        let written = (|| {
            if let Some(mode) = mode {
                // The umask trimmed the bits at creation; the old file's are wanted exactly.
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                    .map_err(|e| ("write", e.into()))?;
            }
            let mut writer = wrap(File::from(fd));
            writer
                .write_all(contents)
                .and_then(|()| writer.flush())
                .map_err(|e| ("write", e))?;
            if durability != Durability::Hint {
                writer.sync_to_disk().map_err(|e| ("sync", e))?;
            }
            drop(writer);
            rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, name)
                .map_err(|e| ("replace", io::Error::from(e)))
        })();
        if written.is_err() {
            // Best effort: the write already failed, and the temp name is recognisable.
            let _ = rustix::fs::unlinkat(&self.fd, temp.as_str(), AtFlags::empty());
            return written;
        }
        match durability {
            Durability::Durable => {
                rustix::fs::fsync(&self.fd).map_err(|e| ("sync folder", e.into()))
            }
            Durability::Whole | Durability::Hint => Ok(()),
        }
    }
}

/// What a crash may leave of an atomic replace: what is synced, and so what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// The new file's data and its rename are synced (two fsyncs): after a crash the new
    /// file is there.
    Durable,
    /// The new file's data is synced, its rename is not (one fsync): after a crash the old
    /// file or the new one is there, each whole. For copies of what a durable record holds
    /// anyway (`run.json`'s usage, which the journal has) and for what a crash may undo (a
    /// run's `running` status: the lock, not the file, tells whether it is driven).
    Whole,
    /// Nothing is synced (no fsync): after a crash the old file, the new one, or an empty
    /// or cut one. Only for a file whose readers take an unreadable one as absent (the
    /// record's head).
    Hint,
}

#[cfg(unix)]
fn link_count(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

/// Opens `relative` below `dir` in one step, refusing links and ways out.
fn open_beneath(dir: &OwnedFd, relative: &Utf8Path, flags: OFlags) -> Result<OwnedFd, OpenError> {
    let path = if relative.as_str().is_empty() {
        "."
    } else {
        relative.as_str()
    };
    if relative.is_absolute() {
        return Err(OpenError::Escapes);
    }
    let flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::ResolveFlags;
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        // EAGAIN: a rename elsewhere raced the lookup; the kernel asks for a retry.
        for _ in 0..64 {
            match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
                Err(Errno::AGAIN | Errno::INTR) => continue,
                Err(Errno::NOSYS) => return walk_beneath(dir, relative, flags),
                Err(errno) => return Err(errno.into()),
                Ok(fd) => return Ok(fd),
            }
        }
        Err(OpenError::Io(io::Error::from(io::ErrorKind::Interrupted)))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        walk_beneath(dir, relative, flags)
    }
}

/// The same as `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, one component at a time.
fn walk_beneath(dir: &OwnedFd, relative: &Utf8Path, flags: OFlags) -> Result<OwnedFd, OpenError> {
    let names: Vec<&str> = relative
        .components()
        .filter_map(|c| match c {
            Utf8Component::CurDir => None,
            other => Some(other.as_str()),
        })
        .collect();
    if names.iter().any(|n| *n == ".." || n.starts_with('/')) {
        return Err(OpenError::Escapes);
    }
    let mut current = dir.as_fd().try_clone_to_owned()?;
    let last = names.len().saturating_sub(1);
    for (i, name) in names.iter().enumerate() {
        let step = if i == last {
            flags | OFlags::NOFOLLOW
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        current = rustix::fs::openat(&current, *name, step, Mode::empty())?;
    }
    if names.is_empty() {
        current = rustix::fs::openat(&current, ".", flags, Mode::empty())?;
    }
    Ok(current)
}
