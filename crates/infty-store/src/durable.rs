//! Durable writes: the [`DurableWrite`] trait the appenders are generic over, and the
//! atomic replace used for `run.json` (temp file, fsync, rename, fsync of the folder).
//!
//! Everything that must survive a crash goes through here. This module must never leave a
//! half-written file under a final name: a reader sees the old content or the new one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

use camino::{Utf8Path, Utf8PathBuf};

use crate::StoreError;
use crate::folder::{Durability, Folder};

/// A writer that can be made durable and rolled back: what the JSON-lines appenders need.
///
/// [`File`] is the real one; tests implement it on writers that fail on purpose, to prove
/// that a write error (a full disk) is reported and loses nothing already written.
pub trait DurableWrite: Write {
    /// Flushes written data to stable storage (`fsync`/`fdatasync` for a file).
    fn sync_to_disk(&mut self) -> io::Result<()>;
    /// Cuts the output back to `len` bytes, undoing a partly written record.
    fn truncate_to(&mut self, len: u64) -> io::Result<()>;
}

impl DurableWrite for File {
    fn sync_to_disk(&mut self) -> io::Result<()> {
        self.sync_data()
    }

    fn truncate_to(&mut self, len: u64) -> io::Result<()> {
        // Appenders open files with O_APPEND, so the next write lands at the new end.
        self.set_len(len)
    }
}

/// Prefix of every temp file an atomic write leaves behind if it crashes; readers skip
/// names that start with `.`, and [`crate::RunStore::lock`] removes these.
pub(crate) const TEMP_MARKER: &str = ".tmp-";

/// The temp file name used while replacing `file_name`: `.<file_name>.tmp-<random>`.
pub(crate) fn temp_name(file_name: &str) -> String {
    format!(".{file_name}{TEMP_MARKER}{:08x}", fastrand::u32(..))
}

/// Replaces `path` with `contents` atomically: a crash leaves the old file or the new one,
/// never a mix, and a failed write leaves the old file untouched and no temp file behind.
pub fn write_atomic(path: &Utf8Path, contents: &[u8]) -> Result<(), StoreError> {
    write_atomic_via(path, contents, Durability::Durable, |file| file)
}

/// [`write_atomic`] with the temp file wrapped by `wrap` before writing, so tests can inject
/// a writer that fails like a full disk; `durability` says what is synced.
pub(crate) fn write_atomic_via<W: DurableWrite>(
    path: &Utf8Path,
    contents: &[u8],
    durability: Durability,
    wrap: impl FnOnce(File) -> W,
) -> Result<(), StoreError> {
    let dir = parent_dir(path);
    let name = path.file_name().unwrap_or("file");
    // One mechanism for every atomic replace: the one the file tools use below a folder.
    let folder = Folder::open(dir).map_err(|e| StoreError::io("open folder", dir, e))?;
    folder
        .write_atomic_via(name, contents, None, durability, wrap)
        .map_err(|(action, e)| match action {
            "sync folder" => StoreError::io(action, dir, e),
            _ => StoreError::io(action, path, e),
        })
}

/// Creates `path` with `contents` atomically, only if it does not exist yet, even when
/// another process tries at the same moment. Returns `false` (writing nothing) if it
/// existed.
pub(crate) fn create_atomic(path: &Utf8Path, contents: &[u8]) -> Result<bool, StoreError> {
    let temp = write_temp(path, contents, |file| file)?;
    // A hard link, unlike a rename, refuses to replace: the first creator wins.
    let created = match fs::hard_link(&temp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        // File systems without hard links: check, then rename (a narrow race remains).
        Err(_) if path.exists() => false,
        Err(_) => match fs::rename(&temp, path) {
            Ok(()) => true,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(StoreError::io("create", path, e));
            }
        },
    };
    match fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io("remove", &temp, e)),
    }
    sync_dir(parent_dir(path))?;
    Ok(created)
}

/// Writes `contents` to a fresh temp file beside `path` and makes it durable; on failure
/// the temp file is removed and the error names `path`.
fn write_temp<W: DurableWrite>(
    path: &Utf8Path,
    contents: &[u8],
    wrap: impl FnOnce(File) -> W,
) -> Result<Utf8PathBuf, StoreError> {
    let dir = parent_dir(path);
    let file_name = path.file_name().unwrap_or("file");
    let temp = dir.join(temp_name(file_name));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| StoreError::io("create", &temp, e))?;
    let mut writer = wrap(file);
    let written = writer
        .write_all(contents)
        .and_then(|()| writer.flush())
        .map_err(|e| StoreError::io("write", path, e))
        .and_then(|()| {
            writer
                .sync_to_disk()
                .map_err(|e| StoreError::io("sync", path, e))
        });
    drop(writer);
    match written {
        Ok(()) => Ok(temp),
        Err(e) => {
            // Best effort: the write already failed, and the temp name is recognisable anyway.
            let _ = fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Makes a rename or a creation inside `dir` durable.
pub(crate) fn sync_dir(dir: &Utf8Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io("sync folder", dir, e))
    }
    #[cfg(not(unix))]
    {
        // Folders cannot be opened as files elsewhere; rename is durable enough there.
        let _ = dir;
        Ok(())
    }
}

pub(crate) fn parent_dir(path: &Utf8Path) -> &Utf8Path {
    match path.parent() {
        Some(p) if !p.as_str().is_empty() => p,
        _ => Utf8Path::new("."),
    }
}

/// Removes temp files that crashed atomic writes left in `dir` (names `.<x>.tmp-<rand>`)
/// and that are at least `min_age` old. Only a process holding the run's lock may call
/// this, and only with a zero age for files no one else writes: a writer in another
/// process may be mid-write (the inbox is written by `infty send` without the lock).
pub(crate) fn remove_stale_temps(
    dir: &Utf8Path,
    min_age: Duration,
) -> Result<Vec<Utf8PathBuf>, StoreError> {
    let mut removed = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(StoreError::io("list", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !(name.starts_with('.') && name.contains(TEMP_MARKER)) {
            continue;
        }
        let path = dir.join(&name);
        if !min_age.is_zero() {
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok());
            // Unknown age: leave it; it is skipped by readers anyway.
            if age.is_none_or(|age| age < min_age) {
                continue;
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            // Renamed into place or removed by its writer meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", &path, e)),
        }
    }
    Ok(removed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A writer that accepts `room` bytes and then fails like a full disk.
    pub(crate) struct FullDisk<W> {
        pub(crate) inner: W,
        pub(crate) room: usize,
    }

    impl<W: Write> Write for FullDisk<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::StorageFull,
                    "no space left on device",
                ));
            }
            let n = buf.len().min(self.room);
            let n = self.inner.write(&buf[..n])?;
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    impl<W: DurableWrite> DurableWrite for FullDisk<W> {
        fn sync_to_disk(&mut self) -> io::Result<()> {
            self.inner.sync_to_disk()
        }
        fn truncate_to(&mut self, len: u64) -> io::Result<()> {
            self.inner.truncate_to(len)
        }
    }

    fn utf8_tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, path)
    }

    fn names(dir: &Utf8Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_content() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("run.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(&dir), ["run.json"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temp() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("run.json");
        write_atomic(&path, b"old content").unwrap();
        let err = write_atomic_via(
            &path,
            b"new content that does not fit",
            Durability::Durable,
            |file| FullDisk {
                inner: file,
                room: 4,
            },
        )
        .unwrap_err();
        assert_eq!(err.to_string(), format!("cannot write {path}"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old content");
        assert_eq!(names(&dir), ["run.json"]);
    }

    /// A writer that counts how often it is synced.
    struct CountingSyncs<'a> {
        inner: File,
        syncs: &'a std::cell::Cell<u32>,
    }

    impl Write for CountingSyncs<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    impl DurableWrite for CountingSyncs<'_> {
        fn sync_to_disk(&mut self) -> io::Result<()> {
            self.syncs.set(self.syncs.get() + 1);
            self.inner.sync_to_disk()
        }
        fn truncate_to(&mut self, len: u64) -> io::Result<()> {
            self.inner.truncate_to(len)
        }
    }

    #[test]
    fn each_durability_syncs_the_file_only_when_it_must() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("run.json");
        for (durability, expected) in [
            (Durability::Durable, 1),
            (Durability::Whole, 1),
            (Durability::Hint, 0),
        ] {
            let syncs = std::cell::Cell::new(0);
            let contents = format!("{durability:?}");
            write_atomic_via(&path, contents.as_bytes(), durability, |inner| {
                CountingSyncs {
                    inner,
                    syncs: &syncs,
                }
            })
            .unwrap();
            assert_eq!(syncs.get(), expected, "{durability:?}");
            assert_eq!(fs::read_to_string(&path).unwrap(), contents);
        }
        assert_eq!(names(&dir), ["run.json"]);
    }

    #[test]
    fn create_only_once() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("run.json");
        assert!(create_atomic(&path, b"first").unwrap());
        assert!(!create_atomic(&path, b"second").unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(names(&dir), ["run.json"]);
    }

    #[test]
    fn stale_temps_are_recognised() {
        let (_guard, dir) = utf8_tempdir();
        let stale = dir.join(temp_name("run.json"));
        fs::write(&stale, "half").unwrap();
        fs::write(dir.join("run.json"), "{}").unwrap();
        fs::write(dir.join(".hidden"), "keep").unwrap();
        assert!(
            remove_stale_temps(&dir, Duration::from_secs(3600))
                .unwrap()
                .is_empty()
        );
        assert!(stale.exists(), "too young to be stale");
        let removed = remove_stale_temps(&dir, Duration::ZERO).unwrap();
        assert_eq!(removed, [stale]);
        assert_eq!(names(&dir), [".hidden", "run.json"]);
    }
}
