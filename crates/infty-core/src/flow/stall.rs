//! Stall and loop detection for the flow, from the work the Solver did, never from a count
//! of turns.
//!
//! The driver fingerprints each Solver turn (its tool calls with arguments and outputs, and
//! the delivered files) and the flow adds the turn's signal. A turn whose key was already
//! seen among the last few turns repeats earlier work; a turn with a new key is progress and
//! forgives everything before it. After `repeats` repeating turns the Director is asked;
//! after `escalations` escalations without progress the run is blocked. Pure: no IO, no
//! clock; a busy Solver whose outputs change is never flagged.

use std::collections::VecDeque;

use infty_store::StallPolicy;

/// How many recent turn keys are remembered, so that A, B, A, B loops count as repeats.
const WINDOW: usize = 8;

/// What a Solver turn means for the stall policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TurnVerdict {
    /// Progress, or not enough repetition yet.
    Fine,
    /// Enough repetition to ask the Director.
    Stalled {
        /// The repetition, in words.
        evidence: String,
    },
    /// Enough repetition after every escalation: stop the run.
    Blocked {
        /// The repetition, in words.
        evidence: String,
    },
}

/// The stall state of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StallWatch {
    policy: StallPolicy,
    /// The work of the turn whose reply comes next.
    pending: Option<(String, String)>,
    recent: VecDeque<String>,
    repeats: u32,
    escalations: u32,
}

impl StallWatch {
    pub(super) fn new(policy: StallPolicy) -> StallWatch {
        StallWatch {
            policy,
            pending: None,
            recent: VecDeque::with_capacity(WINDOW + 1),
            repeats: 0,
            escalations: 0,
        }
    }

    /// Remembers the work of the turn whose reply comes next.
    pub(super) fn work(&mut self, fingerprint: String, summary: String) {
        self.pending = Some((fingerprint, summary));
    }

    /// Judges a finished Solver turn whose signal is described by `signal`.
    pub(super) fn turn(&mut self, signal: &str) -> TurnVerdict {
        let (fingerprint, summary) = self.pending.take().unwrap_or_default();
        if self.policy.repeats == 0 {
            return TurnVerdict::Fine;
        }
        let key = format!("{fingerprint}\n{signal}");
        let repeat = self.recent.contains(&key);
        self.recent.push_back(key);
        if self.recent.len() > WINDOW {
            self.recent.pop_front();
        }
        if !repeat {
            self.repeats = 0;
            self.escalations = 0;
            return TurnVerdict::Fine;
        }
        self.repeats += 1;
        if self.repeats < self.policy.repeats {
            return TurnVerdict::Fine;
        }
        let work = if summary.trim().is_empty() {
            "no tool calls".to_string()
        } else {
            format!("{} with the same output", summary.trim())
        };
        let turns = if self.repeats == 1 {
            "1 turn".to_string()
        } else {
            format!("{} turns in a row", self.repeats)
        };
        let evidence = format!("stalled: {turns} repeated earlier work ({work}; then {signal})");
        self.repeats = 0;
        if self.escalations >= self.policy.escalations {
            TurnVerdict::Blocked { evidence }
        } else {
            TurnVerdict::Stalled { evidence }
        }
    }

    /// Counts an escalation to the Director; returns how many there were without progress.
    pub(super) fn escalated(&mut self) -> u32 {
        self.escalations += 1;
        self.escalations
    }

    /// Forgets every repetition (an operator resumed the run).
    pub(super) fn reset(&mut self) {
        self.recent.clear();
        self.repeats = 0;
        self.escalations = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(repeats: u32, escalations: u32) -> StallWatch {
        StallWatch::new(StallPolicy {
            repeats,
            escalations,
        })
    }

    /// Feeds (fingerprint, signal) turns; returns one letter per verdict: `.` fine,
    /// `S` stalled (escalated), `B` blocked.
    fn run(watch: &mut StallWatch, turns: &[(&str, &str)]) -> String {
        turns
            .iter()
            .map(|(fingerprint, signal)| {
                watch.work(fingerprint.to_string(), "shell `ls`".to_string());
                match watch.turn(signal) {
                    TurnVerdict::Fine => '.',
                    TurnVerdict::Stalled { .. } => {
                        watch.escalated();
                        'S'
                    }
                    TurnVerdict::Blocked { .. } => 'B',
                }
            })
            .collect()
    }

    #[test]
    fn verdicts_by_work() {
        let same = ("f1", "ask x");
        type Turns<'a> = Vec<(&'a str, &'a str)>;
        let cases: &[(&str, u32, u32, Turns<'_>, &str)] = &[
            (
                "the same turn escalates then blocks",
                2,
                1,
                vec![same; 7],
                "..S.B.B",
            ),
            (
                "a loop of two counts too",
                2,
                0,
                vec![("a", "s"), ("b", "s"), ("a", "s"), ("b", "s")],
                "...B",
            ),
            (
                "new output is progress",
                2,
                1,
                vec![
                    ("f1", "s"),
                    ("f2", "s"),
                    ("f3", "s"),
                    ("f4", "s"),
                    ("f5", "s"),
                ],
                ".....",
            ),
            (
                "the same request with new work is progress",
                1,
                0,
                vec![("f1", "s"), ("f2", "s"), ("f3", "s")],
                "...",
            ),
            (
                "progress forgives escalations",
                1,
                1,
                vec![same, same, ("new", "s"), same],
                ".S.S",
            ),
            ("off", 0, 0, vec![same; 6], "......"),
        ];
        for (name, repeats, escalations, turns, expected) in cases {
            let mut w = watch(*repeats, *escalations);
            assert_eq!(run(&mut w, turns), *expected, "{name}");
        }
    }

    #[test]
    fn evidence_names_the_work() {
        let mut w = watch(1, 0);
        w.work("f".into(), "shell `cat a`".into());
        assert_eq!(w.turn("asked the Director \"next?\""), TurnVerdict::Fine);
        w.work("f".into(), "shell `cat a`".into());
        assert_eq!(
            w.turn("asked the Director \"next?\""),
            TurnVerdict::Blocked {
                evidence: "stalled: 1 turn repeated earlier work (shell `cat a` with the same output; then asked the Director \"next?\")".into()
            }
        );
    }
}
