//! Benchmarks of the dashboard's pages through its router (token, rendering, escaping and
//! all): the runs page over 10,000 runs and the run page over a 100,000-event journal.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use camino::{Utf8Path, Utf8PathBuf};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use infty_store::{Role, RoleRecord, RunCatalog, RunInit, RunOptions, RunStore};
use infty_ui::{AppOptions, app};
use serde_json::json;
use tower::ServiceExt;

const TOKEN: &str = "bench-token";

fn router(root: &Utf8Path) -> Router {
    app(AppOptions {
        runs_root: root.to_owned(),
        token: TOKEN.to_owned(),
        csrf: "bench-csrf".to_owned(),
        port: 1,
        hosts: vec!["127.0.0.1:1".to_owned()],
        infty_exe: "/nonexistent".into(),
        log_dir: root.join("logs"),
    })
}

async fn get(app: &Router, path: &str) -> usize {
    let response = app
        .clone()
        .oneshot(
            Request::get(path)
                .header(header::HOST, "127.0.0.1:1")
                .header(header::COOKIE, format!("infty_ui_1={TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .len()
}

fn init() -> RunInit {
    RunInit {
        objective: "Benchmark objective that is about as long as a real one tends to be.".into(),
        roles: vec![
            RoleRecord::new(Role::Solver, "gpt-5", Some("high")),
            RoleRecord::new(Role::Director, "gpt-5", None),
            RoleRecord::new(Role::verifier(1), "gpt-5-mini", None),
        ],
        options: RunOptions::default(),
    }
}

/// `count` runs: one made by the store, the rest copies of its run.json with their own id,
/// status and time (creating each through the store would fsync 10,000 times).
fn populate(root: &Utf8Path, count: usize) {
    let template = RunStore::create(root, Some("run-template"), init()).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(template.dir().join("run.json")).unwrap()).unwrap();
    let statuses = [
        "running",
        "succeeded",
        "failed",
        "interrupted",
        "budget_exhausted",
    ];
    for i in 1..count {
        let id = format!("run-{i:06}");
        let mut v = json.clone();
        v["run_id"] = id.clone().into();
        v["status"] = statuses[i % statuses.len()].into();
        v["updated_at"] =
            format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + i % 28, i % 24, i % 60).into();
        let dir = root.join(&id);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("run.json"), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

/// A run with a journal of `events` events shaped like a real run's.
fn big_run(root: &Utf8Path, events: usize) -> u64 {
    let store = RunStore::create(root, Some("big"), init()).unwrap();
    let mut journal = store.journal().unwrap();
    for i in 0..events {
        let event = match i % 5 {
            0 => {
                json!({"kind": "tool_call_started", "role": "solver", "call_id": format!("c{i}"), "tool": "shell"})
            }
            1 => {
                json!({"kind": "tool_call_finished", "role": "solver", "call_id": format!("c{i}"), "tool": "shell", "ok": i % 7 != 0})
            }
            2 => {
                json!({"kind": "usage_recorded", "role": "solver", "usage": {"input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200}})
            }
            3 => json!({"kind": "solver_replied", "text": "x".repeat(300)}),
            _ => {
                json!({"kind": "verdict_recorded", "role": "verifier-1", "verdict": "fail", "reasons": ["not yet <b>done</b>"], "suggestions": []})
            }
        };
        journal.append(&event, false).unwrap();
    }
    fs::metadata(store.events_path()).unwrap().len() / 2
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(dir.path().join("runs")).unwrap();
    fs::create_dir_all(&root).unwrap();
    populate(&root, 10_000);
    let middle = big_run(&root, 100_000);
    let app = router(&root);

    c.bench_function("catalog_refresh_10k_runs_unchanged", |b| {
        let mut catalog = RunCatalog::new(root.clone());
        catalog.refresh().unwrap();
        b.iter(|| black_box(catalog.refresh().unwrap()));
    });
    c.bench_function("catalog_first_read_10k_runs", |b| {
        b.iter(|| {
            let mut catalog = RunCatalog::new(root.clone());
            black_box(catalog.refresh().unwrap());
        });
    });
    c.bench_function("runs_page_10k_runs", |b| {
        b.iter(|| black_box(runtime.block_on(get(&app, "/"))));
    });
    c.bench_function("runs_page_10k_runs_filtered_page_20", |b| {
        b.iter(|| black_box(runtime.block_on(get(&app, "/?status=failed&page=20"))));
    });
    c.bench_function("run_page_100k_events", |b| {
        b.iter(|| black_box(runtime.block_on(get(&app, "/runs/big"))));
    });
    c.bench_function("timeline_page_middle_of_100k_events", |b| {
        let path = format!("/runs/big/timeline?before={middle}");
        b.iter(|| black_box(runtime.block_on(get(&app, &path))));
    });
    let mut cold = c.benchmark_group("cold");
    cold.sample_size(10);
    cold.bench_function("run_page_100k_events_first_view", |b| {
        b.iter(|| {
            // A fresh server: the journal's digest is built from scratch.
            let app = router(&root);
            black_box(runtime.block_on(get(&app, "/runs/big")))
        });
    });
    cold.finish();
}

criterion_group!(pages, benches);
criterion_main!(pages);
