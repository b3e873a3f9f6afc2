//! events.jsonl: snapshots of journal lines, crash cuts at every byte, injected write
//! failures, and streaming reads.

use std::cell::Cell;
use std::fs;
use std::rc::Rc;

use camino::Utf8Path;
use infty_store::{Journal, JournalEntry, StoreError, read_journal};
use serde::{Deserialize, Serialize};

use crate::{FullDisk, sample_run, scratch, settings};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    RunStarted {
        objective: String,
    },
    RoleMessage {
        role: String,
        text: String,
    },
    DirectionRequest {
        prompt: String,
    },
    VerifierVerdict {
        role: String,
        pass: bool,
        reasons: Vec<String>,
    },
    RunFinished {
        status: String,
    },
}

fn script() -> Vec<Event> {
    vec![
        Event::RunStarted {
            objective: "prove it".into(),
        },
        Event::RoleMessage {
            role: "solver".into(),
            text: "working on \"it\"\nline two ✓".into(),
        },
        Event::DirectionRequest {
            prompt: "which lemma first?".into(),
        },
        Event::VerifierVerdict {
            role: "verifier-1".into(),
            pass: false,
            reasons: vec!["gap in step 2".into()],
        },
        Event::RunFinished {
            status: "succeeded".into(),
        },
    ]
}

fn events(path: &Utf8Path) -> Vec<JournalEntry<Event>> {
    read_journal(path).unwrap().map(Result::unwrap).collect()
}

#[test]
fn journal_lines_snapshot() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let mut journal = store.journal().unwrap();
    for (i, event) in script().iter().enumerate() {
        assert_eq!(journal.append(event, i % 2 == 0).unwrap(), i as u64 + 1);
    }
    let text = fs::read_to_string(store.events_path()).unwrap();
    settings(&s.path).bind(|| insta::assert_snapshot!(text));
    let read: Vec<Event> = events(&store.events_path())
        .into_iter()
        .map(|e| e.event)
        .collect();
    assert_eq!(read, script());
}

/// Writes the script, then for every possible crash point (the file cut after `n` bytes)
/// checks what a reader sees and (for a sample of them) that a reopened journal continues
/// cleanly.
#[test]
fn a_crash_at_any_byte_loses_at_most_the_line_being_written() {
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    for event in script() {
        journal.append(&event, false).unwrap();
    }
    drop(journal);
    let full = fs::read(&path).unwrap();
    let line_ends: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    for cut in 0..=full.len() {
        let cut_path = s.path.join(format!("cut-{cut}.jsonl"));
        fs::write(&cut_path, &full[..cut]).unwrap();
        // Lines complete before the cut, plus one whose newline alone is missing.
        let expected = line_ends.iter().filter(|&&end| end <= cut).count();
        let survivors = events(&cut_path);
        assert_eq!(survivors.len(), expected, "cut at {cut}");
        assert_eq!(
            survivors
                .iter()
                .map(|e| e.event.clone())
                .collect::<Vec<_>>(),
            script()[..expected],
            "cut at {cut}"
        );
        // Reopening repairs with an fsync; a sample of cuts (every boundary case and every
        // 8th byte) keeps the test quick on slow disks.
        let near_boundary = line_ends.iter().any(|&end| cut.abs_diff(end) <= 1);
        if !(near_boundary || cut % 8 == 0) {
            continue;
        }
        let mut reopened = Journal::open(&cut_path).unwrap();
        assert_eq!(reopened.next_seq(), expected as u64 + 1, "cut at {cut}");
        let event = Event::RunFinished {
            status: "interrupted".into(),
        };
        reopened.append(&event, false).unwrap();
        let after = events(&cut_path);
        let seqs: Vec<u64> = after.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=expected as u64 + 1).collect::<Vec<_>>(),
            "cut at {cut}"
        );
    }
}

#[test]
fn damage_before_the_last_line_is_reported_with_its_line() {
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    for event in script() {
        journal.append(&event, false).unwrap();
    }
    let mut lines: Vec<String> = fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines[2].truncate(10);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    let results: Vec<Result<JournalEntry<Event>, StoreError>> =
        read_journal(&path).unwrap().collect();
    assert_eq!(
        results.len(),
        3,
        "two good entries, then the error, then nothing"
    );
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { line: 3, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{path} is corrupt at line 3: EOF while parsing a string at line 1 column 10")
    );
}

#[test]
fn reading_streams_instead_of_loading_the_file() {
    // Garbage after the first lines: a reader that loads everything first would fail
    // before yielding anything; a streaming one hands out the good entries first.
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    for event in script() {
        journal.append(&event, false).unwrap();
    }
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"%%% not json %%%\n").unwrap();
    let first_two: Vec<_> = read_journal::<Event>(&path).unwrap().take(2).collect();
    assert!(first_two.iter().all(Result::is_ok));
    let mut reader = read_journal::<Event>(&path).unwrap();
    assert_eq!(reader.by_ref().filter(Result::is_ok).count(), 5);
}

#[test]
fn a_full_disk_is_reported_and_loses_nothing() {
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let room = Rc::new(Cell::new(150));
    let disk = FullDisk {
        inner: file,
        room: room.clone(),
        truncate_fails: false,
    };
    let mut journal = Journal::from_writer(&path, disk, 0, 1);
    let mut written = 0;
    let err = loop {
        match journal.append(&script()[written % 5], true) {
            Ok(_) => written += 1,
            Err(e) => break e,
        }
    };
    assert!(written >= 1);
    assert_eq!(err.to_string(), format!("cannot append to {path}"));
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "no space left on device");
    // Everything before the failure is intact, and no partial line remains.
    assert_eq!(events(&path).len(), written);
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'));
    assert_eq!(journal.next_seq(), written as u64 + 1);
    // Space comes back: the journal carries on with the number the failed event did not use.
    room.set(10_000);
    assert_eq!(
        journal.append(&script()[0], true).unwrap(),
        written as u64 + 1
    );
    assert_eq!(events(&path).len(), written + 1);
}

#[test]
fn a_failed_rollback_stops_the_writer_until_reopened() {
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    let room = Rc::new(Cell::new(100));
    let disk = FullDisk {
        inner: file,
        room: room.clone(),
        truncate_fails: true,
    };
    let mut journal = Journal::from_writer(&path, disk, 0, 1);
    journal
        .append(&Event::RunFinished { status: "x".into() }, false)
        .unwrap();
    journal.append(&script()[1], false).unwrap_err();
    room.set(10_000);
    let err = journal.append(&script()[0], false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{path} must be reopened: an earlier write failed and could not be rolled back")
    );
    drop(journal);
    // Reopening repairs the torn tail the failed write left.
    let mut journal = Journal::open(&path).unwrap();
    assert_eq!(journal.next_seq(), 2);
    journal.append(&script()[0], false).unwrap();
    assert_eq!(
        events(&path).iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn fixture_journal_with_a_torn_tail() {
    let path = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torn-events.jsonl");
    let read: Vec<(u64, Event)> = events(&path)
        .into_iter()
        .map(|e| (e.seq, e.event))
        .collect();
    assert_eq!(
        read,
        [
            (
                1,
                Event::RunStarted {
                    objective: "fixture".into()
                }
            ),
            (
                2,
                Event::DirectionRequest {
                    prompt: "next?".into()
                }
            ),
        ]
    );
}

#[test]
fn following_a_live_journal_returns_each_event_once() {
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    let all = script();
    let mut seen: Vec<Event> = Vec::new();
    let mut reader = infty_store::read_journal::<Event>(&path).unwrap();
    seen.extend(reader.by_ref().map(|e| e.unwrap().event));
    let mut cursor = reader.cursor();
    assert_eq!(cursor, infty_store::JournalCursor::default());
    for (i, event) in all.iter().enumerate() {
        journal.append(event, false).unwrap();
        if i == 2 {
            // A writer caught mid-line: half a line is on disk, not yet its newline.
            let line = fs::read(&path).unwrap();
            let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
            std::io::Write::write_all(
                &mut file,
                b"{\"seq\":4,\"at\":\"2026-11-24T01:35:12Z\",\"kind\":\"run_finis",
            )
            .unwrap();
            let mut follow = infty_store::read_journal_after::<Event>(&path, cursor).unwrap();
            seen.extend(follow.by_ref().map(|e| e.unwrap().event));
            cursor = follow.cursor();
            assert_eq!(
                cursor.offset,
                line.len() as u64,
                "the partial line is left for later"
            );
            // The writer's crash is repaired by the next Journal::open.
            drop(journal);
            journal = Journal::open(&path).unwrap();
            continue;
        }
        let mut follow = infty_store::read_journal_after::<Event>(&path, cursor).unwrap();
        seen.extend(follow.by_ref().map(|e| e.unwrap().event));
        cursor = follow.cursor();
    }
    assert_eq!(seen, all);
    assert_eq!(cursor.last_seq, 5);
    assert_eq!(cursor.line, 5);
    assert_eq!(cursor.offset, fs::metadata(&path).unwrap().len());
}

#[test]
fn a_cursor_never_counts_an_unterminated_line() {
    // The whole-file reader accepts a last line that lacks only its newline; a follower
    // starting from its cursor must not see that event a second time as a repeated seq.
    let s = scratch();
    let path = s.path.join("events.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    journal.append(&script()[0], false).unwrap();
    let first_len = fs::metadata(&path).unwrap().len();
    journal.append(&script()[1], false).unwrap();
    drop(journal);
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..full.len() - 1]).unwrap();
    let mut reader = read_journal::<Event>(&path).unwrap();
    assert_eq!(reader.by_ref().count(), 2);
    let cursor = reader.cursor();
    assert_eq!(
        (cursor.offset, cursor.line, cursor.last_seq),
        (first_len, 1, 1)
    );
    fs::write(&path, &full).unwrap();
    let rest: Vec<u64> = infty_store::read_journal_after::<Event>(&path, cursor)
        .unwrap()
        .map(|e| e.unwrap().seq)
        .collect();
    assert_eq!(rest, [2]);
}
