//! Output caps through the real binary: every request carries the role's cap, and a reply cut
//! at the cap is journaled (`output_capped`) and sent back to the role instead of being read
//! as its signal.

use infty_model::test_support::{ResponsesSse, ScriptedReply};
use serde_json::Value;

use crate::harness::World;

#[test]
fn a_capped_reply_is_journaled_and_sent_back() {
    let world = World::new();
    let cut = ResponsesSse::new("resp_cut")
        .text("{\"type\": \"final_deli")
        .usage(100, 64)
        .build_incomplete("max_output_tokens");
    world.server.push("solver", ScriptedReply::sse(cut));
    world.write_and_deliver("deliverable/a.md", "a\n");

    world
        .create(
            "capped",
            "Write a.",
            &["--verifiers", "0", "--max-output-tokens", "64"],
        )
        .success();

    let journal: Vec<Value> = std::fs::read_to_string(world.run_dir("capped").join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let capped: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "output_capped")
        .collect();
    assert_eq!(capped.len(), 1, "{journal:?}");
    assert_eq!(capped[0]["role"], "solver");
    assert_eq!(capped[0]["max_output_tokens"], 64);
    assert!(
        !journal.iter().any(|e| e["kind"] == "invalid_signal"),
        "the cut text was not read as a reply"
    );

    let requests = world.server.requests();
    assert_eq!(requests.len(), 3);
    for (_, body) in &requests {
        assert_eq!(body["max_output_tokens"], 64);
    }
    let resent = requests[1].1["input"].as_array().unwrap();
    let last = resent.last().unwrap()["content"].as_str().unwrap();
    assert_eq!(last, infty_core::session::output_capped_message(64));
    let run = world.run_json("capped");
    for role in run["roles"].as_array().unwrap() {
        assert_eq!(role["max_output_tokens"], 64, "{role}");
    }

    // People see it in the timeline.
    let logs = world.stdout_of(&["logs", "capped"]);
    assert!(
        logs.contains("solver response cut at its output cap (64 tokens)"),
        "{logs}"
    );
}
