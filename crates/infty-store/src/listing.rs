//! Listing the runs under a runs root, for `infty list`.
//!
//! Reads only each run's `run.json`, never a journal, so ten thousand runs list quickly.
//! A broken folder is skipped and reported, never fatal: one bad run must not hide the
//! others. This module must never write anything.

use std::fs;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};

use crate::run::read_metadata;
use crate::{RunMetadata, StoreError};

/// The runs found under a runs root.
#[derive(Debug, Clone, Default)]
pub struct RunListing {
    /// Readable runs, most recently updated first (ties by run id).
    pub runs: Vec<RunMetadata>,
    /// Folders that look like runs but cannot be read, with the reason, sorted by path.
    pub skipped: Vec<(Utf8PathBuf, String)>,
}

/// Lists the runs under `runs_root`; a missing root is an empty listing. Hidden entries
/// (names starting with `.`) and plain files are ignored.
pub fn list_runs(runs_root: &Utf8Path) -> Result<RunListing, StoreError> {
    let mut listing = RunListing::default();
    let entries = match fs::read_dir(runs_root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(StoreError::io("list", runs_root, e)),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io("list", runs_root, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            listing.skipped.push((
                Utf8PathBuf::from(entry.path().to_string_lossy().into_owned()),
                "its name is not valid UTF-8".to_owned(),
            ));
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let dir = runs_root.join(name);
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => dir.is_dir(),
            Ok(t) => t.is_dir(),
            Err(_) => dir.is_dir(),
        };
        if is_dir {
            dirs.push(dir);
        }
    }
    for (dir, read) in dirs.iter().zip(read_all(&dirs)) {
        match read {
            Ok(meta) => listing.runs.push(meta),
            Err(e) => listing.skipped.push((dir.clone(), e.to_string())),
        }
    }
    listing.runs.sort_by(|a, b| {
        b.updated_at
            .cmp(&a.updated_at)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    listing.skipped.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(listing)
}

/// Below this many runs, threads cost more than they save.
const PARALLEL_THRESHOLD: usize = 512;

/// Reads each folder's `run.json`, spreading the work over the available cores: reading
/// and parsing ten thousand small files is mostly per-file overhead that parallelises well.
fn read_all(dirs: &[Utf8PathBuf]) -> Vec<Result<RunMetadata, StoreError>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads == 1 || dirs.len() < PARALLEL_THRESHOLD {
        return dirs.iter().map(|d| read_metadata(d)).collect();
    }
    let chunk = dirs.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = dirs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(|d| read_metadata(d)).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .zip(dirs.chunks(chunk))
            .flat_map(|(worker, part)| {
                worker.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|d| {
                            let e = io::Error::other("the reading thread panicked");
                            Err(StoreError::io("read", d.join(crate::RUN_JSON), e))
                        })
                        .collect()
                })
            })
            .collect()
    })
}
