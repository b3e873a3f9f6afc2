//! What the run page shows about a whole journal (tokens over time, the verdict history,
//! turns and rounds used) without reading the whole journal for each page: a digest kept in
//! memory and brought up to date from the store's journal tail, so each view reads only the
//! lines appended since the last one.
//!
//! This module must never hold the journal's lines themselves, only counts and the points
//! of the chart.

use camino::Utf8PathBuf;
use infty_core::events::{Input, Note, RunEvent};
use infty_signals::VerifierDecision;
use infty_store::JournalTail;
use serde_json::Value;
use time::OffsetDateTime;

/// One verdict of the history.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct VerdictRow {
    /// When it was recorded.
    pub at: OffsetDateTime,
    /// The verification round (0 when unknown).
    pub round: u32,
    /// The Verifier.
    pub role: String,
    /// Pass or fail.
    pub pass: bool,
    /// Its reasons.
    pub reasons: Vec<String>,
}

/// One point of the token chart: total tokens so far at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UsagePoint {
    /// When.
    pub at: OffsetDateTime,
    /// All tokens used up to then.
    pub total: u64,
    /// Their cost up to then, in US dollars (0 when unpriced).
    pub cost_usd: f64,
}

/// Bound on chart points kept: older points are thinned, so memory stays flat.
const MAX_POINTS: usize = 2048;

/// Lines read per step while catching up.
const BATCH: usize = 4096;

/// The digest of one run's journal.
#[derive(Debug)]
pub(crate) struct RunDigest {
    tail: JournalTail,
    /// Solver turns ended (replies and failures).
    pub solver_turns: u32,
    /// Verification rounds started.
    pub rounds: u32,
    /// Tool calls finished, and how many failed.
    pub tool_calls: (u64, u64),
    /// Tokens over time.
    pub usage: Vec<UsagePoint>,
    /// Every verdict, oldest first.
    pub verdicts: Vec<VerdictRow>,
    /// All tokens so far.
    pub total_tokens: u64,
    /// Events read.
    pub events: u64,
    /// The last error reading the journal, shown on the page.
    pub error: Option<String>,
}

impl RunDigest {
    /// An empty digest of the journal at `events`; [`RunDigest::update`] reads it.
    pub(crate) fn new(events: Utf8PathBuf) -> RunDigest {
        RunDigest {
            tail: JournalTail::new(events),
            solver_turns: 0,
            rounds: 0,
            tool_calls: (0, 0),
            usage: Vec::new(),
            verdicts: Vec::new(),
            total_tokens: 0,
            events: 0,
            error: None,
        }
    }

    /// Reads what was appended since the last update.
    pub(crate) fn update(&mut self) {
        loop {
            let lines = match self.tail.read_new::<Value>(BATCH) {
                Ok(lines) => lines,
                Err(error) => {
                    self.error = Some(error.to_string());
                    return;
                }
            };
            let done = lines.len() < BATCH;
            for line in lines {
                if let Ok(entry) = line.entry {
                    self.events += 1;
                    if let Ok(event) = serde_json::from_value::<RunEvent>(entry.event) {
                        self.fold(entry.at, event);
                    }
                }
            }
            if done {
                return;
            }
        }
    }

    fn fold(&mut self, at: OffsetDateTime, event: RunEvent) {
        match event {
            RunEvent::Input(Input::SolverReplied { .. } | Input::SolverFailed { .. }) => {
                self.solver_turns += 1;
            }
            RunEvent::Input(Input::UsageRecorded {
                usage, cost_usd, ..
            }) => {
                self.total_tokens = self.total_tokens.saturating_add(usage.total_tokens);
                let cost_so_far = self.usage.last().map_or(0.0, |point| point.cost_usd) + cost_usd;
                self.usage.push(UsagePoint {
                    at,
                    total: self.total_tokens,
                    cost_usd: cost_so_far,
                });
                if self.usage.len() > MAX_POINTS {
                    // Keep every other point: the curve's shape survives, memory does not grow.
                    let mut keep = false;
                    let last = self.usage.len() - 1;
                    let mut i = 0;
                    self.usage.retain(|_| {
                        keep = !keep;
                        i += 1;
                        keep || i - 1 == last
                    });
                }
            }
            RunEvent::Note(Note::VerificationStarted { .. }) => self.rounds += 1,
            RunEvent::Note(Note::ToolCallFinished { ok, .. }) => {
                self.tool_calls.0 += 1;
                if !ok {
                    self.tool_calls.1 += 1;
                }
            }
            RunEvent::Note(Note::VerdictRecorded {
                role,
                verdict,
                reasons,
                ..
            }) => self.verdicts.push(VerdictRow {
                at,
                round: self.rounds,
                role: role.to_string(),
                pass: verdict == VerifierDecision::Pass,
                reasons,
            }),
            _ => {}
        }
    }
}
