//! A role's conversation, item by item (messages, tool calls with their arguments, tool
//! outputs, reasoning, turn ends, compactions), fifty items a page.
//!
//! Items are read as plain JSON, so a rollout written by a newer infty still shows. Every
//! text is escaped; tool outputs are the likeliest place for hostile markup. This module
//! must never write, and never open a file other than `rollouts/<name>.jsonl`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use infty_store::JsonlReader;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::page::{Failure, html_response, layout};
use crate::run_page::open_run;
use crate::server::{AppState, blocking};

/// Items per page.
pub(crate) const ROLLOUT_PAGE: usize = 50;

/// Whether `name` can be a rollout's file stem (`solver`, `verifier-1.2`).
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 80
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// The page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct RolloutQuery {
    /// First item shown (from 0).
    pub from: Option<usize>,
}

/// `GET /runs/{run_id}/rollouts/{name}`.
pub(crate) async fn rollout_page(
    State(state): State<Arc<AppState>>,
    Path((run_id, name)): Path<(String, String)>,
    Query(query): Query<RolloutQuery>,
) -> Result<Response, Failure> {
    if !valid_name(&name) {
        return Err(Failure::bad_request(format!(
            "invalid conversation name `{name}`"
        )));
    }
    let from = query.from.unwrap_or(0);
    let csrf = state.csrf.clone();
    let markup = blocking(move || {
        let store = open_run(&state.runs_root, &run_id)?;
        let path = store.dir().join("rollouts").join(format!("{name}.jsonl"));
        if !path.is_file() {
            return Err(Failure::not_found(format!(
                "run {run_id} has no conversation `{name}`"
            )));
        }
        let reader =
            JsonlReader::<Value>::open(&path).map_err(|e| Failure::internal(e.to_string()))?;
        let mut items = Vec::new();
        let mut error = None;
        let mut more = false;
        for (index, item) in reader.enumerate().skip(from) {
            if items.len() == ROLLOUT_PAGE {
                more = true;
                break;
            }
            match item {
                Ok(value) => items.push((index, value)),
                Err(e) => {
                    error = Some(e.to_string());
                    break;
                }
            }
        }
        let body = html! {
            nav.crumbs { a href="/" { "runs" } " / " a.mono href={ "/runs/" (run_id) } { (run_id) } " / " (name) }
            h1 { "Conversation of " (name) }
            ol.rollout start=(from + 1) {
                @for (index, item) in &items { (render_item(*index, item)) }
            }
            @if let Some(error) = error { p.failure { (error) } }
            nav.pager {
                @if from > 0 {
                    a href={ "/runs/" (run_id) "/rollouts/" (name) "?from=" (from.saturating_sub(ROLLOUT_PAGE)) } { "earlier" }
                }
                @if more {
                    a href={ "/runs/" (run_id) "/rollouts/" (name) "?from=" (from + ROLLOUT_PAGE) } { "later" }
                }
            }
        };
        Ok(layout(&format!("{name} of {run_id}"), &csrf, body))
    })
    .await??;
    Ok(html_response(StatusCode::OK, markup))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// One rollout line.
fn render_item(index: usize, entry: &Value) -> Markup {
    let kind = text(entry, "entry");
    let item = entry.get("item").unwrap_or(&Value::Null);
    html! {
        li class={ "item entry-" (kind) } id={ "item-" (index) } {
            @match (kind, text(item, "type")) {
                ("item", "message") => {
                    div.head { span.role { (text(item, "role")) } }
                    pre.body { (text(item, "text")) }
                }
                ("item", "function_call") => {
                    div.head { "tool call " strong { (text(item, "name")) } " " span.mono.muted { (text(item, "call_id")) } }
                    pre.body { (pretty(text(item, "arguments"))) }
                }
                ("item", "function_output") => {
                    div.head { "tool output " span.mono.muted { (text(item, "call_id")) } }
                    pre.body { (text(item, "output")) }
                }
                ("item", "reasoning") => {
                    div.head.muted { "reasoning (kept opaque)" }
                }
                ("turn_completed", _) => {
                    div.head { "turn completed" }
                }
                ("compacted", _) => {
                    div.head { "history compacted; hand-off summary:" }
                    pre.body { (text(entry, "summary")) }
                }
                _ => {
                    div.head.muted { "item of an unknown kind" }
                    pre.body { (entry.to_string()) }
                }
            }
        }
    }
}

/// Tool arguments as indented JSON when they parse, as they are otherwise.
fn pretty(arguments: &str) -> String {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| arguments.to_owned())
}
