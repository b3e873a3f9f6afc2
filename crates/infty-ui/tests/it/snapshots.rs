//! Snapshots of the HTML people read: the timeline, the runs table, the run summary, a
//! conversation and a deliverable listing, all from a run a hostile model wrote.

use crate::{Fixture, settings};

/// The part of a page between `start` and the end of `end` (the first after `start`).
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).unwrap();
    let to = from + html[from..].find(end).unwrap() + end.len();
    &html[from..to]
}

/// One element per line, so a snapshot diff points at the item that changed.
fn lines(html: &str) -> String {
    html.replace("><li", ">\n<li").replace("><tr", ">\n<tr")
}

#[tokio::test]
async fn timeline_of_a_hostile_run() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let page = fx.get("/runs/r1").await;
    let timeline = between(&page.body, "<ol class=\"timeline\"", "</ol>");
    settings(&fx.root).bind(|| insta::assert_snapshot!(lines(timeline)));
}

#[tokio::test]
async fn summary_of_a_hostile_run() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let summary = fx.get("/runs/r1/summary").await;
    settings(&fx.root).bind(|| insta::assert_snapshot!(summary.body.replace("><", ">\n<")));
}

#[tokio::test]
async fn runs_rows() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let mut other = fx.hostile_run("r2");
    other
        .add_usage(
            "solver",
            infty_store::TokenUsage {
                input_tokens: 1000,
                output_tokens: 234,
                total_tokens: 1234,
                ..Default::default()
            },
        )
        .unwrap();
    let rows = fx.get("/fragments/runs").await;
    settings(&fx.root).bind(|| insta::assert_snapshot!(lines(&rows.body)));
}

#[tokio::test]
async fn conversation_of_the_solver() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let page = fx.get("/runs/r1/rollouts/solver").await;
    let items = between(&page.body, "<ol class=\"rollout\"", "</ol>");
    settings(&fx.root).bind(|| insta::assert_snapshot!(lines(items)));
}

#[tokio::test]
async fn deliverable_listing() {
    let fx = Fixture::new();
    fx.hostile_run("r1");
    let page = fx.get("/runs/r1/files").await;
    let table = between(&page.body, "<table class=\"files\"", "</table>");
    settings(&fx.root).bind(|| insta::assert_snapshot!(lines(table)));
}
