//! Status codes and security of every route: the token, the host, CSRF, escaping and the
//! deliverable's confinement.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use crate::{CSRF, Fixture, HOST, HOSTILE, TOKEN};

fn bare(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn every_route_refuses_a_request_without_the_token() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    for path in [
        "/",
        "/runs/r1",
        "/runs/r1/timeline",
        "/runs/r1/summary",
        "/runs/r1/live",
        "/live/runs",
        "/fragments/runs",
        "/runs/r1/rollouts/solver",
        "/runs/r1/files",
        "/assets/app.js",
        "/nope",
    ] {
        let answer = fx.send(bare(path)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(!answer.body.contains(TOKEN));
        let wrong = fx.send(bare(&format!("{path}?token=0000"))).await;
        assert_eq!(
            wrong.status,
            StatusCode::UNAUTHORIZED,
            "{path} with a wrong token"
        );
        let bad_cookie = fx
            .send(
                Request::get(path)
                    .header(header::HOST, HOST)
                    .header(header::COOKIE, "infty_ui_4242=nope; other=1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            bad_cookie.status,
            StatusCode::UNAUTHORIZED,
            "{path} with a bad cookie"
        );
    }
    for path in ["/runs/r1/send", "/runs/r1/interrupt", "/runs/r1/resume"] {
        let answer = fx
            .send(
                Request::post(path)
                    .header(header::HOST, HOST)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(format!("csrf={CSRF}&role=solver&text=hi")))
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert!(fx.get("/").await.status.is_success());
}

#[tokio::test]
async fn the_token_becomes_a_strict_cookie_and_leaves_the_address() {
    let fx = Fixture::new();
    let answer = fx
        .send(bare(&format!("/?token={TOKEN}&status=failed")))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/?status=failed");
    assert_eq!(
        answer.headers[header::SET_COOKIE],
        format!("infty_ui_4242={TOKEN}; HttpOnly; SameSite=Strict; Path=/")
    );
}

#[tokio::test]
async fn another_host_is_refused_even_with_the_token() {
    let fx = Fixture::new();
    for host in ["evil.example:4242", "127.0.0.1:9999", "localhost"] {
        let answer = fx
            .send(
                Request::get(format!("/?token={TOKEN}"))
                    .header(header::HOST, host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{host}");
    }
}

#[tokio::test]
async fn writes_need_the_csrf_value_and_this_origin() {
    let fx = Fixture::new();
    let store = fx.hostile_run("r1");
    let forged = fx
        .post("/runs/r1/send", "csrf=wrong&role=solver&text=hi")
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let cross = fx
        .send(
            Request::post("/runs/r1/send")
                .header(header::HOST, HOST)
                .header(header::COOKIE, format!("infty_ui_4242={TOKEN}"))
                .header(header::ORIGIN, "http://evil.example")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={CSRF}&role=solver&text=hi")))
                .unwrap(),
        )
        .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(store.inbox().pending("solver").unwrap().is_empty());
}

#[tokio::test]
async fn a_message_lands_in_the_inbox() {
    let fx = Fixture::new();
    let store = fx.hostile_run("r1");
    let answer = fx
        .post(
            "/runs/r1/send",
            &format!("csrf={CSRF}&role=solver&text=focus+on+tests"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/runs/r1?done=sent");
    let pending = store.inbox().pending("solver").unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].text, "focus on tests");
    let cases = [
        ("role=solver&text=+++", StatusCode::BAD_REQUEST),
        ("role=..%2Fx&text=hi", StatusCode::BAD_REQUEST),
    ];
    for (form, status) in cases {
        let answer = fx
            .post("/runs/r1/send", &format!("csrf={CSRF}&{form}"))
            .await;
        assert_eq!(answer.status, status, "{form}");
    }
    let page = fx.get("/runs/r1?done=sent").await;
    assert!(page.body.contains("message queued"));
}

#[tokio::test]
async fn interrupt_signals_only_a_held_lock() {
    let fx = Fixture::new();
    let store = fx.hostile_run("r1");
    // A lock file naming a pid, but nobody holds it: nothing is signalled.
    std::fs::write(store.dir().join("run.lock"), "1\n").unwrap();
    let answer = fx.post("/runs/r1/interrupt", &format!("csrf={CSRF}")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer
            .body
            .contains("run r1 has no live driver to interrupt"),
        "{}",
        answer.body
    );
    // Held by this very process: refused rather than signalling ourselves.
    let lock = store.lock().unwrap();
    let answer = fx.post("/runs/r1/interrupt", &format!("csrf={CSRF}")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("cannot be its driver"),
        "{}",
        answer.body
    );
    // And a driven run is not resumed a second time.
    let answer = fx.post("/runs/r1/resume", &format!("csrf={CSRF}")).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body.contains("run r1 is already being driven"),
        "{}",
        answer.body
    );
    drop(lock);
}

#[tokio::test]
async fn unknown_and_invalid_runs() {
    let fx = Fixture::new();
    assert_eq!(fx.get("/runs/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        fx.get("/runs/..%2Fetc").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        fx.get("/?status=bogus").await.status,
        StatusCode::BAD_REQUEST
    );
    fx.hostile_run("r1");
    assert_eq!(
        fx.get("/runs/r1/rollouts/..%2Frun").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        fx.get("/runs/r1/rollouts/ghost").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn hostile_text_is_escaped_everywhere() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let escaped = "&lt;script&gt;alert('pwned')&lt;/script&gt;";
    for path in [
        "/",
        "/fragments/runs",
        "/runs/r1",
        "/runs/r1/rollouts/solver",
        "/runs/r1/files",
        "/runs/r1/files?path=report.md",
    ] {
        let answer = fx.get(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(
            !answer.body.contains("<script>alert"),
            "{path}: {}",
            answer.body
        );
        assert!(!answer.body.contains("<img src=x"), "{path}");
        let expected = if path == "/runs/r1/files" {
            "&lt;img src=x onerror=alert(1)&gt;.txt"
        } else {
            escaped
        };
        assert!(
            answer.body.contains(expected),
            "{path} shows the text escaped"
        );
    }
    let page = fx.get("/runs/r1").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    // No inline script: the only script is the embedded asset.
    assert_eq!(page.body.matches("<script").count(), 1);
    assert!(page.body.contains(r#"<script src="/assets/app.js" defer>"#));
    let _ = HOSTILE;
}

#[tokio::test]
async fn the_deliverable_view_refuses_escapes() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    for path in [
        "../secret.txt",
        "..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "link-out",
        "etc",
        "etc%2Fpasswd",
        "a%00b",
    ] {
        let answer = fx.get(&format!("/runs/r1/files?path={path}")).await;
        assert_eq!(
            answer.status,
            StatusCode::FORBIDDEN,
            "{path}: {}",
            answer.body
        );
        assert!(!answer.body.contains("TOP-SECRET"));
        assert!(!answer.body.contains("root:"));
    }
    let listing = fx.get("/runs/r1/files").await;
    assert!(listing.body.contains("report.md"));
    let binary = fx.get("/runs/r1/files?path=blob.bin").await;
    assert!(
        binary.body.contains("binary file, 4 bytes"),
        "{}",
        binary.body
    );
    assert_eq!(
        fx.get("/runs/r1/files?path=missing").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_timeline_pages_back_to_the_start() {
    let fx = Fixture::new();
    let store = fx.hostile_run("r1");
    let mut journal = store.journal().unwrap();
    for n in 0..250 {
        journal
            .append(
                &serde_json::json!({"kind": "budget_warning", "reason": format!("warning {n}")}),
                false,
            )
            .unwrap();
    }
    let first = fx.get("/runs/r1").await;
    assert!(first.body.contains("warning 249"));
    assert!(!first.body.contains("warning 149<"));
    let mut next = older_link(&first.body);
    let mut pages = 1;
    let mut seen_start = false;
    while let Some(link) = next {
        let page = fx.get(&link).await;
        assert_eq!(page.status, StatusCode::OK);
        seen_start |= page.body.contains("driver started");
        next = older_link(&page.body);
        pages += 1;
    }
    assert_eq!(pages, 3, "268 events in pages of 100");
    assert!(seen_start);
}

fn older_link(body: &str) -> Option<String> {
    let start = body.find("data-fragment=\"/runs/r1/timeline?before=")?;
    let rest = &body[start + "data-fragment=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

#[tokio::test]
async fn the_runs_page_filters_and_pages() {
    let fx = Fixture::new();
    for n in 0..60 {
        let store = fx.hostile_run(&format!("run-{n:02}"));
        if n % 3 == 0 {
            let mut store = store;
            store.set_status(infty_store::RunStatus::Running).unwrap();
            store.set_status(infty_store::RunStatus::Failed).unwrap();
        }
    }
    let all = fx.get("/").await;
    assert_eq!(all.body.matches("<tr data-run-id=").count(), 50);
    assert!(all.body.contains("page 1 of 2"));
    let second = fx.get("/?page=2").await;
    assert_eq!(second.body.matches("<tr data-run-id=").count(), 10);
    let failed = fx.get("/?status=failed").await;
    assert_eq!(failed.body.matches("<tr data-run-id=").count(), 20);
    assert!(!failed.body.contains("page 1 of"));
}
