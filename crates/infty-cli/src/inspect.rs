//! `infty list` and `infty show`: read run folders and present them to people or programs.
//!
//! The `--json` shapes are a stable interface (documented in the README): `list` prints an
//! array of summaries, `show` one object that adds roles, usage, outcome, error, options, the
//! verdict history and the recent journal. Keys are only ever added, never renamed or
//! removed. Reading never takes the run's lock or writes to its folder.

use std::collections::VecDeque;

use anyhow::Result;
use camino::Utf8Path;
use infty_core::events::{Note, RunEvent};
use infty_core::flow::Input;
use infty_store::{RunMetadata, RunStore, read_journal};
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::Coded;
use crate::args::{ListArgs, ShowArgs};

/// How many journal events `show` includes.
const RECENT_EVENTS: usize = 15;

/// `infty list`.
pub fn list(runs_root: &Utf8Path, args: &ListArgs) -> Result<u8> {
    let listing = infty_store::list_runs(runs_root)?;
    for (path, reason) in &listing.skipped {
        eprintln!("warning: skipping {path}: {reason}");
    }
    if args.json {
        let summaries: Vec<Value> = listing
            .runs
            .iter()
            .map(|meta| summary_json(runs_root, meta))
            .collect();
        println!("{}", serde_json::to_string_pretty(&summaries)?);
        return Ok(0);
    }
    if listing.runs.is_empty() {
        println!("no runs under {runs_root}");
        return Ok(0);
    }
    let rows: Vec<[String; 4]> = listing
        .runs
        .iter()
        .map(|meta| {
            [
                meta.run_id.clone(),
                meta.status.to_string(),
                timestamp(meta.updated_at),
                one_line(&meta.objective, 60),
            ]
        })
        .collect();
    print_table(["RUN ID", "STATUS", "UPDATED", "OBJECTIVE"], &rows);
    Ok(0)
}

/// `infty show`.
pub fn show(runs_root: &Utf8Path, args: &ShowArgs) -> Result<u8> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let meta = store.metadata();
    let history = History::read(&store)?;
    if args.json {
        let mut value = summary_json(runs_root, meta);
        if let Value::Object(map) = &mut value {
            map.insert("roles".into(), serde_json::to_value(&meta.roles)?);
            map.insert("usage".into(), serde_json::to_value(&meta.usage)?);
            map.insert("outcome".into(), serde_json::to_value(&meta.outcome)?);
            map.insert("error".into(), serde_json::to_value(&meta.error)?);
            map.insert("options".into(), serde_json::to_value(&meta.options)?);
            map.insert("verdicts".into(), serde_json::to_value(&history.verdicts)?);
            map.insert(
                "recent_events".into(),
                Value::Array(history.recent.iter().map(|(_, v)| v.clone()).collect()),
            );
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    println!("Run:       {}", meta.run_id);
    println!("Status:    {}", meta.status);
    println!("Folder:    {}", store.dir());
    println!("Created:   {}", timestamp(meta.created_at));
    println!("Updated:   {}", timestamp(meta.updated_at));
    println!("Objective: {}", one_line(&meta.objective, 200));
    println!(
        "Sandbox:   {}",
        crate::sandbox::describe(&meta.options.sandbox)
    );
    println!();
    println!("Roles:");
    for role in &meta.roles {
        let usage = meta.usage.get(&role.role).copied().unwrap_or_default();
        let effort = role
            .reasoning_effort
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        println!(
            "  {:<12} {}{}  tokens: {} in / {} out",
            role.role, role.model, effort, usage.input_tokens, usage.output_tokens
        );
    }
    let total = meta.total_usage();
    println!(
        "  {:<12} {} tokens ({} in / {} out)",
        "total", total.total_tokens, total.input_tokens, total.output_tokens
    );
    if let Some(outcome) = &meta.outcome {
        println!();
        println!(
            "Deliverable: {}",
            store.dir().join(&outcome.deliverable_path)
        );
        if let Some(summary) = &outcome.summary {
            println!("Summary:     {}", one_line(summary, 200));
        }
    }
    if let Some(error) = &meta.error {
        println!();
        println!("Error: {error}");
    }
    if !history.verdicts.is_empty() {
        println!();
        println!("Verdicts:");
        for verdict in &history.verdicts {
            let reasons = if verdict.reasons.is_empty() {
                String::new()
            } else {
                format!(": {}", one_line(&verdict.reasons.join("; "), 100))
            };
            println!(
                "  round {:<3} {:<12} {}{reasons}",
                verdict.round, verdict.role, verdict.verdict
            );
        }
    }
    if !history.recent.is_empty() {
        println!();
        println!("Recent events:");
        for (line, _) in &history.recent {
            println!("  {line}");
        }
    }
    Ok(0)
}

/// One Verifier's verdict in a verification round, as `show` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerdictEntry {
    /// The verification round, from 1.
    pub round: u32,
    /// The Verifier.
    pub role: String,
    /// `pass` or `fail`.
    pub verdict: &'static str,
    /// Its reasons.
    pub reasons: Vec<String>,
    /// Its suggestions.
    pub suggestions: Vec<String>,
}

/// What `show` takes from the journal, in one pass.
struct History {
    /// The last events people read, as a text line and as JSON.
    recent: Vec<(String, Value)>,
    /// Every verdict, oldest first.
    verdicts: Vec<VerdictEntry>,
}

impl History {
    fn read(store: &RunStore) -> Result<History> {
        let mut recent = VecDeque::with_capacity(RECENT_EVENTS);
        let mut verdicts = Vec::new();
        let mut round = 0;
        for entry in read_journal::<RunEvent>(&store.events_path())? {
            let entry = entry?;
            match &entry.event {
                RunEvent::Note(Note::VerificationStarted { round: r, .. }) => round = *r,
                RunEvent::Note(Note::VerdictRecorded {
                    role,
                    verdict,
                    reasons,
                    suggestions,
                }) => verdicts.push(VerdictEntry {
                    round,
                    role: role.clone(),
                    verdict: if verdict.is_pass() { "pass" } else { "fail" },
                    reasons: reasons.clone(),
                    suggestions: suggestions.clone(),
                }),
                _ => {}
            }
            let Some(text) = describe(&entry.event) else {
                continue;
            };
            if recent.len() == RECENT_EVENTS {
                recent.pop_front();
            }
            let value = json!({
                "seq": entry.seq,
                "at": timestamp(entry.at),
                "event": entry.event,
            });
            recent.push_back((format!("{} {text}", clock(entry.at)), value));
        }
        Ok(History {
            recent: recent.into_iter().collect(),
            verdicts,
        })
    }
}

fn summary_json(runs_root: &Utf8Path, meta: &RunMetadata) -> Value {
    json!({
        "run_id": meta.run_id,
        "status": meta.status,
        "objective": meta.objective,
        "created_at": timestamp(meta.created_at),
        "updated_at": timestamp(meta.updated_at),
        "path": runs_root.join(&meta.run_id),
    })
}

/// A one-line description of the events people care about in a timeline.
pub fn describe(event: &RunEvent) -> Option<String> {
    Some(match event {
        RunEvent::Input(Input::MessageDelivered { role, text, .. }) => {
            format!("operator → {role}: {}", one_line(text, 80))
        }
        RunEvent::Input(_) => return None,
        RunEvent::Note(note) => match note {
            Note::DriverStarted { resumed, pid } => {
                format!(
                    "driver started (pid {pid}{})",
                    if *resumed { ", resumed" } else { "" }
                )
            }
            Note::SandboxOff { roles } => {
                format!("warning: no sandbox for {}", roles.join(", "))
            }
            Note::ObjectivePosted { .. } => "objective posted to the solver".to_string(),
            Note::InvalidSignal { error, .. } => {
                format!("solver reply rejected: {}", one_line(error, 80))
            }
            Note::DirectionRequested { prompt } => {
                format!("solver → director: {}", one_line(prompt, 80))
            }
            Note::DirectorReasked { .. } => {
                "director asked again (reply did not parse)".to_string()
            }
            Note::DirectorFailed { error, .. } => {
                format!("director failed: {}", one_line(error, 80))
            }
            Note::DirectiveIssued { directive, .. } => {
                format!("director → solver: {}", one_line(directive, 80))
            }
            Note::FinalDelivery {
                deliverable_path, ..
            } => format!("solver delivered {deliverable_path}"),
            Note::DeliverableRejected { reason } => {
                format!("delivery refused: {}", one_line(reason, 80))
            }
            Note::VerificationStarted { round, roles } => {
                format!("verification round {round}: {}", roles.join(", "))
            }
            Note::VerdictRecorded {
                role,
                verdict,
                reasons,
                ..
            } => {
                let word = if verdict.is_pass() { "pass" } else { "fail" };
                if reasons.is_empty() {
                    format!("{role}: {word}")
                } else {
                    format!("{role}: {word} ({})", one_line(&reasons.join("; "), 80))
                }
            }
            Note::VerifierNoVerdict { role, error } => {
                format!("{role} gave no verdict: {}", one_line(error, 60))
            }
            Note::VerifierReplaced { role } => format!("{role} replaced by a fresh session"),
            Note::VerificationSummary { round, overall, .. } => format!(
                "round {round} overall: {}",
                if overall.is_pass() { "pass" } else { "fail" }
            ),
            Note::BudgetWarning { reason } => format!("budget warning: {reason}"),
            Note::ToolCallStarted { .. }
            | Note::ToolCallFinished { .. }
            | Note::ModelRetry { .. } => return None,
            Note::Compacted {
                role,
                prompt_tokens,
                ..
            } => format!("{role} compacted at {prompt_tokens} prompt tokens"),
            Note::RunSucceeded {
                deliverable_path, ..
            } => format!("run succeeded: {deliverable_path}"),
            Note::RunFailed { reason } => format!("run failed: {}", one_line(reason, 80)),
            Note::BudgetExhausted { reason } => format!("budget exhausted: {reason}"),
            Note::RunInterrupted => "run interrupted".to_string(),
        },
    })
}

fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// An RFC 3339 timestamp at second precision, UTC.
pub fn timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn clock(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

/// The first line of `text`, cut at `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let cut: String = line.chars().take(max).collect();
    if cut.len() < line.len() || text.trim().lines().nth(1).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}
