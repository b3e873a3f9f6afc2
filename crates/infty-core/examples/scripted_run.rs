//! Drives a whole run against a local scripted model server, with the library API.
//!
//! ```sh
//! cargo run -p infty-core --example scripted_run
//! ```
//!
//! The server answers each role from its own script: the Solver writes a file and delivers
//! it, the Verifier passes it. Replace `ModelClient::new(...)` with a real provider (for
//! example `ProviderConfig::openai().resolve_api_key()`) to drive real models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use infty_core::{InftyOrchestrator, RoleConfig, RunExecutionOptions, RunParams};
use infty_model::test_support::{ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{ModelClient, ProviderConfig, WireApi};
use infty_store::Role;
use serde_json::Value;

fn role_of(body: &Value) -> String {
    body["instructions"]
        .as_str()
        .and_then(|text| {
            text.lines()
                .rev()
                .find_map(|l| l.strip_prefix("Your role name in this run: "))
        })
        .map(|role| role.trim_end_matches('.').to_string())
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Tool processes are sandboxed by re-executing this program as the helper: dispatch it
    // first, before the runtime starts any thread.
    infty_sandbox::run_helper_if_requested();
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let server = ScriptedServer::start_async(role_of).await;
    let write = serde_json::json!({"path": "deliverable/hello.txt", "content": "hello, world\n"});
    server.push(
        "solver",
        ScriptedReply::sse(
            ResponsesSse::new("r1")
                .function_call("c1", "write_file", &write.to_string())
                .build(),
        ),
    );
    server.push(
        "solver",
        ScriptedReply::sse(
            ResponsesSse::new("r2")
                .text(r#"{"type":"final_delivery","deliverable_path":"deliverable/hello.txt","summary":"greeting written"}"#)
                .build(),
        ),
    );
    server.push(
        "verifier-1",
        ScriptedReply::sse(
            ResponsesSse::new("r3")
                .text(r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#)
                .build(),
        ),
    );

    let mut provider = ProviderConfig::openai();
    provider.base_url = server.base_url();
    provider.api_key = Some(infty_model::ApiKey::new("sk-scripted"));
    provider.wire_api = WireApi::Responses;
    let client = ModelClient::new(provider)?;

    let runs_root = std::env::temp_dir().join(format!("infty-example-{}", std::process::id()));
    let runs_root = camino::Utf8PathBuf::try_from(runs_root)?;
    let orchestrator = InftyOrchestrator::with_runs_root(Arc::new(client), &runs_root);
    let outcome = orchestrator
        .execute_new_run(
            RunParams {
                run_id: Some("example".to_string()),
                run_root: None,
                solver: RoleConfig::new(Role::Solver, "scripted"),
                director: RoleConfig::new(Role::Director, "scripted"),
                verifiers: vec![RoleConfig::new(Role::verifier(1), "scripted")],
            },
            RunExecutionOptions {
                objective: "Write a greeting to deliverable/hello.txt.".to_string(),
                ..RunExecutionOptions::default()
            },
        )
        .await?;
    println!(
        "run {} succeeded: {}",
        outcome.run_id, outcome.deliverable_path
    );
    println!("{}", std::fs::read_to_string(&outcome.deliverable_path)?);
    std::fs::remove_dir_all(&runs_root)?;
    Ok(())
}
