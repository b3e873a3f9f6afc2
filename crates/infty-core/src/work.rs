//! Fingerprints of the work a Solver turn did, for stall detection in the flow.
//!
//! The driver hashes each tool call (name, arguments, output; never the call id) as the
//! session reports it, and the delivered files when the turn delivers, and feeds the result
//! to the flow as [`crate::events::Input::SolverWork`]. Hashes use the standard library's
//! SipHash with fixed keys: stable for one build, which is all a comparison within a run
//! needs (after an upgrade, old and new turns merely never match, which reads as progress).
//! This module reads files but never writes, and never follows a path outside the run.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Read;

use camino::Utf8Path;

/// Most bytes of delivered files hashed; a larger delivery is hashed by its first bytes,
/// sizes and names.
const MAX_HASHED_BYTES: u64 = 64 * 1024 * 1024;
/// Tool calls named in a turn's summary.
const SUMMARY_CALLS: usize = 3;

/// The work of one turn, accumulated call by call.
#[derive(Debug, Default)]
pub(crate) struct WorkLog {
    hasher: DefaultHasher,
    calls: usize,
    summary: Vec<String>,
}

impl WorkLog {
    /// Adds a tool call about to run; its output follows with [`WorkLog::output`].
    pub(crate) fn call(&mut self, tool: &str, arguments: &str) {
        ("call", tool, arguments).hash(&mut self.hasher);
        self.calls += 1;
        let shown = format!("{tool} {}", one_line(arguments, 80));
        if self.summary.len() < SUMMARY_CALLS && !self.summary.contains(&shown) {
            self.summary.push(shown);
        }
    }

    /// Adds the output of the call added last.
    pub(crate) fn output(&mut self, output: &str) {
        ("output", output).hash(&mut self.hasher);
    }

    /// Adds the fingerprint of a delivered path.
    pub(crate) fn delivered(&mut self, fingerprint: u64) {
        ("deliverable", fingerprint).hash(&mut self.hasher);
    }

    /// The fingerprint (hex) and a few words on what was done.
    pub(crate) fn finish(self) -> (String, String) {
        let mut summary = self.summary.join(", ");
        if self.calls > SUMMARY_CALLS {
            summary.push_str(&format!(
                " (and {} calls more)",
                self.calls - self.summary.len()
            ));
        }
        (format!("{:016x}", self.hasher.finish()), summary)
    }
}

/// A hash of a file, or of a folder's files (names and contents, in name order). Unreadable
/// entries hash as their names.
pub(crate) fn fingerprint_path(path: &Utf8Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut budget = MAX_HASHED_BYTES;
    hash_entry(path, Utf8Path::new(""), &mut hasher, &mut budget, 0);
    hasher.finish()
}

fn hash_entry(
    path: &Utf8Path,
    relative: &Utf8Path,
    hasher: &mut DefaultHasher,
    budget: &mut u64,
    depth: usize,
) {
    relative.as_str().hash(hasher);
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_file() {
        meta.len().hash(hasher);
        if let Ok(file) = std::fs::File::open(path) {
            let mut buffer = Vec::new();
            let take = meta.len().min(*budget);
            if file.take(take).read_to_end(&mut buffer).is_ok() {
                *budget -= buffer.len() as u64;
                buffer.hash(hasher);
            }
        }
    } else if meta.is_dir() && depth < 32 {
        let Ok(entries) = path.read_dir_utf8() else {
            return;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string())
            .collect();
        names.sort();
        for name in names {
            hash_entry(
                &path.join(&name),
                &relative.join(&name),
                hasher,
                budget,
                depth + 1,
            );
        }
    }
}

fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let cut: String = line.chars().take(max).collect();
    if cut.len() < text.trim().len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_work_same_fingerprint_and_output_matters() {
        let log = |output: &str| {
            let mut log = WorkLog::default();
            log.call("shell", r#"{"command":"ls"}"#);
            log.output(output);
            log.finish()
        };
        assert_eq!(log("a"), log("a"));
        assert_ne!(log("a").0, log("b").0);
        assert_eq!(log("a").1, r#"shell {"command":"ls"}"#);
    }

    #[test]
    fn folder_fingerprint_follows_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(root.join("a.md"), "one").unwrap();
        let first = fingerprint_path(root);
        assert_eq!(first, fingerprint_path(root));
        std::fs::write(root.join("a.md"), "two").unwrap();
        assert_ne!(first, fingerprint_path(root));
    }
}
