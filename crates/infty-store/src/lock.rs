//! The run lock, `run.lock`: held by the one process driving a run.
//!
//! It is an operating-system file lock, so a crashed driver never leaves a run blocked:
//! the OS drops the lock with the process. The file's content (the holder's pid) is only
//! for the error message; this module must never decide anything from it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};

use camino::{Utf8Path, Utf8PathBuf};

use crate::StoreError;

/// Proof that this process drives the run; the lock is released when it is dropped.
#[derive(Debug)]
pub struct RunLock {
    path: Utf8PathBuf,
    // Held for its lock; closing the file releases it.
    _file: File,
}

impl RunLock {
    /// The lock file.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    pub(crate) fn acquire(path: &Utf8Path, run_id: &str) -> Result<RunLock, StoreError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::io("open", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may not have written its pid yet; the message copes.
                let _ = file.read_to_string(&mut text);
                return Err(StoreError::Locked {
                    run_id: run_id.to_owned(),
                    pid: text.trim().parse().ok(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::io("lock", path, e));
            }
        }
        // Not synced: the pid is only for messages, and no holder outlives a crash.
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| StoreError::io("write", path, e))?;
        Ok(RunLock {
            path: path.to_owned(),
            _file: file,
        })
    }
}

/// Whether a process drives a run, as told by its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds the lock: no driver is alive.
    Free,
    /// A live process holds the lock; `pid` is what it wrote in the file, if readable.
    Held {
        /// The holder's pid, as written by [`RunLock`]'s acquisition.
        pid: Option<u32>,
    },
}

impl RunLock {
    /// Tells whether the lock at `path` is held, without creating the file and without
    /// writing. It takes a shared lock for an instant, so a driver starting at that very
    /// instant is refused once as if the run were driven: call it for a decision (the
    /// dashboard's interrupt), not in a polling loop.
    pub fn probe(path: &Utf8Path) -> Result<LockState, StoreError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockState::Free),
            Err(e) => return Err(StoreError::io("open", path, e)),
        };
        match file.try_lock_shared() {
            // Dropping the file releases the shared lock at once.
            Ok(()) => Ok(LockState::Free),
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                Ok(LockState::Held {
                    pid: text.trim().parse().ok(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::io("lock", path, e)),
        }
    }
}
