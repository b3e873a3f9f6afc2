//! `cargo xtask dist`: build `infty` with the release profile and package it with its
//! README, changelog, licence files and shell completions as
//! `<target-dir>/dist/infty-<version>-<target>.tar.gz` plus a `.sha256`.
//!
//! The slow part (the fat-LTO build) is [`build_release`]; everything after it is
//! [`package`], which takes any binary, so tests drive it with a small fake one. Nothing
//! here edits the workspace's files; it only writes under the output folder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::archive::{self, Entry, Listed, Packed};
use crate::workspace;

/// The shells whose completions go into the archive, with the file each is saved as
/// (the names the shells look for).
pub const COMPLETION_FILES: &[(&str, &str)] = &[
    ("bash", "infty.bash"),
    ("zsh", "_infty"),
    ("fish", "infty.fish"),
];

/// The workspace files every archive carries, at the archive's top level.
pub const DOCUMENT_FILES: &[&str] = &["README.md", "CHANGELOG.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// What to package.
#[derive(Debug, Clone)]
pub struct PackageInput {
    /// The workspace root, where [`DOCUMENT_FILES`] are read from.
    pub root: PathBuf,
    /// The `infty` binary to ship.
    pub binary: PathBuf,
    /// The workspace version, part of the archive name and what `infty --version` must say.
    pub version: String,
    /// The target triple the binary was built for.
    pub target: String,
    /// Where the archive and its checksum go.
    pub out_dir: PathBuf,
    /// Whether the binary runs on this machine (so its version and completions can be
    /// asked for); false for a cross-built binary.
    pub runnable: bool,
}

/// What [`package`] made, for people to read.
#[derive(Debug, Clone)]
pub struct DistReport {
    /// The archive and its checksum.
    pub packed: Packed,
    /// The archive read back.
    pub contents: Vec<Listed>,
    /// Things that were skipped and why.
    pub notes: Vec<String>,
}

impl fmt::Display for DistReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "archive  {}", self.packed.archive.display())?;
        writeln!(f, "sha256   {}", self.packed.checksum_file.display())?;
        writeln!(f, "         {}", self.packed.sha256)?;
        writeln!(f, "size     {} bytes", self.packed.size)?;
        writeln!(f, "contents")?;
        for entry in &self.contents {
            if entry.is_folder() {
                writeln!(f, "  {:o}  {}", entry.mode, entry.path)?;
            } else {
                writeln!(
                    f,
                    "  {:o}  {} ({} bytes)",
                    entry.mode, entry.path, entry.size
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// Builds `infty` with the release profile (for `target`, or the host) and returns the
/// binary's path. Refuses a target whose standard library rustup has not installed.
pub fn build_release(root: &Path, target: Option<&str>) -> Result<PathBuf> {
    if let Some(target) = target
        && let Some(installed) = workspace::installed_targets()
        && !installed.iter().any(|t| t == target)
    {
        bail!("target {target} is not installed; add it with `rustup target add {target}`");
    }
    let mut build = workspace::cargo_command();
    build
        .args(["build", "--release", "--locked", "--package", "infty-cli"])
        .args(["--bin", archive::BINARY_NAME])
        .current_dir(root);
    if let Some(target) = target {
        build.args(["--target", target]);
    }
    let status = build.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release of infty-cli failed ({status})");
    }
    let mut binary = workspace::target_dir(root)?;
    if let Some(target) = target {
        binary.push(target);
    }
    binary.push("release");
    let host = workspace::host_triple()?;
    binary.push(archive::binary_file_name(target.unwrap_or(&host)));
    if !binary.is_file() {
        bail!("cargo build succeeded but {} is missing", binary.display());
    }
    Ok(binary)
}

/// Checks the binary, gathers what goes into the archive, packs it and reads it back.
pub fn package(input: &PackageInput) -> Result<DistReport> {
    let stem = archive::archive_stem(&input.version, &input.target)?;
    let mut notes = Vec::new();
    let mut entries = Vec::new();

    let binary = std::fs::read(&input.binary)
        .with_context(|| format!("cannot read {}", input.binary.display()))?;
    entries.push(Entry::program(
        archive::binary_file_name(&input.target),
        binary,
    ));
    for name in DOCUMENT_FILES {
        let path = input.root.join(name);
        let contents =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        entries.push(Entry::file(*name, contents));
    }

    if input.runnable {
        check_version(&input.binary, &input.version)?;
        match completions(&input.binary)? {
            Completions::Generated(files) => entries.extend(files),
            Completions::Unsupported(reason) => notes.push(format!(
                "shell completions skipped: this infty has no `completions` subcommand ({reason})"
            )),
        }
    } else {
        notes.push(format!(
            "version check and shell completions skipped: a binary for {} does not run here",
            input.target
        ));
    }

    let packed = archive::pack(&input.out_dir, &stem, &entries, archive::entry_mtime())?;
    archive::verify_checksum_file(&packed.checksum_file)?;
    let contents = archive::list(&packed.archive)?;
    Ok(DistReport {
        packed,
        contents,
        notes,
    })
}

/// Runs `<binary> --version` and insists it names the workspace version.
pub fn check_version(binary: &Path, version: &str) -> Result<()> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !version_line_matches(&stdout, version) {
        bail!(
            "{} --version printed {:?}, expected \"infty {version}\"",
            binary.display(),
            stdout.trim()
        );
    }
    Ok(())
}

/// True when `line` is exactly `infty <version>` (one line, surrounding blanks ignored).
pub fn version_line_matches(line: &str, version: &str) -> bool {
    line.trim() == format!("{} {version}", archive::BINARY_NAME)
}

/// The completions a binary gave, or why it gave none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completions {
    /// One archive entry per shell, under `completions/`.
    Generated(Vec<Entry>),
    /// The binary predates the `completions` subcommand; the reason is its own message.
    Unsupported(String),
}

/// Asks the binary for each shell's completions (`infty completions <shell>`). A binary
/// without the subcommand yields [`Completions::Unsupported`]; one that has it but fails
/// is an error, so a broken subcommand never ships silently without completions.
pub fn completions(binary: &Path) -> Result<Completions> {
    let mut files = Vec::new();
    for (shell, file_name) in COMPLETION_FILES {
        let output = Command::new(binary)
            .args(["completions", shell])
            .output()
            .with_context(|| format!("cannot run {} completions {shell}", binary.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let first_line = stderr.lines().next().unwrap_or_default().trim().to_owned();
            if files.is_empty() && subcommand_is_unknown(&stderr) {
                return Ok(Completions::Unsupported(first_line));
            }
            bail!(
                "{} completions {shell} failed ({}): {first_line}",
                binary.display(),
                output.status
            );
        }
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            bail!("{} completions {shell} printed nothing", binary.display());
        }
        files.push(Entry::file(
            format!("completions/{file_name}"),
            output.stdout,
        ));
    }
    Ok(Completions::Generated(files))
}

/// clap's words for an argv whose subcommand it does not know.
fn subcommand_is_unknown(stderr: &str) -> bool {
    [
        "unrecognized subcommand",
        "unexpected argument 'completions'",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_must_name_infty_and_the_version() {
        let cases = [
            ("infty 0.1.0\n", "0.1.0", true),
            ("infty 0.1.0", "0.1.0", true),
            ("  infty 0.1.0  \n", "0.1.0", true),
            ("infty 0.1.1\n", "0.1.0", false),
            ("infty-cli 0.1.0\n", "0.1.0", false),
            ("infty 0.1.0-dev\n", "0.1.0", false),
            ("", "0.1.0", false),
        ];
        for (line, version, ok) in cases {
            assert_eq!(
                version_line_matches(line, version),
                ok,
                "{line:?} vs {version}"
            );
        }
    }

    #[test]
    fn unknown_subcommand_is_told_apart_from_other_failures() {
        let cases = [
            ("error: unrecognized subcommand 'completions'\n", true),
            ("error: unexpected argument 'completions' found\n", true),
            ("error: invalid value 'bash' for '<SHELL>'\n", false),
            ("", false),
        ];
        for (stderr, unknown) in cases {
            assert_eq!(subcommand_is_unknown(stderr), unknown, "{stderr:?}");
        }
    }
}
