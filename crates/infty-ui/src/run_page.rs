//! The run page: status, steering, usage against budgets, verdict history, token chart,
//! settings, the newest page of the timeline, links to each conversation and the deliverable.
//!
//! A page reads `run.json`, one page of the journal (newest first, from the store) and the
//! run's digest; it never reads the whole journal. This module must never write.

use std::sync::{Arc, PoisonError};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use camino::Utf8Path;
use infty_store::{JournalCursor, Role, RunMetadata, RunStatus, RunStore, StoreError};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::chart::token_chart;
use crate::digest::RunDigest;
use crate::page::{Failure, html_response, layout, tokens, when};
use crate::server::{AppState, blocking};
use crate::timeline::render_timeline_page;

/// Timeline items per page.
pub(crate) const TIMELINE_PAGE: usize = 100;

/// The run page's query.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct RunQuery {
    /// Show the timeline page ending before this byte offset.
    pub before: Option<u64>,
    /// What the last steering action did (`sent`, `interrupted`, `resumed`).
    pub done: Option<String>,
}

/// Opens a run for a request: an invalid id is a 400, an unknown one a 404.
pub(crate) fn open_run(runs_root: &Utf8Path, run_id: &str) -> Result<RunStore, Failure> {
    infty_store::validate_run_id(run_id).map_err(|e| Failure::bad_request(e.to_string()))?;
    RunStore::open_id(runs_root, run_id).map_err(|e| match e {
        StoreError::NotFound { .. } | StoreError::NotARun { .. } => {
            Failure::not_found(e.to_string())
        }
        other => Failure::internal(other.to_string()),
    })
}

/// `GET /runs/{run_id}`.
pub(crate) async fn run_page(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, Failure> {
    let markup = blocking(move || {
        let store = open_run(&state.runs_root, &run_id)?;
        let events = store.events_path();
        // The cursor first: the page ends where live updates start, so nothing is missed
        // or shown twice.
        let cursor =
            infty_store::end_cursor(&events).map_err(|e| Failure::internal(e.to_string()))?;
        let before = query.before.unwrap_or(cursor.offset).min(cursor.offset);
        let page = infty_store::read_journal_page::<Value>(&events, Some(before), TIMELINE_PAGE)
            .map_err(|e| Failure::internal(e.to_string()))?;
        let digest = state.digest(&run_id);
        let digest = digest.lock().unwrap_or_else(PoisonError::into_inner);
        let rollouts = rollout_names(store.dir());
        Ok::<_, Failure>(render_run_page(&RunView {
            meta: store.metadata(),
            digest: &digest,
            csrf: &state.csrf,
            timeline: render_timeline_page(&run_id, &page),
            cursor: query.before.is_none().then_some(cursor),
            rollouts: &rollouts,
            done: query.done.as_deref(),
        }))
    })
    .await??;
    Ok(html_response(StatusCode::OK, markup))
}

/// `GET /runs/{run_id}/timeline?before=N`: an older page of the timeline, as list items.
pub(crate) async fn timeline_page(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Response, Failure> {
    let markup = blocking(move || {
        let store = open_run(&state.runs_root, &run_id)?;
        let page = infty_store::read_journal_page::<Value>(
            &store.events_path(),
            query.before,
            TIMELINE_PAGE,
        )
        .map_err(|e| Failure::internal(e.to_string()))?;
        Ok::<_, Failure>(render_timeline_page(&run_id, &page))
    })
    .await??;
    Ok(html_response(StatusCode::OK, markup))
}

/// `GET /runs/{run_id}/summary`: the part of the run page that changes as the run goes.
pub(crate) async fn summary_fragment(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
) -> Result<Response, Failure> {
    let markup = blocking(move || summary_now(&state, &run_id)).await??;
    Ok(html_response(StatusCode::OK, markup))
}

/// The summary of a run as it is now.
pub(crate) fn summary_now(state: &AppState, run_id: &str) -> Result<Markup, Failure> {
    let store = open_run(&state.runs_root, run_id)?;
    let digest = state.digest(run_id);
    let digest = digest.lock().unwrap_or_else(PoisonError::into_inner);
    Ok(render_summary(store.metadata(), &digest, &state.csrf))
}

/// What the run page shows.
pub(crate) struct RunView<'a> {
    /// `run.json`.
    pub meta: &'a RunMetadata,
    /// The journal's digest.
    pub digest: &'a RunDigest,
    /// The CSRF value for the forms.
    pub csrf: &'a str,
    /// The rendered timeline page.
    pub timeline: Markup,
    /// Where live updates start (only on the newest page).
    pub cursor: Option<JournalCursor>,
    /// The conversations (rollout file stems).
    pub rollouts: &'a [String],
    /// The last steering action.
    pub done: Option<&'a str>,
}

/// Encodes a cursor for a URL or an SSE id.
pub(crate) fn cursor_token(cursor: JournalCursor) -> String {
    format!("{}-{}-{}", cursor.offset, cursor.line, cursor.last_seq)
}

/// Decodes [`cursor_token`].
pub(crate) fn parse_cursor(text: &str) -> Option<JournalCursor> {
    let mut parts = text.split('-').map(str::parse::<u64>);
    let cursor = JournalCursor {
        offset: parts.next()?.ok()?,
        line: parts.next()?.ok()?,
        last_seq: parts.next()?.ok()?,
    };
    parts.next().is_none().then_some(cursor)
}

/// The whole run page.
pub(crate) fn render_run_page(view: &RunView<'_>) -> Markup {
    let meta = view.meta;
    let run_id = &meta.run_id;
    let notice = match view.done {
        Some("sent") => Some("message queued: it is delivered with the role's next turn"),
        Some("interrupted") => Some("interrupt sent to the driver"),
        Some("resumed") => Some("resume started"),
        _ => None,
    };
    let body = html! {
        nav.crumbs { a href="/" { "runs" } " / " span.mono { (run_id) } }
        h1.mono { (run_id) }
        p.objective { (meta.objective) }
        @if let Some(notice) = notice { p.notice role="status" { (notice) } }
        section #summary data-fragment={ "/runs/" (run_id) "/summary" } {
            (render_summary(meta, view.digest, view.csrf))
        }
        section.steer {
            h2 { "Send a message" }
            form method="post" action={ "/runs/" (run_id) "/send" } #send {
                input type="hidden" name="csrf" value=(view.csrf);
                label { "to "
                    select name="role" {
                        @for role in role_names(meta) {
                            option value=(role) selected[role == Role::SOLVER] { (role) }
                        }
                    }
                }
                textarea name="text" rows="3" required placeholder="delivered with the role's next turn" {}
                button type="submit" { "Queue message" }
            }
        }
        section {
            h2 { "Timeline" }
            ol #timeline.timeline
                data-live=[view.cursor.map(|c| format!("/runs/{run_id}/live?cursor={}", cursor_token(c)))] {
                (view.timeline)
            }
        }
        section.links {
            h2 { "Conversations" }
            @if view.rollouts.is_empty() { p.muted { "no conversation recorded yet" } }
            ul {
                @for name in view.rollouts {
                    li { a href={ "/runs/" (run_id) "/rollouts/" (name) } { (name) } }
                }
            }
            h2 { "Deliverable" }
            p { a href={ "/runs/" (run_id) "/files" } { "browse the deliverable" } }
        }
    };
    layout(run_id, view.csrf, body)
}

fn role_names(meta: &RunMetadata) -> Vec<String> {
    let mut names: Vec<String> = meta.roles.iter().map(|r| r.role.to_string()).collect();
    if !names.iter().any(|n| n == Role::SOLVER) {
        names.insert(0, Role::SOLVER.to_owned());
    }
    names
}

/// Status, steering buttons, usage and budgets, verdicts, chart and settings.
pub(crate) fn render_summary(meta: &RunMetadata, digest: &RunDigest, csrf: &str) -> Markup {
    let run_id = &meta.run_id;
    let total = meta.total_usage();
    let budgets = &meta.options.budgets;
    let cost = cost_of(meta);
    html! {
        div.facts {
            span class={ "status " (meta.status.as_str()) } #status { (meta.status.as_str()) }
            span { "created " (when(meta.created_at)) }
            span { "updated " (when(meta.updated_at)) }
            @if let Some(error) = &meta.error { span.failure { (error) } }
            @if let Some(outcome) = &meta.outcome { span { "deliverable " span.mono { (outcome.deliverable_path) } } }
        }
        div.actions {
            @if meta.status == RunStatus::Running {
                form method="post" action={ "/runs/" (run_id) "/interrupt" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button.danger type="submit" #interrupt { "Interrupt" }
                }
            }
            @if meta.status.can_resume() && meta.status != RunStatus::Running {
                form method="post" action={ "/runs/" (run_id) "/resume" } {
                    input type="hidden" name="csrf" value=(csrf);
                    button type="submit" #resume { "Resume" }
                }
            }
        }
        div.grid {
            div {
                h2 { "Usage and budgets" }
                table.kv {
                    tr { th { "tokens" } td { (tokens(total.total_tokens)) (limit(budgets.max_total_tokens)) } }
                    tr { th { "cost" } td { (cost.unwrap_or_else(|| "—".to_owned())) } }
                    tr { th { "solver turns" } td { (digest.solver_turns) (limit(budgets.max_solver_turns.map(u64::from))) } }
                    tr { th { "verification rounds" } td { (digest.rounds) (limit(budgets.max_verification_rounds.map(u64::from))) } }
                    tr { th { "wall clock" } td { "—" (limit_secs(budgets.max_wall_clock_secs)) } }
                    tr { th { "tool calls" } td { (digest.tool_calls.0) " (" (digest.tool_calls.1) " failed)" } }
                    tr { th { "journal events" } td { (digest.events) } }
                }
                @if !meta.usage.is_empty() {
                    table.usage {
                        thead { tr { th { "role" } th { "input" } th { "output" } th { "total" } } }
                        tbody {
                            @for (role, usage) in &meta.usage {
                                tr { td { (role) } td { (tokens(usage.input_tokens)) } td { (tokens(usage.output_tokens)) } td { (tokens(usage.total_tokens)) } }
                            }
                        }
                    }
                }
            }
            div {
                h2 { "Tokens over time" }
                (token_chart(&digest.usage))
                @if let Some(error) = &digest.error { p.failure { (error) } }
            }
        }
        h2 { "Verdicts" }
        @if digest.verdicts.is_empty() { p.muted { "no verdict yet" } }
        @else {
            table.verdicts {
                thead { tr { th { "round" } th { "verifier" } th { "verdict" } th { "reasons" } } }
                tbody {
                    @for v in digest.verdicts.iter().rev() {
                        tr {
                            td { (v.round) }
                            td { (v.role) }
                            td { span class={ "status " (if v.pass { "succeeded" } else { "failed" }) } { (if v.pass { "pass" } else { "fail" }) } }
                            td { @for r in &v.reasons { div { (r) } } }
                        }
                    }
                }
            }
        }
        details.settings {
            summary { "Settings" }
            table.kv {
                @for role in &meta.roles {
                    tr { th { "role " (role.role) } td { (role.model) @if let Some(e) = &role.reasoning_effort { " (" (e) ")" } } }
                }
                @for (key, value) in flatten(&serde_json::to_value(&meta.options).unwrap_or(Value::Null)) {
                    tr { th { (key) } td.mono { (value) } }
                }
            }
        }
    }
}

fn limit(max: Option<u64>) -> Markup {
    html! { @if let Some(max) = max { span.muted { " of " (tokens(max)) } } }
}

fn limit_secs(max: Option<u64>) -> Markup {
    html! { @if let Some(max) = max { span.muted { " of " (max) "s" } } }
}

/// The run's cost in US dollars, when any of its usage was priced.
pub(crate) fn cost_of(meta: &RunMetadata) -> Option<String> {
    if meta.cost_usd.is_empty() {
        return None;
    }
    Some(format!("${:.4}", meta.total_cost_usd()))
}

/// `{"a":{"b":1}}` as `[("a.b", "1")]`, for the settings table.
fn flatten(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    let key = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&key, value, out);
                }
            }
            Value::Null => out.push((prefix.to_owned(), "—".to_owned())),
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// The run's conversations: `rollouts/*.jsonl` file stems, sorted.
pub(crate) fn rollout_names(run_dir: &Utf8Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run_dir.join("rollouts"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".jsonl").map(str::to_owned))
        .filter(|n| crate::rollouts::valid_name(n))
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = JournalCursor {
            offset: 10,
            line: 2,
            last_seq: 3,
        };
        assert_eq!(parse_cursor(&cursor_token(cursor)), Some(cursor));
        for bad in ["", "1-2", "1-2-3-4", "a-b-c", "-1-2-3"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
