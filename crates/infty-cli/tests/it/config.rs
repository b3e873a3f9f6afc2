//! The config file: precedence (flags > environment > config > defaults), `infty config`,
//! and a bad file as one clear error.

use crate::harness::{World, settings, stderr_text};

/// A Solver that delivers at once, and a passing Verifier for each of `verifiers`.
fn script_quick_delivery(world: &World, verifiers: &[&str]) {
    world.call(
        "solver",
        "call_write",
        "write_file",
        &serde_json::json!({"path": "deliverable/a.md", "content": "done"}),
    );
    world.say(
        "solver",
        r#"{"type":"final_delivery","deliverable_path":"deliverable/a.md","summary":null}"#,
    );
    for verifier in verifiers {
        world.say(
            verifier,
            r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#,
        );
    }
}

fn full_config(base_url: &str) -> String {
    format!(
        r#"
[provider]
base_url = "{base_url}"
wire_api = "responses"

[solver]
model = "config-solver"

[director]
model = "config-director"
effort = "high"

[verifiers]
count = 2
models = ["config-verifier-a", "config-verifier-b"]
policy = "majority"

[budgets]
max_turns = 40
max_rounds = 4
max_tokens = 900000
max_wall_secs = 3600

[timeouts]
turn_secs = 45
"#
    )
}

#[test]
fn the_config_file_fills_what_flags_and_environment_leave_unset() {
    let world = World::new();
    world.write_config(&full_config(&world.server.base_url()));
    script_quick_delivery(&world, &["verifier-1", "verifier-2"]);
    world
        .infty()
        .args(["create", "--objective", "x", "--run-id", "cfg"])
        .assert()
        .success();
    let run = world.run_json("cfg");
    let models: Vec<(&str, &str, Option<&str>)> = run["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["role"].as_str().unwrap(),
                r["model"].as_str().unwrap(),
                r["reasoning_effort"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        models,
        [
            ("solver", "config-solver", None),
            ("director", "config-director", Some("high")),
            ("verifier-1", "config-verifier-a", None),
            ("verifier-2", "config-verifier-b", None),
        ]
    );
    let options = &run["options"];
    assert_eq!(options["verification_policy"], "majority");
    assert_eq!(options["budgets"]["max_solver_turns"], 40);
    assert_eq!(options["budgets"]["max_verification_rounds"], 4);
    assert_eq!(options["budgets"]["max_total_tokens"], 900000);
    assert_eq!(options["budgets"]["max_wall_clock_secs"], 3600);
    assert_eq!(options["timeouts"]["solver_turn_secs"], 45);
    assert_eq!(options["provider"]["base_url"], world.server.base_url());
}

#[test]
fn flags_beat_the_environment_which_beats_the_config_file() {
    let dead = "http://127.0.0.1:9/v1";
    // (config base URL, OPENAI_BASE_URL, --base-url): the live server must win every time.
    let world = World::new();
    let live = world.server.base_url();
    let cases: &[(&str, Option<&str>, Option<&str>)] = &[
        (dead, Some(&live), None),
        (dead, Some(dead), Some(&live)),
        (&live, None, None),
    ];
    for (index, (config_url, env_url, flag_url)) in cases.iter().enumerate() {
        world.write_config(&format!(
            "[provider]\nbase_url = \"{config_url}\"\n[solver]\nmodel = \"from-config\"\n[verifiers]\ncount = 0\n[budgets]\nmax_turns = 9\n"
        ));
        script_quick_delivery(&world, &[]);
        let run_id = format!("prec-{index}");
        let mut cmd = world.infty();
        cmd.args(["create", "--objective", "x", "--run-id", &run_id]);
        cmd.args(["--model", "from-flag", "--max-turns", "7"]);
        if let Some(url) = env_url {
            cmd.env("OPENAI_BASE_URL", url);
        }
        if let Some(url) = flag_url {
            cmd.args(["--base-url", url]);
        }
        cmd.assert().success();
        let run = world.run_json(&run_id);
        assert_eq!(
            run["options"]["provider"]["base_url"],
            live.as_str(),
            "case {index}"
        );
        assert_eq!(run["roles"][0]["model"], "from-flag", "case {index}");
        assert_eq!(
            run["options"]["budgets"]["max_solver_turns"], 7,
            "case {index}"
        );
        assert_eq!(run["roles"].as_array().unwrap().len(), 2, "case {index}");
    }
}

#[test]
fn infty_config_prints_the_effective_settings_without_secrets() {
    let world = World::new();
    let plain = world.stdout_of(&["config"]);
    world.write_config(&full_config("http://localhost:11434/v1"));
    let configured = world.stdout_of(&["config"]);
    let json = world.stdout_of(&["config", "--json"]);
    let with_env = {
        let output = world
            .infty()
            .env("OPENAI_BASE_URL", "http://env.example/v1")
            .env_remove("OPENAI_API_KEY")
            .arg("config")
            .assert()
            .success()
            .get_output()
            .clone();
        String::from_utf8(output.stdout).unwrap()
    };
    for text in [&plain, &configured, &json, &with_env] {
        assert!(!text.contains(crate::harness::SECRET), "{text}");
    }
    settings(&world).bind(|| {
        insta::assert_snapshot!("config_defaults", plain);
        insta::assert_snapshot!("config_from_file", configured);
        insta::assert_snapshot!("config_json", json);
        insta::assert_snapshot!("config_env", with_env);
    });
}

#[test]
fn a_bad_config_file_is_one_error_with_file_and_line() {
    let world = World::new();
    let cases: &[(&str, &str)] = &[
        (
            "bad_config_syntax",
            "[solver]\nmodel = \"x\"\n\n[budgets\nmax_turns = 3\n",
        ),
        (
            "bad_config_unknown_key",
            "[solver]\nmodel = \"x\"\nefort = \"high\"\n",
        ),
        ("bad_config_type", "[budgets]\nmax_turns = \"many\"\n"),
        ("bad_config_range", "[budgets]\nmax_turns = 0\n"),
    ];
    for (name, text) in cases {
        world.write_config(text);
        let assert = world
            .infty()
            .args(["create", "--objective", "x"])
            .assert()
            .code(2);
        let stderr = stderr_text(&assert);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        settings(&world).bind(|| insta::assert_snapshot!(*name, stderr));
    }
    // Reading runs does not need the config: a broken file never locks people out.
    world.infty().arg("list").assert().success();
}

/// The settings `create` logged for its run, with their sources.
fn logged_settings(world: &World) -> serde_json::Map<String, serde_json::Value> {
    logged(world, "the settings of a new run")
}

/// The settings the last log line saying `message` carries.
fn logged(world: &World, message: &str) -> serde_json::Map<String, serde_json::Value> {
    let log = std::fs::read_to_string(world.home.path().join("logs").join("infty.log")).unwrap();
    let line = log
        .lines()
        .rfind(|line| line.contains(message))
        .unwrap_or_else(|| panic!("no settings in the log:\n{log}"));
    let json = &line[line.find("settings={").unwrap() + "settings=".len()..];
    serde_json::from_str(json.trim()).unwrap()
}

#[test]
fn infty_config_shows_the_sources_that_create_used() {
    let world = World::new();
    world.write_config(
        "[solver]\nmodel = \"config-solver\"\n[verifiers]\ncount = 0\n[budgets]\nmax_turns = 9\nmax_rounds = 4\n[stall]\nrepeats = 3\n[sandbox]\nverifier = \"workspace-write\"\n"
    );
    script_quick_delivery(&world, &[]);
    let live = world.server.base_url();
    world
        .infty()
        .env("OPENAI_BASE_URL", &live)
        .args(["create", "--objective", "x", "--run-id", "src"])
        .args(["--max-rounds", "2", "--director-model", "flag-director"])
        .assert()
        .success();
    let created = logged_settings(&world);
    let shown: serde_json::Map<String, serde_json::Value> = {
        let output = world
            .infty()
            .env("OPENAI_BASE_URL", &live)
            .args(["config", "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&output).unwrap()
    };
    let flags = ["budgets.max_rounds", "director.model"];
    for (key, setting) in &created {
        if flags.contains(&key.as_str()) {
            assert_eq!(setting["source"], "flag", "{key}");
            continue;
        }
        assert_eq!(shown[key], *setting, "{key}: config and create disagree");
    }
    let source = |key: &str| created[key]["source"].as_str().unwrap().to_string();
    assert_eq!(source("provider.base_url"), "env");
    assert_eq!(source("solver.model"), "config");
    assert_eq!(source("budgets.max_turns"), "config");
    assert_eq!(source("sandbox.verifier"), "config");
    assert_eq!(source("sandbox.solver"), "default");
    // And the run holds what the log says.
    let run = world.run_json("src");
    assert_eq!(run["roles"][0]["model"], "config-solver");
    assert_eq!(run["roles"][1]["model"], "flag-director");
    assert_eq!(run["options"]["budgets"]["max_verification_rounds"], 2);
    assert_eq!(run["options"]["budgets"]["max_solver_turns"], 9);
    assert_eq!(run["options"]["provider"]["base_url"], live.as_str());
    assert_eq!(created["provider.base_url"]["value"], live.as_str());
}

#[test]
fn infty_config_run_shows_what_resume_uses() {
    let world = World::new();
    world.say("solver", r#"{"type":"direction_request","prompt":"Go?"}"#);
    world.say("director", r#"{"directive":"Go.","rationale":null}"#);
    world
        .create(
            "kept",
            "Answer.",
            &[
                "--verifiers",
                "0",
                "--max-turns",
                "1",
                "--model",
                "run-model",
            ],
        )
        .code(3);
    // The config file changes once the run exists: it speaks for new runs only.
    world.write_config("[solver]\nmodel = \"later-model\"\n[budgets]\nmax_turns = 50\n");
    let config_run = |json: bool| {
        let mut cmd = world.infty();
        cmd.args(["config", "--run", "kept"]);
        if json {
            cmd.arg("--json");
        }
        let output = cmd.assert().success().get_output().stdout.clone();
        String::from_utf8(output).unwrap()
    };
    let shown: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&config_run(true)).unwrap();
    let recorded = |value: &str| serde_json::json!({"value": value, "source": "recorded"});
    assert_eq!(shown["solver.model"], recorded("run-model"));
    assert_eq!(shown["director.model"], recorded("run-model"));
    assert_eq!(shown["budgets.max_turns"], recorded("1"));
    assert_eq!(shown["timeouts.turn_secs"], recorded("30"));
    assert_eq!(
        shown["provider.base_url"],
        recorded(&world.server.base_url())
    );
    assert_eq!(shown["sandbox.solver"]["source"], "recorded");
    assert_eq!(shown["home"]["source"], "env");

    // A resume logs what it used: the flags typed, and otherwise what config showed.
    world.write_and_deliver("deliverable/a.txt", "a");
    world.resume("kept", &["--max-turns", "5"]).success();
    let resumed = logged(&world, "the settings of a resumed run");
    assert_eq!(
        resumed["budgets.max_turns"],
        serde_json::json!({"value": "5", "source": "flag"})
    );
    for (key, setting) in &resumed {
        if key == "budgets.max_turns" || key == "provider.base_url" {
            continue;
        }
        assert_eq!(
            shown[key], *setting,
            "{key}: config --run and resume disagree"
        );
    }
    // The new limit is recorded now, and a text listing says so.
    let text = config_run(false);
    let line = text
        .lines()
        .find(|line| line.starts_with("budgets.max_turns "))
        .unwrap_or_else(|| panic!("no max_turns line:\n{text}"));
    assert!(line.ends_with("  5  (recorded)"), "{line}");

    // An unknown run is named.
    let missing = world
        .infty()
        .args(["config", "--run", "nope"])
        .assert()
        .failure();
    assert!(
        crate::harness::stderr_text(&missing).contains("nope"),
        "{}",
        crate::harness::stderr_text(&missing)
    );
}
