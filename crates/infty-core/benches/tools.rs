//! Benchmarks of the tools: output capture throughput, and whole calls through
//! `ToolSet::execute` (confinement, blocking-pool hop, file IO, process spawn).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs;
use std::hint::black_box;
use std::time::Duration;

use camino::Utf8PathBuf;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infty_core::tools::{OutputCapture, ToolContext, ToolPolicy, ToolSet};

fn capture(c: &mut Criterion) {
    let chunk = vec![b'x'; 16 * 1024];
    let chunks = 512; // 8 MiB through a 32 KiB budget.
    let mut group = c.benchmark_group("capture");
    group.throughput(Throughput::Bytes((chunk.len() * chunks) as u64));
    group.bench_function("push_8MiB_budget_32KiB", |b| {
        b.iter(|| {
            let mut capture = OutputCapture::new(32 * 1024);
            for _ in 0..chunks {
                capture.push(black_box(&chunk));
            }
            black_box(capture.render(32 * 1024))
        });
    });
    group.finish();
}

fn calls(c: &mut Criterion) {
    let temp = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(temp.path().to_path_buf()).unwrap();
    let run = root.join("run");
    let ws = root.join("ws");
    fs::create_dir_all(&run).unwrap();
    let lines: String = (1..=2000)
        .map(|n| format!("line {n}: the quick brown fox jumps over the lazy dog\n"))
        .collect();
    fs::create_dir_all(&ws).unwrap();
    fs::write(ws.join("big.txt"), lines).unwrap();
    for folder in 0..10 {
        for file in 0..50 {
            let path = ws.join(format!("tree/d{folder}/f{file}.txt"));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
    }
    let tools = ToolSet::new(
        ToolContext::new(run).with_workspace(ws),
        ToolPolicy::solver(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("execute");
    let cases = [
        ("read_file_2000_lines", "read_file", r#"{"path":"big.txt"}"#),
        (
            "list_dir_500_entries",
            "list_dir",
            r#"{"path":"tree","depth":2}"#,
        ),
        (
            "write_file_small",
            "write_file",
            r#"{"path":"out/a.txt","content":"hello"}"#,
        ),
        (
            "refused_escape",
            "read_file",
            r#"{"path":"../../etc/passwd"}"#,
        ),
        ("shell_true", "shell", r#"{"command":"true"}"#),
    ];
    for (label, name, arguments) in cases {
        group.bench_function(label, |b| {
            b.iter(|| runtime.block_on(tools.execute(name, black_box(arguments))));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    targets = capture, calls
}
criterion_main!(benches);
