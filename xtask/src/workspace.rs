//! Facts about the workspace and the toolchain that the tasks need: where the workspace
//! and its target folder are, the one workspace version, the host's target triple.
//!
//! Everything here only reads; it never builds or writes anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The `cargo` that runs us (cargo sets `CARGO` for `cargo run`), or the one on the PATH.
pub fn cargo_command() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Reads and parses the TOML file at `path`.
pub fn read_toml(path: &Path) -> Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.parse()
        .with_context(|| format!("cannot parse {}", path.display()))
}

/// The version in the root manifest's `[workspace.package]`: the one version every crate
/// carries and `infty --version` reports.
pub fn workspace_version(root: &Path) -> Result<String> {
    let manifest = root.join("Cargo.toml");
    let table = read_toml(&manifest)?;
    table
        .get("workspace")
        .and_then(|workspace| workspace.get("package"))
        .and_then(|package| package.get("version"))
        .and_then(|version| version.as_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no [workspace.package] version", manifest.display()))
}

/// The cargo target folder of the workspace (honours `CARGO_TARGET_DIR` and cargo config).
pub fn target_dir(root: &Path) -> Result<PathBuf> {
    let output = cargo_command()
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .context("cannot run cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("cannot parse cargo metadata output")?;
    metadata
        .get("target_directory")
        .and_then(|dir| dir.as_str())
        .map(PathBuf::from)
        .context("cargo metadata output has no target_directory")
}

/// The host's target triple, as `rustc -vV` reports it.
pub fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    if !output.status.success() {
        bail!("rustc -vV failed ({})", output.status);
    }
    parse_host_triple(&String::from_utf8_lossy(&output.stdout))
}

/// Finds the `host:` line in `rustc -vV` output.
pub fn parse_host_triple(rustc_verbose_version: &str) -> Result<String> {
    rustc_verbose_version
        .lines()
        .find_map(|line| line.strip_prefix("host:"))
        .map(|host| host.trim().to_owned())
        .filter(|host| !host.is_empty())
        .context("rustc -vV output has no host line")
}

/// The targets rustup has installed, or `None` when rustup is not there to ask.
pub fn installed_targets() -> Option<Vec<String>> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| line.trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_triple_comes_from_the_host_line() {
        let text = "rustc 1.95.0 (abc 2026-03-21)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\nrelease: 1.95.0\n";
        assert_eq!(parse_host_triple(text).unwrap(), "x86_64-unknown-linux-gnu");
        assert!(parse_host_triple("rustc 1.95.0\n").is_err());
        assert!(parse_host_triple("host:   \n").is_err());
    }

    #[test]
    fn the_workspace_has_one_version() {
        let version = workspace_version(&workspace_root()).unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }
}
