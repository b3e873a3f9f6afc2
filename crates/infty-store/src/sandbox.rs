//! The sandbox settings a run records in `run.json`: one mode per kind of role, the
//! network switch, the extra environment variables tools receive and the extra hidden paths.
//!
//! Plain data: how a mode is enforced is infty-sandbox's business, what it grants per role
//! is infty-core's. This module must never hold a value of an environment variable, only
//! names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How much the processes a role's tools start may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Write only the Solver's space (`artifacts/ memory/ index/ deliverable/`), the
    /// workspace and a private temp folder; read the rest of the system.
    WorkspaceWrite,
    /// Write nothing but a private temp folder.
    ReadOnly,
    /// No sandbox: tools run with the user's rights. Only when asked for explicitly.
    Off,
}

impl SandboxMode {
    /// Every mode, in the order help texts list them.
    pub const ALL: [SandboxMode; 3] = [
        SandboxMode::WorkspaceWrite,
        SandboxMode::ReadOnly,
        SandboxMode::Off,
    ];

    /// The mode's name in flags, config and `run.json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::Off => "off",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxMode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        SandboxMode::ALL
            .into_iter()
            .find(|mode| mode.as_str() == value)
            .ok_or_else(|| {
                format!("unknown sandbox mode {value:?}; use workspace-write, read-only or off")
            })
    }
}

/// The sandbox of a run's tool processes, per kind of role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SandboxSettings {
    /// The Solver's mode (default `workspace-write`).
    pub solver: SandboxMode,
    /// The Director's mode (default `read-only`).
    pub director: SandboxMode,
    /// Every Verifier's mode, and checks' (default `read-only`).
    pub verifier: SandboxMode,
    /// Whether sandboxed processes reach the network (default no).
    pub allow_network: bool,
    /// Names of environment variables passed to tools beyond the allowlist.
    pub env: Vec<String>,
    /// Extra files and folders hidden from tools (absolute, or `~/`-relative).
    pub hidden: Vec<String>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            solver: SandboxMode::WorkspaceWrite,
            director: SandboxMode::ReadOnly,
            verifier: SandboxMode::ReadOnly,
            allow_network: false,
            env: Vec::new(),
            hidden: Vec::new(),
        }
    }
}

impl SandboxSettings {
    /// Every role in `mode`.
    pub fn all(mode: SandboxMode) -> Self {
        SandboxSettings {
            solver: mode,
            director: mode,
            verifier: mode,
            ..SandboxSettings::default()
        }
    }

    /// Whether any kind of role runs unsandboxed.
    pub fn any_off(&self) -> bool {
        [self.solver, self.director, self.verifier].contains(&SandboxMode::Off)
    }

    /// Whether any kind of role runs sandboxed.
    pub fn any_on(&self) -> bool {
        [self.solver, self.director, self.verifier]
            .iter()
            .any(|mode| *mode != SandboxMode::Off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip() {
        for mode in SandboxMode::ALL {
            assert_eq!(mode.as_str().parse::<SandboxMode>(), Ok(mode));
            assert_eq!(
                serde_json::to_string(&mode).unwrap(),
                format!("\"{}\"", mode.as_str())
            );
        }
        assert!("write".parse::<SandboxMode>().is_err());
    }

    #[test]
    fn old_runs_get_the_defaults() {
        let settings: SandboxSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(settings, SandboxSettings::default());
        assert!(!settings.any_off());
    }
}
