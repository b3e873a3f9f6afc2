//! inbox/: queue from anywhere, take in order, deliver exactly once.

use std::fs;

use infty_store::{InboxMessage, Role, StoreError};

use crate::{sample_run, scratch, settings};

fn texts(messages: &[InboxMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.text.as_str()).collect()
}

#[test]
fn messages_come_out_in_order_per_role() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let inbox = store.inbox();
    for (role, text) in [
        ("solver", "one"),
        ("director", "d1"),
        ("solver", "two"),
        ("solver", "three"),
    ] {
        inbox.enqueue(&Role::parse(role).unwrap(), text).unwrap();
    }
    assert_eq!(
        texts(&inbox.pending("solver").unwrap()),
        ["one", "two", "three"]
    );
    assert_eq!(texts(&inbox.pending("director").unwrap()), ["d1"]);
    assert!(inbox.pending("verifier-1").unwrap().is_empty());
}

#[test]
fn delivery_happens_once() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let inbox = store.inbox();
    let first = inbox.enqueue(&Role::Solver, "first").unwrap();
    let second = inbox.enqueue(&Role::Solver, "second").unwrap();
    inbox.mark_delivered(&first.id).unwrap();
    // A driver that crashed after delivering repeats the call: still fine.
    inbox.mark_delivered(&first.id).unwrap();
    assert_eq!(
        inbox.pending("solver").unwrap(),
        std::slice::from_ref(&second)
    );
    assert_eq!(inbox.delivered("solver").unwrap(), [first]);
    inbox.mark_delivered(&second.id).unwrap();
    assert!(inbox.pending("solver").unwrap().is_empty());
    let unknown = ["20991231T000000.000000000Z-00000000", "../run", ""];
    for id in unknown {
        let err = inbox.mark_delivered(id).unwrap_err();
        assert!(matches!(err, StoreError::UnknownMessage { .. }), "{id}");
    }
}

#[test]
fn message_file_snapshot() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let message = store
        .inbox()
        .enqueue(&Role::Solver, "Please cite your sources.")
        .unwrap();
    assert_eq!(message.role, "solver");
    let text = fs::read_to_string(store.dir().join(format!("inbox/{}.json", message.id))).unwrap();
    let mut settings = settings(&s.path);
    settings.add_filter(r"\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{8}", "[message-id]");
    settings.bind(|| insta::assert_snapshot!(text));
}

#[test]
fn temp_files_and_strangers_are_skipped() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let inbox = store.inbox();
    inbox.enqueue(&Role::Solver, "real").unwrap();
    let dir = store.dir().join("inbox");
    fs::write(
        dir.join(".20261124T013512.000000000Z-00000000.json.tmp-1234abcd"),
        "{\"id\":",
    )
    .unwrap();
    fs::write(dir.join("notes.txt"), "not a message").unwrap();
    assert_eq!(texts(&inbox.pending("solver").unwrap()), ["real"]);
}

#[test]
fn refusals() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let inbox = store.inbox();
    let cases: &[(&str, &str, &str)] = &[
        (
            "solver",
            "  \n",
            "refusing to queue an empty message for role `solver`",
        ),
        (
            "../etc",
            "x",
            "invalid role name `../etc`: only lower-case ASCII letters, digits, `_` and `-` are allowed (the roles are `solver`, `director` and `verifier…`)",
        ),
    ];
    for (role, text, message) in cases {
        let refused = Role::parse(role).and_then(|role| inbox.enqueue(&role, text));
        assert_eq!(refused.unwrap_err().to_string(), *message);
    }
    let bad = store
        .dir()
        .join("inbox/20261124T013512.000000000Z-00000000.json");
    fs::write(&bad, "{\"id\": 3}").unwrap();
    let err = inbox.pending("solver").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "inbox message {bad} is corrupt: invalid type: integer `3`, expected a string at line 1 column 8"
        )
    );
}

#[test]
fn concurrent_senders_lose_nothing() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let inbox = store.inbox();
            scope.spawn(move || {
                for i in 0..25 {
                    inbox.enqueue(&Role::Solver, &format!("{t}-{i}")).unwrap();
                }
            });
        }
        // A reader racing the senders only ever sees whole messages.
        let inbox = store.inbox();
        for _ in 0..20 {
            inbox.pending("solver").unwrap();
        }
    });
    let pending = store.inbox().pending("solver").unwrap();
    assert_eq!(pending.len(), 100);
    // Each sender's messages keep their order.
    for t in 0..4 {
        let mine: Vec<String> = pending
            .iter()
            .filter(|m| m.text.starts_with(&format!("{t}-")))
            .map(|m| m.text.clone())
            .collect();
        let expected: Vec<String> = (0..25).map(|i| format!("{t}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}
