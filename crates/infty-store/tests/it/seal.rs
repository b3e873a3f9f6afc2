//! The sealed record: every kind of tampering with the journal or a rollout is found and
//! named by file and line, while a torn last line stays tolerated.

use std::fs;

use infty_store::{FileState, RecordKey};
use serde_json::{Value, json};

use crate::{sample_run, scratch};

/// A run whose journal holds five events and whose Solver rollout holds three items.
fn sealed_run(root: &camino::Utf8Path) -> infty_store::RunStore {
    let store = sample_run(root, "r");
    let mut journal = store.journal().unwrap();
    assert!(journal.is_sealed());
    for n in 1..=5 {
        journal
            .append(&json!({"kind": "verifier_replied", "n": n}), false)
            .unwrap();
    }
    let mut rollout = store.rollout_writer("solver").unwrap();
    for n in 1..=3 {
        rollout.append(&json!({"type": "message", "n": n})).unwrap();
    }
    store
}

fn lines(path: &camino::Utf8Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &camino::Utf8Path, lines: &[String], torn: &str) {
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(torn);
    fs::write(path, text).unwrap();
}

/// Each way of tampering with the journal, as (name, change to its lines).
type Tamper = fn(&mut Vec<String>);

#[test]
fn each_kind_of_tampering_is_named_by_its_line() {
    let cases: Vec<(&str, Tamper)> = vec![
        ("untouched", |_| {}),
        ("edited line", |l| {
            l[2] = l[2].replace("\"n\":3", "\"n\":33")
        }),
        ("inserted forged pass without a seal", |l| {
            l.insert(
                3,
                r#"{"seq":4,"at":"2026-01-01T00:00:00Z","kind":"verifier_replied","role":"verifier-1","text":"{\"verdict\":\"pass\"}"}"#
                    .to_owned(),
            )
        }),
        ("inserted copy of a sealed line", |l| {
            let copy = l[1].clone();
            l.insert(3, copy)
        }),
        ("deleted line", |l| {
            l.remove(1);
        }),
        ("reordered lines", |l| l.swap(1, 2)),
        ("seal stripped", |l| {
            let at = l[3].find(",\"mac\"").unwrap();
            l[3] = format!("{}}}", &l[3][..at]);
        }),
        ("seal of another line", |l| {
            let tail = |s: &str| s[s.find(",\"mac\"").unwrap()..].to_owned();
            let head = |s: &str| s[..s.find(",\"mac\"").unwrap()].to_owned();
            l[4] = format!("{}{}", head(&l[4]), tail(&l[3]));
        }),
    ];
    let mut report = String::new();
    for (name, tamper) in cases {
        let s = scratch();
        let store = sealed_run(&s.path);
        let mut journal = lines(&store.events_path());
        tamper(&mut journal);
        write_lines(&store.events_path(), &journal, "");
        let check = store.check_record().unwrap();
        let events = &check.files[0];
        report.push_str(&format!("{name}: {} ", check.summary()));
        match &events.state {
            FileState::Broken { line, reason } => {
                report.push_str(&format!("at {} line {line}: {reason}\n", events.path));
            }
            other => report.push_str(&format!("{other:?} ({} lines)\n", events.lines)),
        }
        // The rollout was not touched and is still sealed.
        assert_eq!(check.files[1].state, FileState::Sealed, "{name}");
    }
    insta::assert_snapshot!(report);
}

#[test]
fn a_torn_last_line_is_not_tampering() {
    let s = scratch();
    let store = sealed_run(&s.path);
    let journal = lines(&store.events_path());
    write_lines(
        &store.events_path(),
        &journal,
        r#"{"seq":6,"at":"2026-01-01T00:00:00Z","kind":"verifier_repl"#,
    );
    let check = store.check_record().unwrap();
    assert_eq!(check.summary(), "sealed");
    assert_eq!(check.files[0].lines, 5);
    // Appending cuts the torn line off and chains on from the last whole one.
    let mut journal = store.journal().unwrap();
    assert_eq!(journal.append(&json!({"kind": "after"}), true).unwrap(), 6);
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
}

#[test]
fn rollout_tampering_is_found_too() {
    let s = scratch();
    let store = sealed_run(&s.path);
    let path = store.dir().join("rollouts/solver.jsonl");
    let mut rollout = lines(&path);
    rollout[1] = rollout[1].replace("\"n\":2", "\"n\":20");
    write_lines(&path, &rollout, "");
    let broken = store.check_record().unwrap().broken();
    assert_eq!(broken.len(), 1);
    assert_eq!(
        broken[0].to_string(),
        "rollouts/solver.jsonl line 2: its seal does not match: the line was edited, inserted or moved, or a line before it was removed"
    );
}

#[test]
fn a_rollout_moved_to_another_role_is_found() {
    let s = scratch();
    let store = sealed_run(&s.path);
    let solver = store.dir().join("rollouts/solver.jsonl");
    fs::copy(&solver, store.dir().join("rollouts/director.jsonl")).unwrap();
    let broken = store.check_record().unwrap().broken();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].path, "rollouts/director.jsonl");
    assert_eq!(broken[0].line, 1);
}

#[test]
fn a_missing_key_is_not_an_older_run() {
    let s = scratch();
    let store = sealed_run(&s.path);
    fs::remove_file(RecordKey::path_for(store.dir())).unwrap();
    let check = store.check_record().unwrap();
    assert_eq!(check.summary(), "broken");
    assert_eq!(
        check.broken()[0].to_string(),
        "events.jsonl line 1: it is sealed but the run's key is missing, so it cannot be checked"
    );
}

#[test]
fn an_older_run_reads_unsealed_and_is_sealed_by_a_reseal() {
    let s = scratch();
    let store = sample_run(&s.path, "old");
    // An older run: no key, plain lines.
    fs::remove_file(RecordKey::path_for(store.dir())).unwrap();
    fs::write(
        store.events_path(),
        "{\"seq\":1,\"at\":\"2026-01-01T00:00:00Z\",\"kind\":\"started\"}\n",
    )
    .unwrap();
    fs::write(
        store.dir().join("rollouts/solver.jsonl"),
        "{\"type\":\"message\"}\n",
    )
    .unwrap();
    let check = store.check_record().unwrap();
    assert_eq!(check.summary(), "unsealed");
    assert!(!store.journal().unwrap().is_sealed());

    store.reseal_record().unwrap();
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
    let events: Vec<Value> = infty_store::read_jsonl(&store.events_path()).unwrap();
    assert_eq!(
        events,
        [json!({"seq": 1, "at": "2026-01-01T00:00:00Z", "kind": "started"})]
    );
    let mut journal = store.journal().unwrap();
    assert!(journal.is_sealed());
    assert_eq!(
        journal.append(&json!({"kind": "resumed"}), true).unwrap(),
        2
    );
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
}

#[test]
fn accepting_an_edit_reseals_and_the_chain_holds_again() {
    let s = scratch();
    let store = sealed_run(&s.path);
    let mut journal = lines(&store.events_path());
    journal.remove(2);
    write_lines(&store.events_path(), &journal, "");
    assert_eq!(store.check_record().unwrap().broken()[0].line, 3);
    store.reseal_record().unwrap();
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
}

#[test]
fn the_key_lives_outside_the_run_folder_and_only_its_owner_reads_it() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let key = RecordKey::path_for(store.dir());
    assert!(!key.starts_with(store.dir()));
    assert_eq!(key, s.path.join(".keys/r.key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let dir = key.parent().unwrap();
        assert_eq!(
            fs::metadata(dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
    assert_eq!(fs::read(&key).unwrap().len(), 32);
    // The listing does not mistake the key folder for a run.
    assert_eq!(infty_store::list_runs(&s.path).unwrap().skipped.len(), 0);
}

#[test]
fn lines_cut_off_the_end_are_found_once_the_driver_stopped_cleanly() {
    let s = scratch();
    let store = sealed_run(&s.path);
    // Before any clean stop, a cut at a line boundary looks like a shorter run.
    let journal = lines(&store.events_path());
    store.save_record_head().unwrap();
    let mut journal_cut = journal.clone();
    journal_cut.truncate(3);
    write_lines(&store.events_path(), &journal_cut, "");
    let broken = store.check_record().unwrap().broken();
    assert_eq!(
        broken[0].to_string(),
        "events.jsonl line 4: the file ends after line 3 but had 5 lines when its driver last stopped: lines were removed from its end"
    );
    // A whole rollout removed is found too.
    write_lines(&store.events_path(), &journal, "");
    fs::remove_file(store.dir().join("rollouts/solver.jsonl")).unwrap();
    let broken = store.check_record().unwrap().broken();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].path, "rollouts/solver.jsonl");
    assert_eq!(broken[0].line, 1);
    // Growing after the head is what a run does: no finding.
    let s = scratch();
    let store = sealed_run(&s.path);
    store.save_record_head().unwrap();
    store
        .journal()
        .unwrap()
        .append(&json!({"kind": "more"}), true)
        .unwrap();
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
}
