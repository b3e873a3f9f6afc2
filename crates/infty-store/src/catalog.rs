//! A runs root kept in memory for a long-lived reader (the web dashboard): refreshing it
//! re-reads only the `run.json` files that changed since the last look, so ten thousand runs
//! cost a directory listing and a `stat` each per refresh, not ten thousand parses.
//!
//! Like [`crate::list_runs`] it reads only `run.json` files, skips broken folders (they are
//! retried at the next refresh) and never writes anything.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::time::SystemTime;

use camino::{Utf8Path, Utf8PathBuf};

use crate::run::read_metadata;
use crate::{RUN_JSON, RunMetadata, StoreError};

/// The runs under a runs root, as of the last [`RunCatalog::refresh`].
#[derive(Debug, Clone)]
pub struct RunCatalog {
    root: Utf8PathBuf,
    runs: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone)]
struct Entry {
    stamp: (SystemTime, u64),
    meta: RunMetadata,
}

/// What a refresh found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogChanges {
    /// Runs that appeared or whose `run.json` changed, by id.
    pub changed: Vec<String>,
    /// Runs that disappeared.
    pub removed: Vec<String>,
}

impl RunCatalog {
    /// An empty catalog of `root`; call [`RunCatalog::refresh`] to fill it.
    pub fn new(root: impl Into<Utf8PathBuf>) -> RunCatalog {
        RunCatalog {
            root: root.into(),
            runs: BTreeMap::new(),
        }
    }

    /// The runs root.
    pub fn root(&self) -> &Utf8Path {
        &self.root
    }

    /// One run's metadata.
    pub fn get(&self, run_id: &str) -> Option<&RunMetadata> {
        self.runs.get(run_id).map(|e| &e.meta)
    }

    /// How many runs it holds.
    pub fn len(&self) -> usize {
        self.runs.len()
    }

    /// Whether it holds no run.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Every run, most recently updated first (ties by run id), like `infty list`.
    pub fn runs(&self) -> Vec<&RunMetadata> {
        let mut runs: Vec<&RunMetadata> = self.runs.values().map(|e| &e.meta).collect();
        runs.sort_by(|a, b| {
            b.updated_at
                .cmp(&a.updated_at)
                .then_with(|| a.run_id.cmp(&b.run_id))
        });
        runs
    }

    /// Looks at the root again: new runs are read, changed `run.json` files (by modification
    /// time and size) re-read, vanished runs dropped. A missing root is an empty catalog.
    pub fn refresh(&mut self) -> Result<CatalogChanges, StoreError> {
        let mut changes = CatalogChanges::default();
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => Some(entries),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io("list", &self.root, e)),
        };
        let mut seen = BTreeMap::new();
        for entry in entries.into_iter().flatten() {
            let entry = entry.map_err(|e| StoreError::io("list", &self.root, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let dir = self.root.join(&name);
            let Ok(stat) = fs::metadata(dir.join(RUN_JSON)) else {
                continue;
            };
            let stamp = (
                stat.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                stat.len(),
            );
            seen.insert(name, (dir, stamp));
        }
        self.runs.retain(|id, _| {
            let keep = seen.contains_key(id);
            if !keep {
                changes.removed.push(id.clone());
            }
            keep
        });
        for (id, (dir, stamp)) in seen {
            if self.runs.get(&id).is_some_and(|e| e.stamp == stamp) {
                continue;
            }
            // A run.json being replaced or broken is tried again next time.
            if let Ok(meta) = read_metadata(&dir)
                && meta.run_id == id
            {
                self.runs.insert(id.clone(), Entry { stamp, meta });
                changes.changed.push(id);
            }
        }
        Ok(changes)
    }
}
