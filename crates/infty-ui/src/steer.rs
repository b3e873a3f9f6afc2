//! Steering from the page, the only writes the dashboard makes: queue a message in a run's
//! inbox (the same `Inbox` as `infty send`), interrupt a driven run (SIGINT, as Ctrl-C in
//! its terminal) and resume a stopped one (a detached `infty resume`).
//!
//! The interrupt signals only a pid read from a lock file that is held at that moment: the
//! lock is an OS lock that dies with its process, so a stale file never names a victim.
//! Every form must carry the page's CSRF value. This module must never signal any other
//! process, and never write the run folder except through the inbox.

use std::fs::OpenOptions;
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use infty_store::{LockState, RUN_LOCK, Role, RunLock, RunStatus};
use serde::Deserialize;

use crate::auth::same_secret;
use crate::page::Failure;
use crate::run_page::open_run;
use crate::server::{AppState, blocking};

/// The send form.
#[derive(Debug, Deserialize)]
pub(crate) struct SendForm {
    /// The page's CSRF value.
    pub csrf: String,
    /// The role the message is for.
    pub role: String,
    /// The message.
    pub text: String,
}

/// The interrupt and resume forms.
#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    /// The page's CSRF value.
    pub csrf: String,
}

fn check_csrf(state: &AppState, given: &str) -> Result<(), Failure> {
    if same_secret(given, &state.csrf) {
        Ok(())
    } else {
        Err(Failure::new(
            StatusCode::FORBIDDEN,
            "the form is stale or forged: reload the page",
        ))
    }
}

fn back(run_id: &str, done: &str) -> Response {
    Redirect::to(&format!("/runs/{run_id}?done={done}")).into_response()
}

/// `POST /runs/{run_id}/send`.
pub(crate) async fn send(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Form(form): Form<SendForm>,
) -> Result<Response, Failure> {
    check_csrf(&state, &form.csrf)?;
    let id = run_id.clone();
    blocking(move || {
        let store = open_run(&state.runs_root, &id)?;
        if store.metadata().status == RunStatus::Succeeded {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                format!("run {id} already succeeded; a message would never be delivered"),
            ));
        }
        Role::parse(form.role.trim())
            .and_then(|role| store.inbox().enqueue(&role, &form.text))
            .map_err(|e| Failure::bad_request(e.to_string()))?;
        Ok(())
    })
    .await??;
    Ok(back(&run_id, "sent"))
}

/// `POST /runs/{run_id}/interrupt`.
pub(crate) async fn interrupt(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Failure> {
    check_csrf(&state, &form.csrf)?;
    let id = run_id.clone();
    blocking(move || {
        let store = open_run(&state.runs_root, &id)?;
        let lock = store.dir().join(RUN_LOCK);
        let state = RunLock::probe(&lock).map_err(|e| Failure::internal(e.to_string()))?;
        let pid = match state {
            LockState::Held { pid: Some(pid) } => pid,
            LockState::Held { pid: None } => {
                return Err(Failure::new(
                    StatusCode::CONFLICT,
                    format!("run {id} is being driven, but its lock does not name the driver"),
                ));
            }
            LockState::Free => {
                return Err(Failure::new(
                    StatusCode::CONFLICT,
                    format!("run {id} has no live driver to interrupt"),
                ));
            }
        };
        signal_driver(&id, pid)
    })
    .await??;
    Ok(back(&run_id, "interrupted"))
}

/// Sends SIGINT to the driver `pid` of run `run_id`, refusing pids that cannot be one.
fn signal_driver(run_id: &str, pid: u32) -> Result<(), Failure> {
    let refused = || {
        Failure::new(
            StatusCode::CONFLICT,
            format!("run {run_id}'s lock names pid {pid}, which cannot be its driver"),
        )
    };
    // 0 and negative pids address process groups, 1 is init, and we never signal ourselves.
    let raw = i32::try_from(pid).map_err(|_| refused())?;
    if raw <= 1 || pid == std::process::id() {
        return Err(refused());
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(raw),
        nix::sys::signal::Signal::SIGINT,
    )
    .map_err(|e| Failure::internal(format!("cannot interrupt run {run_id} (pid {pid}): {e}")))
}

/// `POST /runs/{run_id}/resume`.
pub(crate) async fn resume(
    State(state): State<Arc<AppState>>,
    Path(run_id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Failure> {
    check_csrf(&state, &form.csrf)?;
    let id = run_id.clone();
    blocking(move || {
        let store = open_run(&state.runs_root, &id)?;
        if !store.metadata().status.can_resume() {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                format!("run {id} already succeeded; there is nothing to resume"),
            ));
        }
        let lock = RunLock::probe(&store.dir().join(RUN_LOCK))
            .map_err(|e| Failure::internal(e.to_string()))?;
        if lock != LockState::Free {
            return Err(Failure::new(
                StatusCode::CONFLICT,
                format!("run {id} is already being driven"),
            ));
        }
        spawn_resume(&state, &id)
    })
    .await??;
    Ok(back(&run_id, "resumed"))
}

/// Starts `infty --runs-root ROOT resume RUN_ID` in its own process group (so stopping the
/// dashboard does not stop the run), output appended to the log folder.
fn spawn_resume(state: &AppState, run_id: &str) -> Result<(), Failure> {
    std::fs::create_dir_all(&state.log_dir).map_err(|e| {
        Failure::internal(format!(
            "cannot create the log folder {}: {e}",
            state.log_dir
        ))
    })?;
    let log_path = state.log_dir.join(format!("ui-resume-{run_id}.log"));
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Failure::internal(format!("cannot open {log_path}: {e}")))?;
    let err_log = log
        .try_clone()
        .map_err(|e| Failure::internal(format!("cannot open {log_path}: {e}")))?;
    let mut command = Command::new(&state.infty_exe);
    command
        .arg("--runs-root")
        .arg(state.runs_root.as_str())
        .args(["resume", run_id])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| Failure::internal(format!("cannot start `infty resume {run_id}`: {e}")))?;
    // Reaped in the background so it never lingers as a zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}
