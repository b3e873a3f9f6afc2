//! `infty logs RUN [--follow]`: a run's journal as a timeline, optionally tailed while
//! another process drives the run.
//!
//! It only reads: never the lock, never a write to the run folder, so following a run never
//! disturbs its driver. Following polls the journal for new complete lines (a half-written
//! last line waits for its newline) and stops once `run.json` says the run stopped and no
//! line is left to print.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use camino::Utf8Path;
use infty_core::events::{Input, Note, RunEvent};
use infty_store::{JournalTail, RunStore};
use serde_json::Value;

use crate::Coded;
use crate::args::LogsArgs;
use crate::inspect::{describe, one_line, timestamp};

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(200);

/// Lines read from the journal at a time, so a long journal is printed as it is read.
const READ_BATCH: usize = 1024;

/// `infty logs`.
pub(crate) fn logs(runs_root: &Utf8Path, args: &LogsArgs) -> Result<u8> {
    infty_store::validate_run_id(&args.run_id).map_err(|error| Coded::usage(error.to_string()))?;
    let store = RunStore::open_id(runs_root, &args.run_id)?;
    let mut tail = JournalTail::new(store.events_path());
    let mut out = std::io::stdout().lock();
    loop {
        let lines = read_new(&mut tail)?;
        let idle = lines.is_empty();
        if emit(&mut out, &lines, args.json).is_err() {
            // The reader went away (`infty logs RUN | head`): nothing left to do.
            return Ok(0);
        }
        if !args.follow {
            return Ok(0);
        }
        if idle {
            let status = RunStore::open(store.dir())?.metadata().status;
            if status.is_terminal() {
                // Lines written just before the status changed are printed before leaving.
                let last = read_new(&mut tail)?;
                let _ = emit(&mut out, &last, args.json);
                return Ok(0);
            }
            std::thread::sleep(POLL);
        }
    }
}

fn emit(out: &mut impl Write, lines: &[String], json: bool) -> std::io::Result<()> {
    for line in lines {
        if json {
            writeln!(out, "{line}")?;
        } else if let Some(text) = timeline_line(line) {
            writeln!(out, "{text}")?;
        }
    }
    out.flush()
}

/// One journal line as a timeline entry: `<time>  <what happened>`, or `None` for the
/// bookkeeping events people do not read (usage records, raw replies).
pub(crate) fn timeline_line(line: &str) -> Option<String> {
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return Some(format!("(unreadable journal line: {})", one_line(line, 60)));
    };
    let at = value
        .get("at")
        .and_then(Value::as_str)
        .and_then(|at| {
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(timestamp)
        .unwrap_or_else(|| "?".to_string());
    let text = match serde_json::from_value::<RunEvent>(value.clone()) {
        Ok(event) => describe_all(&event)?,
        // A kind this version does not know (a newer infty wrote it): name it.
        Err(_) => value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
    };
    Some(format!("{at}  {text}"))
}

/// [`describe`], plus the details a full log shows and a short timeline leaves out.
fn describe_all(event: &RunEvent) -> Option<String> {
    match event {
        RunEvent::Note(Note::ToolCallFinished { role, tool, ok, .. }) => Some(format!(
            "{role} ran {tool}: {}",
            if *ok { "ok" } else { "failed" }
        )),
        RunEvent::Note(Note::ModelRetry {
            role,
            attempt,
            reason,
        }) => Some(format!(
            "{role}: model call retried (attempt {attempt}): {}",
            one_line(reason, 80)
        )),
        RunEvent::Input(Input::SolverFailed { error, .. }) => {
            Some(format!("solver turn failed: {}", one_line(error, 80)))
        }
        RunEvent::Input(Input::VerifierFailed { role, error, .. }) => {
            Some(format!("{role} failed: {}", one_line(error, 80)))
        }
        _ => describe(event),
    }
}

/// The complete lines appended since the last call, through the store's one journal tail.
fn read_new(tail: &mut JournalTail) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let batch = tail
            .read_new::<serde::de::IgnoredAny>(READ_BATCH)
            .with_context(|| format!("cannot read {}", tail.path()))?;
        let done = batch.len() < READ_BATCH;
        lines.extend(batch.into_iter().map(|line| line.text));
        if done {
            return Ok(lines);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_lines() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"seq":1,"at":"2026-01-02T03:04:05.123Z","kind":"objective_posted","objective":"x"}"#,
                Some("2026-01-02T03:04:05Z  objective posted to the solver"),
            ),
            (
                r#"{"seq":2,"at":"2026-01-02T03:04:05Z","kind":"tool_call_finished","role":"solver","call_id":"c","tool":"shell","ok":false}"#,
                Some("2026-01-02T03:04:05Z  solver ran shell: failed"),
            ),
            (
                r#"{"seq":3,"at":"2026-01-02T03:04:05Z","kind":"usage_recorded","role":"solver","usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}"#,
                None,
            ),
            (
                r#"{"seq":4,"at":"2026-01-02T03:04:05Z","kind":"from_the_future"}"#,
                Some("2026-01-02T03:04:05Z  from_the_future"),
            ),
            ("not json", Some("(unreadable journal line: not json)")),
        ];
        for (line, expected) in cases {
            assert_eq!(timeline_line(line).as_deref(), *expected, "{line}");
        }
    }
}
