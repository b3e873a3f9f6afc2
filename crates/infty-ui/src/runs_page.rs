//! The runs page: every run with its status, objective, age, last activity, tokens and cost,
//! filtered by status, fifty a page, refreshed live.
//!
//! It reads the in-memory run catalog (only changed `run.json` files are re-read), so ten
//! thousand runs render as fast as fifty. This module must never write.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use infty_store::{RunMetadata, RunStatus};
use maud::{Markup, html};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::page::{Failure, age, html_response, layout, one_line, tokens};
use crate::run_page::cost_of;
use crate::server::{AppState, blocking};

/// Runs per page.
pub(crate) const RUNS_PAGE: usize = 50;

/// The runs page's query.
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct RunsQuery {
    /// Only runs with this status.
    pub status: Option<String>,
    /// Page number, from 1.
    pub page: Option<usize>,
}

struct Filter {
    status: Option<RunStatus>,
    page: usize,
}

fn filter(query: &RunsQuery) -> Result<Filter, Failure> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            RunStatus::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| Failure::bad_request(format!("unknown status `{name}`")))?,
        ),
    };
    Ok(Filter {
        status,
        page: query.page.unwrap_or(1).max(1),
    })
}

/// `GET /`.
pub(crate) async fn runs_page(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RunsQuery>,
) -> Result<Response, Failure> {
    let filter = filter(&query)?;
    let csrf = state.csrf.clone();
    let markup = blocking(move || {
        let now = OffsetDateTime::now_utc();
        // The generation the page shows, so the live stream reports any change after it.
        let catalog_generation = state.with_catalog(|_| ()).1;
        let (body, _) = state.with_catalog(|catalog| {
            let runs = catalog.runs();
            render_runs_page(&runs, filter.status, filter.page, now, catalog_generation)
        });
        layout("runs", &csrf, body)
    })
    .await?;
    Ok(html_response(StatusCode::OK, markup))
}

/// `GET /fragments/runs`: the rows of the table as the page would show them now.
pub(crate) async fn runs_rows(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RunsQuery>,
) -> Result<Response, Failure> {
    let filter = filter(&query)?;
    let markup = blocking(move || {
        let now = OffsetDateTime::now_utc();
        state
            .with_catalog(|catalog| {
                let runs = catalog.runs();
                let shown: Vec<&RunMetadata> = selected(&runs, filter.status);
                rows(&page_of(&shown, filter.page), now)
            })
            .0
    })
    .await?;
    Ok(html_response(StatusCode::OK, markup))
}

fn selected<'a>(runs: &[&'a RunMetadata], status: Option<RunStatus>) -> Vec<&'a RunMetadata> {
    runs.iter()
        .copied()
        .filter(|r| status.is_none_or(|s| r.status == s))
        .collect()
}

fn page_of<'a>(runs: &[&'a RunMetadata], page: usize) -> Vec<&'a RunMetadata> {
    runs.iter()
        .skip((page - 1).saturating_mul(RUNS_PAGE))
        .take(RUNS_PAGE)
        .copied()
        .collect()
}

fn query_string(status: Option<RunStatus>, page: usize) -> String {
    let mut parts = Vec::new();
    if let Some(status) = status {
        parts.push(format!("status={}", status.as_str()));
    }
    if page > 1 {
        parts.push(format!("page={page}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The page's body: filters with counts, the table, the pager.
pub(crate) fn render_runs_page(
    runs: &[&RunMetadata],
    status: Option<RunStatus>,
    page: usize,
    now: OffsetDateTime,
    generation: u64,
) -> Markup {
    let shown = selected(runs, status);
    let pages = shown.len().div_ceil(RUNS_PAGE).max(1);
    let page = page.min(pages);
    let count = |s: RunStatus| runs.iter().filter(|r| r.status == s).count();
    let here = query_string(status, page);
    html! {
        h1 { "Runs" }
        nav.filters aria-label="filter by status" {
            a href="/" class=[status.is_none().then_some("on")] { "all " span.count { (runs.len()) } }
            @for s in RunStatus::ALL {
                @let n = count(s);
                @if n > 0 || status == Some(s) {
                    a href={ "/?status=" (s.as_str()) } class=[(status == Some(s)).then_some("on")] {
                        (s.as_str()) " " span.count { (n) }
                    }
                }
            }
        }
        @if shown.is_empty() {
            p.muted { "no run here yet: start one with " code { "infty create" } }
        }
        table.runs {
            thead {
                tr {
                    th { "run" } th { "status" } th { "objective" }
                    th.wide { "age" } th.wide { "last activity" } th.num { "tokens" } th.num.wide { "cost" }
                }
            }
            tbody #runs-body data-live={ "/live/runs?since=" (generation) } data-fragment={ "/fragments/runs" (here) } {
                (rows(&page_of(&shown, page), now))
            }
        }
        @if pages > 1 {
            nav.pager {
                @if page > 1 { a href={ "/" (query_string(status, page - 1)) } { "newer" } }
                span { "page " (page) " of " (pages) }
                @if page < pages { a href={ "/" (query_string(status, page + 1)) } { "older" } }
            }
        }
    }
}

fn rows(runs: &[&RunMetadata], now: OffsetDateTime) -> Markup {
    html! {
        @for run in runs {
            tr data-run-id=(run.run_id) {
                td.mono { a href={ "/runs/" (run.run_id) } { (run.run_id) } }
                td { span class={ "status " (run.status.as_str()) } { (run.status.as_str()) } }
                td.objective { (one_line(&run.objective, 120)) }
                td.wide { (age((now - run.created_at).whole_seconds())) }
                td.wide { (age((now - run.updated_at).whole_seconds())) " ago" }
                td.num { (tokens(run.total_usage().total_tokens)) }
                td.num.wide { (cost_of(run).unwrap_or_else(|| "—".to_owned())) }
            }
        }
    }
}
