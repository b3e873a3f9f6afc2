//! How long the reading commands take on large inputs, through the real binary:
//! `infty list --json` over many runs and `infty logs` over a long journal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use camino::Utf8PathBuf;
use criterion::{Criterion, criterion_group, criterion_main};
use infty_core::events::Note;
use infty_store::{Role, RoleRecord, RunInit, RunStore};

const RUNS: usize = 1_000;
const EVENTS: usize = 20_000;

fn infty(root: &Utf8PathBuf, args: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_infty"))
        .env("INFTY_HOME", root.as_str())
        .arg("--runs-root")
        .arg(root.as_str())
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success());
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().join("runs")).unwrap();
    let init = || RunInit {
        objective: "benchmark".into(),
        roles: vec![RoleRecord::new(Role::Solver, "m", None)],
        ..RunInit::default()
    };
    for index in 0..RUNS {
        RunStore::create(&root, Some(&format!("run-{index}")), init()).unwrap();
    }
    let big = RunStore::create(&root, Some("big"), init()).unwrap();
    let mut journal = big.journal().unwrap();
    for index in 0..EVENTS {
        let note = Note::DirectionRequested {
            prompt: format!("question {index}: what next?"),
        };
        journal.append(&note, false).unwrap();
    }
    let mut group = c.benchmark_group("cli");
    group.sample_size(10);
    group.bench_function("list --json, 1000 runs", |b| {
        b.iter(|| infty(&root, &["list", "--json"]))
    });
    group.bench_function("logs, 20000 events", |b| {
        b.iter(|| infty(&root, &["logs", "big"]))
    });
    group.bench_function("show --json, 20000 events", |b| {
        b.iter(|| infty(&root, &["show", "big", "--json"]))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
