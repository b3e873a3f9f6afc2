//! Whole scripted runs through the pure state machine, snapshotted as input → action
//! transcripts. No server, no tokio, no files.

use infty_core::events::{CheckResult, DeliverableCheck, FailureKind, Input, Terminal};
use infty_core::flow::{Call, Flow, FlowConfig};
use infty_store::{
    Budgets, CheckDir, CheckSpec, DeliverableFingerprint, FileFingerprint, Role, RunStatus,
    StallPolicy, TokenUsage, VerificationPolicy,
};
use time::OffsetDateTime;

struct Script {
    flow: Flow,
    clock: i64,
    transcript: String,
}

fn config(verifiers: &[&str]) -> FlowConfig {
    FlowConfig {
        objective: "Write a word counter.".to_string(),
        run_id: "demo".to_string(),
        run_dir: "/runs/demo".to_string(),
        base_dir: "/runs/demo".to_string(),
        verifiers: verifiers.iter().map(|v| Role::parse(v).unwrap()).collect(),
        policy: VerificationPolicy::All,
        budgets: Budgets::default(),
        max_invalid_signals: 3,
        ..FlowConfig::default()
    }
}

impl Script {
    fn new(config: FlowConfig) -> Script {
        let mut script = Script {
            flow: Flow::new(config),
            clock: 0,
            transcript: String::new(),
        };
        script.feed(Input::Started);
        script
    }

    fn feed(&mut self, input: Input) -> &mut Script {
        self.clock += 10;
        let now = OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(self.clock);
        self.transcript
            .push_str(&format!("> {}\n", serde_json::to_string(&input).unwrap()));
        for action in self.flow.step(input, now) {
            self.transcript
                .push_str(&format!("  {}\n", serde_json::to_string(&action).unwrap()));
        }
        match self.flow.outstanding() {
            Some(call) => self.transcript.push_str(&format!(
                "  next {}\n",
                serde_json::to_string(&call).unwrap()
            )),
            None => self.transcript.push_str("  next: nothing\n"),
        }
        self
    }

    fn solver(&mut self, text: &str) -> &mut Script {
        self.feed(Input::SolverReplied {
            text: text.to_string(),
        })
    }

    fn director(&mut self, text: &str) -> &mut Script {
        self.feed(Input::DirectorReplied {
            text: text.to_string(),
        })
    }

    fn accept(&mut self, path: &str) -> &mut Script {
        self.feed(Input::DeliverableChecked {
            check: DeliverableCheck::Accepted {
                path: path.to_string(),
                fingerprint: None,
            },
        })
    }

    fn accept_files(&mut self, path: &str, files: &[(&str, &str)]) -> &mut Script {
        self.feed(Input::DeliverableChecked {
            check: DeliverableCheck::Accepted {
                path: path.to_string(),
                fingerprint: Some(fingerprint(files)),
            },
        })
    }

    fn recheck(&mut self, path: &str, files: &[(&str, &str)]) -> &mut Script {
        self.feed(Input::DeliverableRechecked {
            check: DeliverableCheck::Accepted {
                path: path.to_string(),
                fingerprint: Some(fingerprint(files)),
            },
        })
    }

    fn verifier(&mut self, role: &str, text: &str) -> &mut Script {
        self.feed(Input::VerifierReplied {
            role: Role::parse(role).unwrap(),
            text: text.to_string(),
        })
    }

    fn replaced(&mut self, roles: &[&str]) -> &mut Script {
        self.feed(Input::VerifiersReplaced {
            roles: roles.iter().map(|r| Role::parse(r).unwrap()).collect(),
        })
    }
}

/// A fingerprint of files given as (path, content hash).
fn fingerprint(files: &[(&str, &str)]) -> DeliverableFingerprint {
    DeliverableFingerprint {
        files: files
            .iter()
            .map(|(path, hash)| FileFingerprint {
                path: path.to_string(),
                size: 1,
                sha256: hash.to_string(),
                link: None,
            })
            .collect(),
    }
}

const ASK: &str = r#"{"type":"direction_request","prompt":"Python or Rust?"}"#;
const DELIVER: &str =
    r#"{"type":"final_delivery","deliverable_path":"deliverable/wc.py","summary":"done"}"#;
const DIRECT: &str = r#"{"directive":"Use Python.","rationale":"simplest"}"#;
const HANDOFF_WRITTEN: &str =
    r#"{"type":"direction_request","prompt":"Hand-off written to memory/handoff.md."}"#;
const PASS: &str = r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#;
const FAIL: &str = r#"{"verdict":"fail","reasons":["no tests"],"suggestions":["add tests"]}"#;

#[test]
fn happy_path() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(ASK)
        .director(DIRECT)
        .solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", PASS);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn invalid_signals_then_recovery_and_then_failure() {
    let mut s = Script::new(config(&[]));
    s.solver("I am working on it.")
        .solver(r#"{"type":"verification_request"}"#)
        .solver(DELIVER)
        .accept("deliverable/wc.py");
    insta::assert_snapshot!("invalid_then_recovery", s.transcript);

    let mut s = Script::new(config(&[]));
    s.solver("one").solver("two").solver("three");
    insta::assert_snapshot!("invalid_three_times_fails", s.transcript);
    // A resume sends the correction again and gives the Solver a fresh count.
    s.transcript.clear();
    s.feed(Input::Resumed).solver(DELIVER);
    insta::assert_snapshot!("invalid_then_resumed", s.transcript);
}

#[test]
fn director_reply_that_does_not_parse_is_reasked_once_then_forwarded_raw() {
    let mut s = Script::new(config(&[]));
    s.solver(ASK)
        .director("Use Python, obviously.")
        .director("Still prose: use Python.");
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn director_failures_are_retried_then_fail_the_run() {
    let mut s = Script::new(config(&[]));
    s.solver(ASK);
    for _ in 0..3 {
        s.feed(Input::DirectorFailed {
            error: "timed out".to_string(),
            failure: FailureKind::Timeout,
        });
    }
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn rejected_deliverable_goes_back_to_the_solver_without_verifiers() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(r#"{"type":"final_delivery","deliverable_path":"../etc/passwd"}"#)
        .feed(Input::DeliverableChecked {
            check: DeliverableCheck::Refused {
                reason: "../etc/passwd escapes the run folder".to_string(),
            },
        });
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn failing_verdict_then_rework_and_pass_rotates_passing_verifiers() {
    let mut s = Script::new(config(&["verifier-1", "verifier-2"]));
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-2", FAIL)
        .verifier("verifier-1", PASS)
        .replaced(&["verifier-1"])
        .solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", PASS)
        .verifier("verifier-2", PASS);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn verifier_without_verdict_is_replaced_and_asked_again_then_fails_the_run() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", "Looks good to me!")
        .replaced(&["verifier-1"])
        .feed(Input::VerifierFailed {
            role: Role::parse("verifier-1").unwrap(),
            error: "the turn timed out after 1800s".to_string(),
            failure: FailureKind::Timeout,
        });
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn verifier_replacement_can_rescue_the_round() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(Input::VerifierFailed {
            role: Role::parse("verifier-1").unwrap(),
            error: "connection refused".to_string(),
            failure: FailureKind::Transient,
        })
        .replaced(&["verifier-1"])
        .verifier("verifier-1", PASS);
    assert_eq!(
        s.flow.terminal().map(Terminal::status),
        Some(RunStatus::Succeeded)
    );
}

#[test]
fn majority_policy_passes_with_most_verifiers() {
    let mut config = config(&["verifier-1", "verifier-2", "verifier-3"]);
    config.policy = VerificationPolicy::Majority;
    let mut s = Script::new(config);
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", PASS)
        .verifier("verifier-2", FAIL)
        .verifier("verifier-3", PASS);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn all_policy_fails_with_one_failing_verifier() {
    let mut s = Script::new(config(&["verifier-1", "verifier-2"]));
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", PASS)
        .verifier("verifier-2", FAIL);
    assert!(matches!(
        s.flow.outstanding(),
        Some(Call::ReplaceVerifiers { .. })
    ));
    assert!(s.flow.terminal().is_none());
}

#[test]
fn zero_verifiers_succeed_on_a_valid_delivery() {
    let mut s = Script::new(config(&[]));
    s.solver(DELIVER).accept("deliverable");
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn turn_budget_warns_then_exhausts() {
    let mut config = config(&[]);
    config.budgets = Budgets {
        max_solver_turns: Some(3),
        ..Budgets::default()
    };
    let mut s = Script::new(config);
    s.solver(ASK)
        .director(DIRECT)
        .solver(ASK)
        .director(DIRECT)
        .solver(ASK)
        .director(DIRECT)
        .solver(HANDOFF_WRITTEN);
    // A resume with the same budget stops at once: the hand-off was already written.
    s.feed(Input::Resumed);
    // A larger budget lets the Solver go on with the directive it never received.
    s.flow.set_budgets(Budgets {
        max_solver_turns: Some(10),
        ..Budgets::default()
    });
    s.feed(Input::Resumed);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn verification_round_budget_exhausts() {
    let mut config = config(&["verifier-1"]);
    config.budgets = Budgets {
        max_verification_rounds: Some(1),
        ..Budgets::default()
    };
    let mut s = Script::new(config);
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .verifier("verifier-1", FAIL);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn token_budget_warns_then_exhausts() {
    let mut config = config(&[]);
    config.budgets = Budgets {
        max_total_tokens: Some(1000),
        ..Budgets::default()
    };
    let mut s = Script::new(config);
    let usage = |total| Input::UsageRecorded {
        role: Role::parse("solver").unwrap(),
        usage: TokenUsage {
            total_tokens: total,
            ..TokenUsage::default()
        },
        cost_usd: 0.0,
    };
    s.feed(usage(950))
        .solver(ASK)
        .feed(usage(100))
        .director(DIRECT);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn wall_clock_budget_counts_driving_time_only() {
    let mut config = config(&[]);
    config.budgets = Budgets {
        max_wall_clock_secs: Some(25),
        ..Budgets::default()
    };
    // Each step of the script advances the clock by 10 s.
    let mut s = Script::new(config);
    s.solver(ASK).director(DIRECT).solver(ASK).director(DIRECT);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn cancellation_interrupts_and_resume_continues() {
    let mut s = Script::new(config(&[]));
    s.solver(ASK)
        .feed(Input::Cancel)
        .feed(Input::Resumed)
        .director(DIRECT);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn operator_messages_ride_on_the_next_turn_of_their_role() {
    let mut s = Script::new(config(&[]));
    s.feed(Input::MessageDelivered {
        id: "m1".to_string(),
        role: Role::parse("solver").unwrap(),
        text: "Prefer the standard library.".to_string(),
    })
    .feed(Input::MessageDelivered {
        id: "m2".to_string(),
        role: Role::parse("director").unwrap(),
        text: "Be strict about tests.".to_string(),
    })
    .solver(ASK);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn replaying_the_inputs_rebuilds_the_same_state() {
    let inputs = vec![
        Input::Started,
        Input::SolverReplied {
            text: ASK.to_string(),
        },
        Input::DirectorReplied {
            text: DIRECT.to_string(),
        },
        Input::SolverReplied {
            text: DELIVER.to_string(),
        },
        Input::DeliverableChecked {
            check: DeliverableCheck::Accepted {
                path: "deliverable/wc.py".to_string(),
                fingerprint: None,
            },
        },
        Input::VerifierReplied {
            role: Role::parse("verifier-1").unwrap(),
            text: PASS.to_string(),
        },
    ];
    for cut in 0..inputs.len() {
        let mut first = Flow::new(config(&["verifier-1", "verifier-2"]));
        let mut second = Flow::new(config(&["verifier-1", "verifier-2"]));
        for input in &inputs[..=cut] {
            first.step(input.clone(), OffsetDateTime::UNIX_EPOCH);
        }
        for input in &inputs[..=cut] {
            second.step(input.clone(), OffsetDateTime::UNIX_EPOCH);
        }
        assert_eq!(first.outstanding(), second.outstanding(), "cut at {cut}");
    }
    // Mid-round, only the Verifier that has not answered is asked again.
    let mut flow = Flow::new(config(&["verifier-1", "verifier-2"]));
    for input in inputs {
        flow.step(input, OffsetDateTime::UNIX_EPOCH);
    }
    assert!(matches!(
        flow.outstanding(),
        Some(Call::AskVerifiers { roles, .. }) if roles == vec![Role::verifier(2)]
    ));
}

fn with_checks(verifiers: &[&str], names: &[&str]) -> FlowConfig {
    let mut config = config(verifiers);
    config.checks = names
        .iter()
        .map(|name| CheckSpec {
            name: name.to_string(),
            command: format!("make {name}"),
            timeout_secs: 60,
            dir: CheckDir::Workspace,
        })
        .collect();
    config
}

fn check(name: &str, exit_code: Option<i32>, timed_out: bool) -> Input {
    Input::CheckFinished {
        result: CheckResult {
            name: name.to_string(),
            command: format!("make {name}"),
            passed: exit_code == Some(0) && !timed_out,
            exit_code,
            timed_out,
            output: match exit_code {
                Some(0) => "exit code: 0\n--- stdout ---\nok\n".to_string(),
                Some(code) => format!("exit code: {code}\n--- stderr ---\n1 test failed\n"),
                None => "timed out after 60000 ms\n(no output)\n".to_string(),
            },
        },
    }
}

#[test]
fn a_failing_check_goes_back_to_the_solver_then_passing_checks_reach_the_verifiers() {
    let mut config = with_checks(&["verifier-1"], &["build", "test"]);
    config.budgets.max_verification_rounds = Some(3);
    let mut s = Script::new(config);
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(check("build", Some(0), false))
        .feed(check("test", Some(1), false))
        .solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(check("build", Some(0), false))
        .feed(check("test", Some(0), false))
        .verifier("verifier-1", PASS);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn a_check_that_times_out_fails_and_checks_alone_can_pass_a_run() {
    let mut s = Script::new(with_checks(&[], &["test"]));
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(check("test", None, true))
        .solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(check("test", Some(0), false));
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn failing_checks_count_as_verification_rounds() {
    let mut config = with_checks(&["verifier-1"], &["test"]);
    config.budgets.max_verification_rounds = Some(1);
    let mut s = Script::new(config);
    s.solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(check("test", Some(2), false));
    assert_eq!(s.flow.verification_rounds(), 1);
    assert!(
        s.transcript.contains("handoff_requested"),
        "{}",
        s.transcript
    );
}

fn work(fingerprint: &str) -> Input {
    Input::SolverWork {
        fingerprint: fingerprint.to_string(),
        summary: r#"shell {"command":"cat notes.md"}"#.to_string(),
    }
}

fn stall_config(repeats: u32, escalations: u32) -> FlowConfig {
    let mut config = config(&[]);
    config.stall = StallPolicy {
        repeats,
        escalations,
    };
    config
}

#[test]
fn a_looping_solver_is_escalated_then_blocked_and_resumes_after_a_message() {
    let mut s = Script::new(stall_config(1, 1));
    s.feed(work("f1")).solver(ASK).director(DIRECT);
    // The same call with the same output and the same request: escalated with evidence.
    s.feed(work("f1")).solver(ASK).director(DIRECT);
    // Still the same after the escalation: blocked.
    s.feed(work("f1")).solver(ASK);
    s.feed(Input::MessageDelivered {
        id: "m1".to_string(),
        role: Role::parse("solver").unwrap(),
        text: "The notes are complete; write the code now.".to_string(),
    })
    .feed(Input::Resumed);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn a_busy_but_progressing_solver_is_never_flagged() {
    let mut s = Script::new(stall_config(1, 0));
    for turn in 0..40 {
        // The same request every time, but each turn's tool output differs.
        s.feed(work(&format!("f{turn}")))
            .solver(ASK)
            .director(DIRECT);
    }
    assert!(!s.transcript.contains("stall_detected"));
    assert!(s.flow.terminal().is_none());
    assert_eq!(s.flow.solver_turns(), 40);
}

#[test]
fn repeated_unchanged_deliveries_count_as_a_stall() {
    let mut s = Script::new(stall_config(1, 0));
    s.feed(work("same-files")).solver(DELIVER);
    s.feed(Input::DeliverableChecked {
        check: DeliverableCheck::Refused {
            reason: "nope".to_string(),
        },
    });
    s.feed(work("same-files")).solver(DELIVER);
    assert!(
        s.transcript.contains(r#""kind":"run_blocked""#),
        "{}",
        s.transcript
    );
}

#[test]
fn cost_budget_warns_then_exhausts() {
    let mut config = config(&[]);
    config.budgets = Budgets {
        max_cost_usd: Some(1.0),
        ..Budgets::default()
    };
    let mut s = Script::new(config);
    let usage = |cost_usd| Input::UsageRecorded {
        role: Role::parse("solver").unwrap(),
        usage: TokenUsage {
            total_tokens: 1000,
            ..TokenUsage::default()
        },
        cost_usd,
    };
    s.feed(usage(0.5))
        .solver(ASK)
        .feed(usage(0.45))
        .director(DIRECT)
        .feed(usage(0.2))
        .solver(ASK)
        .director(DIRECT)
        .solver(HANDOFF_WRITTEN);
    assert!((s.flow.total_cost_usd() - 1.15).abs() < 1e-9);
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn failure_kinds_decide() {
    let at = OffsetDateTime::UNIX_EPOCH + time::Duration::hours(2);
    // (failure of the Solver's turn, status the run stops with)
    let cases = [
        (
            FailureKind::UsageLimited { resume_after: at },
            "usage_limited",
        ),
        (FailureKind::Quota, "failed"),
        (FailureKind::ContextOverflow, "failed"),
        (FailureKind::Timeout, "failed"),
    ];
    for (failure, status) in cases {
        let mut s = Script::new(config(&[]));
        s.feed(Input::SolverFailed {
            error: "limit".to_string(),
            failure: failure.clone(),
        });
        assert_eq!(
            s.flow.terminal().map(|t| t.status().as_str()),
            Some(status),
            "{failure:?}"
        );
    }
    // A usage limit leaves the turn to be made again: nothing was counted.
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(ASK)
        .feed(Input::DirectorFailed {
            error: "429: usage limit".to_string(),
            failure: FailureKind::UsageLimited { resume_after: at },
        })
        .feed(Input::Resumed)
        .director(DIRECT)
        .solver(DELIVER)
        .accept("deliverable/wc.py")
        .feed(Input::VerifierFailed {
            role: Role::parse("verifier-1").unwrap(),
            error: "insufficient_quota".to_string(),
            failure: FailureKind::Quota,
        });
    insta::assert_snapshot!(s.transcript);
}
const PROJECT: &[(&str, &str)] = &[("deliverable/wc.py", "aa"), ("deliverable/test.py", "bb")];

#[test]
fn an_unchanged_deliverable_keeps_its_verdicts() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(DELIVER)
        .accept_files("deliverable", PROJECT)
        .recheck("deliverable", PROJECT)
        .verifier("verifier-1", PASS);
    assert!(s.flow.terminal().is_some());
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn a_deliverable_changed_during_verification_voids_the_round() {
    let mut s = Script::new(config(&["verifier-1", "verifier-2"]));
    s.solver(DELIVER)
        .accept_files("deliverable", PROJECT)
        // A Verifier rewrote a test and added a file through its shell.
        .recheck(
            "deliverable",
            &[
                ("deliverable/wc.py", "aa"),
                ("deliverable/test.py", "cc"),
                ("deliverable/extra.py", "dd"),
            ],
        )
        // Its pass, fed after the recheck, no longer counts.
        .verifier("verifier-1", PASS)
        .verifier("verifier-2", PASS);
    assert!(
        s.flow.terminal().is_none(),
        "a void verdict must not end the run"
    );
    s.replaced(&["verifier-1", "verifier-2"])
        .solver(DELIVER)
        .accept_files("deliverable", PROJECT)
        .recheck("deliverable", PROJECT)
        .verifier("verifier-1", PASS)
        .verifier("verifier-2", PASS);
    assert!(matches!(
        s.flow.terminal(),
        Some(infty_core::events::Terminal::Succeeded { .. })
    ));
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn a_deliverable_that_no_longer_passes_its_check_voids_the_round() {
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(DELIVER)
        .accept_files("deliverable", PROJECT)
        .feed(Input::DeliverableRechecked {
            check: DeliverableCheck::Refused {
                reason: "the deliverable `deliverable` does not exist".to_string(),
            },
        })
        .verifier("verifier-1", PASS);
    assert!(s.flow.terminal().is_none());
    insta::assert_snapshot!(s.transcript);
}

#[test]
fn rechecks_outside_verification_or_without_a_fingerprint_change_nothing() {
    // Input -> whether the flow asks for a recheck, and whether a changed recheck voids.
    let mut s = Script::new(config(&["verifier-1"]));
    assert_eq!(s.flow.deliverable_under_verification(), None);
    s.recheck("deliverable", PROJECT);
    assert!(!s.transcript.contains("verdicts_voided"));
    s.solver(DELIVER).accept("deliverable");
    // An older run's round, journaled without a fingerprint: nothing to compare with.
    assert_eq!(s.flow.deliverable_under_verification(), None);
    s.recheck("deliverable", &[("deliverable/x", "zz")]);
    assert!(!s.transcript.contains("verdicts_voided"));
    let mut s = Script::new(config(&["verifier-1"]));
    s.solver(DELIVER).accept_files("deliverable", PROJECT);
    assert_eq!(s.flow.deliverable_under_verification(), Some("deliverable"));
}

#[test]
fn changed_paths_between_fingerprints() {
    type Files<'a> = &'a [(&'a str, &'a str)];
    let cases: &[(Files<'_>, Files<'_>, &[&str])] = &[
        (PROJECT, PROJECT, &[]),
        (
            PROJECT,
            &[("deliverable/wc.py", "aa")],
            &["deliverable/test.py"],
        ),
        (
            &[("deliverable/wc.py", "aa")],
            PROJECT,
            &["deliverable/test.py"],
        ),
        (
            PROJECT,
            &[("deliverable/wc.py", "xx"), ("deliverable/test.py", "bb")],
            &["deliverable/wc.py"],
        ),
        (PROJECT, &[], &["deliverable/test.py", "deliverable/wc.py"]),
    ];
    for (before, after, expected) in cases {
        let changed = fingerprint(before).changed_paths(&fingerprint(after));
        assert_eq!(changed, *expected, "{before:?} -> {after:?}");
    }
}
