//! The event journal, `events.jsonl`: one event per line, `{"seq":N,"at":RFC3339,...}`.
//!
//! The orchestrator's state on resume is a fold of this file, so the journal must never
//! reorder, renumber or silently drop a recorded event. It never interprets events: any
//! type that serializes to a JSON object can be journaled.

use std::collections::BTreeMap;
use std::fs::File;
use std::marker::PhantomData;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::StoreError;
use crate::durable::DurableWrite;
use crate::jsonl::{self, JsonlWriter, Lines, RawLine};
use crate::seal::{RecordKey, SEAL_KEY, unsealed};

/// Appends events to a journal, numbering them.
#[derive(Debug)]
pub struct Journal<W = File> {
    writer: JsonlWriter<W>,
    next_seq: u64,
}

impl Journal<File> {
    /// Opens the journal at `path` for append (creating it): a torn last line is cut off
    /// first, and numbering continues after the last recorded event.
    pub fn open(path: &Utf8Path) -> Result<Self, StoreError> {
        let (file, tail) = jsonl::open_repaired(path)?;
        let next_seq = next_seq(path, &tail)?;
        Ok(Journal::from_writer(path, file, tail.len, next_seq))
    }

    /// [`Journal::open`] with every event sealed under `key`, chained on from the last line;
    /// `seed` is the file's name in the run folder (`events.jsonl`).
    pub fn open_sealed(path: &Utf8Path, key: RecordKey, seed: &str) -> Result<Self, StoreError> {
        let (writer, tail) = JsonlWriter::open_sealed_at_tail(path, key, seed)?;
        let next_seq = next_seq(path, &tail)?;
        Ok(Journal { writer, next_seq })
    }
}

fn next_seq(path: &Utf8Path, tail: &jsonl::Tail) -> Result<u64, StoreError> {
    Ok({
        match &tail.last_line {
            None => 1,
            Some(line) => match last_seq(line) {
                Ok(seq) => seq.saturating_add(1),
                Err(reason) => {
                    let start = tail.len - 1 - line.len() as u64;
                    return Err(StoreError::Corrupt {
                        path: path.to_owned(),
                        line: jsonl::line_number_at(path, start)?,
                        reason,
                    });
                }
            },
        }
    })
}

fn last_seq(line: &[u8]) -> Result<u64, String> {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    serde_json::from_slice::<SeqOnly>(line)
        .map(|s| s.seq)
        .map_err(|e| format!("last event has no usable seq: {e}"))
}

impl<W: DurableWrite> Journal<W> {
    /// Wraps a writer positioned at the end of `len` bytes of journal whose next event is
    /// numbered `next_seq`. Tests use this to inject a failing writer.
    pub fn from_writer(path: &Utf8Path, writer: W, len: u64, next_seq: u64) -> Self {
        Journal {
            writer: JsonlWriter::from_writer(path, writer, len),
            next_seq,
        }
    }

    /// The same journal sealing its events under `key` from the start of an empty file,
    /// for tests that inject a failing writer.
    pub fn sealed_from_start(self, key: RecordKey, seed: &str) -> Self {
        Journal {
            writer: self.writer.sealed_from_start(key, seed),
            next_seq: self.next_seq,
        }
    }

    /// Whether events are sealed.
    pub fn is_sealed(&self) -> bool {
        self.writer.is_sealed()
    }

    /// Records `event` (which must serialize to a JSON object without `seq` or `at` keys)
    /// stamped with the next number and the current time. With `durable`, the event is on
    /// stable storage before this returns; use it for events a resume depends on.
    /// Returns the event's number. A failed append consumes no number.
    pub fn append<E: Serialize>(&mut self, event: &E, durable: bool) -> Result<u64, StoreError> {
        self.append_at(event, OffsetDateTime::now_utc(), durable)
    }

    /// [`Journal::append`] with the time given, for replays and deterministic tests.
    pub fn append_at<E: Serialize>(
        &mut self,
        event: &E,
        at: OffsetDateTime,
        durable: bool,
    ) -> Result<u64, StoreError> {
        let seq = self.next_seq;
        let line = self.render(seq, at, event)?;
        self.writer.append_record(line, "an event")?;
        self.next_seq += 1;
        if durable {
            self.writer.sync()?;
        }
        Ok(seq)
    }

    /// The number the next event will get (numbers start at 1).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The journal's file.
    pub fn path(&self) -> &Utf8Path {
        self.writer.path()
    }

    /// The wrapped writer, for tests that inspect what reached it.
    pub fn get_ref(&self) -> &W {
        self.writer.get_ref()
    }

    fn render<E: Serialize>(
        &self,
        seq: u64,
        at: OffsetDateTime,
        event: &E,
    ) -> Result<Vec<u8>, StoreError> {
        let refuse = |reason: String| StoreError::Unserializable {
            what: "an event",
            path: self.writer.path().to_owned(),
            reason,
        };
        let body = serde_json::to_vec(event).map_err(|e| refuse(e.to_string()))?;
        // Checked on the serialized form so the event's own field order is kept on disk.
        let keys = serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(&body)
            .map_err(|_| refuse("it does not serialize to a JSON object".to_owned()))?;
        if let Some(key) = ["seq", "at", SEAL_KEY]
            .into_iter()
            .find(|k| keys.contains_key(*k))
        {
            return Err(refuse(format!(
                "its key `{key}` is reserved for the journal"
            )));
        }
        let at = at
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(|e| refuse(format!("its time cannot be formatted: {e}")))?;
        let mut line = format!("{{\"seq\":{seq},\"at\":\"{at}\"").into_bytes();
        if keys.is_empty() {
            line.push(b'}');
        } else {
            line.push(b',');
            line.extend_from_slice(&body[1..]);
        }
        Ok(line)
    }
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry<E> {
    /// Its number, strictly increasing through the journal.
    pub seq: u64,
    /// When it was recorded.
    pub at: OffsetDateTime,
    /// The event itself.
    pub event: E,
}

/// Streams a journal's events, oldest first, one line in memory at a time.
///
/// A torn last line is skipped; any other damage (a line that does not parse, a missing
/// or non-increasing `seq`) ends the stream with [`StoreError::Corrupt`] and its line.
pub struct JournalReader<E> {
    lines: Option<Lines>,
    last_seq: u64,
    /// `seq` of the last complete line, where a [`JournalCursor`] resumes.
    cursor_seq: u64,
    /// Set when following a live journal: a last line without its newline may still be
    /// being written, so it is left for the next read instead of being judged.
    complete_only: bool,
    event: PhantomData<fn() -> E>,
}

/// Where a [`JournalReader`] stopped: pass it to [`read_journal_after`] to read only what
/// was appended since (for `infty logs --follow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JournalCursor {
    /// Byte offset just past the last complete line read.
    pub offset: u64,
    /// Number of that line (0 before the first).
    pub line: u64,
    /// Its `seq` (0 before the first).
    pub last_seq: u64,
}

/// Opens a journal for streaming; a missing journal reads as empty.
pub fn read_journal<E: DeserializeOwned>(path: &Utf8Path) -> Result<JournalReader<E>, StoreError> {
    Ok(JournalReader {
        lines: Lines::open_at(path, 0, 0)?,
        last_seq: 0,
        cursor_seq: 0,
        complete_only: false,
        event: PhantomData,
    })
}

/// Streams the events appended after `cursor`, for following a journal another process
/// is writing. Only complete lines are read: a last line still missing its newline is
/// left for the next call, so no event is returned twice or cut short.
pub fn read_journal_after<E: DeserializeOwned>(
    path: &Utf8Path,
    cursor: JournalCursor,
) -> Result<JournalReader<E>, StoreError> {
    Ok(JournalReader {
        lines: Lines::open_at(path, cursor.offset, cursor.line)?,
        last_seq: cursor.last_seq,
        cursor_seq: cursor.last_seq,
        complete_only: true,
        event: PhantomData,
    })
}

impl<E> JournalReader<E> {
    /// The journal being read, if it exists.
    pub fn path(&self) -> Option<Utf8PathBuf> {
        self.lines.as_ref().map(|l| l.path().to_owned())
    }

    /// Where the reader stands: just past the last complete line it returned. A torn or
    /// unfinished last line is not counted, so following from here picks it up once whole.
    pub fn cursor(&self) -> JournalCursor {
        match &self.lines {
            Some(lines) => JournalCursor {
                offset: lines.offset(),
                line: lines.complete_lines(),
                last_seq: self.cursor_seq,
            },
            None => JournalCursor::default(),
        }
    }
}

impl<E: DeserializeOwned> Iterator for JournalReader<E> {
    type Item = Result<JournalEntry<E>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let lines = self.lines.as_mut()?;
        let mut complete = false;
        let parsed = match lines.next_line()? {
            Err(e) => return Some(Err(e)),
            Ok(RawLine::Complete(bytes)) => {
                complete = true;
                parse_entry::<E>(bytes)
            }
            Ok(RawLine::Unterminated(_)) if self.complete_only => {
                lines.finish();
                return None;
            }
            Ok(RawLine::Unterminated(bytes)) => match parse_entry::<E>(bytes) {
                Ok(entry) => Ok(entry),
                Err(_) => {
                    lines.finish();
                    return None;
                }
            },
        };
        let entry = match parsed {
            Ok(entry) => entry,
            Err(reason) => return Some(Err(lines.corrupt(reason))),
        };
        if entry.seq <= self.last_seq {
            let reason = format!("seq {} does not follow seq {}", entry.seq, self.last_seq);
            return Some(Err(lines.corrupt(reason)));
        }
        self.last_seq = entry.seq;
        if complete {
            self.cursor_seq = entry.seq;
        }
        Some(Ok(entry))
    }
}

pub(crate) fn parse_entry<E: DeserializeOwned>(bytes: &[u8]) -> Result<JournalEntry<E>, String> {
    if bytes.is_empty() {
        return Err("empty line".to_owned());
    }
    let mut map: Map<String, Value> =
        serde_json::from_slice(&unsealed(bytes)).map_err(|e| e.to_string())?;
    let seq = match map.remove("seq") {
        Some(Value::Number(n)) => n.as_u64().ok_or("`seq` is not a positive integer")?,
        Some(_) => return Err("`seq` is not a number".to_owned()),
        None => return Err("missing `seq`".to_owned()),
    };
    let at = match map.remove("at") {
        Some(Value::String(s)) => OffsetDateTime::parse(&s, &Rfc3339)
            .map_err(|e| format!("`at` is not an RFC 3339 time: {e}"))?,
        Some(_) => return Err("`at` is not a string".to_owned()),
        None => return Err("missing `at`".to_owned()),
    };
    let event = E::deserialize(Value::Object(map)).map_err(|e| format!("event: {e}"))?;
    Ok(JournalEntry { seq, at, event })
}

#[cfg(test)]
mod tests {
    use std::fs;

    use serde::Deserialize;
    use time::macros::datetime;

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Ev {
        Started { objective: String },
        Turn { n: u32 },
        Stopped,
    }

    fn utf8_tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
        (dir, path)
    }

    #[test]
    fn lines_keep_field_order_and_times_are_utc() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let at = datetime!(2026-11-24 03:35:12.5 +02:00);
        journal
            .append_at(
                &Ev::Started {
                    objective: "x".into(),
                },
                at,
                true,
            )
            .unwrap();
        journal.append_at(&Ev::Stopped, at, false).unwrap();
        journal
            .append_at(&serde_json::json!({}), at, false)
            .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            concat!(
                "{\"seq\":1,\"at\":\"2026-11-24T01:35:12.5Z\",\"kind\":\"started\",\"objective\":\"x\"}\n",
                "{\"seq\":2,\"at\":\"2026-11-24T01:35:12.5Z\",\"kind\":\"stopped\"}\n",
                "{\"seq\":3,\"at\":\"2026-11-24T01:35:12.5Z\"}\n",
            )
        );
    }

    #[test]
    fn refused_events() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                serde_json::json!(3),
                "it does not serialize to a JSON object",
            ),
            (
                serde_json::json!([1]),
                "it does not serialize to a JSON object",
            ),
            (
                serde_json::json!({"seq": 1}),
                "its key `seq` is reserved for the journal",
            ),
            (
                serde_json::json!({"at": 1}),
                "its key `at` is reserved for the journal",
            ),
        ];
        for (event, reason) in cases {
            let err = journal.append(&event, false).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cannot record an event in {path}: {reason}")
            );
        }
        assert_eq!(journal.next_seq(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
    }

    #[test]
    fn numbering_continues_after_reopen_and_repair() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("events.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        for n in 0..3 {
            journal.append(&Ev::Turn { n }, false).unwrap();
        }
        drop(journal);
        let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"{\"seq\":4,\"at\":\"2026-").unwrap();
        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(journal.next_seq(), 4);
        assert_eq!(journal.append(&Ev::Stopped, true).unwrap(), 4);
        let entries: Vec<_> = read_journal::<Ev>(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert_eq!(entries[3].event, Ev::Stopped);
    }

    fn read_all(content: &str) -> Result<Vec<u64>, String> {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("events.jsonl");
        fs::write(&path, content).unwrap();
        read_journal::<serde_json::Value>(&path)
            .unwrap()
            .map(|r| r.map(|e| e.seq))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string().replace(path.as_str(), "<journal>"))
    }

    #[test]
    fn reader_rules() {
        const A: &str = "\"at\":\"2026-11-24T01:35:12Z\"";
        let ok = |seq: u32| format!("{{\"seq\":{seq},{A},\"kind\":\"k\"}}\n");
        let cases: Vec<(String, Result<Vec<u64>, &str>)> = vec![
            (String::new(), Ok(vec![])),
            (ok(1) + &ok(2), Ok(vec![1, 2])),
            (ok(1) + &ok(5), Ok(vec![1, 5])),
            (ok(1) + ok(2).trim_end(), Ok(vec![1, 2])),
            (ok(1) + "{\"seq\":2,\"a", Ok(vec![1])),
            (
                ok(1) + "{\"seq\":2,\"a\n" + &ok(3),
                Err(
                    "<journal> is corrupt at line 2: EOF while parsing a string at line 1 column 11",
                ),
            ),
            (
                ok(2) + &ok(2),
                Err("<journal> is corrupt at line 2: seq 2 does not follow seq 2"),
            ),
            (
                ok(1) + &format!("{{{A}}}\n"),
                Err("<journal> is corrupt at line 2: missing `seq`"),
            ),
            (
                "{\"seq\":1}\n".to_owned(),
                Err("<journal> is corrupt at line 1: missing `at`"),
            ),
            (
                format!("{{\"seq\":-1,{A}}}\n"),
                Err("<journal> is corrupt at line 1: `seq` is not a positive integer"),
            ),
            (
                "{\"seq\":1,\"at\":\"yesterday\"}\n".to_owned(),
                Err(
                    "<journal> is corrupt at line 1: `at` is not an RFC 3339 time: the 'year' component could not be parsed",
                ),
            ),
        ];
        for (content, expected) in cases {
            let expected = expected.map_err(str::to_owned);
            assert_eq!(read_all(&content), expected, "{content:?}");
        }
    }

    #[test]
    fn a_corrupt_last_line_stops_opening_for_append() {
        let (_guard, dir) = utf8_tempdir();
        let path = dir.join("events.jsonl");
        fs::write(
            &path,
            "{\"seq\":1,\"at\":\"2026-11-24T01:35:12Z\"}\nnot json\n",
        )
        .unwrap();
        let err = Journal::open(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{path} is corrupt at line 2: last event has no usable seq: expected ident at line 1 column 2"
            )
        );
    }
}
