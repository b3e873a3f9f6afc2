//! Integration tests of infty-ui without a browser: the router driven in process against
//! real run folders (status codes, the token, CSRF, escaping of hostile text, confinement of
//! the deliverable) and snapshots of rendered fragments. The browser tests, which need the
//! real `infty` binary, live with infty-cli's end-to-end tests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::new_without_default,
    missing_docs
)]

mod handlers;
mod snapshots;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use camino::{Utf8Path, Utf8PathBuf};
use http_body_util::BodyExt;
use infty_store::{Role, RoleRecord, RunInit, RunOptions, RunStore};
use infty_ui::{AppOptions, app};
use serde_json::json;
use time::macros::datetime;
use tower::ServiceExt;

pub const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const CSRF: &str = "c5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rfc5rf";
pub const HOST: &str = "127.0.0.1:4242";
pub const HOSTILE: &str = "<script>alert('pwned')</script><img src=x onerror=alert(1)>";

/// A runs root in a temp folder and the dashboard over it.
pub struct Fixture {
    _guard: tempfile::TempDir,
    pub root: Utf8PathBuf,
    pub app: Router,
}

/// An answer, body as text.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        let guard = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(guard.path().canonicalize().unwrap()).unwrap();
        let root = base.join("runs");
        std::fs::create_dir_all(&root).unwrap();
        let app = app(AppOptions {
            runs_root: root.clone(),
            token: TOKEN.to_owned(),
            csrf: CSRF.to_owned(),
            port: 4242,
            hosts: vec![HOST.to_owned()],
            infty_exe: "/nonexistent/infty".into(),
            log_dir: base.join("logs"),
        });
        Fixture {
            _guard: guard,
            root,
            app,
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Answer {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A GET with the session cookie.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(
            Request::get(path)
                .header(header::HOST, HOST)
                .header(header::COOKIE, format!("infty_ui_4242={TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// A form POST with the session cookie.
    pub async fn post(&self, path: &str, form: &str) -> Answer {
        self.send(
            Request::post(path)
                .header(header::HOST, HOST)
                .header(header::COOKIE, format!("infty_ui_4242={TOKEN}"))
                .header(header::ORIGIN, format!("http://{HOST}"))
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form.to_owned()))
                .unwrap(),
        )
        .await
    }

    /// A run written by a hostile model: markup in the objective, the journal, the
    /// conversation and the deliverable's file names, and a link out of the deliverable.
    pub fn hostile_run(&self, id: &str) -> RunStore {
        let mut options = RunOptions::default();
        options.budgets.max_solver_turns = Some(40);
        options.budgets.max_total_tokens = Some(100_000);
        let store = RunStore::create(
            &self.root,
            Some(id),
            RunInit {
                objective: format!("Objective {HOSTILE}"),
                roles: vec![
                    RoleRecord::new(Role::Solver, "gpt-5", Some("high")),
                    RoleRecord::new(Role::Director, "gpt-5", None),
                    RoleRecord::new(Role::verifier(1), "gpt-5-mini", None),
                ],
                options,
            },
        )
        .unwrap();
        let mut journal = store.journal().unwrap();
        let mut at = datetime!(2026-11-24 10:00:00 UTC);
        let events = [
            json!({"kind": "driver_started", "pid": 4242, "resumed": false}),
            json!({"kind": "started"}),
            json!({"kind": "objective_posted", "objective": format!("Objective {HOSTILE}")}),
            json!({"kind": "tool_call_started", "role": "solver", "call_id": "call_1", "tool": "shell"}),
            json!({"kind": "tool_call_finished", "role": "solver", "call_id": "call_1", "tool": "shell", "ok": false}),
            json!({"kind": "usage_recorded", "role": "solver", "usage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120}}),
            json!({"kind": "direction_requested", "prompt": format!("what now? {HOSTILE}")}),
            json!({"kind": "directive_issued", "directive": "write it", "rationale": null, "raw": false}),
            json!({"kind": "message_delivered", "id": "m1", "role": "solver", "text": "operator says hi"}),
            json!({"kind": "compacted", "role": "solver", "prompt_tokens": 90000, "kept_items": 3}),
            json!({"kind": "model_retry", "role": "solver", "attempt": 2, "reason": "503 from server"}),
            json!({"kind": "usage_recorded", "role": "solver", "usage": {"input_tokens": 300, "output_tokens": 80, "total_tokens": 380}}),
            json!({"kind": "final_delivery", "deliverable_path": "deliverable/report.md", "summary": "done"}),
            json!({"kind": "deliverable_checked", "check": {"result": "accepted", "path": "deliverable/report.md"}}),
            json!({"kind": "verification_started", "round": 1, "roles": ["verifier-1"]}),
            json!({"kind": "verdict_recorded", "role": "verifier-1", "verdict": "fail", "reasons": [format!("bad {HOSTILE}")], "suggestions": []}),
            json!({"kind": "verification_summary", "round": 1, "overall": "fail", "passed": [], "failed": ["verifier-1"]}),
            json!({"kind": "from_a_newer_infty", "x": HOSTILE}),
        ];
        for event in events {
            journal.append_at(&event, at, false).unwrap();
            at += time::Duration::seconds(7);
        }
        let mut rollout = store.rollout_writer("solver").unwrap();
        for entry in [
            json!({"entry": "item", "item": {"type": "message", "role": "user", "text": format!("Objective {HOSTILE}")}}),
            json!({"entry": "item", "item": {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"command\":\"cat x\"}"}}),
            json!({"entry": "item", "item": {"type": "function_output", "call_id": "call_1", "output": format!("tool says {HOSTILE}")}}),
            json!({"entry": "turn_completed", "text": "ok"}),
        ] {
            rollout.append(&entry).unwrap();
        }
        let deliverable = store.dir().join("deliverable");
        std::fs::write(
            deliverable.join("report.md"),
            format!("# Report\n{HOSTILE}\n"),
        )
        .unwrap();
        std::fs::write(
            deliverable.join("<img src=x onerror=alert(1)>.txt"),
            "named badly",
        )
        .unwrap();
        std::fs::write(deliverable.join("blob.bin"), [0u8, 159, 146, 150]).unwrap();
        std::fs::write(store.dir().join("secret.txt"), "TOP-SECRET-OUTSIDE").unwrap();
        std::os::unix::fs::symlink(store.dir().join("secret.txt"), deliverable.join("link-out"))
            .unwrap();
        std::os::unix::fs::symlink("/etc", deliverable.join("etc")).unwrap();
        store
    }
}

/// Snapshot settings: temp paths, times and ages redacted.
pub fn settings(root: &Utf8Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex_escape(root.as_str()), "[root]");
    settings.add_filter(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", "[time]");
    settings.add_filter(
        r#"<td class="wide">\d+[smhd]( ago)?</td>"#,
        r#"<td class="wide">[age]</td>"#,
    );
    settings
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special.then_some('\\').into_iter().chain([c])
        })
        .collect()
}
