//! rollouts/<role>.jsonl: append, read back for resume, torn tails, rotation.

use std::fs;

use infty_store::{JsonlWriter, RunStore, StoreError, read_jsonl};
use serde_json::{Value, json};

use crate::{sample_run, scratch};

#[test]
fn items_come_back_in_order() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    assert_eq!(
        store.rollout_path("solver").unwrap(),
        "rollouts/solver.jsonl"
    );
    let items = [
        json!({"type": "message", "role": "user", "content": "go"}),
        json!({"type": "function_call", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"}),
        json!({"type": "message", "role": "assistant", "content": "done ✓"}),
    ];
    let mut writer = store.rollout_writer("solver").unwrap();
    for item in &items {
        writer.append(item).unwrap();
    }
    writer.sync().unwrap();
    let path = store.dir().join("rollouts/solver.jsonl");
    assert_eq!(read_jsonl::<Value>(&path).unwrap(), items);
    // A second writer (resume) appends after what is there.
    let mut again = store.rollout_writer("solver").unwrap();
    again.append(&json!({"type": "resumed"})).unwrap();
    assert_eq!(read_jsonl::<Value>(&path).unwrap().len(), 4);
}

#[test]
fn a_rollout_cut_mid_line_is_repaired_on_resume() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let mut writer = store.rollout_writer("director").unwrap();
    writer.append(&json!({"n": 1})).unwrap();
    writer.append(&json!({"n": 2})).unwrap();
    drop(writer);
    let path = store.dir().join("rollouts/director.jsonl");
    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, b"{\"n\": 3, \"text\": \"cut he").unwrap();
    assert_eq!(
        read_jsonl::<Value>(&path).unwrap(),
        [json!({"n": 1}), json!({"n": 2})]
    );
    let mut writer = store.rollout_writer("director").unwrap();
    writer.append(&json!({"n": 3})).unwrap();
    assert_eq!(
        read_jsonl::<Value>(&path).unwrap(),
        [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]
    );
    assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 3);
    assert_eq!(store.check_record().unwrap().summary(), "sealed");
}

#[test]
fn rotation_keeps_the_old_rollouts() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    let mut writer = store.rollout_writer("verifier-1").unwrap();
    writer.append(&json!({"session": 1})).unwrap();
    drop(writer);
    assert_eq!(
        store.rotate_rollout("verifier-1").unwrap(),
        "rollouts/verifier-1.1.jsonl"
    );
    let mut writer = store.rollout_writer("verifier-1").unwrap();
    writer.append(&json!({"session": 2})).unwrap();
    drop(writer);
    assert_eq!(
        store.rotate_rollout("verifier-1").unwrap(),
        "rollouts/verifier-1.2.jsonl"
    );

    let reopened = RunStore::open(store.dir()).unwrap();
    let role = reopened.metadata().role("verifier-1").unwrap();
    assert_eq!(role.rollout_path, "rollouts/verifier-1.2.jsonl");
    assert_eq!(
        role.previous_rollouts,
        ["rollouts/verifier-1.jsonl", "rollouts/verifier-1.1.jsonl"]
    );
    let old = read_jsonl::<Value>(&store.dir().join("rollouts/verifier-1.jsonl")).unwrap();
    let middle = read_jsonl::<Value>(&store.dir().join("rollouts/verifier-1.1.jsonl")).unwrap();
    let current = read_jsonl::<Value>(&store.dir().join(&role.rollout_path)).unwrap();
    assert_eq!(
        (old, middle, current.len()),
        (vec![json!({"session": 1})], vec![json!({"session": 2})], 0)
    );
    // Other roles are untouched.
    assert_eq!(
        reopened.rollout_path("solver").unwrap(),
        "rollouts/solver.jsonl"
    );
}

#[test]
fn rotation_skips_a_name_already_on_disk() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    fs::write(store.dir().join("rollouts/solver.1.jsonl"), "{}\n").unwrap();
    assert_eq!(
        store.rotate_rollout("solver").unwrap(),
        "rollouts/solver.2.jsonl"
    );
}

#[test]
fn unknown_roles_are_refused() {
    let s = scratch();
    let mut store = sample_run(&s.path, "r");
    assert_eq!(store.rollout_path("ghost"), None);
    let errors = [
        store.rollout_writer("ghost").unwrap_err(),
        store.rotate_rollout("ghost").unwrap_err(),
    ];
    for err in errors {
        assert!(matches!(err, StoreError::UnknownRole { .. }));
        assert_eq!(err.to_string(), "run r has no role `ghost`");
    }
}

#[test]
fn missing_rollout_reads_as_empty_and_corruption_names_the_line() {
    let s = scratch();
    assert!(
        read_jsonl::<Value>(&s.path.join("none.jsonl"))
            .unwrap()
            .is_empty()
    );
    let path = s.path.join("bad.jsonl");
    fs::write(&path, "{}\n{}\n{oops}\n{}\n").unwrap();
    let err = read_jsonl::<Value>(&path).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{path} is corrupt at line 3: key must be a string at line 1 column 2")
    );
    let mut writer = JsonlWriter::open(&s.path.join("fresh.jsonl")).unwrap();
    assert!(writer.is_empty());
    writer.append(&1).unwrap();
    assert_eq!(writer.len(), 2);
}

#[test]
fn a_rollout_path_leaving_the_run_folder_is_refused() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let path = store.dir().join("run.json");
    // Each would land in the scratch folder if the guard failed.
    let absolute = format!("{}/escape.jsonl", s.path);
    for evil in [
        "../escape.jsonl",
        &absolute,
        "rollouts/../../escape.jsonl",
        "",
    ] {
        let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        v["roles"][0]["rollout_path"] = evil.into();
        fs::write(&path, v.to_string()).unwrap();
        let reopened = RunStore::open(store.dir()).unwrap();
        let err = reopened.rollout_writer("solver").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "run metadata {path} is corrupt: the rollout path `{evil}` of role `solver` is not a plain path inside the run folder"
            )
        );
    }
    assert!(!s.path.join("escape.jsonl").exists());
}
