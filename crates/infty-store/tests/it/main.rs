//! Integration tests of infty-store: whole run folders on a real file system, crash
//! simulations, and snapshots of what people and programs read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod deliverable;
mod inbox;
mod journal;
mod listing;
mod lock;
mod rollouts;
mod run_json;
mod seal;

use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;

use camino::{Utf8Path, Utf8PathBuf};
use infty_store::{DurableWrite, Role, RoleRecord, RunInit, RunOptions, RunStore};

/// A temp folder with a UTF-8 path; deleted when dropped.
pub struct Scratch {
    _guard: tempfile::TempDir,
    /// The folder.
    pub path: Utf8PathBuf,
}

/// A fresh temp folder.
pub fn scratch() -> Scratch {
    let guard = tempfile::tempdir().unwrap();
    // Canonical, so paths compare equal to what the store resolves (macOS /var -> /private/var).
    let path = Utf8PathBuf::from_path_buf(guard.path().canonicalize().unwrap()).unwrap();
    Scratch {
        _guard: guard,
        path,
    }
}

/// A run with a Solver, a Director and one Verifier.
pub fn sample_init() -> RunInit {
    let mut options = RunOptions::default();
    options.provider.base_url = "https://api.example.com/v1".into();
    options.provider.wire_api = "responses".into();
    options.provider.api_key_env = Some("OPENAI_API_KEY".into());
    options.budgets.max_solver_turns = Some(40);
    RunInit {
        objective: "Write a proof that there are infinitely many primes.".into(),
        roles: vec![
            RoleRecord::new(Role::Solver, "gpt-5", Some("high")),
            RoleRecord::new(Role::Director, "gpt-5", Some("medium")),
            RoleRecord::new(Role::verifier(1), "gpt-5-mini", None),
        ],
        options,
    }
}

/// Creates the sample run `id` under `root`.
pub fn sample_run(root: &Utf8Path, id: &str) -> RunStore {
    RunStore::create(root, Some(id), sample_init()).unwrap()
}

/// Snapshot settings shared by every test: temp paths and times redacted.
pub fn settings(scratch: &Utf8Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(scratch.as_str()), "[scratch]");
    settings.add_filter(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
        "[time]",
    );
    // Seals depend on the run's random key.
    settings.add_filter(r#""mac":"[0-9a-f]{64}""#, r#""mac":"[seal]""#);
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

/// A writer that accepts `room` more bytes and then fails like a full disk; the room is
/// shared so a test can "free space" after the failure.
pub struct FullDisk<W> {
    /// The real writer.
    pub inner: W,
    /// Bytes it still accepts.
    pub room: Rc<Cell<usize>>,
    /// Whether rolling back fails too.
    pub truncate_fails: bool,
}

impl<W: Write> Write for FullDisk<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.room.get();
        if room == 0 {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        let n = self.inner.write(&buf[..buf.len().min(room)])?;
        self.room.set(room - n);
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
        if self.truncate_fails {
            return Err(io::Error::other("truncate refused"));
        }
        self.inner.truncate_to(len)
    }
}
