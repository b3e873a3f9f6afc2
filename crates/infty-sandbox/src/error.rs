//! The sandbox's errors: what is missing on this machine, or what went wrong starting it.
//! Messages name the mechanism, so that a user knows what to enable or to opt out of.

use std::path::PathBuf;

/// Why a policy cannot be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The kernel (or the machine's configuration) lacks a mechanism the policy needs.
    #[error("the sandbox cannot start here: could not {mechanism}: {detail}")]
    Unavailable {
        /// The mechanism, e.g. `create namespaces (user, mount, pid, network)`.
        mechanism: String,
        /// What the kernel said.
        detail: String,
    },
    /// The helper executable could not be started.
    #[error("could not start the sandbox helper {}: {source}", helper.display())]
    Helper {
        /// The helper.
        helper: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The helper ran but did not behave as one (it does not dispatch `__sandbox`).
    #[error("{} is not an infty sandbox helper (it exited with {status})", helper.display())]
    NotAHelper {
        /// The executable.
        helper: PathBuf,
        /// How it exited.
        status: String,
    },
    /// The policy could not be written for the helper.
    #[error("the sandbox policy cannot be encoded: {detail}")]
    Policy {
        /// The serializer's message.
        detail: String,
    },
}
