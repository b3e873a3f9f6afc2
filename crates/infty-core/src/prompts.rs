//! The prompt texts of infty, embedded at build time, and their rendering.
//!
//! The Markdown files live in this crate's `prompts/` folder (the workspace's `prompts/` is a
//! link to it), so `cargo package` ships them with the crate that embeds them. Prompts are data:
//! this module only loads and fills them; it never decides what to say.

use infty_store::Role;

/// Base instructions of the Solver role.
pub const SOLVER: &str = include_str!("../prompts/solver.md");
/// Base instructions of the Director role.
pub const DIRECTOR: &str = include_str!("../prompts/director.md");
/// Base instructions of every Verifier role.
pub const VERIFIER: &str = include_str!("../prompts/verifier.md");
/// The first message of a run, posted to the Solver.
pub const OBJECTIVE: &str = include_str!("../prompts/objective.md");
/// Sent to the Solver when its reply carried no valid signal.
pub const INVALID_SIGNAL: &str = include_str!("../prompts/invalid_signal.md");
/// Sent to the Solver when its `final_delivery` path was refused.
pub const DELIVERABLE_REJECTED: &str = include_str!("../prompts/deliverable_rejected.md");
/// Sent to the Solver when the deliverable changed while the Verifiers judged it.
pub const DELIVERABLE_CHANGED: &str = include_str!("../prompts/deliverable_changed.md");
/// Appended to a Solver turn when a budget is nearly spent.
pub const FINALIZE: &str = include_str!("../prompts/finalize.md");
/// Sent to the Director when its reply did not parse.
pub const DIRECTOR_RETRY: &str = include_str!("../prompts/director_retry.md");
/// Wraps a message queued with `infty send`.
pub const OPERATOR_MESSAGE: &str = include_str!("../prompts/operator_message.md");
/// What is left of the budgets, added to every message to the Solver when a budget is set.
pub const BUDGET: &str = include_str!("../prompts/budget.md");
/// The Solver's last turn when a budget ran out: write the hand-off, then the run stops.
pub const HANDOFF: &str = include_str!("../prompts/handoff.md");
/// Sent to the Solver when a completion check failed.
pub const CHECK_FAILED: &str = include_str!("../prompts/check_failed.md");
/// Sent to the Director when the Solver repeats itself.
pub const STALLED: &str = include_str!("../prompts/stalled.md");
/// Sent to the Solver when a blocked run is resumed.
pub const BLOCKED_RESUME: &str = include_str!("../prompts/blocked_resume.md");
/// Asks a role for its hand-off summary before its history is compacted.
pub const COMPACT: &str = include_str!("../prompts/compact.md");

/// The default instructions of a role.
pub fn instructions(role: &Role) -> &'static str {
    match role {
        Role::Solver => SOLVER,
        Role::Director => DIRECTOR,
        Role::Verifier(_) => VERIFIER,
    }
}

/// Fills `{name}` placeholders in `template` with the given values, in one pass.
///
/// Placeholders without a value are left as they are, so a literal `{` in a prompt (JSON
/// examples) needs no escaping.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (close, *value))
        });
        match replaced {
            Some((close, value)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fills_known_placeholders_and_keeps_json() {
        let out = render(
            "say {greeting} to {name}: {\"type\":\"x\"} {unknown}",
            &[("greeting", "hello"), ("name", "the {world}")],
        );
        assert_eq!(out, "say hello to the {world}: {\"type\":\"x\"} {unknown}");
    }

    #[test]
    fn every_role_prompt_states_its_contract() {
        assert!(SOLVER.contains(r#"{"type":"direction_request","prompt""#));
        assert!(SOLVER.contains(r#"{"type":"final_delivery","deliverable_path""#));
        assert!(DIRECTOR.contains(r#"{"directive":"#));
        assert!(VERIFIER.contains(r#"{"verdict":"pass","reasons":[],"suggestions":[]}"#));
    }

    #[test]
    fn each_role_has_its_own_instructions() {
        assert_eq!(instructions(&Role::Solver), SOLVER);
        assert_eq!(instructions(&Role::Director), DIRECTOR);
        assert_eq!(instructions(&Role::verifier(2)), VERIFIER);
        assert_ne!(SOLVER, VERIFIER);
    }
}
