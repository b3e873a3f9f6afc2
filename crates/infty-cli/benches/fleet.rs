//! Fleet figures: runs per second with 1, 2 and 4 workers against an instant scripted
//! model, the peak memory of one worker driving 1,000 runs at once, and fsyncs per journaled
//! input of one run. A plain `main` (not criterion): each figure is one whole batch against
//! a real `nats-server`, too slow to repeat a hundred times.
//!
//! `cargo bench -p infty-cli --bench fleet` (needs `nats-server` and, for the fsync count,
//! `strace`; a missing one skips its figure with a note).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[allow(dead_code)]
#[path = "../tests/it/harness.rs"]
mod harness;

#[allow(dead_code)]
#[path = "../tests/it/fleet_support.rs"]
mod fleet_support;

use std::process::Child;
use std::time::{Duration, Instant};

use fleet_support::{Nats, fleet_world, script_runs, spawn_worker, status, submit, terminate};
use infty_model::test_support::{ResponsesSse, ScriptedReply};

fn main() {
    if std::process::Command::new("nats-server")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("fleet bench: nats-server is not installed; skipped");
        return;
    }
    let runs = env_usize("INFTY_BENCH_FLEET_RUNS", 60);
    for workers in [1, 2, 4] {
        let per_sec = throughput(workers, runs);
        println!(
            "fleet/throughput/{workers}-workers: {per_sec:.1} runs/s ({runs} runs, 8 at once per worker)"
        );
    }
    let at_once = env_usize("INFTY_BENCH_FLEET_AT_ONCE", 1000);
    let (peak_mib, most_running) = memory(at_once);
    println!(
        "fleet/memory/{at_once}-runs-one-worker: peak RSS {peak_mib:.0} MiB, at most {most_running} runs running at once"
    );
    fsyncs_per_input();
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Runs per second from the first worker's start to the last run's success.
fn throughput(workers: usize, runs: usize) -> f64 {
    let world = fleet_world();
    let nats = Nats::start();
    script_runs(&world, runs);
    let ids: Vec<String> = (0..runs).map(|n| format!("tp-{n:04}")).collect();
    for id in &ids {
        submit(&world, &nats, id);
    }
    let start = Instant::now();
    let children: Vec<Child> = (0..workers)
        .map(|_| spawn_worker(&world, &nats, &["--concurrency", "8"]))
        .collect();
    wait_all(&world, &ids);
    let elapsed = start.elapsed();
    for child in children {
        terminate(child);
    }
    runs as f64 / elapsed.as_secs_f64()
}

/// Peak resident memory of one worker driving `runs` at once, and the most runs it had
/// running at one time (sampled).
fn memory(runs: usize) -> (f64, usize) {
    let world = fleet_world();
    let nats = Nats::start();
    script_runs(&world, runs);
    let ids: Vec<String> = (0..runs).map(|n| format!("mem-{n:04}")).collect();
    for id in &ids {
        submit(&world, &nats, id);
    }
    let concurrency = runs.to_string();
    let worker = spawn_worker(&world, &nats, &["--concurrency", &concurrency]);
    let pid = worker.id();
    let mut most_running = 0;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let statuses: Vec<String> = ids.iter().map(|id| status(&world, id)).collect();
        let running = statuses.iter().filter(|s| *s == "running").count();
        most_running = most_running.max(running);
        if statuses.iter().all(|s| s == "succeeded") {
            break;
        }
        assert!(Instant::now() < deadline, "the memory batch did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    let peak_kib = peak_rss_kib(pid);
    terminate(worker);
    (peak_kib as f64 / 1024.0, most_running)
}

fn peak_rss_kib(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn wait_all(world: &harness::World, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !ids.iter().all(|id| status(world, id) == "succeeded") {
        assert!(Instant::now() < deadline, "the batch did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// fsync and fdatasync calls of whole `infty create` runs, per input in their journals: a
/// run whose first delivery passes, and one whose Verifier rejects `EXTRA_ROUNDS`
/// deliveries first. The difference between the two is what a round costs once the run's
/// fixed cost (creating, starting and ending it) is paid.
fn fsyncs_per_input() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("fleet bench: strace is not installed; fsync count skipped");
        return;
    }
    const EXTRA_ROUNDS: usize = 5;
    let (calls, inputs, lines) = traced_run(0);
    println!(
        "fleet/fsync/one-run: {calls} fsync calls for {inputs} journaled inputs ({:.2} per input; {lines} journal lines)",
        calls as f64 / inputs.max(1) as f64,
    );
    let (more_calls, more_inputs, _) = traced_run(EXTRA_ROUNDS);
    let (calls, inputs) = (more_calls - calls, more_inputs - inputs);
    println!(
        "fleet/fsync/per-round: {calls} fsync calls for {inputs} journaled inputs over {EXTRA_ROUNDS} rejected rounds ({:.2} per input)",
        calls as f64 / inputs.max(1) as f64,
    );
}

/// Traces one `infty create` whose Verifier rejects `rejections` deliveries before it
/// passes one: its fsync calls, journaled inputs and journal lines.
fn traced_run(rejections: usize) -> (u64, usize, usize) {
    let world = fleet_world();
    fleet_support::script_work(&world);
    for round in 0..rejections {
        fleet_support::script_delivery_only(&world);
        world.server.push(
            "verifier-1",
            ScriptedReply::sse(
                ResponsesSse::new("resp_reject")
                    .text(r#"{"verdict":"fail","reasons":["say more"],"suggestions":[]}"#)
                    .usage(100, 20)
                    .build(),
            ),
        );
        // Its tool already ran, so the Solver's next calls are routed as deliveries; each
        // round does new work first, as a Solver answering a rejection would (the same
        // delivery again would be taken for a stall).
        world.server.push(
            "solver-delivers",
            ScriptedReply::sse(
                ResponsesSse::new("resp_rework")
                    .function_call(
                        "call_rework",
                        "shell",
                        &serde_json::json!({"command": format!("echo round {round} >> artifacts/notes")})
                            .to_string(),
                    )
                    .usage(100, 20)
                    .build(),
            ),
        );
    }
    fleet_support::script_delivery(&world);
    let trace = world.home.path().join("strace.txt");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(assert_cmd::cargo::cargo_bin("infty"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", world.home.path())
        .env("INFTY_HOME", world.home.path())
        .env("OPENAI_API_KEY", harness::SECRET)
        .args(["--runs-root"])
        .arg(world.runs_root())
        .args([
            "create",
            "--run-id",
            "fsync",
            "--objective",
            "Write deliverable/out.txt.",
        ])
        .args(["--base-url", &world.server.base_url()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let status = cmd.status().unwrap();
    assert!(status.success(), "the traced run failed");
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls: u64 = text
        .lines()
        .filter(|line| line.contains("fsync") || line.contains("fdatasync"))
        .filter_map(|line| line.split_whitespace().nth(3)?.parse::<u64>().ok())
        .sum();
    let journal = std::fs::read_to_string(world.run_dir("fsync").join("events.jsonl")).unwrap();
    let inputs = journal.lines().filter(|line| !is_note(line)).count();
    (calls, inputs, journal.lines().count())
}

/// Journal notes (for people) as opposed to state-machine inputs.
fn is_note(line: &str) -> bool {
    matches!(
        serde_json::from_str::<infty_core::events::RunEvent>(line),
        Ok(infty_core::events::RunEvent::Note(_))
    )
}
