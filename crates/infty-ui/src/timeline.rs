//! The run page's timeline: each journal line as one list item (who → whom, what, details
//! folded away), newest first, one bounded page at a time from the store.
//!
//! Every text here comes from a model or a tool and is rendered through maud's escaping.
//! This module must never read a whole journal.

use infty_core::events::{DeliverableCheck, Input, Note, RunEvent, Terminal};
use infty_signals::VerifierDecision;
use infty_store::{JournalLine, JournalPage, Role};
use maud::{Markup, html};
use serde_json::Value;

use crate::page::{one_line, tokens, when};

/// How a timeline item looks: its kind (a CSS class), who spoke to whom, a one-line
/// summary and the full text behind a fold.
struct View {
    class: &'static str,
    from: String,
    to: Option<String>,
    summary: String,
    detail: Option<String>,
}

fn view(from: &str, to: Option<&str>, class: &'static str, summary: impl Into<String>) -> View {
    View {
        class,
        from: from.to_owned(),
        to: to.map(str::to_owned),
        summary: summary.into(),
        detail: None,
    }
}

impl View {
    fn detail(mut self, text: impl Into<String>) -> View {
        let text = text.into();
        if !text.trim().is_empty() {
            self.detail = Some(text);
        }
        self
    }
}

fn describe(event: RunEvent) -> View {
    match event {
        RunEvent::Input(input) => match input {
            Input::Started => view("run", None, "run", "started"),
            Input::Resumed => view("run", None, "run", "resumed"),
            Input::SolverReplied { text } => {
                view(Role::SOLVER, None, "message", one_line(&text, 140)).detail(text)
            }
            Input::SolverFailed { error, .. } => {
                view(Role::SOLVER, None, "failure", "turn failed").detail(error)
            }
            Input::DirectorReplied { text } => {
                view(Role::DIRECTOR, None, "message", one_line(&text, 140)).detail(text)
            }
            Input::DirectorFailed { error, .. } => {
                view(Role::DIRECTOR, None, "failure", "call failed").detail(error)
            }
            Input::DeliverableChecked { check } => match check {
                DeliverableCheck::Accepted { path, fingerprint } => view(
                    "check",
                    None,
                    "check",
                    match fingerprint {
                        Some(fingerprint) => format!(
                            "deliverable accepted: {path} ({} files fingerprinted)",
                            fingerprint.files.len()
                        ),
                        None => format!("deliverable accepted: {path}"),
                    },
                ),
                DeliverableCheck::Refused { reason } => {
                    view("check", None, "failure", "deliverable refused").detail(reason)
                }
            },
            Input::VerifierReplied { role, text } => {
                view(role.as_str(), None, "message", one_line(&text, 140)).detail(text)
            }
            Input::VerifierFailed { role, error, .. } => {
                view(role.as_str(), None, "failure", "call failed").detail(error)
            }
            Input::VerifiersReplaced { roles } => view(
                "run",
                None,
                "retry",
                format!("verifiers replaced: {}", roles.join(", ")),
            ),
            Input::MessageDelivered { role, text, .. } => view(
                "operator",
                Some(role.as_str()),
                "delivery",
                one_line(&text, 140),
            )
            .detail(text),
            Input::UsageRecorded {
                role,
                usage,
                cost_usd,
            } => view(
                role.as_str(),
                None,
                "usage",
                if cost_usd > 0.0 {
                    format!("{} tokens, ${cost_usd:.4}", tokens(usage.total_tokens))
                } else {
                    format!("{} tokens", tokens(usage.total_tokens))
                },
            ),
            Input::SolverWork { summary, .. } => {
                view(Role::SOLVER, None, "work", one_line(&summary, 140)).detail(summary)
            }
            Input::CheckFinished { result } => view(
                "check",
                None,
                if result.passed { "pass" } else { "failure" },
                format!(
                    "check {} {}",
                    result.name,
                    if result.passed {
                        "passed"
                    } else if result.timed_out {
                        "timed out"
                    } else {
                        "failed"
                    }
                ),
            )
            .detail(result.output),
            Input::BudgetsSet { .. } => view("run", None, "run", "budgets set"),
            Input::DeliverableRechecked { check } => match check {
                DeliverableCheck::Accepted { .. } => view(
                    "check",
                    None,
                    "check",
                    "deliverable rechecked after verification",
                ),
                DeliverableCheck::Refused { reason } => {
                    view("check", None, "failure", "deliverable recheck refused").detail(reason)
                }
            },
            Input::Cancel => view("operator", None, "run", "cancel requested"),
        },
        RunEvent::Note(note) => match note {
            Note::DriverStarted { pid, resumed } => view(
                "run",
                None,
                "run",
                format!(
                    "driver {} (pid {pid})",
                    if resumed { "resumed" } else { "started" }
                ),
            ),
            Note::ObjectivePosted { objective } => view(
                "orchestrator",
                Some(Role::SOLVER),
                "message",
                one_line(&objective, 140),
            )
            .detail(objective),
            Note::InvalidSignal { error, consecutive } => view(
                Role::SOLVER,
                None,
                "failure",
                format!("invalid signal ({consecutive} in a row)"),
            )
            .detail(error),
            Note::DirectionRequested { prompt } => view(
                Role::SOLVER,
                Some(Role::DIRECTOR),
                "message",
                one_line(&prompt, 140),
            )
            .detail(prompt),
            Note::DirectorReasked { error } => {
                view("orchestrator", Some(Role::DIRECTOR), "retry", "asked again").detail(error)
            }
            Note::DirectorFailed { error, attempts } => view(
                Role::DIRECTOR,
                None,
                "failure",
                format!("failed (attempt {attempts})"),
            )
            .detail(error),
            Note::DirectiveIssued {
                directive,
                rationale,
                raw,
            } => view(
                Role::DIRECTOR,
                Some(Role::SOLVER),
                "message",
                one_line(&directive, 140),
            )
            .detail(match (rationale, raw) {
                (Some(r), _) => format!("{directive}\n\nrationale: {r}"),
                (None, true) => format!("{directive}\n\n(forwarded raw: it never parsed)"),
                (None, false) => directive,
            }),
            Note::FinalDelivery {
                deliverable_path,
                summary,
            } => view(
                Role::SOLVER,
                Some("verifiers"),
                "delivery",
                format!("delivered {deliverable_path}"),
            )
            .detail(summary.unwrap_or_default()),
            Note::DeliverableRejected { reason } => {
                view("check", None, "failure", "delivery rejected").detail(reason)
            }
            Note::VerificationStarted { round, roles } => view(
                "orchestrator",
                Some(&roles.join(", ")),
                "check",
                format!("verification round {round}"),
            ),
            Note::VerdictRecorded {
                role,
                verdict,
                reasons,
                suggestions,
            } => {
                let pass = verdict == VerifierDecision::Pass;
                let mut detail = reasons.join("\n");
                if !suggestions.is_empty() {
                    detail.push_str("\n\nsuggestions:\n");
                    detail.push_str(&suggestions.join("\n"));
                }
                view(
                    role.as_str(),
                    None,
                    if pass { "pass" } else { "fail" },
                    if pass {
                        "verdict: pass"
                    } else {
                        "verdict: fail"
                    },
                )
                .detail(detail)
            }
            Note::VerifierNoVerdict { role, error } => {
                view(role.as_str(), None, "failure", "no verdict").detail(error)
            }
            Note::VerifierReplaced { role } => {
                view(role.as_str(), None, "retry", "session replaced")
            }
            Note::VerificationSummary {
                round,
                overall,
                passed,
                failed,
            } => view(
                "orchestrator",
                None,
                if overall == VerifierDecision::Pass {
                    "pass"
                } else {
                    "fail"
                },
                format!(
                    "round {round}: {} ({} passed, {} failed)",
                    if overall == VerifierDecision::Pass {
                        "pass"
                    } else {
                        "fail"
                    },
                    passed.len(),
                    failed.len()
                ),
            ),
            Note::BudgetWarning { reason } => {
                view("run", None, "retry", "budget nearly spent").detail(reason)
            }
            Note::ToolCallStarted {
                role,
                tool,
                call_id,
            } => view(role.as_str(), None, "tool", format!("{tool} started")).detail(call_id),
            Note::ToolCallFinished {
                role,
                tool,
                ok,
                call_id,
            } => view(
                role.as_str(),
                None,
                if ok { "tool" } else { "failure" },
                format!("{tool}: {}", if ok { "ok" } else { "failed" }),
            )
            .detail(call_id),
            Note::Compacted {
                role,
                prompt_tokens,
                kept_items,
                cause,
            } => view(
                role.as_str(),
                None,
                "compaction",
                format!(
                    "history compacted {}, {kept_items} items kept",
                    cause.explain(tokens(prompt_tokens))
                ),
            ),
            Note::ModelRetry {
                role,
                attempt,
                reason,
            } => view(
                role.as_str(),
                None,
                "retry",
                format!("model call retried (attempt {attempt})"),
            )
            .detail(reason),
            Note::Ended(ending) => ended(ending),
            // The journal input of a check carries its output; the note adds nothing here.
            Note::CheckFinished { name, passed, .. } => view(
                "check",
                None,
                if passed { "pass" } else { "failure" },
                format!("check {name} {}", if passed { "passed" } else { "failed" }),
            ),
            Note::StallDetected {
                evidence,
                escalation,
            } => view(
                "orchestrator",
                Some(Role::DIRECTOR),
                "retry",
                format!("stalled (escalation {escalation})"),
            )
            .detail(evidence),
            Note::HandoffRequested { reason } => view(
                "orchestrator",
                Some(Role::SOLVER),
                "run",
                "hand-off requested",
            )
            .detail(reason),
            Note::RecordEditAccepted { broken } => view(
                "operator",
                None,
                "failure",
                "resumed with a record changed outside infty",
            )
            .detail(
                broken
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Note::OutputCapped {
                role,
                max_output_tokens,
            } => view(
                role.as_str(),
                None,
                "retry",
                format!("reply cut at its cap of {max_output_tokens} output tokens"),
            ),
            Note::SandboxOff { roles } => view(
                "run",
                None,
                "failure",
                format!("sandbox off for {}", roles.join(", ")),
            ),
            Note::RecordSealed => view("run", None, "run", "older record sealed as found"),
            Note::VerdictsVoided { round, changed } => view(
                "check",
                None,
                "failure",
                format!("round {round} verdicts void: the deliverable changed"),
            )
            .detail(changed.join("\n")),
        },
    }
}

/// How the run ended, as a timeline item.
fn ended(ending: Terminal) -> View {
    match ending {
        Terminal::Succeeded {
            deliverable_path,
            summary,
        } => view(
            "run",
            None,
            "pass",
            format!("succeeded: {deliverable_path}"),
        )
        .detail(summary.unwrap_or_default()),
        Terminal::Failed { reason } => {
            view("run", None, "failure", one_line(&reason, 140)).detail(reason)
        }
        Terminal::BudgetExhausted { reason } => {
            view("run", None, "failure", "budget exhausted").detail(reason)
        }
        Terminal::Interrupted => view("run", None, "run", "interrupted"),
        Terminal::Blocked { reason } => view("run", None, "failure", "blocked").detail(reason),
        Terminal::UsageLimited {
            reason,
            resume_after,
        } => view(
            "run",
            None,
            "failure",
            format!(
                "usage limited until {}",
                resume_after
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
        )
        .detail(reason),
    }
}

/// One journal line as a list item.
pub(crate) fn render_timeline_item(line: &JournalLine<Value>) -> Markup {
    let (seq, at, view) = match &line.entry {
        Ok(entry) => {
            let view = match serde_json::from_value::<RunEvent>(entry.event.clone()) {
                Ok(event) => describe(event),
                // A kind this version does not know: name it and show it raw.
                Err(_) => view(
                    "journal",
                    None,
                    "unknown",
                    entry
                        .event
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                )
                .detail(without_seal(&line.text)),
            };
            (Some(entry.seq), Some(entry.at), view)
        }
        Err(reason) => (
            None,
            None,
            view(
                "journal",
                None,
                "failure",
                format!("unreadable line: {reason}"),
            )
            .detail(line.text.clone()),
        ),
    };
    html! {
        li class={ "event " (view.class) } data-seq=[seq] {
            span.when { (at.map(when).unwrap_or_default()) }
            span.who {
                span.role { (view.from) }
                @if let Some(to) = &view.to { " → " span.role { (to) } }
            }
            @match &view.detail {
                Some(detail) => details {
                    summary.what { (view.summary) }
                    pre.detail { (detail) }
                },
                None => span.what { (view.summary) },
            }
        }
    }
}

/// A page of items, newest first, and the link to the older ones.
pub(crate) fn render_timeline_page(run_id: &str, page: &JournalPage<Value>) -> Markup {
    html! {
        @for line in &page.lines { (render_timeline_item(line)) }
        @if let Some(older) = page.older {
            li.more {
                a.older href={ "/runs/" (run_id) "?before=" (older) }
                    data-fragment={ "/runs/" (run_id) "/timeline?before=" (older) } { "older events" }
            }
        }
    }
}

/// A raw journal line without its seal: the seal is the record's, not the event's, and
/// differs in every run.
fn without_seal(text: &str) -> String {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut map)) => {
            map.remove(infty_store::SEAL_KEY);
            Value::Object(map).to_string()
        }
        _ => text.to_owned(),
    }
}
