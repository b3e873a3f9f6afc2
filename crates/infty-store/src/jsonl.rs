//! JSON-lines files: one JSON value per line, appended, read back as a stream.
//!
//! The torn-tail rule lives here: a crash mid-append leaves a last line without its
//! newline; readers skip it when it does not parse and writers cut it off before appending.
//! Damage anywhere else is reported with its line number. This module must never load a
//! whole file into memory to read it, and never append after a torn line.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::StoreError;
use crate::durable::DurableWrite;
use crate::seal::{RecordKey, Seal, unsealed};

/// Appends one JSON value per line. Each append is a single write of the whole line,
/// rolled back if it fails part-way, so the file never holds a torn line in the middle.
///
/// Append objects or arrays: a cut-off object never parses, so a torn line is always
/// recognised, whereas a number cut short (`12` of `123`) would still be valid JSON.
#[derive(Debug)]
pub struct JsonlWriter<W = File> {
    path: Utf8PathBuf,
    writer: W,
    len: u64,
    broken: bool,
    /// The hash chain, when the run's record is sealed (see [`crate::seal`]).
    seal: Option<Seal>,
}

impl JsonlWriter<File> {
    /// Opens `path` for append, creating it, after cutting off a torn last line. Lines are
    /// written unsealed; the run folder's files use [`JsonlWriter::open_sealed`].
    pub fn open(path: &Utf8Path) -> Result<Self, StoreError> {
        let (file, tail) = open_repaired(path)?;
        Ok(JsonlWriter::from_writer(path, file, tail.len))
    }

    /// [`JsonlWriter::open`] with every line sealed under `key`, chained on from the last
    /// line; `seed` is the file's name in the run folder (`rollouts/solver.jsonl`).
    pub fn open_sealed(path: &Utf8Path, key: RecordKey, seed: &str) -> Result<Self, StoreError> {
        Ok(JsonlWriter::open_sealed_at_tail(path, key, seed)?.0)
    }

    /// [`JsonlWriter::open_sealed`], also returning what the repair found at the end.
    pub(crate) fn open_sealed_at_tail(
        path: &Utf8Path,
        key: RecordKey,
        seed: &str,
    ) -> Result<(Self, Tail), StoreError> {
        let (file, tail) = open_repaired(path)?;
        let mut writer = JsonlWriter::from_writer(path, file, tail.len);
        writer.seal = Some(Seal::resume(key, seed, tail.last_line.as_deref()));
        Ok((writer, tail))
    }
}

impl<W: DurableWrite> JsonlWriter<W> {
    /// Wraps an already positioned writer whose output is `len` bytes long; `path` names
    /// the file in errors. Tests use this to inject a writer that fails.
    pub fn from_writer(path: &Utf8Path, writer: W, len: u64) -> Self {
        JsonlWriter {
            path: path.to_owned(),
            writer,
            len,
            broken: false,
            seal: None,
        }
    }

    /// The same writer sealing its lines under `key` from the start of an empty file, for
    /// tests that inject a failing writer.
    pub fn sealed_from_start(mut self, key: RecordKey, seed: &str) -> Self {
        self.seal = Some(Seal::resume(key, seed, None));
        self
    }

    /// Whether lines are sealed.
    pub fn is_sealed(&self) -> bool {
        self.seal.is_some()
    }

    /// Appends `item` as one line and flushes it to the operating system.
    pub fn append<T: Serialize>(&mut self, item: &T) -> Result<(), StoreError> {
        let line = serde_json::to_vec(item).map_err(|e| StoreError::Unserializable {
            what: "an item",
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        self.append_record(line, "an item")
    }

    /// Appends one serialized record (no newline), sealing it when the file is sealed.
    pub(crate) fn append_record(
        &mut self,
        mut body: Vec<u8>,
        what: &'static str,
    ) -> Result<(), StoreError> {
        match &self.seal {
            None => {
                body.push(b'\n');
                self.append_line(&body)
            }
            Some(seal) => {
                let (line, tag) =
                    seal.seal(&body)
                        .map_err(|reason| StoreError::Unserializable {
                            what,
                            path: self.path.clone(),
                            reason,
                        })?;
                self.append_line(&line)?;
                if let Some(seal) = &mut self.seal {
                    seal.advance(tag);
                }
                Ok(())
            }
        }
    }

    /// Forces everything appended so far to stable storage.
    pub fn sync(&mut self) -> Result<(), StoreError> {
        self.writer
            .sync_to_disk()
            .map_err(|e| StoreError::io("sync", &self.path, e))
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Bytes in the file, counting only complete lines.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wrapped writer, for tests that inspect what reached it.
    pub fn get_ref(&self) -> &W {
        &self.writer
    }

    /// Writes a complete line (ending in `\n`); on failure, cuts the file back so that
    /// everything written before stays intact and nothing half-written remains.
    fn append_line(&mut self, line: &[u8]) -> Result<(), StoreError> {
        if self.broken {
            return Err(StoreError::WriterBroken {
                path: self.path.clone(),
            });
        }
        let written = self
            .writer
            .write_all(line)
            .and_then(|()| self.writer.flush());
        match written {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                if self.writer.truncate_to(self.len).is_err() {
                    self.broken = true;
                }
                Err(StoreError::io("append to", &self.path, e))
            }
        }
    }
}

/// What [`open_repaired`] found at the end of a file.
pub(crate) struct Tail {
    /// Length after the repair.
    pub(crate) len: u64,
    /// The last complete line, without its newline.
    pub(crate) last_line: Option<Vec<u8>>,
}

/// Opens `path` for append (creating it) and makes it end on a line boundary: a torn last
/// line that parses gets its newline, one that does not is cut off. Reads only the end of
/// the file, so opening a gigabyte journal is as quick as opening an empty one.
pub(crate) fn open_repaired(path: &Utf8Path) -> Result<(File, Tail), StoreError> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| StoreError::io("open", path, e))?;
    let tail = repair_tail(&mut file).map_err(|e| StoreError::io("repair", path, e))?;
    Ok((file, tail))
}

fn repair_tail(file: &mut File) -> io::Result<Tail> {
    let mut len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail {
            len,
            last_line: None,
        });
    }
    if read_range(file, len - 1, len)? != b"\n" {
        let start = find_last_newline(file, len)?.map_or(0, |p| p + 1);
        let torn = read_range(file, start, len)?;
        if serde_json::from_slice::<IgnoredAny>(&torn).is_ok() {
            // A complete record whose newline never made it: keep it.
            file.write_all(b"\n")?;
            len += 1;
        } else {
            file.set_len(start)?;
            len = start;
        }
        file.sync_data()?;
    }
    if len == 0 {
        return Ok(Tail {
            len,
            last_line: None,
        });
    }
    let start = find_last_newline(file, len - 1)?.map_or(0, |p| p + 1);
    let last_line = read_range(file, start, len - 1)?;
    Ok(Tail {
        len,
        last_line: Some(last_line),
    })
}

fn read_range(file: &mut File, start: u64, end: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(end - start).unwrap_or(usize::MAX)];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

/// Position of the last `\n` before `end`, scanning backwards in blocks.
fn find_last_newline(file: &mut File, end: u64) -> io::Result<Option<u64>> {
    const BLOCK: u64 = 64 * 1024;
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(BLOCK);
        let block = read_range(file, lo, hi)?;
        if let Some(i) = block.iter().rposition(|&b| b == b'\n') {
            return Ok(Some(lo + i as u64));
        }
        hi = lo;
    }
    Ok(None)
}

/// Counts lines up to `offset`, to name the line of damage found by a backwards scan.
pub(crate) fn line_number_at(path: &Utf8Path, offset: u64) -> Result<u64, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io("read", path, e))?;
    let mut reader = BufReader::new(file.take(offset));
    let mut count = 1;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| StoreError::io("read", path, e))?;
        if buf.is_empty() {
            return Ok(count);
        }
        count += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buf.len();
        reader.consume(n);
    }
}

/// One raw line from a JSON-lines file.
pub(crate) enum RawLine<'a> {
    /// Ends in a newline: it must parse.
    Complete(&'a [u8]),
    /// The file's last bytes, with no newline: may be torn.
    Unterminated(&'a [u8]),
}

/// Splits a file into lines without holding more than one line in memory.
pub(crate) struct Lines {
    path: Utf8PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    /// 1-based number of the line last returned.
    line: u64,
    /// Complete (newline-terminated) lines read, counting those before the start.
    complete: u64,
    /// Bytes before the first line not yet fully read (past the last complete line).
    offset: u64,
    done: bool,
}

impl Lines {
    /// Opens `path` at byte `offset` (a line boundary), where line `line + 1` starts.
    pub(crate) fn open_at(
        path: &Utf8Path,
        offset: u64,
        line: u64,
    ) -> Result<Option<Lines>, StoreError> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", path, e)),
        };
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| StoreError::io("read", path, e))?;
        }
        Ok(Some(Lines {
            path: path.to_owned(),
            reader: BufReader::with_capacity(64 * 1024, file),
            buf: Vec::new(),
            line,
            complete: line,
            offset,
            done: false,
        }))
    }

    pub(crate) fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// 1-based number of the line last returned.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    pub(crate) fn complete_lines(&self) -> u64 {
        self.complete
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn corrupt(&mut self, reason: impl Into<String>) -> StoreError {
        self.done = true;
        StoreError::Corrupt {
            path: self.path.clone(),
            line: self.line,
            reason: reason.into(),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.done = true;
    }

    pub(crate) fn next_line(&mut self) -> Option<Result<RawLine<'_>, StoreError>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        match self.reader.read_until(b'\n', &mut self.buf) {
            Ok(0) => {
                self.done = true;
                None
            }
            Ok(n) => {
                self.line += 1;
                if self.buf.last() == Some(&b'\n') {
                    self.offset += n as u64;
                    self.complete += 1;
                    self.buf.pop();
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                    Some(Ok(RawLine::Complete(&self.buf)))
                } else {
                    self.done = true;
                    Some(Ok(RawLine::Unterminated(&self.buf)))
                }
            }
            Err(e) => {
                self.done = true;
                Some(Err(StoreError::io("read", &self.path, e)))
            }
        }
    }
}

/// Streams the values of a JSON-lines file, oldest first. A torn last line is skipped;
/// any other line that does not parse ends the stream with [`StoreError::Corrupt`].
pub struct JsonlReader<T> {
    lines: Option<Lines>,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonlReader<T> {
    /// Opens `path`; a missing file reads as empty.
    pub fn open(path: &Utf8Path) -> Result<Self, StoreError> {
        Ok(JsonlReader {
            lines: Lines::open_at(path, 0, 0)?,
            item: PhantomData,
        })
    }
}

impl<T: DeserializeOwned> Iterator for JsonlReader<T> {
    type Item = Result<T, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let lines = self.lines.as_mut()?;
        let parsed = match lines.next_line()? {
            Err(e) => return Some(Err(e)),
            Ok(RawLine::Complete(bytes)) => {
                if bytes.is_empty() {
                    Err("empty line".to_owned())
                } else {
                    serde_json::from_slice::<T>(&unsealed(bytes)).map_err(|e| e.to_string())
                }
            }
            Ok(RawLine::Unterminated(bytes)) => match serde_json::from_slice::<T>(&unsealed(bytes))
            {
                Ok(item) => Ok(item),
                // Torn by a crash mid-append: the record never finished, so it never was.
                Err(_) => {
                    lines.finish();
                    return None;
                }
            },
        };
        Some(parsed.map_err(|reason| lines.corrupt(reason)))
    }
}

/// Reads every value of a JSON-lines file (a rollout) into memory, oldest first; a missing
/// file is empty. Same torn-tail rule as [`JsonlReader`].
pub fn read_jsonl<T: DeserializeOwned>(path: &Utf8Path) -> Result<Vec<T>, StoreError> {
    JsonlReader::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::durable::tests::FullDisk;

    fn utf8_tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, path)
    }

    /// Writes `content`, opens it for append (repairing it), and returns what is left.
    fn repaired(content: &str) -> (String, Option<String>) {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("f.jsonl");
        fs::write(&path, content).unwrap();
        let (_, tail) = open_repaired(&path).unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(tail.len, after.len() as u64);
        (after, tail.last_line.map(|l| String::from_utf8(l).unwrap()))
    }

    #[test]
    fn tail_repair() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("", "", None),
            ("1\n", "1\n", Some("1")),
            ("1\n2\n", "1\n2\n", Some("2")),
            ("1\n{\"a\":", "1\n", Some("1")),
            ("{\"a\":", "", None),
            ("1\n{\"a\":2}", "1\n{\"a\":2}\n", Some("{\"a\":2}")),
            ("\"x\"\n\"unterminated", "\"x\"\n", Some("\"x\"")),
            ("1\n\0\0\0\0", "1\n", Some("1")),
        ];
        for (before, after, last) in cases {
            let (got, got_last) = repaired(before);
            assert_eq!(&got, after, "{before:?}");
            assert_eq!(got_last.as_deref(), *last, "{before:?}");
        }
    }

    #[test]
    fn tail_repair_across_blocks() {
        let long = format!("\"{}\"", "x".repeat(200_000));
        let content = format!("1\n{long}\n{{\"torn\":");
        let (after, last) = repaired(&content);
        assert_eq!(after, format!("1\n{long}\n"));
        assert_eq!(last.unwrap(), long);
    }

    fn read_all(content: &str) -> Result<Vec<serde_json::Value>, String> {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("f.jsonl");
        fs::write(&path, content).unwrap();
        read_jsonl(&path).map_err(|e| e.to_string().replace(path.as_str(), "<file>"))
    }

    #[test]
    fn reader_rules() {
        use serde_json::json;
        let cases: &[(&str, Result<Vec<serde_json::Value>, &str>)] = &[
            ("", Ok(vec![])),
            ("1\n2\n", Ok(vec![json!(1), json!(2)])),
            ("1\n2", Ok(vec![json!(1), json!(2)])),
            ("1\r\n2\r\n", Ok(vec![json!(1), json!(2)])),
            ("1\n{\"a\":", Ok(vec![json!(1)])),
            (
                "1\n{\"a\":\n2\n",
                Err("<file> is corrupt at line 2: EOF while parsing a value at line 1 column 5"),
            ),
            ("1\n\n2\n", Err("<file> is corrupt at line 2: empty line")),
            (
                "garbage\n",
                Err("<file> is corrupt at line 1: expected value at line 1 column 1"),
            ),
        ];
        for (content, expected) in cases {
            let expected = expected.clone().map_err(str::to_owned);
            assert_eq!(read_all(content), expected, "{content:?}");
        }
    }

    #[test]
    fn missing_file_reads_empty() {
        let (_guard, dir) = utf8_tempdir();
        assert!(
            read_jsonl::<u32>(&dir.join("nope.jsonl"))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_failed_append_is_rolled_back() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("f.jsonl");
        let (file, tail) = open_repaired(&path).unwrap();
        let mut writer = JsonlWriter::from_writer(
            &path,
            FullDisk {
                inner: file,
                room: 20,
            },
            tail.len,
        );
        writer.append(&"first").unwrap();
        let err = writer.append(&"second item that does not fit").unwrap_err();
        assert_eq!(err.to_string(), format!("cannot append to {path}"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "\"first\"\n");
        assert_eq!(writer.len(), 8);
        assert_eq!(read_jsonl::<String>(&path).unwrap(), ["first"]);
    }
}
