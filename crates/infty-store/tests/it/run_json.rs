//! run.json: creation, atomic updates, status machine, and the damage a crash can leave.

use std::fs;

use infty_store::{
    OutcomeRecord, RUN_SUBDIRS, RunInit, RunStatus, RunStore, SCHEMA_VERSION, StoreError,
    TokenUsage, runs_root_from,
};
use serde_json::Value;

use crate::{sample_init, sample_run, scratch, settings};

fn run_json(store: &RunStore) -> Value {
    serde_json::from_str(&fs::read_to_string(store.dir().join("run.json")).unwrap()).unwrap()
}

fn entries(dir: &camino::Utf8Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn create_lays_out_the_folder() {
    let s = scratch();
    let store = sample_run(&s.path, "r1");
    assert_eq!(store.dir(), s.path.join("r1"));
    assert_eq!(store.run_id(), "r1");
    let mut expected: Vec<String> = RUN_SUBDIRS.iter().map(|d| d.to_string()).collect();
    expected.extend(["events.jsonl".into(), "run.json".into()]);
    expected.sort();
    assert_eq!(entries(store.dir()), expected);
    assert_eq!(fs::read_to_string(store.events_path()).unwrap(), "");
    assert_eq!(store.metadata().status, RunStatus::Created);
    assert_eq!(store.metadata().schema_version, SCHEMA_VERSION);
    assert_eq!(store.metadata().created_at, store.metadata().updated_at);
}

#[test]
fn run_json_snapshot() {
    let s = scratch();
    let mut store = sample_run(&s.path, "snap-run");
    store.set_status(RunStatus::Running).unwrap();
    store
        .add_usage(
            "solver",
            TokenUsage {
                input_tokens: 1200,
                cached_input_tokens: 1000,
                output_tokens: 300,
                reasoning_tokens: 120,
                total_tokens: 1500,
            },
        )
        .unwrap();
    store
        .add_usage(
            "solver",
            TokenUsage {
                input_tokens: 10,
                total_tokens: 10,
                ..TokenUsage::default()
            },
        )
        .unwrap();
    store.rotate_rollout("verifier-1").unwrap();
    store.set_status(RunStatus::Succeeded).unwrap();
    store
        .update(|m| {
            m.outcome = Some(OutcomeRecord {
                deliverable_path: "deliverable/proof.md".into(),
                summary: Some("Euclid's argument".into()),
            })
        })
        .unwrap();
    let text = fs::read_to_string(store.dir().join("run.json")).unwrap();
    settings(&s.path).bind(|| insta::assert_snapshot!(text));
    // What is on disk is what the store holds.
    assert_eq!(
        serde_json::from_value::<infty_store::RunMetadata>(run_json(&store)).unwrap(),
        *store.metadata()
    );
}

#[test]
fn reopen_sees_every_field() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r1");
    store.set_status(RunStatus::Running).unwrap();
    store.set_status(RunStatus::Failed).unwrap();
    store
        .update(|m| m.error = Some("verifier-1 gave no verdict twice".into()))
        .unwrap();
    let reopened = RunStore::open(store.dir()).unwrap();
    assert_eq!(reopened.metadata(), store.metadata());
    let by_id = RunStore::open_id(&s.path, "r1").unwrap();
    assert_eq!(by_id.metadata(), store.metadata());
}

#[test]
fn status_transitions_through_the_store() {
    use RunStatus::*;
    // (steps, error of the last step if any)
    let cases: &[(&[RunStatus], Option<&str>)] = &[
        (&[Running, Succeeded], None),
        (
            &[
                Running,
                Interrupted,
                Running,
                BudgetExhausted,
                Running,
                Failed,
            ],
            None,
        ),
        (&[Running, Running, Running], None),
        (
            &[Succeeded],
            Some("run r cannot go from status created to succeeded"),
        ),
        (
            &[Running, Succeeded, Running],
            Some("run r cannot go from status succeeded to running"),
        ),
        (
            &[Running, Failed, Succeeded],
            Some("run r cannot go from status failed to succeeded"),
        ),
        (
            &[Running, Created],
            Some("run r cannot go from status running to created"),
        ),
    ];
    for (steps, error) in cases {
        let s = scratch();
        let mut store = sample_run(&s.path, "r");
        let mut last = Ok(());
        for step in *steps {
            last = store.set_status(*step);
            if last.is_err() {
                break;
            }
        }
        assert_eq!(
            last.err().map(|e| e.to_string()).as_deref(),
            *error,
            "{steps:?}"
        );
        // The file always agrees with memory, also after a refused step.
        assert_eq!(
            RunStore::open(store.dir()).unwrap().metadata(),
            store.metadata()
        );
    }
}

#[test]
fn resuming_clears_the_old_error() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    store.set_status(RunStatus::Running).unwrap();
    store
        .update(|m| {
            m.status = RunStatus::Failed;
            m.error = Some("boom".into());
        })
        .unwrap();
    store.set_status(RunStatus::Running).unwrap();
    assert_eq!(store.metadata().error, None);
}

#[test]
fn update_cannot_change_identity_and_never_goes_back_in_time() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    let before = store.metadata().clone();
    store
        .update(|m| {
            m.run_id = "other".into();
            m.schema_version = 99;
            m.created_at = time::OffsetDateTime::UNIX_EPOCH;
            m.updated_at = time::OffsetDateTime::UNIX_EPOCH;
            m.objective = "changed".into();
        })
        .unwrap();
    let after = store.metadata();
    assert_eq!(after.run_id, "r");
    assert_eq!(after.schema_version, SCHEMA_VERSION);
    assert_eq!(after.created_at, before.created_at);
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(after.objective, "changed");
}

#[test]
fn secrets_are_refused_and_nothing_is_written() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    let before = fs::read_to_string(store.dir().join("run.json")).unwrap();
    let err = store
        .update(|m| m.options.provider.api_key_env = Some("sk-live-0123456789".into()))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to store options.provider.api_key_env in run.json: it must be the NAME of an environment variable (letters, digits, `_`), not a key"
    );
    assert_eq!(
        fs::read_to_string(store.dir().join("run.json")).unwrap(),
        before
    );
    assert_eq!(
        store.metadata().options.provider.api_key_env.as_deref(),
        Some("OPENAI_API_KEY")
    );

    let mut init = sample_init();
    init.options.provider.base_url = "https://me:hunter2@api.example.com".into();
    let err = RunStore::create(&s.path, Some("r2"), init).unwrap_err();
    assert!(matches!(
        err,
        StoreError::SecretRefused {
            field: "options.provider.base_url",
            ..
        }
    ));
    assert!(
        !s.path.join("r2").exists(),
        "a refused run leaves no folder"
    );
}

#[test]
fn create_refusals() {
    let s = scratch();
    sample_run(&s.path, "taken");
    let mut dup_roles = sample_init();
    dup_roles.roles.push(dup_roles.roles[0].clone());
    // A role that cannot name a file cannot even be built: not by hand, nor from run.json.
    let mut record = serde_json::to_value(&sample_init().roles[0]).unwrap();
    record["role"] = "../x".into();
    let refused = serde_json::from_value::<infty_store::RoleRecord>(record).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "invalid role name `../x`: only lower-case ASCII letters, digits, `_` and `-` are allowed (the roles are `solver`, `director` and `verifier…`)"
    );
    let cases: Vec<(Option<&str>, RunInit, String)> = vec![
        (
            Some("taken"),
            sample_init(),
            format!("run taken already exists at {}/taken", s.path),
        ),
        (
            Some("../up"),
            sample_init(),
            "invalid run id `../up`: only ASCII letters, digits, `.`, `_` and `-` are allowed"
                .into(),
        ),
        (
            Some(".hidden"),
            sample_init(),
            "invalid run id `.hidden`: it must not start or end with `.`".into(),
        ),
        (
            Some("d"),
            dup_roles,
            "invalid role name `solver`: the run already has a role with this name".into(),
        ),
    ];
    for (id, init, message) in cases {
        let err = RunStore::create(&s.path, id, init).unwrap_err();
        assert_eq!(err.to_string(), message);
    }
    assert!(!s.path.join("d").exists());
}

#[test]
fn racing_creators_of_one_id_have_one_winner() {
    let s = scratch();
    let results: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| RunStore::create(&s.path, Some("contested"), sample_init())))
            .collect();
        workers
            .into_iter()
            .map(|w| match w.join().unwrap() {
                Ok(_) => true,
                Err(StoreError::AlreadyExists { .. }) => false,
                Err(e) => panic!("unexpected error: {e}"),
            })
            .collect()
    });
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
    assert!(
        entries(&s.path.join("contested"))
            .iter()
            .all(|n| !n.contains(".tmp-"))
    );
}

#[test]
fn an_unfinished_creation_is_completed() {
    let s = scratch();
    // A crash between create_dir and writing run.json leaves an empty folder.
    fs::create_dir_all(s.path.join("half/rollouts")).unwrap();
    let store = sample_run(&s.path, "half");
    assert_eq!(RunStore::open(store.dir()).unwrap().run_id(), "half");
}

#[test]
fn generated_ids_never_collide() {
    let s = scratch();
    let mut ids: Vec<String> = (0..20)
        .map(|_| {
            RunStore::create(&s.path, None, sample_init())
                .unwrap()
                .run_id()
                .to_owned()
        })
        .collect();
    assert!(ids.iter().all(|id| id.starts_with("run-")));
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20);
}

#[test]
fn broken_run_json() {
    let s = scratch();
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            "missing",
            None,
            "[run] is not a run folder: it has no run.json",
        ),
        (
            "empty",
            Some(""),
            "run metadata [run]/run.json is corrupt: EOF while parsing a value at line 1 column 0",
        ),
        (
            "garbage",
            Some("\u{0}\u{0}garbage"),
            "run metadata [run]/run.json is corrupt: expected value at line 1 column 1",
        ),
        (
            "truncated",
            Some("{\"schema_version\":1,\"run_id\":\"x\""),
            "run metadata [run]/run.json is corrupt: EOF while parsing an object at line 1 column 32",
        ),
        (
            "newer",
            Some("{\"schema_version\":2,\"layout\":\"different\"}"),
            "run metadata [run]/run.json has schema_version 2, this infty reads schema_version 1",
        ),
        (
            "wrong-type",
            Some("{\"schema_version\":1,\"run_id\":5}"),
            "run metadata [run]/run.json is corrupt: invalid type: integer `5`, expected a string at line 1 column 30",
        ),
    ];
    for (name, content, message) in cases {
        let dir = s.path.join(name);
        fs::create_dir_all(&dir).unwrap();
        if let Some(content) = content {
            fs::write(dir.join("run.json"), content).unwrap();
        }
        let err = RunStore::open(&dir).unwrap_err().to_string();
        assert_eq!(err.replace(dir.as_str(), "[run]"), *message, "{name}");
    }
    let newer = {
        let store = sample_run(&s.path, "newer-but-parseable");
        let mut v = run_json(&store);
        v["schema_version"] = 7.into();
        fs::write(store.dir().join("run.json"), v.to_string()).unwrap();
        RunStore::open(store.dir()).unwrap_err()
    };
    assert!(matches!(
        newer,
        StoreError::UnsupportedSchema {
            found: 7,
            supported: 1,
            ..
        }
    ));
}

#[test]
fn open_id_errors() {
    let s = scratch();
    let cases: &[(&str, String)] = &[
        ("nope", format!("no run nope under {}", s.path)),
        (
            "a/b",
            "invalid run id `a/b`: only ASCII letters, digits, `.`, `_` and `-` are allowed".into(),
        ),
        (
            "..",
            "invalid run id `..`: it must not start or end with `.`".into(),
        ),
    ];
    for (id, message) in cases {
        assert_eq!(
            RunStore::open_id(&s.path, id).unwrap_err().to_string(),
            *message
        );
    }
}

#[test]
fn temp_files_left_by_a_crash_are_ignored_then_cleaned_by_the_lock_holder() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let good = fs::read_to_string(store.dir().join("run.json")).unwrap();
    let stale = store.dir().join(".run.json.tmp-deadbeef");
    fs::write(&stale, "{\"schema_version\":1,\"run_id\":\"r\",\"obj").unwrap();
    let reopened = RunStore::open(store.dir()).unwrap();
    assert_eq!(reopened.metadata(), store.metadata());
    assert!(
        stale.exists(),
        "a reader must not delete another writer's temp file"
    );
    // Inbox temp files may belong to an `infty send` in flight: only old ones are removed.
    let inbox = store.dir().join("inbox");
    let old_send = inbox.join(".20261124T013512.000000000Z-00000001.json.tmp-0badc0de");
    let fresh_send = inbox.join(".20261124T013512.000000000Z-00000002.json.tmp-00c0ffee");
    fs::write(&old_send, "{").unwrap();
    fs::write(&fresh_send, "{").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::options()
        .write(true)
        .open(&old_send)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let _lock = reopened.lock().unwrap();
    assert!(!stale.exists());
    assert!(!old_send.exists());
    assert!(fresh_send.exists());
    assert_eq!(
        fs::read_to_string(store.dir().join("run.json")).unwrap(),
        good
    );
}

#[test]
fn default_runs_root() {
    let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
        (Some("/opt/infty"), Some("/home/a"), Some("/opt/infty/runs")),
        (None, Some("/home/a"), Some("/home/a/.infty/runs")),
        (Some(""), Some("/home/a"), Some("/home/a/.infty/runs")),
        (None, None, None),
        (Some(""), Some(""), None),
    ];
    for (infty_home, home, expected) in cases {
        let got = runs_root_from(infty_home.map(Into::into), home.map(Into::into));
        match expected {
            Some(path) => assert_eq!(got.unwrap(), *path),
            None => assert_eq!(
                got.unwrap_err().to_string(),
                "cannot find the infty home: set INFTY_HOME or HOME to a UTF-8 path"
            ),
        }
    }
}

#[test]
fn usage_is_added_in_one_write_and_caught_up_only_where_the_journal_holds_more() {
    let s = scratch();
    let mut store = sample_run(&s.path, "usage");
    let tokens = |total: u64| TokenUsage {
        input_tokens: total,
        total_tokens: total,
        ..TokenUsage::default()
    };
    store
        .add_usage_and_cost(&[("solver", tokens(100), 0.5), ("director", tokens(40), 0.0)])
        .unwrap();
    let json = run_json(&store);
    assert_eq!(json["usage"]["solver"]["total_tokens"], 100);
    assert_eq!(json["usage"]["director"]["total_tokens"], 40);
    assert_eq!(json["cost_usd"]["solver"], 0.5);
    assert!(json["cost_usd"].get("director").is_none(), "{json}");
    // No temp file is left beside run.json, though the folder is not synced for usage.
    assert!(
        entries(store.dir())
            .iter()
            .all(|name| !name.contains(".tmp-"))
    );

    // The journal agrees: nothing is written.
    let before = fs::read_to_string(store.dir().join("run.json")).unwrap();
    let agree = [
        ("solver".to_string(), (tokens(100), 0.5)),
        ("director".to_string(), (tokens(40), 0.0)),
    ];
    store
        .catch_up_usage(&agree.iter().cloned().collect())
        .unwrap();
    assert_eq!(
        fs::read_to_string(store.dir().join("run.json")).unwrap(),
        before
    );

    // The journal holds more for the solver (run.json was cut behind it) and for a verifier
    // run.json never heard of; less for the director, which run.json keeps.
    let journaled = [
        ("solver".to_string(), (tokens(250), 0.75)),
        ("director".to_string(), (tokens(10), 0.0)),
        ("verifier-1".to_string(), (tokens(30), 0.25)),
    ];
    store
        .catch_up_usage(&journaled.iter().cloned().collect())
        .unwrap();
    let json = run_json(&store);
    assert_eq!(json["usage"]["solver"]["total_tokens"], 250);
    assert_eq!(json["usage"]["director"]["total_tokens"], 40);
    assert_eq!(json["usage"]["verifier-1"]["total_tokens"], 30);
    assert_eq!(json["cost_usd"]["solver"], 0.75);
    assert_eq!(json["cost_usd"]["verifier-1"], 0.25);
}
