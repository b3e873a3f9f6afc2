//! Release archives: how they are named, packed and checksummed, and how to read one back.
//!
//! An archive is `infty-<version>-<target>.tar.gz` with every file under one top folder of
//! the same stem, plus `<archive>.sha256` beside it in the `sha256sum` format, so
//! `sha256sum -c` checks it. Packing is deterministic (fixed order, times, owners and
//! modes): the same inputs give the same bytes.
//!
//! This module never builds anything and never runs programs; it packs the bytes it is given.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

/// The program's name inside every archive.
pub const BINARY_NAME: &str = "infty";

/// `infty-<version>-<target>`: the archive's file stem and its top folder.
pub fn archive_stem(version: &str, target: &str) -> Result<String> {
    check_name_part("version", version)?;
    check_name_part("target triple", target)?;
    Ok(format!("{BINARY_NAME}-{version}-{target}"))
}

/// The archive's file name: the stem and `.tar.gz`.
pub fn archive_file_name(version: &str, target: &str) -> Result<String> {
    Ok(format!("{}.tar.gz", archive_stem(version, target)?))
}

/// The program's file name for a target (`infty.exe` on Windows).
pub fn binary_file_name(target: &str) -> String {
    if target.contains("windows") {
        format!("{BINARY_NAME}.exe")
    } else {
        BINARY_NAME.to_owned()
    }
}

/// Refuses parts that would make the archive name a path or ambiguous.
fn check_name_part(what: &str, value: &str) -> Result<()> {
    let shaped = !value.is_empty()
        && !value.starts_with(['.', '-'])
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if !shaped {
        bail!("{what} {value:?} cannot be part of an archive name");
    }
    Ok(())
}

/// One file to pack: its path under the archive's top folder, its bytes, and whether it
/// is a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the top folder, with `/` separators (`completions/_infty`).
    pub path: String,
    /// The file's contents.
    pub contents: Vec<u8>,
    /// Packed as mode 755 when true, 644 otherwise.
    pub executable: bool,
}

impl Entry {
    /// A regular (non-executable) file.
    pub fn file(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
            executable: false,
        }
    }

    /// A program.
    pub fn program(path: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self {
            executable: true,
            ..Self::file(path, contents)
        }
    }
}

/// What [`pack`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The `.tar.gz` file.
    pub archive: PathBuf,
    /// The `.sha256` file beside it.
    pub checksum_file: PathBuf,
    /// The archive's SHA-256, lowercase hex.
    pub sha256: String,
    /// The archive's size in bytes.
    pub size: u64,
}

/// The modification time stamped on every entry: `SOURCE_DATE_EPOCH` when set (the
/// reproducible-builds convention), else the epoch, so archives do not depend on when
/// they were made.
pub fn entry_mtime() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Packs `entries` under the folder `stem` into `<out_dir>/<stem>.tar.gz` and writes
/// `<stem>.tar.gz.sha256` beside it. Both files appear whole or not at all.
pub fn pack(out_dir: &Path, stem: &str, entries: &[Entry], mtime: u64) -> Result<Packed> {
    check_entries(entries)?;
    let bytes = tar_gz_bytes(stem, entries, mtime)?;
    let sha256 = sha256_hex(&bytes);
    let file_name = format!("{stem}.tar.gz");
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let archive = out_dir.join(&file_name);
    let checksum_file = out_dir.join(format!("{file_name}.sha256"));
    write_whole(&archive, &bytes)?;
    write_whole(
        &checksum_file,
        checksum_line(&sha256, &file_name).as_bytes(),
    )?;
    Ok(Packed {
        archive,
        checksum_file,
        sha256,
        size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
    })
}

/// Entry paths must be relative, plain and unique, or the archive would unpack outside its
/// folder or lose a file.
fn check_entries(entries: &[Entry]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for entry in entries {
        let plain = !entry.path.is_empty()
            && !entry.path.starts_with('/')
            && entry
                .path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !plain {
            bail!(
                "archive entry path {:?} is not a plain relative path",
                entry.path
            );
        }
        if !seen.insert(entry.path.as_str()) {
            bail!("archive entry path {:?} appears twice", entry.path);
        }
    }
    Ok(())
}

/// The gzip-compressed tar stream: the top folder, each entry's parent folders (once, in
/// first-seen order), then the entry.
fn tar_gz_bytes(stem: &str, entries: &[Entry], mtime: u64) -> Result<Vec<u8>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::best());
    let mut builder = tar::Builder::new(encoder);
    let mut folders = vec![String::new()];
    append_folder(&mut builder, &format!("{stem}/"), mtime)?;
    for entry in entries {
        let mut parent = String::new();
        let parts: Vec<&str> = entry.path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            parent.push_str(part);
            parent.push('/');
            if !folders.contains(&parent) {
                folders.push(parent.clone());
                append_folder(&mut builder, &format!("{stem}/{parent}"), mtime)?;
            }
        }
        let mut header = header(tar::EntryType::Regular, mtime);
        header.set_mode(if entry.executable { 0o755 } else { 0o644 });
        header.set_size(u64::try_from(entry.contents.len()).unwrap_or(u64::MAX));
        builder
            .append_data(
                &mut header,
                format!("{stem}/{}", entry.path),
                entry.contents.as_slice(),
            )
            .with_context(|| format!("cannot pack {}", entry.path))?;
    }
    let encoder = builder
        .into_inner()
        .context("cannot finish the tar stream")?;
    encoder.finish().context("cannot finish the gzip stream")
}

fn append_folder<W: Write>(builder: &mut tar::Builder<W>, path: &str, mtime: u64) -> Result<()> {
    let mut header = header(tar::EntryType::Directory, mtime);
    header.set_mode(0o755);
    header.set_size(0);
    builder
        .append_data(&mut header, path, std::io::empty())
        .with_context(|| format!("cannot pack folder {path}"))
}

/// A header with nothing from the machine that packs it: owner root, no names.
fn header(kind: tar::EntryType, mtime: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    header
}

/// Writes a file through a temporary sibling and a rename, so a failure leaves no half file.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("cannot move {} to {}", partial.display(), path.display()))
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// One line in the `sha256sum` format: hash, two spaces, file name.
pub fn checksum_line(sha256: &str, file_name: &str) -> String {
    format!("{sha256}  {file_name}\n")
}

/// Checks a `.sha256` file against the archive named in it (resolved beside the `.sha256`
/// file); returns the archive's path.
pub fn verify_checksum_file(checksum_file: &Path) -> Result<PathBuf> {
    let text = std::fs::read_to_string(checksum_file)
        .with_context(|| format!("cannot read {}", checksum_file.display()))?;
    let Some((expected, file_name)) = text.trim_end_matches('\n').split_once("  ") else {
        bail!("{} is not in the sha256sum format", checksum_file.display());
    };
    let archive = checksum_file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(file_name);
    let bytes =
        std::fs::read(&archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        bail!(
            "{} has sha256 {actual}, but {} says {expected}",
            archive.display(),
            checksum_file.display()
        );
    }
    Ok(archive)
}

/// One entry of an archive as [`list`] reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The path inside the archive; folders end in `/`.
    pub path: String,
    /// Unix permission bits.
    pub mode: u32,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// The contents of regular files (empty for folders).
    pub contents: Vec<u8>,
}

impl Listed {
    /// True for folders.
    pub fn is_folder(&self) -> bool {
        self.path.ends_with('/')
    }
}

/// Reads a `.tar.gz` back, entry by entry, in archive order.
pub fn list(archive: &Path) -> Result<Vec<Listed>> {
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open {}", archive.display()))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    let mut listed = Vec::new();
    for entry in tar
        .entries()
        .with_context(|| format!("cannot read {}", archive.display()))?
    {
        let mut entry = entry.with_context(|| format!("cannot read {}", archive.display()))?;
        let header = entry.header();
        let mode = header.mode().context("entry without a mode")?;
        let size = header.size().context("entry without a size")?;
        let folder = header.entry_type().is_dir();
        let mut path = entry
            .path()
            .context("entry without a path")?
            .to_string_lossy()
            .into_owned();
        if folder && !path.ends_with('/') {
            path.push('/');
        }
        let mut contents = Vec::new();
        entry
            .read_to_end(&mut contents)
            .with_context(|| format!("cannot read {path} in {}", archive.display()))?;
        listed.push(Listed {
            path,
            mode,
            size,
            contents,
        });
    }
    Ok(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_the_standard_vectors() {
        let cases = [
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(sha256_hex(input.as_bytes()), expected, "sha256({input:?})");
        }
    }

    #[test]
    fn entry_paths_must_be_plain_and_unique() {
        let cases = [
            ("infty", true),
            ("completions/_infty", true),
            ("", false),
            ("/etc/passwd", false),
            ("../infty", false),
            ("a/./b", false),
            ("a//b", false),
            ("a/", false),
        ];
        for (path, ok) in cases {
            assert_eq!(
                check_entries(&[Entry::file(path, "x")]).is_ok(),
                ok,
                "{path:?}"
            );
        }
        let twice = [Entry::file("README.md", "a"), Entry::file("README.md", "b")];
        assert!(check_entries(&twice).is_err());
    }
}
