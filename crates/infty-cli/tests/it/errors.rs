//! The errors a newcomer can hit: each is one clear line and the right exit code.

use crate::harness::{World, settings};

fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).unwrap()
}

#[test]
fn missing_api_key_names_the_variable() {
    let world = World::new();
    let assert = world
        .infty()
        .env_remove("OPENAI_API_KEY")
        .args(["create", "--objective", "anything"])
        .assert()
        .code(1);
    insta::assert_snapshot!(stderr_of(&assert));
}

#[test]
fn invalid_flag_values_exit_with_code_2() {
    let world = World::new();
    world
        .infty()
        .args(["create", "--objective", "x", "--verifiers", "many"])
        .assert()
        .code(2);
    world
        .infty()
        .args(["create", "--objective", "x", "--wire-api", "grpc"])
        .assert()
        .code(2);
    let assert = world
        .infty()
        .args(["create", "--objective", "x", "--run-id", "../escape"])
        .assert()
        .code(2);
    insta::assert_snapshot!("invalid_run_id", stderr_of(&assert));
}

#[test]
fn unknown_run_is_one_clear_line() {
    let world = World::new();
    let assert = world.infty().args(["show", "nope"]).assert().code(1);
    settings(&world).bind(|| insta::assert_snapshot!(stderr_of(&assert)));
}

#[test]
fn unreachable_server_fails_the_run_with_the_url() {
    let world = World::new();
    // Port 9 (discard) on localhost: nothing listens there.
    let assert = world
        .infty()
        .args([
            "create",
            "--objective",
            "x",
            "--run-id",
            "dead",
            "--verifiers",
            "0",
        ])
        .args(["--base-url", "http://127.0.0.1:9/v1"])
        .assert()
        .code(1);
    let stderr = stderr_of(&assert);
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    assert_eq!(world.run_json("dead")["status"], "failed");
}

#[test]
fn errors_are_logged_to_the_log_file_without_the_key() {
    let world = World::new();
    world.infty().args(["show", "nope"]).assert().code(1);
    world
        .infty()
        .env("RUST_LOG", "debug")
        .args(["logs", "nope"])
        .assert()
        .code(1);
    let log = std::fs::read_to_string(world.home.path().join("logs/infty.log")).unwrap();
    let errors: Vec<&str> = log.lines().filter(|line| line.contains("ERROR")).collect();
    assert_eq!(errors.len(), 2, "{log}");
    assert!(
        errors.iter().all(|line| line.contains("no run nope")),
        "{log}"
    );
    world.assert_secret_nowhere();
}
