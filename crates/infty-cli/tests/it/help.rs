//! Help texts and shell completions: what a newcomer reads first.

use crate::harness::World;

#[test]
fn help_texts() {
    let world = World::new();
    let cases: &[(&str, &[&str])] = &[
        ("help_infty", &["--help"]),
        ("help_create", &["create", "--help"]),
        ("help_list", &["list", "--help"]),
        ("help_show", &["show", "--help"]),
        ("help_logs", &["logs", "--help"]),
        ("help_resume", &["resume", "--help"]),
        ("help_send", &["send", "--help"]),
        ("help_config", &["config", "--help"]),
        ("help_completions", &["completions", "--help"]),
        ("help_submit", &["submit", "--help"]),
        ("help_worker", &["worker", "--help"]),
    ];
    for (name, args) in cases {
        let text = world.stdout_of(args);
        insta::assert_snapshot!(*name, text);
    }
}

#[test]
fn completions_for_each_shell() {
    let world = World::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = world.stdout_of(&["completions", shell]);
        for word in ["create", "resume", "logs", "objective-file", "follow"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    world.infty().args(["completions", "tcsh"]).assert().code(2);
}
