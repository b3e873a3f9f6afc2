//! infty's engine: role sessions and their tools, the orchestration state machine, and the
//! driver that runs it.
//!
//! - [`tools`]: the function tools roles act through, confined to the run folder.
//! - [`session`]: a role's conversation, the model ↔ tool loop, rollouts and compaction.
//! - [`flow`]: the pure orchestration state machine (no IO, no clock, no tokio).
//! - [`orchestrator`]: [`InftyOrchestrator`], the async driver and the library API.
//! - [`progress`]: callbacks for user interfaces.
//! - [`events`]: what the run journal records.
//! - [`prompts`]: the embedded prompt texts.
//! - [`telemetry`]: the `tracing` spans of runs, turns and tool calls (GenAI conventions).
//! - [`pricing`]: the built-in prices of OpenAI's models.
//! - `checks` and `work`: completion checks and the fingerprints of a turn's work, both run
//!   by the driver for the flow.
//!
//! This crate never parses command lines, reads config files or prints to a terminal.

mod checks;
pub mod events;
pub mod flow;
pub mod orchestrator;
pub mod pricing;
pub mod progress;
pub mod prompts;
pub mod session;
pub mod telemetry;
pub mod tools;
mod work;

pub use orchestrator::{
    CoreError, InftyOrchestrator, ResumeOverrides, RoleConfig, RunExecutionOptions, RunOutcome,
    RunParams, SpawnedRun, fail_stopped_run,
};
pub use progress::{NoProgress, Progress, ProgressReporter};
