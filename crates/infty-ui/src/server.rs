//! The server: shared state, routes, binding to loopback and serving until shut down.
//!
//! This module must never bind anything but 127.0.0.1, and never route a request around
//! [`crate::auth::guard`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use camino::Utf8PathBuf;
use infty_store::RunCatalog;

use crate::digest::RunDigest;
use crate::error::UiError;
use crate::{assets, auth, files, live, rollouts, run_page, runs_page, steer};

/// How `infty ui` was asked to run.
#[derive(Debug, Clone)]
pub struct UiOptions {
    /// The runs root to show.
    pub runs_root: Utf8PathBuf,
    /// The port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The `infty` executable a resume runs (the current one).
    pub infty_exe: PathBuf,
    /// Where a resumed run's output goes (one `ui-resume-<run>.log` per run).
    pub log_dir: Utf8PathBuf,
}

/// Everything [`app`] needs, with the secrets given (tests choose them).
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The runs root.
    pub runs_root: Utf8PathBuf,
    /// The access token.
    pub token: String,
    /// The value a writing form must carry.
    pub csrf: String,
    /// The port (names the cookie).
    pub port: u16,
    /// `Host` values accepted (`127.0.0.1:PORT`, `localhost:PORT`).
    pub hosts: Vec<String>,
    /// The `infty` executable a resume runs.
    pub infty_exe: PathBuf,
    /// Where resumed runs log.
    pub log_dir: Utf8PathBuf,
}

/// State shared by the handlers.
pub struct AppState {
    pub(crate) runs_root: Utf8PathBuf,
    pub(crate) token: String,
    pub(crate) csrf: String,
    pub(crate) port: u16,
    pub(crate) hosts: Vec<String>,
    pub(crate) infty_exe: PathBuf,
    pub(crate) log_dir: Utf8PathBuf,
    catalog: Mutex<CatalogState>,
    digests: Mutex<HashMap<String, Arc<Mutex<RunDigest>>>>,
}

struct CatalogState {
    catalog: RunCatalog,
    /// Bumped whenever a refresh finds a change: live pages compare it with what they sent.
    generation: u64,
    refreshed: Option<Instant>,
}

/// How stale the catalog may be before a reader refreshes it.
const CATALOG_MAX_AGE: Duration = Duration::from_millis(500);

/// Run digests kept in memory; beyond this, the least useful are dropped.
const MAX_DIGESTS: usize = 64;

impl AppState {
    fn new(options: AppOptions) -> AppState {
        AppState {
            catalog: Mutex::new(CatalogState {
                catalog: RunCatalog::new(options.runs_root.clone()),
                generation: 0,
                refreshed: None,
            }),
            runs_root: options.runs_root,
            token: options.token,
            csrf: options.csrf,
            port: options.port,
            hosts: options.hosts,
            infty_exe: options.infty_exe,
            log_dir: options.log_dir,
            digests: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `f` on the catalog, refreshed first if older than half a second. Returns the
    /// catalog's generation too. Blocking: call from a blocking task.
    pub(crate) fn with_catalog<T>(&self, f: impl FnOnce(&RunCatalog) -> T) -> (T, u64) {
        let mut state = self.catalog.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = state
            .refreshed
            .is_none_or(|at| at.elapsed() >= CATALOG_MAX_AGE);
        if stale {
            match state.catalog.refresh() {
                Ok(changes) => {
                    if !changes.changed.is_empty() || !changes.removed.is_empty() {
                        state.generation += 1;
                    }
                }
                Err(error) => tracing::warn!("cannot list runs: {error}"),
            }
            state.refreshed = Some(Instant::now());
        }
        (f(&state.catalog), state.generation)
    }

    /// The digest of a run's journal, brought up to date. Blocking.
    pub(crate) fn digest(&self, run_id: &str) -> Arc<Mutex<RunDigest>> {
        let digest = {
            let mut digests = self.digests.lock().unwrap_or_else(PoisonError::into_inner);
            if digests.len() >= MAX_DIGESTS && !digests.contains_key(run_id) {
                // Drop one nobody is reading right now.
                let idle = digests
                    .iter()
                    .find(|(_, d)| Arc::strong_count(d) == 1)
                    .map(|(id, _)| id.clone());
                if let Some(id) = idle {
                    digests.remove(&id);
                }
            }
            let events = self.runs_root.join(run_id).join(infty_store::EVENTS_JSONL);
            Arc::clone(
                digests
                    .entry(run_id.to_owned())
                    .or_insert_with(|| Arc::new(Mutex::new(RunDigest::new(events)))),
            )
        };
        digest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update();
        digest
    }
}

/// The dashboard's routes behind the token guard.
pub fn app(options: AppOptions) -> Router {
    let state = Arc::new(AppState::new(options));
    Router::new()
        .route("/", get(runs_page::runs_page))
        .route("/fragments/runs", get(runs_page::runs_rows))
        .route("/live/runs", get(live::runs_live))
        .route("/runs/{run_id}", get(run_page::run_page))
        .route("/runs/{run_id}/timeline", get(run_page::timeline_page))
        .route("/runs/{run_id}/summary", get(run_page::summary_fragment))
        .route("/runs/{run_id}/live", get(live::run_live))
        .route(
            "/runs/{run_id}/rollouts/{name}",
            get(rollouts::rollout_page),
        )
        .route("/runs/{run_id}/files", get(files::files_page))
        .route("/runs/{run_id}/send", post(steer::send))
        .route("/runs/{run_id}/interrupt", post(steer::interrupt))
        .route("/runs/{run_id}/resume", post(steer::resume))
        .route("/assets/app.css", get(assets::css))
        .route("/assets/app.js", get(assets::js))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            auth::guard,
        ))
        .with_state(state)
}

/// A bound dashboard, ready to serve.
pub struct Dashboard {
    listener: tokio::net::TcpListener,
    router: Router,
    url: String,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

impl Dashboard {
    /// Binds 127.0.0.1:`port` and draws the token.
    pub async fn bind(options: UiOptions) -> Result<Dashboard, UiError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, options.port));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| UiError::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| UiError::Bind { addr, source })?
            .port();
        let token = auth::random_secret()?;
        let csrf = auth::random_secret()?;
        let url = format!("http://127.0.0.1:{port}/?token={token}");
        let router = app(AppOptions {
            runs_root: options.runs_root,
            token,
            csrf,
            port,
            hosts: vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")],
            infty_exe: options.infty_exe,
            log_dir: options.log_dir,
        });
        Ok(Dashboard {
            listener,
            router,
            url,
        })
    }

    /// The address to open, token included. It is a secret: print it to its owner only.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), UiError> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(UiError::Serve)
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, crate::page::Failure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::page::Failure::internal(format!("a page failed to render: {e}")))
}
