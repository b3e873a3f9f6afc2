//! The sealed record: every line of `events.jsonl` and of each rollout carries a keyed hash
//! chain, so a line that was edited, inserted, removed or moved is told apart from a torn
//! last line (which a crash leaves, and which stays tolerated).
//!
//! A sealed line is the record's own JSON object with one more key, last: `"mac"`, the
//! HMAC-SHA256 (hex) of the previous line's tag followed by the line without its `mac`. The
//! first line of a file chains from a start tag derived from the file's name inside the run
//! folder, so lines cannot be moved between files either. The key is made per run and kept
//! outside the run folder, in the runs root's private `.keys/` folder: a tool that can
//! write the run folder but not read that folder cannot compute a valid seal.
//!
//! Old runs have no key: their lines are read as they are ("unsealed"). A run with a key has
//! every line sealed. This module must never write a key into a run folder, never log or
//! print a key, and never accept a sealed line it could not check.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};

use camino::{Utf8Path, Utf8PathBuf};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::StoreError;
use crate::durable::{parent_dir, sync_dir, temp_name};
use crate::jsonl::{Lines, RawLine};

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a tag.
const TAG_LEN: usize = 32;
/// `"mac":"` + 64 hex digits + `"}`: how a sealed line ends.
const SUFFIX_LEN: usize = 7 + 2 * TAG_LEN + 2;
/// The folder of the runs root that holds the runs' keys.
pub const KEYS_DIR: &str = ".keys";
/// The key that carries a line's seal; no record may use it itself.
pub const SEAL_KEY: &str = "mac";

/// A run's sealing key: 32 random bytes, never shown.
#[derive(Clone)]
pub struct RecordKey {
    mac: HmacSha256,
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordKey(..)")
    }
}

impl RecordKey {
    fn from_bytes(bytes: &[u8]) -> Option<RecordKey> {
        (bytes.len() == TAG_LEN)
            .then(|| HmacSha256::new_from_slice(bytes).ok())
            .flatten()
            .map(|mac| RecordKey { mac })
    }

    /// The key file of the run folder `run_dir`: `<runs_root>/.keys/<run folder name>`.
    pub fn path_for(run_dir: &Utf8Path) -> Utf8PathBuf {
        let name = run_dir.file_name().unwrap_or("run");
        parent_dir(run_dir)
            .join(KEYS_DIR)
            .join(format!("{name}.key"))
    }

    /// Loads the key of `run_dir`; `None` when the run has none (an older run).
    pub fn load(run_dir: &Utf8Path) -> Result<Option<RecordKey>, StoreError> {
        let path = RecordKey::path_for(run_dir);
        match fs::read(&path) {
            Ok(bytes) => RecordKey::from_bytes(&bytes).map(Some).ok_or_else(|| {
                StoreError::io(
                    "use the record key",
                    &path,
                    io::Error::other("it is not 32 bytes long"),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io("read", &path, e)),
        }
    }

    /// Loads the key of `run_dir`, making one (random, readable by its owner only) if it has
    /// none. Only a run's creator or its lock holder calls this.
    pub fn load_or_create(run_dir: &Utf8Path) -> Result<RecordKey, StoreError> {
        if let Some(key) = RecordKey::load(run_dir)? {
            return Ok(key);
        }
        let path = RecordKey::path_for(run_dir);
        let dir = parent_dir(&path);
        create_private_dir(dir)?;
        let mut bytes = [0_u8; TAG_LEN];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| StoreError::io("make a key for", &path, e.into()))?;
        let temp = dir.join(temp_name(path.file_name().unwrap_or("key")));
        let written = (|| {
            let mut file = private_file(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            // A hard link refuses to replace: two creators cannot end up with two keys.
            match fs::hard_link(&temp, &path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                Err(e) => Err(e),
            }
        })();
        let _ = fs::remove_file(&temp);
        written.map_err(|e| StoreError::io("write", &path, e))?;
        sync_dir(dir)?;
        RecordKey::load(run_dir)?
            .ok_or_else(|| StoreError::io("read", &path, io::Error::from(io::ErrorKind::NotFound)))
    }

    fn tag(&self, prev: &[u8; TAG_LEN], body: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.mac.clone();
        mac.update(prev);
        mac.update(body);
        mac.finalize().into_bytes().into()
    }

    /// The tag the first line of the file `seed` (its name in the run folder) chains from.
    fn start(&self, seed: &str) -> [u8; TAG_LEN] {
        self.tag(&[0; TAG_LEN], format!("infty-record-1\0{seed}").as_bytes())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Utf8Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) => Err(StoreError::io("create folder", dir, e)),
    }
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Utf8Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|e| StoreError::io("create folder", dir, e))
}

fn private_file(path: &Utf8Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The chain state of a file being appended to.
#[derive(Clone, Debug)]
pub(crate) struct Seal {
    key: RecordKey,
    prev: [u8; TAG_LEN],
}

impl Seal {
    /// A chain for the file `seed` whose last line is `last_line` (`None` when empty).
    pub(crate) fn resume(key: RecordKey, seed: &str, last_line: Option<&[u8]>) -> Seal {
        let prev = last_line
            .and_then(split)
            .map_or_else(|| key.start(seed), |(_, tag)| tag);
        Seal { key, prev }
    }

    /// `body` (a JSON object, no newline) sealed, with its newline, and the tag to
    /// [`Seal::advance`] to once the line is written.
    pub(crate) fn seal(&self, body: &[u8]) -> Result<(Vec<u8>, [u8; TAG_LEN]), String> {
        if body.first() != Some(&b'{') || body.last() != Some(&b'}') {
            return Err("a sealed record must be a JSON object".to_owned());
        }
        if split(body).is_some() {
            return Err(format!("its key `{SEAL_KEY}` is reserved for the seal"));
        }
        let tag = self.key.tag(&self.prev, body);
        let mut line = Vec::with_capacity(body.len() + SUFFIX_LEN + 2);
        line.extend_from_slice(&body[..body.len() - 1]);
        if body.len() > 2 {
            line.push(b',');
        }
        line.extend_from_slice(b"\"mac\":\"");
        push_hex(&mut line, &tag);
        line.extend_from_slice(b"\"}\n");
        Ok((line, tag))
    }

    pub(crate) fn advance(&mut self, tag: [u8; TAG_LEN]) {
        self.prev = tag;
    }
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0x0f)]);
    }
}

fn parse_hex(hex: &[u8]) -> Option<[u8; TAG_LEN]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0_u8; TAG_LEN];
    if hex.len() != 2 * TAG_LEN {
        return None;
    }
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Splits a sealed line into the line as it was before sealing and its tag; `None` when
/// the line carries no seal.
pub(crate) fn split(line: &[u8]) -> Option<(Vec<u8>, [u8; TAG_LEN])> {
    let n = line.len();
    if n < SUFFIX_LEN + 1 || !line.ends_with(b"\"}") {
        return None;
    }
    let suffix = &line[n - SUFFIX_LEN..];
    if !suffix.starts_with(b"\"mac\":\"") {
        return None;
    }
    let tag = parse_hex(&suffix[7..7 + 2 * TAG_LEN])?;
    let mut body = match line[n - SUFFIX_LEN - 1] {
        b',' => line[..n - SUFFIX_LEN - 1].to_vec(),
        b'{' if n == SUFFIX_LEN + 1 => b"{".to_vec(),
        _ => return None,
    };
    body.push(b'}');
    Some((body, tag))
}

/// The line without its seal, for readers (which read sealed and unsealed lines alike).
pub(crate) fn unsealed(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match split(line) {
        Some((body, _)) => std::borrow::Cow::Owned(body),
        None => std::borrow::Cow::Borrowed(line),
    }
}

/// What checking one file of the record found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FileState {
    /// Every line's seal is right.
    Sealed,
    /// An older run's file, written before records were sealed: read as it is.
    Unsealed,
    /// A line is not what was written: edited, inserted, removed, moved, or its seal stripped.
    Broken {
        /// 1-based number of the first line found wrong.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// One file of the record and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCheck {
    /// The file, relative to the run folder (`events.jsonl`, `rollouts/solver.jsonl`).
    pub path: Utf8PathBuf,
    /// Complete lines read (up to the broken one, when broken).
    pub lines: u64,
    /// What was found.
    #[serde(flatten)]
    pub state: FileState,
}

/// A line of the record found not to be what was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokenLine {
    /// The file, relative to the run folder.
    pub path: Utf8PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for BrokenLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} line {}: {}", self.path, self.line, self.reason)
    }
}

/// What checking a run's whole record (journal and rollouts) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCheck {
    /// Whether the run has a key (runs made before sealing have none).
    pub keyed: bool,
    /// Each file, the journal first, then the rollouts by name.
    pub files: Vec<FileCheck>,
}

impl RecordCheck {
    /// The first broken line of each broken file.
    pub fn broken(&self) -> Vec<BrokenLine> {
        self.files
            .iter()
            .filter_map(|file| match &file.state {
                FileState::Broken { line, reason } => Some(BrokenLine {
                    path: file.path.clone(),
                    line: *line,
                    reason: reason.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// One word for the whole record: `sealed`, `unsealed` (an older run) or `broken`.
    pub fn summary(&self) -> &'static str {
        if self
            .files
            .iter()
            .any(|f| matches!(f.state, FileState::Broken { .. }))
        {
            "broken"
        } else if self.keyed {
            "sealed"
        } else {
            "unsealed"
        }
    }
}

/// How many lines each file of the record had when the driver last stopped cleanly: kept
/// beside the key, so that lines cut off the end of a file are found too (a chain alone
/// cannot tell a cut-short file from one that was never longer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    /// Complete lines, by file name in the run folder.
    pub(crate) lines: std::collections::BTreeMap<String, u64>,
}

impl Head {
    fn path_for(run_dir: &Utf8Path) -> Utf8PathBuf {
        RecordKey::path_for(run_dir).with_extension("head")
    }

    /// The head of `run_dir`, if one was saved (a missing or unreadable one is none: it only
    /// ever adds a check).
    pub(crate) fn load(run_dir: &Utf8Path) -> Head {
        fs::read(Head::path_for(run_dir))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub(crate) fn save(&self, run_dir: &Utf8Path) -> Result<(), StoreError> {
        let path = Head::path_for(run_dir);
        let bytes = serde_json::to_vec(self).map_err(|e| StoreError::Unserializable {
            what: "the record's head",
            path: path.clone(),
            reason: e.to_string(),
        })?;
        // Nothing is synced: a crash may keep the older head, which still holds (it
        // remembers fewer lines), or leave an unreadable one, which is read as none.
        crate::durable::write_atomic_via(&path, &bytes, crate::folder::Durability::Hint, |file| {
            file
        })
    }
}

/// Marks `check` broken when it has fewer lines than the head remembers.
pub(crate) fn check_head(check: &mut FileCheck, remembered: Option<u64>) {
    if let (FileState::Sealed, Some(lines)) = (&check.state, remembered)
        && check.lines < lines
    {
        check.state = FileState::Broken {
            line: check.lines + 1,
            reason: format!(
                "the file ends after line {} but had {lines} lines when its driver last stopped: lines were removed from its end",
                check.lines
            ),
        };
    }
}

/// Checks the file `path`, named `seed` in the run folder, against `key`.
pub(crate) fn check_file(
    path: &Utf8Path,
    seed: &str,
    key: Option<&RecordKey>,
) -> Result<FileCheck, StoreError> {
    let mut lines = match Lines::open_at(path, 0, 0)? {
        Some(lines) => lines,
        None => {
            return Ok(FileCheck {
                path: seed.into(),
                lines: 0,
                state: if key.is_some() {
                    FileState::Sealed
                } else {
                    FileState::Unsealed
                },
            });
        }
    };
    let mut prev = key.map(|key| key.start(seed));
    let mut count = 0_u64;
    let broken = |line: u64, reason: &str| FileState::Broken {
        line,
        reason: reason.to_owned(),
    };
    let state = loop {
        let (bytes, complete) = match lines.next_line() {
            None => break None,
            Some(Err(e)) => return Err(e),
            Some(Ok(RawLine::Complete(bytes))) => (bytes, true),
            Some(Ok(RawLine::Unterminated(bytes))) => (bytes, false),
        };
        // A torn last line (a crash mid-append) never was a record: readers skip it too.
        if !complete && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
            break None;
        }
        let number = count + 1;
        match (split(bytes), key, prev.as_mut()) {
            (Some(_), None, _) => {
                break Some(broken(
                    number,
                    "it is sealed but the run's key is missing, so it cannot be checked",
                ));
            }
            (Some((body, tag)), Some(key), Some(prev)) => {
                let expected = key.tag(prev, &body);
                if !constant_time_eq(&expected, &tag) {
                    break Some(broken(
                        number,
                        "its seal does not match: the line was edited, inserted or moved, or a line before it was removed",
                    ));
                }
                *prev = tag;
            }
            (None, Some(_), _) => {
                break Some(broken(
                    number,
                    "it has no seal: it was not written by infty's driver",
                ));
            }
            (None, None, _) | (Some(_), Some(_), None) => {}
        }
        count = number;
    };
    Ok(FileCheck {
        path: seed.into(),
        lines: count,
        state: state.unwrap_or(if key.is_some() {
            FileState::Sealed
        } else {
            FileState::Unsealed
        }),
    })
}

fn constant_time_eq(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> bool {
    a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The content of `path` with every line sealed afresh under `key` (seals already there are
/// dropped first). A torn last line is left out.
pub(crate) fn resealed(
    path: &Utf8Path,
    seed: &str,
    key: &RecordKey,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let Some(mut lines) = Lines::open_at(path, 0, 0)? else {
        return Ok(out);
    };
    let mut seal = Seal::resume(key.clone(), seed, None);
    loop {
        let bytes = match lines.next_line() {
            None => break,
            Some(Err(e)) => return Err(e),
            Some(Ok(RawLine::Complete(bytes))) => bytes,
            Some(Ok(RawLine::Unterminated(bytes))) => {
                if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() {
                    break;
                }
                bytes
            }
        };
        let body = unsealed(bytes).into_owned();
        let (line, tag) = seal.seal(&body).map_err(|reason| StoreError::Corrupt {
            path: path.to_owned(),
            line: lines.line(),
            reason,
        })?;
        out.extend_from_slice(&line);
        seal.advance(tag);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RecordKey {
        RecordKey::from_bytes(&[7; 32]).unwrap()
    }

    #[test]
    fn sealing_and_splitting_round_trip() {
        let seal = Seal::resume(key(), "events.jsonl", None);
        for body in [&b"{}"[..], b"{\"a\":1}", b"{\"a\":\"}\"}"] {
            let (line, tag) = seal.seal(body).unwrap();
            assert!(line.ends_with(b"\"}\n"));
            let line = &line[..line.len() - 1];
            serde_json::from_slice::<serde_json::Value>(line).unwrap();
            let (back, back_tag) = split(line).unwrap();
            assert_eq!(back, body);
            assert_eq!(back_tag, tag);
        }
    }

    #[test]
    fn refused_bodies() {
        let seal = Seal::resume(key(), "events.jsonl", None);
        assert!(seal.seal(b"3").is_err());
        let (line, _) = seal.seal(b"{\"a\":1}").unwrap();
        let err = seal.seal(&line[..line.len() - 1]).unwrap_err();
        assert_eq!(err, "its key `mac` is reserved for the seal");
    }

    #[test]
    fn unsealed_lines_split_to_nothing() {
        for line in [&b"{}"[..], b"{\"a\":1}", b"", b"{\"mac\":\"zz\"}"] {
            assert!(split(line).is_none(), "{line:?}");
        }
    }

    #[test]
    fn tags_depend_on_the_file() {
        let a = Seal::resume(key(), "events.jsonl", None);
        let b = Seal::resume(key(), "rollouts/solver.jsonl", None);
        assert_ne!(a.seal(b"{}").unwrap().1, b.seal(b"{}").unwrap().1);
    }
}
