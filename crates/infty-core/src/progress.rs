//! What a run's watchers are told as it is driven: one closed vocabulary, [`Progress`].
//!
//! Every note is reported as [`Progress::Noted`] at the moment it is journaled, so a
//! reporter sees exactly what `events.jsonl` records, in the journal's own types; the other
//! variants are the details the journal leaves out (streamed text, a role starting to think,
//! a tool call's arguments and output, usage, the run's ending). The driver emits each event
//! once; a reporter matches on what it shows and ignores the rest. It must return quickly:
//! it is called on the driver's task.

use std::time::Duration;

use camino::Utf8Path;
use infty_store::TokenUsage;

use crate::events::{Note, Terminal};
use crate::tools::Plan;

/// One thing that happened while a run is driven.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// The driver took the run (fresh or resumed).
    RunStarted {
        /// The run.
        run_id: &'a str,
        /// Its folder.
        run_dir: &'a Utf8Path,
        /// Whether it was resumed.
        resumed: bool,
    },
    /// A note, as it is journaled.
    Noted(&'a Note),
    /// A role's turn started (or a check began); it is thinking until [`Progress::RoleMessage`].
    RoleThinking {
        /// The role (or `check NAME`).
        role: &'a str,
    },
    /// Streamed text of a role's reply, as it arrives.
    TextDelta {
        /// The role.
        role: &'a str,
        /// The new text.
        delta: &'a str,
    },
    /// A role finished its turn (or a check its command) with this text.
    RoleMessage {
        /// The role (or `check NAME`).
        role: &'a str,
        /// Its reply.
        text: &'a str,
    },
    /// A role starts a tool call (journaled without its arguments).
    ToolCallStarted {
        /// The role.
        role: &'a str,
        /// The tool.
        tool: &'a str,
        /// The model's raw JSON arguments.
        arguments: &'a str,
    },
    /// A tool call finished (journaled without its output).
    ToolCallFinished {
        /// The role.
        role: &'a str,
        /// The tool.
        tool: &'a str,
        /// Whether it succeeded.
        ok: bool,
        /// What the model reads.
        output: &'a str,
    },
    /// A role updated its plan.
    PlanUpdated {
        /// The role.
        role: &'a str,
        /// The plan now.
        plan: &'a Plan,
    },
    /// A role's turn used these tokens, costing this much.
    Usage {
        /// The role.
        role: &'a str,
        /// Its tokens.
        usage: &'a TokenUsage,
        /// In US dollars (0 when its model has no price).
        cost_usd: f64,
    },
    /// The model client retries a request (journaled without the wait).
    ModelRetry {
        /// The role.
        role: &'a str,
        /// This retry's number.
        attempt: u32,
        /// The most it makes.
        max: u32,
        /// How long it waits first.
        delay: Duration,
        /// Why.
        reason: &'a str,
    },
    /// The run ended (in any way).
    RunFinished(&'a Terminal),
}

/// Receives a run's progress.
pub trait ProgressReporter: Send + Sync {
    /// Shows (or records) one event.
    fn report(&self, event: &Progress<'_>);
}

/// A reporter that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressReporter for NoProgress {
    fn report(&self, _event: &Progress<'_>) {}
}
