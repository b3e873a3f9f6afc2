//! The deliverable's files, read-only: folders listed, text shown (escaped), binaries
//! named with their size.
//!
//! The root is the accepted deliverable when the run succeeded with a folder, otherwise the
//! run's `deliverable/` folder. Paths go through the store's confined browsing: `..`,
//! absolute paths and links out are refused with 403. This module must never open a file
//! itself.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use camino::Utf8PathBuf;
use infty_store::{BrowseError, Browsed, RunStore};
use maud::html;
use serde::Deserialize;

use crate::page::{Failure, html_response, layout, tokens};
use crate::run_page::open_run;
use crate::server::{AppState, blocking};

/// At most this much of a file is shown.
pub(crate) const MAX_SHOWN: u64 = 1024 * 1024;

/// The page's query.
#[derive(Debug, Deserialize)]
pub(crate) struct FilesQuery {
    /// Path under the deliverable's root, `/`-separated.
    pub path: Option<String>,
}

/// Where a run's deliverable is browsed from, and the single file to show when the
/// deliverable is one file.
fn deliverable_root(store: &RunStore) -> (Utf8PathBuf, Option<String>) {
    if let Some(outcome) = &store.metadata().outcome
        && let Ok(resolved) = store.resolve_deliverable(outcome.deliverable_path.as_str())
    {
        if resolved.is_dir() {
            return (resolved, None);
        }
        if let (Some(parent), Some(name)) = (resolved.parent(), resolved.file_name()) {
            return (parent.to_owned(), Some(name.to_owned()));
        }
    }
    (store.dir().join("deliverable"), None)
}

/// `GET /runs/{run_id}/files?path=…`.
pub(crate) async fn files_page(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Query(query): Query<FilesQuery>,
) -> Result<Response, Failure> {
    let csrf = state.csrf.clone();
    let markup = blocking(move || {
        let store = open_run(&state.runs_root, &run_id)?;
        let (root, only) = deliverable_root(&store);
        let asked = query.path.unwrap_or_default();
        let asked = asked.trim_matches('/').to_owned();
        // A one-file deliverable shows that file and nothing beside it.
        let path = match &only {
            Some(name) if asked.is_empty() || asked == *name => name.clone(),
            Some(_) => {
                return Err(Failure::new(
                    StatusCode::FORBIDDEN,
                    format!("`{asked}` is not part of the deliverable of run {run_id}"),
                ));
            }
            None => asked.clone(),
        };
        let shown = match infty_store::browse(&root, &path, MAX_SHOWN) {
            Ok(shown) => shown,
            Err(BrowseError::Missing { .. }) if path.is_empty() => Browsed::Folder(Vec::new()),
            Err(e @ BrowseError::Outside { .. }) => {
                return Err(Failure::new(StatusCode::FORBIDDEN, e.to_string()));
            }
            Err(e @ BrowseError::Missing { .. }) => return Err(Failure::not_found(e.to_string())),
            Err(e) => return Err(Failure::internal(e.to_string())),
        };
        let link = |p: &str| format!("/runs/{run_id}/files?path={}", encode(p));
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
        let body = html! {
            nav.crumbs { a href="/" { "runs" } " / " a.mono href={ "/runs/" (run_id) } { (run_id) } " / deliverable" }
            h1 { "Deliverable" }
            p.mono.muted { (path) }
            @if !path.is_empty() && only.is_none() { p { a href=(link(&parent)) { "up" } } }
            @match &shown {
                Browsed::Folder(entries) => {
                    @if entries.is_empty() { p.muted { "nothing delivered yet" } }
                    table.files {
                        @for entry in entries {
                            @let child = if path.is_empty() { entry.name.clone() } else { format!("{path}/{}", entry.name) };
                            tr {
                                @if entry.leads_outside {
                                    td { (entry.name) }
                                    td.num.muted { "link outside, not shown" }
                                } @else {
                                    td { a href=(link(&child)) { (entry.name) @if entry.is_folder { "/" } } }
                                    td.num { @if !entry.is_folder { (tokens(entry.size)) " B" } }
                                }
                            }
                        }
                    }
                }
                Browsed::File(file) => {
                    @match &file.text {
                        Some(text) => {
                            pre.file { (text) }
                            @if file.truncated { p.muted { "shown: the first " (tokens(MAX_SHOWN)) " bytes of " (tokens(file.size)) } }
                        }
                        None => p { "binary file, " (tokens(file.size)) " bytes: not shown" },
                    }
                }
            }
        };
        Ok(layout("deliverable", &csrf, body))
    })
    .await??;
    Ok(html_response(StatusCode::OK, markup))
}

/// Percent-encodes a path for a query value.
fn encode(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
