//! The cap on the tokens of each model response, per role: sent with every request as
//! `max_output_tokens` (Responses) or `max_tokens` / `max_completion_tokens` (Chat), so a
//! model that will not stop cannot burn a whole turn's timeout.
//!
//! Precedence: `--max-output-tokens` (every role) > the role's `max_output_tokens` in the
//! config file > the default for the role and the provider preset. A resumed run keeps what
//! its `run.json` recorded unless the flag is given. This module only computes numbers.

use infty_store::Role;

/// One cap per role kind, in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputCaps {
    /// The Solver's cap.
    pub solver: u32,
    /// The Director's cap.
    pub director: u32,
    /// Each Verifier's cap.
    pub verifier: u32,
}

/// Hosted APIs: room for long reasoning (reasoning tokens count against the cap) and for a
/// Solver writing a large file in one call.
const HOSTED: OutputCaps = OutputCaps {
    solver: 32_768,
    director: 16_384,
    verifier: 16_384,
};

/// Local servers: their context windows are small (often 4k to 32k) and they generate tens
/// of tokens per second, so a runaway response is cut within minutes, not hours.
const LOCAL: OutputCaps = OutputCaps {
    solver: 8_192,
    director: 4_096,
    verifier: 4_096,
};

impl OutputCaps {
    /// The defaults for a provider preset (`openai`, `llamacpp`, ...).
    pub(crate) fn defaults(preset: &str) -> OutputCaps {
        match preset {
            "ollama" | "vllm" | "llamacpp" | "lmstudio" => LOCAL,
            _ => HOSTED,
        }
    }

    /// The cap of `role`.
    pub(crate) fn for_role(&self, role: &Role) -> u32 {
        match role {
            Role::Solver => self.solver,
            Role::Verifier(_) => self.verifier,
            Role::Director => self.director,
        }
    }

    /// These caps with every role's replaced by `all`, when given.
    pub(crate) fn overridden(self, all: Option<u32>) -> OutputCaps {
        match all {
            Some(cap) => OutputCaps {
                solver: cap,
                director: cap,
                verifier: cap,
            },
            None => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_per_preset_and_role() {
        let local = OutputCaps::defaults("llamacpp");
        assert_eq!(
            (
                local.for_role(&Role::Solver),
                local.for_role(&Role::Director),
                local.for_role(&Role::verifier(2))
            ),
            (8_192, 4_096, 4_096)
        );
        assert_eq!(
            OutputCaps::defaults("openai").for_role(&Role::Solver),
            32_768
        );
        assert_eq!(
            OutputCaps::defaults("openrouter").for_role(&Role::Director),
            16_384
        );
        let all = OutputCaps::defaults("openai").overridden(Some(64));
        assert_eq!((all.solver, all.director, all.verifier), (64, 64, 64));
    }
}
