//! What the OS sandbox adds to one `shell` call: the same `true` command through the
//! `shell` tool unsandboxed (mode `off`) and sandboxed (`workspace-write` and `read-only`,
//! helper = the real `infty` binary). Aim: under 10 ms added per call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use infty_core::tools::{RunSpace, SandboxSpec, ToolContext, ToolPolicy, ToolSet, role_policy};
use infty_store::{SandboxMode, SandboxSettings};

fn tools(root: &std::path::Path, mode: SandboxMode) -> ToolSet {
    let run_dir = root.join("runs/run");
    for sub in ["artifacts", "memory", "index", "deliverable"] {
        std::fs::create_dir_all(run_dir.join(sub)).unwrap();
    }
    let space = RunSpace {
        run_dir: run_dir.clone(),
        runs_root: Some(root.join("runs")),
        infty_home: Some(root.to_path_buf()),
        workspace: None,
        home: std::env::var_os("HOME").map(PathBuf::from),
    };
    let spec = SandboxSpec::new(
        mode,
        role_policy(mode, &space, &SandboxSettings::default()),
        Some(PathBuf::from(env!("CARGO_BIN_EXE_infty"))),
    )
    .with_private_temp("bench")
    .unwrap();
    let context = ToolContext::new(camino::Utf8PathBuf::try_from(run_dir).unwrap());
    ToolSet::new(context, ToolPolicy::solver()).with_sandbox(spec)
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let arguments = r#"{"command":"true","timeout_ms":null,"workdir":null}"#;
    let mut group = c.benchmark_group("shell_call");
    for (name, mode) in [
        ("off", SandboxMode::Off),
        ("workspace_write", SandboxMode::WorkspaceWrite),
        ("read_only", SandboxMode::ReadOnly),
    ] {
        let tools = tools(dir.path(), mode);
        group.bench_function(name, |b| {
            b.iter(|| {
                let result = runtime.block_on(tools.execute("shell", arguments));
                assert!(result.ok, "{}", result.output);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
