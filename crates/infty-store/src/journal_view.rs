//! Reading a journal for people watching it: following its tail while another process
//! appends (`infty logs --follow`, the web dashboard's live timeline) and paging it
//! backwards, newest first (the dashboard's timeline), one bounded page at a time.
//!
//! Both only read complete lines: a last line still missing its newline may be being
//! written, so it waits for the next read and is never shown torn or twice. A line that does
//! not parse is handed over with its reason instead of ending the read: a viewer shows it and
//! goes on. This module must never write, lock, or hold a whole journal in memory.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use camino::{Utf8Path, Utf8PathBuf};
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::journal::{JournalCursor, JournalEntry, parse_entry};
use crate::jsonl::{Lines, RawLine, line_number_at};

/// One complete journal line, as written and as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalLine<E> {
    /// Byte offset where the line starts: pass it as `before` to page past it.
    pub offset: u64,
    /// The line as it is on disk, without its newline.
    pub text: String,
    /// The parsed event, or why it does not parse.
    pub entry: Result<JournalEntry<E>, String>,
}

impl<E: DeserializeOwned> JournalLine<E> {
    fn parse(offset: u64, bytes: &[u8]) -> JournalLine<E> {
        JournalLine {
            offset,
            text: String::from_utf8_lossy(bytes).into_owned(),
            entry: parse_entry::<E>(bytes),
        }
    }
}

/// Follows a journal's tail: each [`JournalTail::read_new`] returns the complete lines
/// appended since the previous one. A missing journal reads as empty until it appears.
#[derive(Debug, Clone)]
pub struct JournalTail {
    path: Utf8PathBuf,
    cursor: JournalCursor,
}

impl JournalTail {
    /// Follows `path` from its first line.
    pub fn new(path: impl Into<Utf8PathBuf>) -> JournalTail {
        JournalTail::at(path, JournalCursor::default())
    }

    /// Follows `path` from `cursor` (a line boundary returned by an earlier read).
    pub fn at(path: impl Into<Utf8PathBuf>, cursor: JournalCursor) -> JournalTail {
        JournalTail {
            path: path.into(),
            cursor,
        }
    }

    /// Follows `path` from just after its last complete line: only what comes next.
    pub fn at_end(path: impl Into<Utf8PathBuf>) -> Result<JournalTail, StoreError> {
        let path = path.into();
        let cursor = end_cursor(&path)?;
        Ok(JournalTail::at(path, cursor))
    }

    /// The journal followed.
    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Just past the last complete line returned so far.
    pub fn cursor(&self) -> JournalCursor {
        self.cursor
    }

    /// The complete lines appended since the last call, oldest first, at most `max` of them
    /// (call again for the rest). Blank lines are skipped.
    pub fn read_new<E: DeserializeOwned>(
        &mut self,
        max: usize,
    ) -> Result<Vec<JournalLine<E>>, StoreError> {
        let Some(mut lines) = Lines::open_at(&self.path, self.cursor.offset, self.cursor.line)?
        else {
            return Ok(Vec::new());
        };
        let mut read = Vec::new();
        while read.len() < max {
            let start = lines.offset();
            match lines.next_line() {
                None | Some(Ok(RawLine::Unterminated(_))) => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(RawLine::Complete(bytes))) => {
                    if !bytes.iter().all(u8::is_ascii_whitespace) {
                        let line = JournalLine::<E>::parse(start, bytes);
                        if let Ok(entry) = &line.entry {
                            self.cursor.last_seq = entry.seq;
                        }
                        read.push(line);
                    }
                    self.cursor.offset = lines.offset();
                    self.cursor.line = lines.complete_lines();
                }
            }
        }
        Ok(read)
    }
}

/// The cursor just past the last complete line of `path` (the default for a missing file).
pub fn end_cursor(path: &Utf8Path) -> Result<JournalCursor, StoreError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(JournalCursor::default()),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    let len = file
        .metadata()
        .map_err(|e| StoreError::io("read", path, e))?
        .len();
    let end = complete_end(&mut file, len).map_err(|e| StoreError::io("read", path, e))?;
    let line = line_number_at(path, end)?.saturating_sub(1);
    let last_seq = read_journal_page::<serde::de::IgnoredAny>(path, Some(end), 1)?
        .lines
        .first()
        .and_then(|line| line.entry.as_ref().ok())
        .map_or(0, |entry| entry.seq);
    Ok(JournalCursor {
        offset: end,
        line,
        last_seq,
    })
}

/// One page of a journal, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalPage<E> {
    /// The lines, newest first.
    pub lines: Vec<JournalLine<E>>,
    /// Where the next older page ends (pass it as `before`), `None` at the journal's start.
    pub older: Option<u64>,
}

/// Reads up to `limit` complete lines ending before byte `before` (a line boundary from an
/// earlier page; `None` for the newest lines), newest first. Reads backwards in blocks, so
/// a page costs the same at the end of a huge journal as at its start.
pub fn read_journal_page<E: DeserializeOwned>(
    path: &Utf8Path,
    before: Option<u64>,
    limit: usize,
) -> Result<JournalPage<E>, StoreError> {
    let empty = JournalPage {
        lines: Vec::new(),
        older: None,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(empty),
        Err(e) => return Err(StoreError::io("read", path, e)),
    };
    let io_error = |e| StoreError::io("read", path, e);
    let len = file.metadata().map_err(io_error)?.len();
    let end = complete_end(&mut file, before.unwrap_or(len).min(len)).map_err(io_error)?;
    if limit == 0 || end == 0 {
        return Ok(JournalPage {
            lines: Vec::new(),
            older: (end > 0).then_some(end),
        });
    }
    const BLOCK: u64 = 64 * 1024;
    // Grows backwards from `end` until it holds `limit` whole lines or the file's start.
    let mut lo = end;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Lines fully inside the buffer: every newline but the final one starts a line.
        let whole = buf[..buf.len().saturating_sub(1)]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        if lo == 0 || whole >= limit {
            break;
        }
        let from = lo.saturating_sub(BLOCK);
        let mut block = vec![0; (lo - from) as usize];
        file.seek(SeekFrom::Start(from)).map_err(io_error)?;
        file.read_exact(&mut block).map_err(io_error)?;
        block.extend_from_slice(&buf);
        buf = block;
        lo = from;
    }
    let mut lines = Vec::new();
    let mut stop = buf.len();
    // Walk back over the buffer's lines, newest first.
    let body = &buf[..buf.len().saturating_sub(1)];
    let mut starts = body
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .chain(if lo == 0 { Some(0) } else { None });
    let mut older = None;
    while lines.len() < limit {
        let Some(start) = starts.next() else { break };
        let bytes = &buf[start..stop];
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let offset = lo + start as u64;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            lines.push(JournalLine::parse(offset, bytes));
        }
        older = Some(offset);
        stop = start;
    }
    Ok(JournalPage {
        lines,
        older: older.filter(|&offset| offset > 0),
    })
}

/// The end of the last complete line at or before `end`.
fn complete_end(file: &mut File, end: u64) -> io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut hi = end;
    while hi > 0 {
        let lo = hi.saturating_sub(BLOCK);
        let mut block = vec![0; (hi - lo) as usize];
        file.seek(SeekFrom::Start(lo))?;
        file.read_exact(&mut block)?;
        if let Some(i) = block.iter().rposition(|&b| b == b'\n') {
            return Ok(lo + i as u64 + 1);
        }
        hi = lo;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(seq: u64) -> String {
        format!("{{\"seq\":{seq},\"at\":\"2026-11-24T01:35:12Z\",\"kind\":\"k{seq}\"}}\n")
    }

    fn journal(content: &str) -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("events.jsonl")).unwrap();
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    fn seqs(page: &JournalPage<serde_json::Value>) -> Vec<u64> {
        page.lines
            .iter()
            .map(|l| l.entry.as_ref().unwrap().seq)
            .collect()
    }

    #[test]
    fn pages_walk_back_to_the_start() {
        let content: String = (1..=7).map(line).collect::<String>() + "{\"seq\":8,\"at";
        let (_guard, path) = journal(&content);
        let mut before = None;
        let mut all = Vec::new();
        loop {
            let page = read_journal_page::<serde_json::Value>(&path, before, 3).unwrap();
            all.push(seqs(&page));
            match page.older {
                Some(offset) => before = Some(offset),
                None => break,
            }
        }
        assert_eq!(all, vec![vec![7, 6, 5], vec![4, 3, 2], vec![1]]);
    }

    #[test]
    fn pages_span_blocks_and_skip_blank_lines() {
        let big = format!(
            "{{\"seq\":2,\"at\":\"2026-11-24T01:35:12Z\",\"text\":\"{}\"}}\n",
            "x".repeat(200_000)
        );
        let content = line(1) + "\n" + &big + &line(3);
        let (_guard, path) = journal(&content);
        let page = read_journal_page::<serde_json::Value>(&path, None, 10).unwrap();
        assert_eq!(seqs(&page), vec![3, 2, 1]);
        assert_eq!(page.older, None);
        let page = read_journal_page::<serde_json::Value>(&path, None, 2).unwrap();
        assert_eq!(seqs(&page), vec![3, 2]);
        let older = read_journal_page::<serde_json::Value>(&path, page.older, 2).unwrap();
        assert_eq!(seqs(&older), vec![1]);
    }

    #[test]
    fn a_bad_line_is_reported_in_place() {
        let content = line(1) + "not json\n" + &line(3);
        let (_guard, path) = journal(&content);
        let page = read_journal_page::<serde_json::Value>(&path, None, 10).unwrap();
        assert_eq!(page.lines.len(), 3);
        assert!(page.lines[1].entry.is_err());
        assert_eq!(page.lines[1].text, "not json");
    }

    #[test]
    fn the_tail_returns_each_complete_line_once() {
        let (_guard, path) = journal("");
        let mut tail = JournalTail::new(path.clone());
        let steps: &[(&str, &[u64])] = &[
            ("", &[]),
            ("{\"seq\":1,\"at\":\"2026-11-24T01:35:12Z\"", &[]),
            ("}\n", &[1]),
            ("\n", &[]),
        ];
        for (append, expected) in steps {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            file.write_all(append.as_bytes()).unwrap();
            let got: Vec<u64> = tail
                .read_new::<serde_json::Value>(100)
                .unwrap()
                .iter()
                .map(|l| l.entry.as_ref().unwrap().seq)
                .collect();
            assert_eq!(&got, expected, "after {append:?}");
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all((line(2) + &line(3)).as_bytes())
            .unwrap();
        let first: Vec<_> = tail.read_new::<serde_json::Value>(1).unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(tail.read_new::<serde_json::Value>(10).unwrap().len(), 1);
        assert_eq!(tail.cursor().last_seq, 3);
        assert_eq!(tail.cursor(), end_cursor(&path).unwrap());
        let mut late = JournalTail::at_end(path.clone()).unwrap();
        assert!(late.read_new::<serde_json::Value>(10).unwrap().is_empty());
    }
}
