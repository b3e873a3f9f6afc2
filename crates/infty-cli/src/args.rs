//! The command line: every flag and subcommand of `infty`, parsed by clap.
//!
//! This module only describes the surface; what each command does lives in its own module.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

/// The model every role uses unless told otherwise.
pub(crate) const DEFAULT_MODEL: &str = "gpt-5";

/// Drive long objectives with language models: a Solver works, a Director guides, Verifiers judge.
#[derive(Debug, Parser)]
#[command(name = "infty", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Folder holding the runs [default: $INFTY_HOME/runs, INFTY_HOME defaults to ~/.infty]
    #[arg(long, global = true, value_name = "DIR")]
    pub runs_root: Option<Utf8PathBuf>,

    /// The command to run
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a run and drive it until verification passes
    Create(CreateArgs),
    /// List the runs, most recently updated first
    List(ListArgs),
    /// Show one run: roles, usage, outcome and recent events
    Show(ShowArgs),
    /// Continue a stopped run (failed, interrupted, budget exhausted, or crashed) from its folder
    Resume(ResumeArgs),
    /// Queue a message for a role; it is delivered with that role's next turn
    Send(SendArgs),
    /// Print a run's journal as a timeline; --follow tails a run driven elsewhere
    Logs(LogsArgs),
    /// Print the effective settings (config file, environment, defaults), without secrets
    Config(ConfigArgs),
    /// Serve a local web dashboard to watch and steer the runs (127.0.0.1, token in the URL)
    Ui(UiArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Create a run and put it on a fleet's work queue, for a worker to drive
    Submit(SubmitArgs),
    /// Drive runs from a fleet's work queue, several at once, until stopped (SIGTERM drains)
    Worker(WorkerArgs),
}

/// Where a fleet's work queue is, shared by `submit` and `worker`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct QueueArgs {
    /// NATS server of the work queue, e.g. nats://127.0.0.1:4222 [config: queue.url]
    #[arg(long, value_name = "URL", env = "INFTY_QUEUE")]
    pub queue: Option<String>,

    /// NATS credentials file (.creds) [config: queue.creds]
    #[arg(long, value_name = "PATH")]
    pub queue_creds: Option<std::path::PathBuf>,

    /// CA certificate (PEM) to trust for TLS to the queue; TLS is then required [config: queue.ca]
    #[arg(long, value_name = "PATH")]
    pub queue_ca: Option<std::path::PathBuf>,
}

/// `infty submit`: the flags of `create`, plus the queue.
#[derive(Debug, Args)]
pub(crate) struct SubmitArgs {
    /// The run to create
    #[command(flatten)]
    pub create: CreateArgs,

    /// The queue
    #[command(flatten)]
    pub queue: QueueArgs,
}

/// `infty worker`.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The queue
    #[command(flatten)]
    pub queue: QueueArgs,

    /// Runs driven at once by this process
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,

    /// Seconds a run's message may go without a heartbeat before another worker gets it
    /// (used when the consumer is first created) [config: queue.ack_wait_secs; default: 60]
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub ack_wait_secs: Option<u64>,

    /// Deliveries of one run before the fleet marks it failed [config: queue.max_deliveries; default: 5]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_deliveries: Option<u32>,
}

/// Provider flags, shared by `create` (and later `resume`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ProviderArgs {
    /// Provider preset: what the server accepts, its default URL and wire API [default:
    /// detected (llama.cpp says so on /props), else openai for api.openai.com, else vllm]
    #[arg(long, value_enum, value_name = "NAME")]
    pub provider: Option<ProviderArg>,

    /// Base URL of an OpenAI-compatible API [env: OPENAI_BASE_URL; default: the --provider
    /// preset's, else https://api.openai.com/v1]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Wire API to speak
    #[arg(long, value_enum, value_name = "API")]
    pub wire_api: Option<WireApiArg>,
}

/// The provider presets (`infty_model::PRESET_NAMES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProviderArg {
    /// OpenAI (https://api.openai.com/v1, responses)
    Openai,
    /// Ollama (http://localhost:11434/v1, chat)
    Ollama,
    /// vLLM (http://localhost:8000/v1, chat)
    Vllm,
    /// llama.cpp's llama-server (http://127.0.0.1:8080/v1, chat)
    #[value(alias = "llama-cpp", alias = "llama.cpp")]
    #[serde(alias = "llama-cpp", alias = "llama.cpp")]
    Llamacpp,
    /// LM Studio (http://localhost:1234/v1, chat)
    #[value(alias = "lm-studio")]
    #[serde(alias = "lm-studio")]
    Lmstudio,
    /// OpenRouter (https://openrouter.ai/api/v1, chat)
    Openrouter,
}

impl ProviderArg {
    /// The preset's name, as `infty_model::ProviderConfig::preset` and `run.json` know it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ProviderArg::Openai => "openai",
            ProviderArg::Ollama => "ollama",
            ProviderArg::Vllm => "vllm",
            ProviderArg::Llamacpp => "llamacpp",
            ProviderArg::Lmstudio => "lmstudio",
            ProviderArg::Openrouter => "openrouter",
        }
    }
}

/// The wire APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WireApiArg {
    /// OpenAI Responses API (`POST {base}/responses`)
    Responses,
    /// Chat Completions API (`POST {base}/chat/completions`)
    Chat,
}

/// Reasoning effort levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EffortArg {
    /// No reasoning (models that support it, e.g. gpt-5.1)
    None,
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EffortArg::None => "none",
            EffortArg::Minimal => "minimal",
            EffortArg::Low => "low",
            EffortArg::Medium => "medium",
            EffortArg::High => "high",
        }
    }
}

/// How the first request of a role's turns may use tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceArg {
    /// The model decides whether to call a tool
    Auto,
    /// The turn's first response must call a tool (for small models that only talk)
    Required,
}

impl From<ToolChoiceArg> for infty_store::TurnToolChoice {
    fn from(choice: ToolChoiceArg) -> Self {
        match choice {
            ToolChoiceArg::Auto => infty_store::TurnToolChoice::Auto,
            ToolChoiceArg::Required => infty_store::TurnToolChoice::Required,
        }
    }
}

/// Reasoning summary styles (Responses API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SummaryArg {
    /// The model picks the level of detail
    Auto,
    /// Short summaries
    Concise,
    /// Detailed summaries
    Detailed,
}

impl SummaryArg {
    /// The value sent to the provider.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SummaryArg::Auto => "auto",
            SummaryArg::Concise => "concise",
            SummaryArg::Detailed => "detailed",
        }
    }
}

/// Limits of a run, shared by `create` and `resume`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct BudgetArgs {
    /// Timeout of one role turn, in seconds (Solver, Director and Verifiers)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_secs: Option<u64>,

    /// Most Solver turns the run may take
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,

    /// Most verification rounds the run may take
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_rounds: Option<u32>,

    /// Most tokens (all roles together) the run may use
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,

    /// Most seconds of driving time the run may take
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_wall_secs: Option<u64>,

    /// Most US dollars (all roles together) the run may cost, priced per model
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub max_cost_usd: Option<f64>,
}

/// A positive, finite amount of US dollars.
pub(crate) fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 => Ok(usd),
        _ => Err(format!("{text:?} is not a positive amount of US dollars")),
    }
}

impl BudgetArgs {
    /// Whether any budget flag was given.
    pub(crate) fn any(&self) -> bool {
        self.max_turns.is_some()
            || self.max_rounds.is_some()
            || self.max_tokens.is_some()
            || self.max_wall_secs.is_some()
            || self.max_cost_usd.is_some()
    }

    /// Applies the given flags over `budgets`.
    pub(crate) fn apply(&self, budgets: &mut infty_store::Budgets) {
        if self.max_turns.is_some() {
            budgets.max_solver_turns = self.max_turns;
        }
        if self.max_rounds.is_some() {
            budgets.max_verification_rounds = self.max_rounds;
        }
        if self.max_tokens.is_some() {
            budgets.max_total_tokens = self.max_tokens;
        }
        if self.max_wall_secs.is_some() {
            budgets.max_wall_clock_secs = self.max_wall_secs;
        }
        if self.max_cost_usd.is_some() {
            budgets.max_cost_usd = self.max_cost_usd;
        }
    }
}

/// How verdicts are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PolicyArg {
    /// Every Verifier must pass
    All,
    /// More than half of the Verifiers must pass
    Majority,
}

/// `infty create`.
#[derive(Debug, Args)]
#[command(
    after_help = "Settings without a flag come from the environment (OPENAI_BASE_URL, OPENAI_API_KEY), then from $INFTY_HOME/config.toml; `infty config` shows the result."
)]
pub(crate) struct CreateArgs {
    /// The objective, as text
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "objective_file",
        conflicts_with = "objective_file"
    )]
    pub objective: Option<String>,

    /// Read the objective from a file
    #[arg(long, value_name = "PATH")]
    pub objective_file: Option<Utf8PathBuf>,

    /// A project folder the Solver works in (its notes and deliverable stay in the run folder)
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<Utf8PathBuf>,

    /// Run id [default: time-based, e.g. run-20261124-013512-7f3a]
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// Model of the Solver (and of the other roles unless set)
    #[arg(long, value_name = "MODEL", default_value = DEFAULT_MODEL)]
    pub model: String,

    /// Model of the Director [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub director_model: Option<String>,

    /// Reasoning effort of the Director
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub director_effort: Option<EffortArg>,

    /// Reasoning effort of the Solver
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub solver_effort: Option<EffortArg>,

    /// Reasoning effort of the Verifiers
    #[arg(long, value_enum, value_name = "EFFORT")]
    pub verifier_effort: Option<EffortArg>,

    /// How the first request of each Solver turn may use tools: `required` makes the model
    /// call one before it may answer [default: auto]
    #[arg(long, value_enum, value_name = "CHOICE")]
    pub solver_tool_choice: Option<ToolChoiceArg>,

    /// How the first request of each Director turn may use tools [default: auto]
    #[arg(long, value_enum, value_name = "CHOICE")]
    pub director_tool_choice: Option<ToolChoiceArg>,

    /// How the first request of each Verifier turn may use tools [default: auto]
    #[arg(long, value_enum, value_name = "CHOICE")]
    pub verifier_tool_choice: Option<ToolChoiceArg>,

    /// Model of a Verifier; repeat it for several Verifiers with different models [default: --model]
    #[arg(long, value_name = "MODEL")]
    pub verifier_model: Vec<String>,

    /// Number of Verifiers; 0 accepts any valid delivery [default: 1, or one per --verifier-model]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=16))]
    pub verifiers: Option<u32>,

    /// How verdicts are aggregated
    #[arg(long, value_enum, value_name = "POLICY", default_value = "all")]
    pub verification_policy: PolicyArg,

    /// The models' context window in tokens: past 80 % of it a role's history is compacted
    /// into a hand-off summary (as it is, whatever this says, when the server refuses a prompt
    /// as too long) [default: built in for OpenAI models, else asked of the server]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1000..))]
    pub context_window: Option<u64>,

    /// Ask for reasoning summaries (Responses API) for every role [default: none; OpenAI
    /// refuses them for organisations it has not verified]
    #[arg(long, value_enum, value_name = "STYLE")]
    pub reasoning_summary: Option<SummaryArg>,

    /// Per-role reasoning summaries from the config file (the flag wins over them).
    #[arg(skip)]
    pub role_summaries: RoleSummaries,

    /// Provider settings
    #[command(flatten)]
    pub provider: ProviderArgs,

    /// Limits
    #[command(flatten)]
    pub budgets: BudgetArgs,

    /// A completion check: a command that must exit 0 (run by `bash -c` in the workspace,
    /// else the run folder) before any Verifier is asked; repeat it for several
    #[arg(long = "check", value_name = "CMD")]
    pub checks: Vec<String>,

    /// If a run with --run-id exists, continue it (like `infty resume`) instead of failing
    #[arg(long, requires = "run_id")]
    pub resume_if_exists: bool,

    /// On a provider's usage limit, wait until it lifts and continue instead of stopping
    /// the run as `usage_limited`
    #[arg(long)]
    pub wait_on_limit: bool,
    /// An MCP server whose tools the Solver may use: NAME=URL (streamable HTTP) or
    /// NAME=COMMAND [ARGS...] (stdio, split like a shell does); repeat for several
    #[arg(long = "mcp", value_name = "NAME=COMMAND|URL")]
    pub mcp: Vec<String>,

    /// The config file's `[mcp.servers]`, filled in from the file
    #[arg(skip)]
    pub mcp_config: std::collections::BTreeMap<String, crate::mcp::McpServerSection>,
    /// Most tokens each model response may generate, for every role [default per role:
    /// solver 32768, director and verifiers 16384; local presets 8192 and 4096]
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(16..))]
    pub max_output_tokens: Option<u32>,

    /// Per-role output caps from the config file (no flags: `--max-output-tokens` sets all).
    #[arg(skip)]
    pub role_max_output_tokens: RoleOutputCaps,

    /// Most tool calls one turn of a role may run; past it the role is told to answer
    /// without tools [default: 200]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_tool_steps: Option<u32>,
    /// Sandbox of the tools' processes
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,

    /// Show the models' text on stderr as it streams
    #[arg(long)]
    pub stream: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// Reasoning summaries per role, from the config file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoleSummaries {
    /// `solver.reasoning_summary`.
    pub solver: Option<SummaryArg>,
    /// `director.reasoning_summary`.
    pub director: Option<SummaryArg>,
    /// `verifiers.reasoning_summary`.
    pub verifiers: Option<SummaryArg>,
}

/// Output caps set for single roles (the config file's `max_output_tokens` keys).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RoleOutputCaps {
    /// `solver.max_output_tokens`.
    pub solver: Option<u32>,
    /// `director.max_output_tokens`.
    pub director: Option<u32>,
    /// `verifiers.max_output_tokens`.
    pub verifier: Option<u32>,
}

/// `infty list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print a JSON array of run summaries
    #[arg(long)]
    pub json: bool,
}

/// `infty show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The run id
    pub run_id: String,

    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

/// `infty resume`.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The run id
    pub run_id: String,

    /// Provider settings (default: what the run recorded)
    #[command(flatten)]
    pub provider: ProviderArgs,

    /// New limits (default: what the run recorded)
    #[command(flatten)]
    pub budgets: BudgetArgs,

    /// New model for every role
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// On a provider's usage limit, wait until it lifts and continue instead of stopping
    #[arg(long)]
    pub wait_on_limit: bool,
    /// New cap on the tokens of each model response, for every role (default: what the run
    /// recorded)
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u32).range(16..))]
    pub max_output_tokens: Option<u32>,
    /// New sandbox settings (default: what the run recorded)
    #[command(flatten)]
    pub sandbox: crate::sandbox::SandboxArgs,

    /// Show the models' text on stderr as it streams
    #[arg(long)]
    pub stream: bool,

    /// Print the result as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Continue even though the run's journal or a rollout was changed outside infty
    /// (the acceptance is journaled, then the record is sealed afresh as it is)
    #[arg(long)]
    pub accept_edited_record: bool,
}

/// `infty send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The run id
    pub run_id: String,

    /// The role the message is for
    #[arg(long, value_enum, default_value = "solver")]
    pub role: SendRole,

    /// The message
    pub message: String,
}

/// Roles that take operator messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SendRole {
    /// The Solver, with its next turn
    Solver,
    /// The Director, with its next direction request
    Director,
}

impl SendRole {
    /// The role it names.
    pub(crate) fn role(self) -> infty_store::Role {
        match self {
            SendRole::Solver => infty_store::Role::Solver,
            SendRole::Director => infty_store::Role::Director,
        }
    }
}

/// `infty logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// The run id
    pub run_id: String,

    /// Keep printing new events until the run stops (or Ctrl-C)
    #[arg(long, short = 'f')]
    pub follow: bool,

    /// Print the journal's raw JSON lines instead of a timeline
    #[arg(long)]
    pub json: bool,
}

/// `infty ui`.
#[derive(Debug, Args)]
pub(crate) struct UiArgs {
    /// Port on 127.0.0.1 to listen on [default: any free port]
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,

    /// Open the dashboard in the default browser
    #[arg(long)]
    pub open: bool,
}

/// `infty config`.
#[derive(Debug, Args)]
pub(crate) struct ConfigArgs {
    /// Print one JSON object: each setting with its value and where it came from
    #[arg(long)]
    pub json: bool,
    /// Show what `infty resume RUN_ID` (without flags) would use instead: the run's
    /// recorded settings
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
}

/// `infty completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
