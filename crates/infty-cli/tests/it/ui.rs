//! `infty ui` in a real browser: headless Chromium driven through chromedriver (WebDriver,
//! with fantoccini) against the real binary serving a runs root filled by real scripted
//! runs. Screenshots of the main pages are kept under `target/ui-screenshots/` as artifacts
//! of the test run; they are not compared.
//!
//! chromedriver and Chromium must be installed (`apt-get install -y chromium
//! chromium-driver`); without them these tests fail, saying so.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::harness::World;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// A marker a script injected through the page would set; it must stay unset.
const HOSTILE: &str = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\">";

/// A child process killed when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// chromedriver on a free port, and a headless Chromium session through it.
struct Browser {
    client: Client,
    _driver: Reaped,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Browser {
    for (path, what) in [(CHROMEDRIVER, "chromedriver"), (CHROMIUM, "Chromium")] {
        assert!(
            Path::new(path).exists(),
            "{what} is missing at {path}: the dashboard's browser tests need it \
             (apt-get install -y chromium chromium-driver)"
        );
    }
    let port = free_port();
    let driver = Reaped(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver"),
    );
    let profile = tempfile::tempdir().unwrap();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&url)
            .await
        {
            Ok(client) => break client,
            Err(error) if Instant::now() < deadline => {
                let _ = error;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("cannot start a Chromium session through chromedriver: {error}"),
        }
    };
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// `infty ui` serving the world's runs root; returns the process and the printed URL.
fn serve(world: &World) -> (Reaped, String) {
    let mut child = world
        .infty_process()
        .args(["ui", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Reaped(child);
    let mut first = String::new();
    let mut reader = BufReader::new(stdout);
    reader.read_line(&mut first).unwrap();
    // Keep reading, so the server never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in the first line of `infty ui`: {first:?}"))
        .to_owned();
    assert!(url.contains("/?token="), "{url}");
    (child, url)
}

fn screenshots_dir() -> PathBuf {
    // The `infty` binary is at <target>/debug/infty.
    let bin = assert_cmd::cargo::cargo_bin("infty");
    let target = bin.parent().and_then(Path::parent).unwrap().to_owned();
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
}

/// The visible text of the first element matching `css`, read in one script so live
/// updates replacing the element cannot make it stale ("" when there is none).
async fn text_of(client: &Client, css: &str) -> String {
    let text = client
        .execute(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : '';",
            vec![Value::String(css.to_owned())],
        )
        .await
        .unwrap();
    text.as_str().unwrap_or_default().to_owned()
}

async fn pwned(client: &Client) -> Value {
    client
        .execute(
            "return window.pwned === undefined ? null : window.pwned;",
            vec![],
        )
        .await
        .unwrap()
}

/// Polls the page until `ready` holds, failing with the page's text after a generous wait.
async fn until<F, Fut>(client: &Client, what: &str, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready().await {
        if Instant::now() > deadline {
            let body = text_of(client, "body").await;
            panic!("{what} never happened; the page shows:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A finished run whose objective and tool output carry markup, and whose deliverable has
/// a link out.
fn hostile_finished_run(world: &World) {
    world.call(
        "solver",
        "call_echo",
        "shell",
        &json!({"command": format!("printf '%s' '{}'", HOSTILE.replace('\'', ""))}),
    );
    world.write_and_deliver("deliverable/report.md", &format!("# Report\n{HOSTILE}\n"));
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    world
        .create("hostile", &format!("Objective {HOSTILE}"), &[])
        .success();
    let dir = world.run_dir("hostile");
    std::fs::write(dir.join("outside.txt"), "OUTSIDE-THE-DELIVERABLE").unwrap();
    std::os::unix::fs::symlink(dir.join("outside.txt"), dir.join("deliverable/link-out")).unwrap();
}

#[test]
fn the_dashboard_in_a_browser() {
    let world = World::new();
    hostile_finished_run(&world);
    // A run held at a gate: its first tool call waits for a file the test creates.
    world.call(
        "solver",
        "call_gate",
        "shell",
        &json!({"command": "while [ ! -e gate ]; do sleep 0.1; done; echo gate opened"}),
    );
    world.say(
        "solver",
        r#"{"type":"direction_request","prompt":"The gate opened. What next?"}"#,
    );
    world.say(
        "director",
        r#"{"directive":"Write the report.","rationale":null}"#,
    );
    world.write_and_deliver("deliverable/live.md", "live\n");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );
    let mut driver = Reaped(world.spawn_create("live", "Watch me from the browser", &[]));
    world.wait_for_event("live", |e| e["kind"] == "tool_call_started");

    let (_ui, url) = serve(&world);
    let origin = url.split("/?").next().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = browser().await;
        let c = &browser.client;

        // The runs page: both runs, the hostile objective shown as text.
        c.goto(&url).await.unwrap();
        assert_eq!(
            c.current_url().await.unwrap().as_str(),
            format!("{origin}/")
        );
        let table = text_of(c, "table.runs").await;
        assert!(
            table.contains("hostile") && table.contains("live"),
            "{table}"
        );
        assert!(table.contains("<script>window.pwned=1</script>"), "{table}");
        assert_eq!(pwned(c).await, Value::Null);
        screenshot(c, "runs").await;

        // The finished run: escaped conversation and deliverable, refused escapes.
        c.goto(&format!("{origin}/runs/hostile")).await.unwrap();
        assert!(
            text_of(c, "p.objective")
                .await
                .contains("<script>window.pwned=1</script>")
        );
        assert!(text_of(c, "#summary").await.contains("succeeded"));
        screenshot(c, "run-succeeded").await;
        c.goto(&format!("{origin}/runs/hostile/rollouts/solver"))
            .await
            .unwrap();
        let conversation = text_of(c, "ol.rollout").await;
        assert!(
            conversation.contains("<script>window.pwned=1</script>"),
            "{conversation}"
        );
        assert_eq!(pwned(c).await, Value::Null);
        screenshot(c, "conversation").await;
        c.goto(&format!("{origin}/runs/hostile/files?path=report.md"))
            .await
            .unwrap();
        assert!(
            text_of(c, "pre.file")
                .await
                .contains("<script>window.pwned=1</script>")
        );
        assert_eq!(pwned(c).await, Value::Null);
        screenshot(c, "deliverable").await;
        for escape in [
            "../outside.txt",
            "link-out",
            "..%2Frun.json",
            "%2Fetc%2Fpasswd",
        ] {
            c.goto(&format!("{origin}/runs/hostile/files?path={escape}"))
                .await
                .unwrap();
            let body = text_of(c, "body").await;
            assert!(body.contains("403"), "{escape}: {body}");
            assert!(!body.contains("OUTSIDE-THE-DELIVERABLE") && !body.contains("root:"));
        }

        // The live run: send a message from the page, then open the gate and watch the
        // timeline grow without a reload.
        c.goto(&format!("{origin}/runs/live")).await.unwrap();
        c.find(Locator::Css("#send textarea"))
            .await
            .unwrap()
            .send_keys("MESSAGE-FROM-THE-PAGE")
            .await
            .unwrap();
        c.find(Locator::Css("#send button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(c, "the message notice", || async {
            c.find(Locator::Css("p.notice")).await.is_ok()
        })
        .await;
        c.execute("window.notReloaded = true;", vec![])
            .await
            .unwrap();
        let before = c
            .find_all(Locator::Css("#timeline li.event"))
            .await
            .unwrap()
            .len();
        screenshot(c, "run-live-before").await;
        std::fs::write(world.run_dir("live").join("gate"), "").unwrap();
        until(c, "the run's success on the page", || async {
            text_of(c, "#timeline")
                .await
                .contains("succeeded: deliverable/live.md")
        })
        .await;
        let after = c
            .find_all(Locator::Css("#timeline li.event"))
            .await
            .unwrap()
            .len();
        assert!(
            after > before + 5,
            "the timeline grew from {before} to {after}"
        );
        until(c, "the summary's status", || async {
            text_of(c, "#status").await == "succeeded"
        })
        .await;
        let kept = c
            .execute("return window.notReloaded === true;", vec![])
            .await
            .unwrap();
        assert_eq!(kept, Value::Bool(true), "the page was reloaded");
        screenshot(c, "run-live-after").await;
        c.set_window_size(390, 844).await.unwrap();
        screenshot(c, "run-phone").await;
        // The runs page hears of a new run without a reload.
        c.goto(&format!("{origin}/")).await.unwrap();
        c.execute("window.notReloaded = true;", vec![])
            .await
            .unwrap();
        world.say(
            "solver",
            r#"{"type":"final_delivery","deliverable_path":"deliverable","summary":null}"#,
        );
        world.say(
            "verifier-1",
            r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
        );
        world
            .create("newcomer", "Appear on the runs page", &[])
            .success();
        until(c, "the new run on the runs page", || async {
            text_of(c, "#runs-body").await.contains("newcomer")
        })
        .await;
        let kept = c
            .execute("return window.notReloaded === true;", vec![])
            .await
            .unwrap();
        assert_eq!(kept, Value::Bool(true), "the runs page was reloaded");
        screenshot(c, "runs-phone").await;

        // Without the cookie, nothing is served.
        c.delete_all_cookies().await.unwrap();
        for path in ["/", "/runs/live", "/runs/hostile/files?path=report.md"] {
            c.goto(&format!("{origin}{path}")).await.unwrap();
            let body = text_of(c, "body").await;
            assert!(body.contains("401"), "{path}: {body}");
            assert!(!body.contains("Watch me"));
        }
        screenshot(c, "refused").await;
        let _ = browser.client.clone().close().await;
    });

    let status = driver.0.wait().unwrap();
    assert!(status.success(), "the live run ended with {status}");
    // The message typed in the page reached the Solver in its next request.
    let solver_bodies: Vec<String> = world
        .server
        .requests()
        .into_iter()
        .filter(|(route, _)| route == "solver")
        .map(|(_, body)| body.to_string())
        .collect();
    let first = solver_bodies
        .iter()
        .position(|body| body.contains("MESSAGE-FROM-THE-PAGE"))
        .expect("the message never reached the Solver");
    assert!(
        first > 0,
        "delivered with a later turn, not the first request"
    );
    let journal = std::fs::read_to_string(world.run_dir("live").join("events.jsonl")).unwrap();
    assert!(journal.contains("\"kind\":\"message_delivered\""));
}

#[test]
fn interrupt_and_resume_from_the_page() {
    let world = World::new();
    world.call(
        "solver",
        "call_gate",
        "shell",
        &json!({"command": "while [ ! -e gate ]; do sleep 0.1; done"}),
    );
    let mut driver = Reaped(world.spawn_create("steered", "Stop me, then go on", &[]));
    world.wait_for_event("steered", |e| e["kind"] == "tool_call_started");
    // What the resumed run does: deliver at once; the Verifier passes.
    world.write_and_deliver("deliverable/after.md", "resumed\n");
    world.say(
        "verifier-1",
        r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
    );

    let (_ui, url) = serve(&world);
    let origin = url.split("/?").next().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let browser = browser().await;
        let c = &browser.client;
        c.goto(&url).await.unwrap();
        c.goto(&format!("{origin}/runs/steered")).await.unwrap();
        c.find(Locator::Css("#interrupt"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(c, "the interrupted status", || async {
            text_of(c, "#status").await == "interrupted"
        })
        .await;
        screenshot(c, "run-interrupted").await;
        let status = driver.0.wait().unwrap();
        assert_eq!(status.code(), Some(130), "the driver stopped as on Ctrl-C");

        c.find(Locator::Css("#resume"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        until(c, "the resumed run's success", || async {
            text_of(c, "#status").await == "succeeded"
        })
        .await;
        assert!(
            text_of(c, "#timeline")
                .await
                .contains("succeeded: deliverable/after.md")
        );
        let _ = browser.client.clone().close().await;
    });
    let log = std::fs::read_to_string(world.home.path().join("logs/ui-resume-steered.log"))
        .unwrap_or_default();
    assert!(!log.contains(crate::harness::SECRET));
    world.assert_secret_nowhere();
}
