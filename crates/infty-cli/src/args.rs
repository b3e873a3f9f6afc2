//! The command line: every flag and subcommand of `infty`, parsed by clap.
//!
//! This module only describes the surface; what each command does lives in its own module.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Drive long objectives with language models: a Solver works, a Director guides, Verifiers judge.
#[derive(Debug, Parser)]
#[command(name = "infty", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Folder holding the runs [default: $INFTY_HOME/runs, INFTY_HOME defaults to ~/.infty]
    #[arg(long, global = true, value_name = "DIR")]
    pub runs_root: Option<Utf8PathBuf>,

    /// The command to run
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a run and drive it until verification passes
    Create(CreateArgs),
    /// List the runs, most recently updated first
    List(ListArgs),
    /// Show one run: roles, usage, outcome and recent events
    Show(ShowArgs),
}

/// Provider flags, shared by `create` (and later `resume`).
#[derive(Debug, Args, Clone, Default)]
pub struct ProviderArgs {
    /// Base URL of an OpenAI-compatible API [env: OPENAI_BASE_URL; default: https://api.openai.com/v1]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Wire API to speak
    #[arg(long, value_enum, value_name = "API")]
    pub wire_api: Option<WireApiArg>,

    /// Timeout of one role turn, in seconds (Solver, Director and Verifiers)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: Option<u64>,
}

/// The wire APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WireApiArg {
    /// OpenAI Responses API (`POST {base}/responses`)
    Responses,
    /// Chat Completions API (`POST {base}/chat/completions`)
    Chat,
}

/// Reasoning effort levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EffortArg {
    /// Minimal reasoning
    Minimal,
    /// Low effort
    Low,
    /// Medium effort
    Medium,
    /// High effort
    High,
}

impl EffortArg {
    /// The value sent to the provider.
    pub fn as_str(self) -> &'static str {
        match self {
            EffortArg::Minimal => "minimal",
            EffortArg::Low => "low",
            EffortArg::Medium => "medium",
            EffortArg::High => "high",
        }
    }
}

/// `infty create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The objective, as text
    #[arg(long, value_name = "TEXT", required = true)]
    pub objective: Option<String>,

    /// Run id [default: time-based, e.g. run-20261124-013512-7f3a]
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Model of the Solver (and of the other roles unless set)
    #[arg(long, value_name = "MODEL", default_value = "gpt-5")]
    pub model: String,

    /// Model of the Director [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub director_model: Option<String>,

    /// Reasoning effort of the Director
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub director_effort: Option<EffortArg>,

    /// Model of the Verifiers [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub verifier_model: Option<String>,

    /// Number of Verifiers (0 accepts any valid delivery)
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub verifiers: u32,

    /// Provider settings
    #[command(flatten)]
    pub provider: ProviderArgs,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// `infty list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array of run summaries
    #[arg(long)]
    pub json: bool,
}

/// `infty show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id
    pub run_id: String,

    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}
