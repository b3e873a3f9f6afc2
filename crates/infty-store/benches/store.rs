//! Benchmarks of the run folder: listing 10,000 runs (target: under 200 ms), journal
//! appends (plain and sealed), checking a sealed record, and streaming a large journal back.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::hint::black_box;

use camino::{Utf8Path, Utf8PathBuf};
use criterion::{Criterion, criterion_group, criterion_main};
use infty_store::{
    Journal, Role, RoleRecord, RunInit, RunOptions, RunStore, list_runs, read_journal,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    RoleMessage { role: String, text: String },
    ToolCall { name: String, arguments: String },
}

fn utf8_tempdir() -> (tempfile::TempDir, Utf8PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = Utf8PathBuf::from_path_buf(dir.path().to_owned()).unwrap();
    (dir, path)
}

/// Fills `root` with `count` runs: one made by the store, the rest copies of its run.json
/// with their own id and time (creating each through the store would fsync 10,000 times).
fn populate(root: &Utf8Path, count: usize) {
    let init = RunInit {
        objective: "Benchmark objective that is about as long as a real one tends to be.".into(),
        roles: vec![
            RoleRecord::new(Role::Solver, "gpt-5", Some("high")),
            RoleRecord::new(Role::Director, "gpt-5", Some("medium")),
            RoleRecord::new(Role::verifier(1), "gpt-5-mini", None),
        ],
        options: RunOptions::default(),
    };
    let template = RunStore::create(root, Some("run-template"), init).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(template.dir().join("run.json")).unwrap()).unwrap();
    for i in 1..count {
        let id = format!("run-{i:06}");
        let mut v = json.clone();
        v["run_id"] = id.clone().into();
        v["updated_at"] =
            format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60).into();
        let dir = root.join(&id);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("run.json"), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

fn listing(c: &mut Criterion) {
    let (_guard, root) = utf8_tempdir();
    populate(&root, 10_000);
    assert_eq!(list_runs(&root).unwrap().runs.len(), 10_000);
    let mut group = c.benchmark_group("list_runs");
    group.sample_size(20);
    group.bench_function("10000", |b| b.iter(|| black_box(list_runs(&root).unwrap())));
    group.finish();
    // The per-run cost the listing pays (read + parse one run.json).
    let one = root.join("run-000001");
    c.bench_function("run_store/open", |b| {
        b.iter(|| black_box(RunStore::open(&one).unwrap()))
    });
}

fn journal(c: &mut Criterion) {
    let (_guard, dir) = utf8_tempdir();
    let event = Event::RoleMessage {
        role: "solver".into(),
        text: "A typical progress message of a hundred characters or so, with \"quotes\" and ✓."
            .into(),
    };
    let path = dir.join("append.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    c.bench_function("journal/append", |b| {
        b.iter(|| journal.append(black_box(&event), false).unwrap())
    });
    // The same append with the keyed hash chain, as every run's journal is written.
    let run = RunStore::create(&dir, Some("sealed"), RunInit::default()).unwrap();
    let mut sealed = run.journal().unwrap();
    assert!(sealed.is_sealed());
    c.bench_function("journal/append_sealed", |b| {
        b.iter(|| sealed.append(black_box(&event), false).unwrap())
    });
    // Checking a whole sealed record: 100,000 lines.
    let big_run = RunStore::create(&dir, Some("big-sealed"), RunInit::default()).unwrap();
    let mut big_sealed = big_run.journal().unwrap();
    for _ in 0..100_000u32 {
        big_sealed.append(&event, false).unwrap();
    }
    drop(big_sealed);
    let mut group = c.benchmark_group("record");
    group.sample_size(10);
    group.bench_function("check_100k", |b| {
        b.iter(|| assert_eq!(big_run.check_record().unwrap().summary(), "sealed"))
    });
    group.finish();

    let big = dir.join("big.jsonl");
    let mut journal = Journal::open(&big).unwrap();
    for i in 0..100_000u32 {
        let e = if i % 2 == 0 {
            Event::ToolCall {
                name: "shell".into(),
                arguments: format!("{{\"cmd\":\"ls {i}\"}}"),
            }
        } else {
            Event::RoleMessage {
                role: "solver".into(),
                text: "x".repeat(100),
            }
        };
        journal.append(&e, false).unwrap();
    }
    drop(journal);
    let mut group = c.benchmark_group("journal");
    group.sample_size(10);
    group.bench_function("read_100k", |b| {
        b.iter(|| {
            let n = read_journal::<Event>(&big)
                .unwrap()
                .map(Result::unwrap)
                .count();
            assert_eq!(n, 100_000);
        })
    });
    group.bench_function("open_100k_for_append", |b| {
        b.iter(|| black_box(Journal::open(&big).unwrap().next_seq()))
    });
    group.finish();
}

criterion_group!(benches, listing, journal);
criterion_main!(benches);
