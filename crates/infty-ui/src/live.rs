//! Live updates by server-sent events: the runs page hears when the catalog changed, the
//! run page gets each new journal line (rendered like the timeline) and its summary when
//! `run.json` changes.
//!
//! The run stream reads the journal through the store's tail, the same mechanism as
//! `infty logs --follow`, from the cursor the page was rendered at (or the `Last-Event-ID`
//! a reconnecting browser sends), so a run driven by any process shows up, and no line is
//! sent twice or skipped. This module must never write.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use infty_store::JournalTail;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::page::{Failure, secure};
use crate::run_page::{cursor_token, open_run, parse_cursor, summary_now};
use crate::server::{AppState, blocking};
use crate::timeline::render_timeline_item;

/// How often a live stream looks for news.
const POLL: Duration = Duration::from_millis(300);

/// Journal lines sent per event at most.
const BATCH: usize = 200;

/// The runs stream's query.
#[derive(Debug, Deserialize)]
pub(crate) struct RunsLiveQuery {
    /// The catalog generation the page was rendered from.
    pub since: Option<u64>,
}

/// `GET /live/runs?since=G`: a `changed` event whenever the catalog changes after
/// generation `G` (the page's), so a change between the render and the connection counts.
pub(crate) async fn runs_live(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RunsLiveQuery>,
) -> Response {
    let stream = futures::stream::unfold((state, query.since), |(state, seen)| async move {
        loop {
            tokio::time::sleep(POLL).await;
            let probe = Arc::clone(&state);
            let generation = match blocking(move || probe.with_catalog(|_| ()).1).await {
                Ok(generation) => generation,
                Err(_) => continue,
            };
            match seen {
                Some(seen) if seen == generation => continue,
                // The first look only learns where the catalog stands.
                None => {
                    return Some((
                        Ok(Event::default().comment("ready")),
                        (state, Some(generation)),
                    ));
                }
                Some(_) => {
                    let event = Event::default()
                        .event("changed")
                        .data(generation.to_string());
                    return Some((Ok::<_, Infallible>(event), (state, Some(generation))));
                }
            }
        }
    });
    sse(stream)
}

/// The live stream's query.
#[derive(Debug, Deserialize)]
pub(crate) struct LiveQuery {
    /// Where the page's timeline ends.
    pub cursor: Option<String>,
}

struct RunStream {
    state: Arc<AppState>,
    run_id: String,
    tail: JournalTail,
    updated: Option<OffsetDateTime>,
}

/// `GET /runs/{run_id}/live?cursor=…`: `timeline` events (list items, newest first) and
/// `summary` events (the summary fragment).
pub(crate) async fn run_live(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    let resume_from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.cursor);
    let cursor = match resume_from {
        Some(text) => Some(
            parse_cursor(&text).ok_or_else(|| Failure::bad_request("invalid journal cursor"))?,
        ),
        None => None,
    };
    let opened = {
        let state = Arc::clone(&state);
        let run_id = run_id.clone();
        blocking(move || {
            let store = open_run(&state.runs_root, &run_id)?;
            match cursor {
                Some(cursor) => Ok(JournalTail::at(store.events_path(), cursor)),
                None => JournalTail::at_end(store.events_path())
                    .map_err(|e| Failure::internal(e.to_string())),
            }
        })
        .await??
    };
    let start = RunStream {
        state,
        run_id,
        tail: opened,
        updated: None,
    };
    let stream = futures::stream::unfold(start, |mut stream| async move {
        loop {
            tokio::time::sleep(POLL).await;
            // A failed step ends the stream; the browser reconnects from its last event id.
            let (events, next) = blocking(move || stream.step()).await.ok()?;
            stream = next;
            if !events.is_empty() {
                let batch = futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
                return Some((batch, stream));
            }
        }
    });
    Ok(sse(futures::StreamExt::flatten(stream)))
}

impl RunStream {
    /// Reads what is new: journal lines since the cursor, and the summary if `run.json`
    /// changed. Blocking.
    fn step(mut self) -> (Vec<Event>, RunStream) {
        let mut events = Vec::new();
        match self.tail.read_new::<Value>(BATCH) {
            Ok(lines) if !lines.is_empty() => {
                let html: String = lines
                    .iter()
                    .rev()
                    .map(|line| render_timeline_item(line).into_string())
                    .collect();
                events.push(
                    Event::default()
                        .event("timeline")
                        .id(cursor_token(self.tail.cursor()))
                        .data(html),
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("cannot follow run {}: {error}", self.run_id),
        }
        let updated = self
            .state
            .with_catalog(|catalog| catalog.get(&self.run_id).map(|m| m.updated_at))
            .0;
        if updated != self.updated {
            self.updated = updated;
            if let Ok(summary) = summary_now(&self.state, &self.run_id) {
                events.push(
                    Event::default()
                        .event("summary")
                        .data(summary.into_string()),
                );
            }
        }
        (events, self)
    }
}

fn sse(stream: impl Stream<Item = Result<Event, Infallible>> + Send + 'static) -> Response {
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    secure(response.headers_mut());
    response
}
