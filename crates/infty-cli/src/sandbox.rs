//! The sandbox's flags (`--sandbox`, `--allow-network`, `--env`) and config section
//! (`[sandbox]`), resolved into the `SandboxSettings` a run records.
//!
//! Precedence as everywhere: flags, then `$INFTY_HOME/config.toml`, then defaults (Solver
//! `workspace-write`, Director and Verifiers `read-only`, no network). A resumed run keeps
//! what it recorded unless a flag says otherwise. This module never enforces anything: it
//! only decides the settings.

use clap::{Args, ValueEnum};
use infty_store::{SandboxMode, SandboxSettings};
use serde::{Deserialize, Serialize};

/// The sandbox modes on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxModeArg {
    /// Write only the Solver's space, the workspace and a private temp folder
    WorkspaceWrite,
    /// Write only a private temp folder
    ReadOnly,
    /// No sandbox: tools run with your rights (journaled, and warned about)
    Off,
}

impl From<SandboxModeArg> for SandboxMode {
    fn from(mode: SandboxModeArg) -> Self {
        match mode {
            SandboxModeArg::WorkspaceWrite => SandboxMode::WorkspaceWrite,
            SandboxModeArg::ReadOnly => SandboxMode::ReadOnly,
            SandboxModeArg::Off => SandboxMode::Off,
        }
    }
}

/// Sandbox flags, shared by `create` and `resume`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SandboxArgs {
    /// Sandbox of every role's tool processes [default: Solver workspace-write, Director and
    /// Verifiers read-only]
    #[arg(long, value_enum, value_name = "MODE")]
    pub sandbox: Option<SandboxModeArg>,

    /// Let sandboxed tool processes reach the network
    #[arg(long)]
    pub allow_network: bool,

    /// Pass this environment variable to tool processes (repeatable); by default they get
    /// only PATH HOME LANG LC_* TERM TZ USER TMPDIR
    #[arg(long = "env", value_name = "NAME")]
    pub env: Vec<String>,
}

/// `[sandbox]` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SandboxSection {
    /// The Solver's mode.
    pub solver: Option<SandboxModeArg>,
    /// The Director's mode.
    pub director: Option<SandboxModeArg>,
    /// The Verifiers' mode.
    pub verifier: Option<SandboxModeArg>,
    /// Whether sandboxed processes reach the network.
    pub allow_network: Option<bool>,
    /// Extra environment variables passed to tools, by name.
    #[serde(default)]
    pub env: Vec<String>,
    /// Extra files and folders hidden from tools (absolute or `~/...`).
    #[serde(default)]
    pub hidden: Vec<String>,
}

/// The settings of a new run: flags over the config file over the defaults.
pub(crate) fn for_create(
    args: &SandboxArgs,
    config: &SandboxSection,
) -> Result<SandboxSettings, String> {
    let mut settings = SandboxSettings::default();
    let pick = |mode: Option<SandboxModeArg>, default: SandboxMode| {
        args.sandbox.or(mode).map_or(default, SandboxMode::from)
    };
    settings.solver = pick(config.solver, settings.solver);
    settings.director = pick(config.director, settings.director);
    settings.verifier = pick(config.verifier, settings.verifier);
    settings.allow_network = args.allow_network || config.allow_network.unwrap_or(false);
    settings.env = merged(&config.env, &args.env)?;
    settings.hidden.clone_from(&config.hidden);
    Ok(settings)
}

/// The settings of a resumed run: what it recorded, changed only by the flags given.
pub(crate) fn for_resume(
    args: &SandboxArgs,
    recorded: &SandboxSettings,
) -> Result<SandboxSettings, String> {
    let mut settings = recorded.clone();
    if let Some(mode) = args.sandbox {
        settings.solver = mode.into();
        settings.director = mode.into();
        settings.verifier = mode.into();
    }
    settings.allow_network |= args.allow_network;
    settings.env = merged(&settings.env, &args.env)?;
    Ok(settings)
}

fn merged(first: &[String], second: &[String]) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for name in first.iter().chain(second) {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "--env {name:?}: expected the NAME of an environment variable (letters, digits, `_`), not a value"
            ));
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

/// The one-line description `show` and the progress header use, e.g.
/// `solver workspace-write, director read-only, verifiers read-only; network off`.
pub(crate) fn describe(settings: &SandboxSettings) -> String {
    let mut text = format!(
        "solver {}, director {}, verifiers {}; network {}",
        settings.solver,
        settings.director,
        settings.verifier,
        if settings.allow_network { "on" } else { "off" }
    );
    if !settings.env.is_empty() {
        text.push_str(&format!("; env +{}", settings.env.join(" +")));
    }
    if !settings.hidden.is_empty() {
        text.push_str(&format!("; hidden +{}", settings.hidden.join(" +")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_config_over_defaults() {
        let config = SandboxSection {
            verifier: Some(SandboxModeArg::WorkspaceWrite),
            env: vec!["A".to_owned()],
            ..SandboxSection::default()
        };
        let settings = for_create(&SandboxArgs::default(), &config).unwrap();
        assert_eq!(settings.solver, SandboxMode::WorkspaceWrite);
        assert_eq!(settings.director, SandboxMode::ReadOnly);
        assert_eq!(settings.verifier, SandboxMode::WorkspaceWrite);
        let args = SandboxArgs {
            sandbox: Some(SandboxModeArg::Off),
            allow_network: true,
            env: vec!["B".to_owned(), "A".to_owned()],
        };
        let settings = for_create(&args, &config).unwrap();
        assert_eq!(
            settings,
            SandboxSettings {
                allow_network: true,
                env: vec!["A".to_owned(), "B".to_owned()],
                ..SandboxSettings::all(SandboxMode::Off)
            }
        );
        let bad = SandboxArgs {
            env: vec!["KEY=value".to_owned()],
            ..SandboxArgs::default()
        };
        assert!(for_create(&bad, &config).unwrap_err().contains("KEY=value"));
        let resumed = for_resume(&SandboxArgs::default(), &settings).unwrap();
        assert_eq!(resumed, settings);
    }

    #[test]
    fn the_config_section_parses_and_refuses_unknown_modes() {
        let section: SandboxSection = toml::from_str(
            "solver = \"off\"\nverifier = \"workspace-write\"\nallow_network = true\nenv = [\"A\"]\nhidden = [\"~/.x\"]\n",
        )
        .unwrap();
        assert_eq!(section.solver, Some(SandboxModeArg::Off));
        assert_eq!(section.verifier, Some(SandboxModeArg::WorkspaceWrite));
        assert_eq!(section.allow_network, Some(true));
        assert_eq!(section.hidden, ["~/.x"]);
        assert!(toml::from_str::<SandboxSection>("solver = \"write\"\n").is_err());
        assert!(toml::from_str::<SandboxSection>("network = true\n").is_err());
    }
}
