//! `infty list` and `infty show`: read run folders and present them to people or programs.
//!
//! The `--json` shapes are a stable interface (documented in the README): `list` prints an
//! array of summaries, `show` one object that adds roles, usage, outcome, error, options, the
//! verdict history and the recent journal. Keys are only ever added, never renamed or
//! removed. Reading never takes the run's lock or writes to its folder.

use std::collections::VecDeque;

use anyhow::Result;
use camino::Utf8Path;
use infty_core::events::{Input, Note, RunEvent, Terminal};
use infty_store::{FileState, RecordCheck, RunMetadata, RunStore, read_journal};
use serde::Serialize;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;

use crate::Coded;
use crate::args::{ListArgs, ShowArgs};

/// How many journal events `show` includes.
const RECENT_EVENTS: usize = 15;

/// `infty list`.
pub(crate) fn list(runs_root: &Utf8Path, args: &ListArgs) -> Result<u8> {
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
pub(crate) fn show(runs_root: &Utf8Path, args: &ShowArgs) -> Result<u8> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let meta = store.metadata();
    let record = store.check_record()?;
    let history = History::read(&store);
    if args.json {
        let mut value = summary_json(runs_root, meta);
        if let Value::Object(map) = &mut value {
            map.insert("roles".into(), serde_json::to_value(&meta.roles)?);
            map.insert("usage".into(), serde_json::to_value(&meta.usage)?);
            map.insert("outcome".into(), serde_json::to_value(&meta.outcome)?);
            map.insert("error".into(), serde_json::to_value(&meta.error)?);
            map.insert("options".into(), serde_json::to_value(&meta.options)?);
            if !meta.options.mcp.is_empty() {
                let servers = crate::mcp::servers_json(&meta.options.mcp);
                map.insert("mcp_servers".into(), servers);
            }
            map.insert("verdicts".into(), serde_json::to_value(&history.verdicts)?);
            map.insert("checks".into(), serde_json::to_value(&history.checks)?);
            let roles_cost: serde_json::Map<String, Value> = meta
                .cost_usd
                .iter()
                .map(|(role, usd)| (role.clone(), round_usd(*usd).into()))
                .collect();
            map.insert(
                "cost".into(),
                json!({"roles": roles_cost, "total_usd": round_usd(meta.total_cost_usd())}),
            );
            map.insert(
                "recent_events".into(),
                Value::Array(history.recent.iter().map(|(_, v)| v.clone()).collect()),
            );
            map.insert("record".into(), record_json(&record, &history));
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
    if let Some(at) = meta.resume_after {
        println!("Resume after: {}", timestamp(at));
    }
    println!("Record:    {}", record_line(&record));
    for broken in record.broken() {
        println!("  changed outside infty: {broken}");
    }
    if let Some(error) = &history.unreadable {
        println!("  the journal cannot be read past: {error}");
    }
    println!();
    println!("Roles:");
    for role in &meta.roles {
        let usage = meta
            .usage
            .get(role.role.as_str())
            .copied()
            .unwrap_or_default();
        let effort = role
            .reasoning_effort
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        let cost = meta
            .cost_usd
            .get(role.role.as_str())
            .map(|usd| format!("  ${usd:.4}"))
            .unwrap_or_default();
        println!(
            "  {:<12} {}{}  tokens: {} in / {} out{cost}",
            role.role, role.model, effort, usage.input_tokens, usage.output_tokens
        );
    }
    let total = meta.total_usage();
    let cost = if meta.cost_usd.is_empty() {
        String::new()
    } else {
        format!(", ${:.4}", meta.total_cost_usd())
    };
    println!(
        "  {:<12} {} tokens ({} in / {} out){cost}",
        "total", total.total_tokens, total.input_tokens, total.output_tokens
    );
    for line in crate::mcp::servers_text(&meta.options.mcp) {
        println!("{line}");
    }
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
    if !history.checks.is_empty() {
        println!();
        println!("Checks:");
        for check in &history.checks {
            println!(
                "  round {:<3} {:<20} {}",
                check.round,
                one_line(&check.name, 20),
                check_outcome(check.passed, check.exit_code, check.timed_out)
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
pub(crate) struct VerdictEntry {
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

/// One completion check's result in a verification round, as `show` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CheckEntry {
    /// The verification round, from 1.
    pub round: u32,
    /// The check.
    pub name: String,
    /// Its command line.
    pub command: String,
    /// Whether it passed.
    pub passed: bool,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Whether it was killed at its time limit.
    pub timed_out: bool,
    /// How it ended and the tail of its output.
    pub output: String,
}

/// The `Record:` line of `show`: whether the journal and rollouts are as infty wrote them.
fn record_line(record: &RecordCheck) -> String {
    let rollouts = record.files.len().saturating_sub(1);
    match record.summary() {
        "broken" => format!(
            "BROKEN: changed outside infty ({} of {} files)",
            record.broken().len(),
            record.files.len()
        ),
        "sealed" => format!("sealed (journal and {rollouts} rollouts intact)"),
        _ => "unsealed (an older run, written before records were sealed)".to_owned(),
    }
}

/// `show --json`'s `record` object.
fn record_json(record: &RecordCheck, history: &History) -> Value {
    let files: Vec<Value> = record
        .files
        .iter()
        .map(|file| {
            let mut value = json!({"path": file.path, "lines": file.lines});
            match &file.state {
                FileState::Sealed => value["state"] = "sealed".into(),
                FileState::Unsealed => value["state"] = "unsealed".into(),
                FileState::Broken { line, reason } => {
                    value["state"] = "broken".into();
                    value["line"] = (*line).into();
                    value["reason"] = reason.clone().into();
                }
            }
            value
        })
        .collect();
    json!({
        "state": record.summary(),
        "keyed": record.keyed,
        "broken": record.broken(),
        "files": files,
        "journal_error": history.unreadable,
    })
}

/// What `show` takes from the journal, in one pass.
struct History {
    /// The last events people read, as a text line and as JSON.
    recent: Vec<(String, Value)>,
    /// Every verdict, oldest first.
    verdicts: Vec<VerdictEntry>,
    /// Every completion check's result, oldest first.
    checks: Vec<CheckEntry>,
    /// Why the journal could not be read to its end (shown, not fatal: an edited record is
    /// exactly what `show` must still describe).
    unreadable: Option<String>,
}

impl History {
    fn read(store: &RunStore) -> History {
        let mut recent = VecDeque::with_capacity(RECENT_EVENTS);
        let mut verdicts = Vec::new();
        let mut checks = Vec::new();
        let mut round = 0;
        let mut unreadable = None;
        let entries = match read_journal::<RunEvent>(&store.events_path()) {
            Ok(entries) => entries,
            Err(error) => {
                return History {
                    recent: Vec::new(),
                    verdicts,
                    checks,
                    unreadable: Some(error.to_string()),
                };
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    unreadable = Some(error.to_string());
                    break;
                }
            };
            match &entry.event {
                RunEvent::Note(Note::VerificationStarted { round: r, .. }) => round = *r,
                RunEvent::Note(Note::CheckFinished { round: r, .. }) => {
                    if let Some(last) = checks.last_mut().filter(|c: &&mut CheckEntry| c.round == 0)
                    {
                        last.round = *r;
                    }
                }
                RunEvent::Input(Input::CheckFinished { result }) => checks.push(CheckEntry {
                    // The note that names the round follows its input.
                    round: 0,
                    name: result.name.clone(),
                    command: result.command.clone(),
                    passed: result.passed,
                    exit_code: result.exit_code,
                    timed_out: result.timed_out,
                    output: result.output.clone(),
                }),
                RunEvent::Note(Note::VerdictRecorded {
                    role,
                    verdict,
                    reasons,
                    suggestions,
                }) => verdicts.push(VerdictEntry {
                    round,
                    role: role.to_string(),
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
        History {
            recent: recent.into_iter().collect(),
            verdicts,
            checks,
            unreadable,
        }
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
        "cost_usd": round_usd(meta.total_cost_usd()),
        "resume_after": meta.resume_after.map(timestamp),
    })
}

/// Dollars rounded to a millionth, so JSON readers see `0.0123`, not float noise.
fn round_usd(usd: f64) -> f64 {
    (usd * 1e6).round() / 1e6
}

/// A one-line description of the events people care about in a timeline.
pub(crate) fn describe(event: &RunEvent) -> Option<String> {
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
                cause,
                ..
            } => format!("{role} compacted {}", cause.explain(prompt_tokens)),
            Note::OutputCapped {
                role,
                max_output_tokens,
            } => format!("{role} response cut at its output cap ({max_output_tokens} tokens)"),
            Note::Ended(Terminal::Succeeded {
                deliverable_path, ..
            }) => format!("run succeeded: {deliverable_path}"),
            Note::Ended(Terminal::Failed { reason }) => {
                format!("run failed: {}", one_line(reason, 80))
            }
            Note::Ended(Terminal::BudgetExhausted { reason }) => {
                format!("budget exhausted: {reason}")
            }
            Note::Ended(Terminal::Interrupted) => "run interrupted".to_string(),
            Note::CheckFinished {
                round,
                name,
                passed,
                exit_code,
                timed_out,
            } => format!(
                "check {name} (round {round}): {}",
                check_outcome(*passed, *exit_code, *timed_out)
            ),
            Note::StallDetected {
                evidence,
                escalation,
            } => format!(
                "director asked about a stall (escalation {escalation}): {}",
                one_line(evidence, 80)
            ),
            Note::HandoffRequested { reason } => {
                format!("budget spent ({reason}): solver writes its hand-off")
            }
            Note::Ended(Terminal::Blocked { reason }) => {
                format!("run blocked: {}", one_line(reason, 80))
            }
            Note::Ended(Terminal::UsageLimited {
                reason,
                resume_after,
            }) => format!(
                "run usage limited until {}: {}",
                timestamp(*resume_after),
                one_line(reason, 60)
            ),
            Note::RecordEditAccepted { broken } => format!(
                "resumed with a record changed outside infty, accepted by the operator ({})",
                one_line(
                    &broken
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    120
                )
            ),
            Note::RecordSealed => "older run's record sealed as found".to_string(),
            Note::VerdictsVoided { round, changed } => format!(
                "round {round} verdicts void: the deliverable changed during verification ({})",
                one_line(&changed.join(", "), 80)
            ),
        },
    })
}

/// `passed`, `timed out`, `failed (exit code 1)`.
pub(crate) fn check_outcome(passed: bool, exit_code: Option<i32>, timed_out: bool) -> String {
    match (passed, timed_out, exit_code) {
        (true, _, _) => "passed".to_string(),
        (false, true, _) => "timed out".to_string(),
        (false, false, Some(code)) => format!("failed (exit code {code})"),
        (false, false, None) => "failed (killed)".to_string(),
    }
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
pub(crate) fn timestamp(at: time::OffsetDateTime) -> String {
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
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let line = text.trim().lines().next().unwrap_or_default();
    let cut: String = line.chars().take(max).collect();
    if cut.len() < line.len() || text.trim().lines().nth(1).is_some() {
        format!("{cut}…")
    } else {
        cut
    }
}
