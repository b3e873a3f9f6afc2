//! The fleet end to end: a real `nats-server` with JetStream, real `infty submit` and
//! `infty worker` processes, and a scripted model server that every run shares.
//!
//! Each run's Solver first runs one shell command that appends a line to
//! `artifacts/marker` (so a tool call run twice shows as two lines), then delivers; its
//! Verifier passes. The server routes by role and by whether the Solver has seen its
//! tool's output yet, so runs in any interleaving get the replies their stage needs.

use std::process::{Child, Stdio};
use std::time::Duration;

use infty_model::test_support::{ResponsesSse, ScriptedReply};
use serde_json::{Value, json};

use crate::fleet_support::{
    Nats, fleet_world, free_port, script_delivery, script_runs, script_work, spawn_worker, status,
    submit, terminate, wait_until,
};
use crate::harness::World;

fn marker_lines(world: &World, run_id: &str) -> usize {
    std::fs::read_to_string(world.run_dir(run_id).join("artifacts/marker"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn journal_count(world: &World, run_id: &str, kind: &str) -> usize {
    world
        .journal_kinds(run_id)
        .iter()
        .filter(|k| *k == kind)
        .count()
}

fn requests_to(world: &World, route: &str) -> usize {
    world
        .server
        .requests()
        .iter()
        .filter(|(r, _)| r == route)
        .count()
}

#[test]
fn submit_records_a_queued_run_without_a_key() {
    let world = fleet_world();
    let nats = Nats::start();
    let stdout = submit(&world, &nats, "queued-1");
    assert_eq!(stdout.trim(), "queued-1");
    assert_eq!(status(&world, "queued-1"), "queued");
    let list = world.stdout_of(&["list", "--json"]);
    let runs: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(runs[0]["status"], "queued");
    let json = world
        .infty()
        .args([
            "submit",
            "--queue",
            &nats.url(),
            "--run-id",
            "queued-2",
            "--json",
        ])
        .args(["--objective", "x", "--base-url", &world.server.base_url()])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let value: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(value["status"], "queued");
    assert_eq!(value["run_id"], "queued-2");
    assert_eq!(value["queue_sequence"], 2);
    world.assert_secret_nowhere();
}

#[test]
fn submit_to_a_dead_queue_fails_and_queues_nothing() {
    let world = fleet_world();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let assert = world
        .infty()
        .args(["submit", "--queue", &url, "--run-id", "never"])
        .args(["--objective", "x", "--base-url", &world.server.base_url()])
        .assert()
        .failure();
    let stderr = crate::harness::stderr_text(&assert);
    assert!(
        stderr.contains("cannot connect to the queue at"),
        "{stderr}"
    );
    assert!(!world.run_dir("never").exists());
}

#[test]
fn a_queue_is_required() {
    let world = fleet_world();
    let assert = world.infty().args(["worker"]).assert().code(2);
    let stderr = crate::harness::stderr_text(&assert);
    assert!(stderr.contains("no queue: pass --queue"), "{stderr}");
}

#[test]
fn three_workers_finish_thirty_runs_exactly_once() {
    let world = fleet_world();
    let nats = Nats::start();
    script_runs(&world, 30);
    let ids: Vec<String> = (1..=30).map(|n| format!("batch-{n:02}")).collect();
    for id in &ids {
        submit(&world, &nats, id);
    }
    let workers: Vec<Child> = (0..3)
        .map(|_| spawn_worker(&world, &nats, &["--concurrency", "4"]))
        .collect();
    wait_until("30 succeeded runs", || {
        ids.iter().all(|id| status(&world, id) == "succeeded")
    });
    for worker in workers {
        let (code, stderr) = terminate(worker);
        assert_eq!(code, Some(143), "{stderr}");
        assert!(stderr.contains("stopped:"), "{stderr}");
    }
    for id in &ids {
        assert_eq!(marker_lines(&world, id), 1, "run {id} ran its tool twice");
        assert_eq!(journal_count(&world, id, "run_succeeded"), 1, "run {id}");
        assert_eq!(journal_count(&world, id, "driver_started"), 1, "run {id}");
    }
    assert_eq!(requests_to(&world, "solver-works"), 30);
    assert_eq!(requests_to(&world, "verifier-1"), 30);
    world.assert_secret_nowhere();
}

#[test]
fn a_killed_workers_run_is_resumed_by_another_without_repeating_its_tool() {
    let mut world = fleet_world();
    let nats = Nats::start();
    script_work(&world);
    // The Solver's request after its tool hangs: the worker dies there.
    world
        .server
        .stall_next("solver-delivers", String::new(), Duration::from_secs(30));
    submit(&world, &nats, "victim");
    let mut first = spawn_worker(&world, &nats, &["--ack-wait-secs", "2"]);
    wait_until("the stalled request", || {
        requests_to(&world, "solver-delivers") == 1
    });
    assert_eq!(marker_lines(&world, "victim"), 1);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(status(&world, "victim"), "running");
    script_delivery(&world);
    let second = spawn_worker(&world, &nats, &["--ack-wait-secs", "2"]);
    wait_until("the resumed run", || {
        status(&world, "victim") == "succeeded"
    });
    let (code, stderr) = terminate(second);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(marker_lines(&world, "victim"), 1, "the tool ran twice");
    assert_eq!(journal_count(&world, "victim", "driver_started"), 2);
    assert_eq!(requests_to(&world, "solver-works"), 1);
}

#[test]
fn runs_finish_exactly_once_across_a_queue_server_restart() {
    let world = fleet_world();
    let mut nats = Nats::start();
    script_runs(&world, 10);
    let ids: Vec<String> = (1..=10).map(|n| format!("restart-{n:02}")).collect();
    for id in &ids[..5] {
        submit(&world, &nats, id);
    }
    let workers: Vec<Child> = (0..2)
        .map(|_| {
            spawn_worker(
                &world,
                &nats,
                &["--concurrency", "2", "--ack-wait-secs", "3"],
            )
        })
        .collect();
    wait_until("a first run to succeed", || {
        ids[..5].iter().any(|id| status(&world, id) == "succeeded")
    });
    nats.restart();
    for id in &ids[5..] {
        submit(&world, &nats, id);
    }
    wait_until("10 succeeded runs", || {
        ids.iter().all(|id| status(&world, id) == "succeeded")
    });
    for worker in workers {
        let (code, stderr) = terminate(worker);
        assert_eq!(code, Some(143), "{stderr}");
    }
    for id in &ids {
        assert_eq!(marker_lines(&world, id), 1, "run {id} ran its tool twice");
        assert_eq!(journal_count(&world, id, "run_succeeded"), 1, "run {id}");
    }
    assert_eq!(requests_to(&world, "solver-works"), 10);
}

#[test]
fn a_run_that_keeps_killing_its_driver_fails_after_the_maximum_deliveries() {
    let mut world = fleet_world();
    let nats = Nats::start();
    submit(&world, &nats, "doomed");
    let flags = ["--ack-wait-secs", "1", "--max-deliveries", "2"];
    // Each delivery's Solver request hangs, and its worker is killed while it waits. (One
    // stall is armed at a time: the server offers every request to every armed stall.)
    for attempt in 1..=2 {
        world
            .server
            .stall_next("solver-works", String::new(), Duration::from_secs(30));
        let mut worker = spawn_worker(&world, &nats, &flags);
        wait_until("the hanging request", || {
            requests_to(&world, "solver-works") == attempt
        });
        worker.kill().unwrap();
        worker.wait().unwrap();
    }
    let last = spawn_worker(&world, &nats, &flags);
    wait_until("the run to fail", || status(&world, "doomed") == "failed");
    let (code, stderr) = terminate(last);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("run doomed: giving up"), "{stderr}");
    let meta = world.run_json("doomed");
    let error = meta["error"].as_str().unwrap();
    assert!(error.contains("delivered 3 times"), "{error}");
    assert_eq!(journal_count(&world, "doomed", "run_failed"), 1);
    assert_eq!(requests_to(&world, "solver-works"), 2);
}

#[test]
fn sigterm_drains_a_worker_and_another_finishes_its_run() {
    let mut world = fleet_world();
    let nats = Nats::start();
    world
        .server
        .stall_next("solver-works", String::new(), Duration::from_secs(30));
    submit(&world, &nats, "drained");
    let worker = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    wait_until("the hanging request", || {
        requests_to(&world, "solver-works") == 1
    });
    let (code, stderr) = terminate(worker);
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
    assert!(stderr.contains("1 released"), "{stderr}");
    assert_eq!(status(&world, "drained"), "interrupted");
    // Released at once, not after the 30 s lease.
    script_runs(&world, 1);
    let next = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    wait_until("the run to succeed", || {
        status(&world, "drained") == "succeeded"
    });
    let (code, stderr) = terminate(next);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(marker_lines(&world, "drained"), 1);
}

#[test]
fn a_worker_leaves_a_run_that_a_live_process_drives_alone() {
    let mut world = fleet_world();
    let nats = Nats::start();
    world
        .server
        .stall_next("solver-works", String::new(), Duration::from_secs(60));
    submit(&world, &nats, "held");
    // Someone drives the run by hand; it hangs in its first request.
    let mut by_hand = world.infty_process();
    by_hand
        .args(["resume", "held", "--base-url", &world.server.base_url()])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut by_hand = by_hand.spawn().unwrap();
    wait_until("the hanging request", || {
        requests_to(&world, "solver-works") == 1
    });
    let worker = spawn_worker(&world, &nats, &["--ack-wait-secs", "30"]);
    std::thread::sleep(Duration::from_secs(3));
    let (code, stderr) = terminate(worker);
    by_hand.kill().unwrap();
    by_hand.wait().unwrap();
    assert_eq!(code, Some(143), "{stderr}");
    assert!(stderr.contains("run held: handed back"), "{stderr}");
    assert!(stderr.contains("is being driven by"), "{stderr}");
    assert_eq!(journal_count(&world, "held", "driver_started"), 1);
}

/// The example Kubernetes manifests parse, name their objects, and use only flags that
/// `infty` has.
#[test]
fn kubernetes_manifests_parse_and_use_real_flags() {
    use yaml_rust2::{Yaml, YamlLoader};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes");
    let mut kinds = Vec::new();
    let mut worker_args = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = YamlLoader::load_from_str(&text)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        for doc in docs {
            let kind = doc["kind"].as_str().expect("a kind").to_string();
            assert!(
                doc["apiVersion"].as_str().is_some(),
                "{kind} has no apiVersion"
            );
            assert!(
                doc["metadata"]["name"].as_str().is_some(),
                "{kind} has no name"
            );
            if kind == "Deployment" {
                for container in doc["spec"]["template"]["spec"]["containers"]
                    .as_vec()
                    .unwrap()
                {
                    let args: Vec<String> = container["args"]
                        .as_vec()
                        .unwrap()
                        .iter()
                        .map(|arg| match arg {
                            Yaml::String(text) => text.clone(),
                            other => panic!("argument {other:?} is not a string"),
                        })
                        .collect();
                    worker_args.extend(args);
                }
            }
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Namespace",
            "PersistentVolumeClaim",
            "Service",
            "StatefulSet"
        ]
    );
    assert_eq!(worker_args.first().map(String::as_str), Some("worker"));
    let world = fleet_world();
    let help = world.stdout_of(&["worker", "--help"]);
    for flag in worker_args.iter().filter(|arg| arg.starts_with("--")) {
        assert!(help.contains(flag.as_str()), "`infty worker` has no {flag}");
    }
}

#[test]
fn a_worker_starts_a_runs_mcp_servers_for_its_drive_and_stops_them_after() {
    use crate::mcp::{assert_no_process_with, counter, mcp_flag, outputs, received};
    let world = fleet_world();
    let nats = Nats::start();
    world.server.push(
        "solver-works",
        ScriptedReply::sse(
            ResponsesSse::new("resp_work")
                .function_call(
                    "call_echo",
                    "t__echo",
                    &json!({"text": "hi", "times": null}).to_string(),
                )
                .function_call(
                    "call_work",
                    "shell",
                    &json!({"command": "mkdir -p deliverable && echo done > deliverable/out.txt"})
                        .to_string(),
                )
                .usage(100, 20)
                .build(),
        ),
    );
    script_delivery(&world);
    let flag = mcp_flag(&world);
    world
        .infty()
        .args(["submit", "--queue", &nats.url(), "--run-id", "with-mcp"])
        .args(["--objective", "Write deliverable/out.txt."])
        .args(["--base-url", &world.server.base_url()])
        // The test server counts its calls under the test's HOME, which a sandbox hides.
        .args(["--sandbox", "off", "--mcp", &flag])
        .env_remove("OPENAI_API_KEY")
        .assert()
        .success();
    // Recorded, not started: the worker starts them.
    assert_eq!(world.run_json("with-mcp")["options"]["mcp"][0]["name"], "t");
    assert!(received(&world).is_empty());

    let worker = spawn_worker(&world, &nats, &[]);
    wait_until("the run with an MCP server", || {
        status(&world, "with-mcp") == "succeeded"
    });
    // The server stops with the drive, before the worker does.
    assert_no_process_with(&counter(&world));
    let (code, stderr) = terminate(worker);
    assert_eq!(code, Some(143), "{stderr}");
    assert_eq!(received(&world), ["echo"]);
    assert_eq!(
        outputs(&world, "with-mcp")[0],
        ("call_echo".to_string(), "hi".to_string())
    );
    // The Solver's model was offered the server's tools, and run.json says what it offered.
    let (_, first) = world
        .server
        .requests()
        .into_iter()
        .find(|(route, _)| route == "solver-works")
        .unwrap();
    assert!(first["tools"].to_string().contains("t__echo"), "{first}");
    let offered = world.run_json("with-mcp")["options"]["mcp"][0]["offered"].clone();
    assert!(offered.to_string().contains("echo"), "{offered}");
    world.assert_secret_nowhere();
}
