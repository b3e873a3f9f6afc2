//! Listing runs for the CLI: newest first, broken folders skipped and reported.

use std::fs;

use infty_store::{RunStatus, list_runs};

use crate::{sample_run, scratch, settings};

#[test]
fn newest_first_and_broken_ones_reported() {
    let s = scratch();
    let mut a = sample_run(&s.path, "a");
    let _b = sample_run(&s.path, "b");
    let _c = sample_run(&s.path, "c");
    // a is touched last, so it is the most recently updated.
    a.set_status(RunStatus::Running).unwrap();
    fs::create_dir(s.path.join("empty-folder")).unwrap();
    fs::create_dir(s.path.join("garbage")).unwrap();
    fs::write(s.path.join("garbage/run.json"), "not json").unwrap();
    fs::create_dir(s.path.join(".hidden")).unwrap();
    fs::write(s.path.join("stray-file.txt"), "x").unwrap();

    let listing = list_runs(&s.path).unwrap();
    let ids: Vec<&str> = listing.runs.iter().map(|m| m.run_id.as_str()).collect();
    assert_eq!(ids[0], "a");
    assert_eq!(ids.len(), 3);
    let skipped: Vec<String> = listing
        .skipped
        .iter()
        .map(|(path, reason)| {
            assert!(
                reason.contains(path.as_str()),
                "the reason names the folder"
            );
            reason.clone()
        })
        .collect();
    let summaries: Vec<_> = listing.runs.iter().map(|m| m.summary()).collect();
    settings(&s.path).bind(|| {
        insta::assert_snapshot!("skipped", skipped.join("\n"));
        insta::assert_json_snapshot!("newest_summary", summaries[0]);
    });
}

#[test]
fn ties_break_by_id_and_a_missing_root_is_empty() {
    let s = scratch();
    for id in ["z", "m", "a"] {
        let mut store = sample_run(&s.path, id);
        store
            .update(|m| m.updated_at = time::OffsetDateTime::UNIX_EPOCH)
            .unwrap();
    }
    // update() refuses to go back in time, so force equal times through the file.
    for id in ["z", "m", "a"] {
        let path = s.path.join(id).join("run.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        v["updated_at"] = "2026-11-24T00:00:00Z".into();
        fs::write(&path, v.to_string()).unwrap();
    }
    let ids: Vec<String> = list_runs(&s.path)
        .unwrap()
        .runs
        .into_iter()
        .map(|m| m.run_id)
        .collect();
    assert_eq!(ids, ["a", "m", "z"]);
    let missing = list_runs(&s.path.join("nope")).unwrap();
    assert!(missing.runs.is_empty() && missing.skipped.is_empty());
}

#[test]
fn many_runs_are_all_listed_in_order() {
    // Enough runs for the listing to spread over threads; copies of one run.json with their
    // own ids and times, a few of them broken.
    let s = scratch();
    let template = sample_run(&s.path, "template");
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(template.dir().join("run.json")).unwrap())
            .unwrap();
    for i in 0..600 {
        let dir = s.path.join(format!("run-{i:04}"));
        fs::create_dir(&dir).unwrap();
        let mut v = json.clone();
        v["run_id"] = format!("run-{i:04}").into();
        v["updated_at"] = format!("2020-01-01T00:{:02}:{:02}Z", i / 60, i % 60).into();
        let content = if i % 100 == 7 {
            "{".to_owned()
        } else {
            v.to_string()
        };
        fs::write(dir.join("run.json"), content).unwrap();
    }
    let listing = list_runs(&s.path).unwrap();
    assert_eq!(listing.runs.len(), 601 - 6);
    assert_eq!(listing.skipped.len(), 6);
    assert_eq!(listing.runs[0].run_id, "template");
    assert_eq!(listing.runs[1].run_id, "run-0599");
    assert_eq!(listing.runs.last().unwrap().run_id, "run-0000");
    assert!(
        listing
            .runs
            .windows(2)
            .all(|w| w[0].updated_at >= w[1].updated_at)
    );
    let skipped: Vec<String> = listing
        .skipped
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        skipped,
        [
            "run-0007", "run-0107", "run-0207", "run-0307", "run-0407", "run-0507"
        ]
    );
}
