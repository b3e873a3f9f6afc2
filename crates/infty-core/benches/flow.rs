//! Orchestration overhead per hop.
//!
//! - `flow/step_and_outstanding`: the pure state machine through a whole scripted run,
//!   `Flow::step` then `Flow::outstanding` for each input (a hop = one input).
//! - `orchestrator/run_*`: a whole run through `InftyOrchestrator` against an in-process
//!   model that answers from canned `ModelResponse`s (no HTTP, no SSE), in a fresh runs root
//!   on the disk (`/tmp`) and on tmpfs (`/dev/shm`, where fsync costs next to nothing), so the
//!   difference is what durability costs. A hop = one model call the driver makes; each
//!   Solver round also runs a real `write_file` tool call.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::BoxFuture;
use infty_core::events::{DeliverableCheck, Input};
use infty_core::flow::{Flow, FlowConfig};
use infty_core::{InftyOrchestrator, RoleConfig, RunExecutionOptions, RunParams};
use infty_model::{Item, ModelApi, ModelError, ModelRequest, ModelResponse, StreamEvent, Usage};
use infty_store::{Budgets, Role, TokenUsage, VerificationPolicy};
use time::OffsetDateTime;

/// Solver rounds before the delivery: each asks the Director once.
const ROUNDS: usize = 10;

const ASK: &str = r#"{"type":"direction_request","prompt":"Progress report: next step?"}"#;
const DIRECT: &str = r#"{"directive":"Continue with the next step.","rationale":"on track"}"#;
const DELIVER: &str =
    r#"{"type":"final_delivery","deliverable_path":"deliverable/out.md","summary":"done"}"#;
const PASS: &str = r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#;

fn flow_inputs() -> Vec<Input> {
    let usage = |role: &str| Input::UsageRecorded {
        role: infty_store::Role::parse(role).unwrap(),
        usage: TokenUsage {
            input_tokens: 1000,
            output_tokens: 100,
            total_tokens: 1100,
            ..TokenUsage::default()
        },
        cost_usd: 0.0011,
    };
    // What each Solver turn did: distinct work, as in a run that progresses.
    let work = |turn: usize| Input::SolverWork {
        fingerprint: format!("{turn:016x}"),
        summary: format!("shell {{\"command\":\"make step-{turn}\"}}"),
    };
    let mut inputs = vec![Input::Started];
    for turn in 0..ROUNDS {
        inputs.push(usage("solver"));
        inputs.push(work(turn));
        inputs.push(Input::SolverReplied {
            text: ASK.to_string(),
        });
        inputs.push(usage("director"));
        inputs.push(Input::DirectorReplied {
            text: DIRECT.to_string(),
        });
    }
    inputs.push(usage("solver"));
    inputs.push(Input::SolverReplied {
        text: DELIVER.to_string(),
    });
    inputs.push(Input::DeliverableChecked {
        check: DeliverableCheck::Accepted {
            path: "deliverable/out.md".to_string(),
            fingerprint: None,
        },
    });
    inputs.push(usage("verifier-1"));
    inputs.push(Input::VerifierReplied {
        role: infty_store::Role::verifier(1),
        text: PASS.to_string(),
    });
    inputs
}

fn flow_config() -> FlowConfig {
    FlowConfig {
        objective: "Write the report.".to_string(),
        run_id: "bench".to_string(),
        run_dir: "/runs/bench".to_string(),
        base_dir: "/runs/bench".to_string(),
        verifiers: vec![infty_store::Role::verifier(1)],
        policy: VerificationPolicy::All,
        budgets: Budgets::default(),
        max_invalid_signals: 3,
        ..FlowConfig::default()
    }
}

fn pure_flow(c: &mut Criterion) {
    let inputs = flow_inputs();
    let mut group = c.benchmark_group("flow");
    group.throughput(Throughput::Elements(inputs.len() as u64));
    group.bench_function(format!("step_and_outstanding_{}_hops", inputs.len()), |b| {
        b.iter_batched(
            || inputs.clone(),
            |inputs| {
                let mut flow = Flow::new(flow_config());
                let now = OffsetDateTime::UNIX_EPOCH;
                for input in inputs {
                    black_box(flow.step(input, now));
                    black_box(flow.outstanding());
                }
                assert!(matches!(
                    flow.terminal(),
                    Some(infty_core::events::Terminal::Succeeded { .. })
                ));
                flow
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// A model in the process: each role answers from its own queue of canned responses.
struct CannedModel {
    queues: Mutex<HashMap<String, VecDeque<ModelResponse>>>,
}

fn role_of(request: &ModelRequest) -> String {
    request
        .instructions
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("Your role name in this run: "))
        .map(|role| role.trim_end_matches('.').to_string())
        .unwrap_or_default()
}

fn reply(items: Vec<Item>) -> ModelResponse {
    ModelResponse {
        id: Some("resp".to_string()),
        items,
        usage: Some(Usage {
            input_tokens: 1000,
            output_tokens: 100,
            total_tokens: 1100,
            ..Usage::default()
        }),
        incomplete: None,
    }
}

fn write_call(round: usize) -> ModelResponse {
    let path = if round == ROUNDS {
        "deliverable/out.md".to_string()
    } else {
        format!("memory/step-{round}.md")
    };
    reply(vec![Item::FunctionCall {
        call_id: format!("call_{round}"),
        name: "write_file".to_string(),
        arguments: serde_json::json!({"path": path, "content": "notes\n"}).to_string(),
    }])
}

impl CannedModel {
    /// The script of a whole run, and how many model calls it makes.
    fn scripted() -> (CannedModel, u64) {
        let mut solver = VecDeque::new();
        let mut director = VecDeque::new();
        for round in 0..ROUNDS {
            solver.push_back(write_call(round));
            solver.push_back(reply(vec![Item::assistant(ASK)]));
            director.push_back(reply(vec![Item::assistant(DIRECT)]));
        }
        solver.push_back(write_call(ROUNDS));
        solver.push_back(reply(vec![Item::assistant(DELIVER)]));
        let verifier = VecDeque::from([reply(vec![Item::assistant(PASS)])]);
        let calls = (solver.len() + director.len() + verifier.len()) as u64;
        let queues = HashMap::from([
            ("solver".to_string(), solver),
            ("director".to_string(), director),
            ("verifier-1".to_string(), verifier),
        ]);
        (
            CannedModel {
                queues: Mutex::new(queues),
            },
            calls,
        )
    }
}

impl ModelApi for CannedModel {
    fn complete<'a>(
        &'a self,
        request: &'a ModelRequest,
        events: &'a (dyn Fn(StreamEvent) + Send + Sync),
    ) -> BoxFuture<'a, Result<ModelResponse, ModelError>> {
        Box::pin(async move {
            let role = role_of(request);
            let response = self
                .queues
                .lock()
                .unwrap()
                .get_mut(&role)
                .and_then(VecDeque::pop_front)
                .unwrap_or_else(|| panic!("script exhausted for {role}"));
            if let Some(usage) = response.usage {
                events(StreamEvent::Usage(usage));
            }
            Ok(response)
        })
    }
}

fn params() -> RunParams {
    RunParams {
        run_id: Some("bench".to_string()),
        run_root: None,
        solver: RoleConfig::new(Role::Solver, "canned"),
        director: RoleConfig::new(Role::Director, "canned"),
        verifiers: vec![RoleConfig::new(Role::verifier(1), "canned")],
    }
}

fn whole_runs(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_, hops) = CannedModel::scripted();
    let mut group = c.benchmark_group("orchestrator");
    group.throughput(Throughput::Elements(hops));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    let mut places = vec![("disk", std::env::temp_dir())];
    if Utf8Path::new("/dev/shm").is_dir() {
        places.push(("tmpfs", "/dev/shm".into()));
    }
    for (name, place) in places {
        group.bench_function(format!("run_{hops}_hops_{name}"), |b| {
            b.iter_batched(
                || {
                    let temp = tempfile::tempdir_in(&place).unwrap();
                    let root = Utf8PathBuf::from_path_buf(temp.path().to_path_buf()).unwrap();
                    let (model, _) = CannedModel::scripted();
                    let orchestrator = InftyOrchestrator::with_runs_root(Arc::new(model), root);
                    (temp, orchestrator)
                },
                |(temp, orchestrator)| {
                    let outcome = runtime
                        .block_on(orchestrator.execute_new_run(
                            params(),
                            RunExecutionOptions {
                                objective: "Write the report.".to_string(),
                                // Core's tests have no sandbox helper; infty-cli's and infty-sandbox's test it.
                                sandbox: infty_store::SandboxSettings::all(
                                    infty_store::SandboxMode::Off,
                                ),
                                ..RunExecutionOptions::default()
                            },
                        ))
                        .unwrap();
                    black_box(outcome);
                    temp
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, pure_flow, whole_runs);
criterion_main!(benches);
