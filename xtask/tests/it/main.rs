//! xtask's integration tests: release archives (naming, contents, checksums), the `dist`
//! packaging step on fake binaries, and the publishability rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archive;
mod dist;
mod publish;

use std::path::{Path, PathBuf};

/// A fixture file under `tests/fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// Copies a fixture to `to`, creating parent folders.
pub fn copy_fixture(name: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(fixture(name), to).unwrap();
}
