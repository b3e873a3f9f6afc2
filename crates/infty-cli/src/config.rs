//! The configuration file `$INFTY_HOME/config.toml`: what it may hold, how it is read and
//! checked, and the lists it adds to (checks, prices).
//!
//! How its values layer under flags and the environment is decided once, in `settings`.
//! The file only serves new runs: a resumed run keeps what its `run.json` recorded unless
//! a flag overrides it. This module never reads or prints a secret.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::Coded;
use crate::args::{EffortArg, PolicyArg, ProviderArg, SummaryArg, ToolChoiceArg, WireApiArg};

/// The variable naming infty's home folder.
pub(crate) const HOME_ENV: &str = "INFTY_HOME";
/// The config file's name inside the home folder.
pub(crate) const CONFIG_FILE: &str = "config.toml";

/// What `config.toml` may hold. Unknown keys are refused, so a typo is an error rather than
/// a setting silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Where the models are served.
    #[serde(default)]
    pub provider: ProviderSection,
    /// The Solver.
    #[serde(default)]
    pub solver: SolverSection,
    /// The Director.
    #[serde(default)]
    pub director: DirectorSection,
    /// The Verifiers.
    #[serde(default)]
    pub verifiers: VerifierSection,
    /// Limits of a run.
    #[serde(default)]
    pub budgets: BudgetSection,
    /// Timeouts of role turns.
    #[serde(default)]
    pub timeouts: TimeoutSection,
    /// OpenTelemetry export.
    #[serde(default)]
    pub telemetry: crate::telemetry::TelemetrySection,
    /// A fleet's work queue (`infty submit`, `infty worker`).
    #[serde(default)]
    pub queue: QueueSection,
    /// Completion checks (`[[checks]]`), run in order after each valid delivery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSection>,
    /// Prices per model name (`[prices."MODEL"]`), US dollars per million tokens.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, PriceSection>,
    /// Stall detection.
    #[serde(default)]
    pub stall: StallSection,
    /// Model Context Protocol servers.
    #[serde(default)]
    pub mcp: crate::mcp::McpSection,
    /// The sandbox of tool processes.
    #[serde(default)]
    pub sandbox: crate::sandbox::SandboxSection,
}

/// `[queue]`: where a fleet's work queue is and how it is laid out. Credentials are file
/// paths; no secret is ever written to a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueueSection {
    /// NATS server URL (a comma-separated list for a cluster).
    pub url: Option<String>,
    /// NATS credentials file.
    pub creds: Option<std::path::PathBuf>,
    /// CA certificate for TLS.
    pub ca: Option<std::path::PathBuf>,
    /// Require TLS.
    pub require_tls: Option<bool>,
    /// Stream name (default `INFTY_RUNS`).
    pub stream: Option<String>,
    /// Subject of run ids (default `infty.runs`).
    pub subject: Option<String>,
    /// Durable consumer name (default `infty-workers`).
    pub consumer: Option<String>,
    /// Ack wait, the lease, in seconds (default 60).
    pub ack_wait_secs: Option<u64>,
    /// Deliveries before a run is marked failed (default 5).
    pub max_deliveries: Option<u32>,
}

/// One `[[checks]]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckSection {
    /// A short name for messages [default: the command].
    pub name: Option<String>,
    /// The command line, run by `bash -c`.
    pub command: String,
    /// How long it may run, in seconds [default: 600].
    pub timeout_secs: Option<u64>,
    /// `workspace` (default: the workspace, else the run folder) or `run` (the run folder).
    pub dir: Option<infty_store::CheckDir>,
}

/// One `[prices."MODEL"]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceSection {
    /// US dollars per million uncached input tokens.
    pub input: f64,
    /// US dollars per million cached input tokens [default: the input price].
    pub cached_input: Option<f64>,
    /// US dollars per million output tokens.
    pub output: f64,
}

impl PriceSection {
    /// The price as `run.json` records it.
    pub(crate) fn price(&self) -> infty_store::ModelPrice {
        infty_store::ModelPrice {
            input_per_mtok: self.input,
            cached_input_per_mtok: self.cached_input.unwrap_or(self.input),
            output_per_mtok: self.output,
        }
    }
}

/// `[stall]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StallSection {
    /// Solver turns in a row repeating earlier work before the Director is asked (0: off).
    pub repeats: Option<u32>,
    /// Escalations without progress before the run is `blocked`.
    pub escalations: Option<u32>,
}

impl StallSection {
    /// The policy, with defaults for what is unset.
    pub(crate) fn policy(&self) -> infty_store::StallPolicy {
        let default = infty_store::StallPolicy::default();
        infty_store::StallPolicy {
            repeats: self.repeats.unwrap_or(default.repeats),
            escalations: self.escalations.unwrap_or(default.escalations),
        }
    }
}

/// `[provider]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderSection {
    /// The provider preset (`openai`, `ollama`, `vllm`, `llamacpp`, `lmstudio`, `openrouter`).
    pub name: Option<ProviderArg>,
    /// Base URL of an OpenAI-compatible API.
    pub base_url: Option<String>,
    /// The wire API.
    pub wire_api: Option<WireApiArg>,
}

/// `[solver]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SolverSection {
    /// The Solver's model (and the other roles' unless they set theirs).
    pub model: Option<String>,
    /// The Solver's reasoning effort.
    pub effort: Option<EffortArg>,
    /// The Solver's reasoning summary (sent only when set).
    pub reasoning_summary: Option<SummaryArg>,
    /// Most tokens each of the Solver's responses may generate.
    pub max_output_tokens: Option<u32>,
    /// How the first request of each Solver turn may use tools.
    pub tool_choice: Option<ToolChoiceArg>,
}

/// `[director]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectorSection {
    /// The Director's model.
    pub model: Option<String>,
    /// The Director's reasoning effort.
    pub effort: Option<EffortArg>,
    /// The Director's reasoning summary (sent only when set).
    pub reasoning_summary: Option<SummaryArg>,
    /// Most tokens each of the Director's responses may generate.
    pub max_output_tokens: Option<u32>,
    /// How the first request of each Director turn may use tools.
    pub tool_choice: Option<ToolChoiceArg>,
}

/// `[verifiers]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifierSection {
    /// How many Verifiers judge a delivery.
    pub count: Option<u32>,
    /// Their models, used in turn.
    pub models: Option<Vec<String>>,
    /// How verdicts are aggregated.
    pub policy: Option<PolicyArg>,
    /// The Verifiers' reasoning effort.
    pub effort: Option<EffortArg>,
    /// The Verifiers' reasoning summary (sent only when set).
    pub reasoning_summary: Option<SummaryArg>,
    /// Most tokens each of a Verifier's responses may generate.
    pub max_output_tokens: Option<u32>,
    /// How the first request of each Verifier turn may use tools.
    pub tool_choice: Option<ToolChoiceArg>,
}

/// `[budgets]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetSection {
    /// Most Solver turns.
    pub max_turns: Option<u32>,
    /// Most verification rounds.
    pub max_rounds: Option<u32>,
    /// Most tokens, all roles together.
    pub max_tokens: Option<u64>,
    /// Most seconds of driving time.
    pub max_wall_secs: Option<u64>,
    /// Most US dollars, all roles together.
    pub max_cost_usd: Option<f64>,
}

/// `[timeouts]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutSection {
    /// Timeout of one role turn, in seconds, for every role.
    pub turn_secs: Option<u64>,
}

/// infty's home folder: `$INFTY_HOME`, else `~/.infty`.
pub(crate) fn infty_home() -> Result<Utf8PathBuf> {
    home_from(std::env::var(HOME_ENV).ok(), std::env::var("HOME").ok())
}

fn home_from(infty_home: Option<String>, home: Option<String>) -> Result<Utf8PathBuf> {
    let non_blank = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    if let Some(dir) = non_blank(infty_home) {
        return Ok(Utf8PathBuf::from(dir));
    }
    match non_blank(home) {
        Some(home) => Ok(Utf8PathBuf::from(home).join(".infty")),
        None => anyhow::bail!("neither {HOME_ENV} nor HOME is set: set {HOME_ENV} to a folder"),
    }
}

/// The config file of the home folder.
pub(crate) fn config_path(home: &Utf8Path) -> Utf8PathBuf {
    home.join(CONFIG_FILE)
}

/// Reads the config file; a missing file is an empty config. A file that does not parse
/// is one error naming the file and the line.
pub(crate) fn load(path: &Utf8Path) -> Result<ConfigFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ConfigFile::default());
        }
        Err(error) => {
            return Err(error).with_context(|| format!("cannot read the config file {path}"));
        }
    };
    parse(&text).map_err(|message| Coded::usage(format!("config file {path}: {message}")))
}

/// Parses and checks config text; the error is one line, with the line number when the
/// problem has a place in the text.
pub(crate) fn parse(text: &str) -> std::result::Result<ConfigFile, String> {
    let config: ConfigFile = toml::from_str(text).map_err(|error| {
        let message = error.message().trim().replace('\n', " ");
        match error.span() {
            Some(span) => format!("line {}: {message}", line_of(text, span.start)),
            None => message,
        }
    })?;
    check(&config)?;
    Ok(config)
}

/// The 1-based line holding byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Ranges the flags enforce, enforced again for the file.
fn check(config: &ConfigFile) -> std::result::Result<(), String> {
    let at_least_one = [
        ("budgets.max_turns", config.budgets.max_turns.map(u64::from)),
        (
            "budgets.max_rounds",
            config.budgets.max_rounds.map(u64::from),
        ),
        ("budgets.max_tokens", config.budgets.max_tokens),
        ("budgets.max_wall_secs", config.budgets.max_wall_secs),
        ("timeouts.turn_secs", config.timeouts.turn_secs),
    ];
    for (key, value) in at_least_one {
        if value == Some(0) {
            return Err(format!("{key} must be at least 1"));
        }
    }
    if let Some(usd) = config.budgets.max_cost_usd
        && !(usd.is_finite() && usd > 0.0)
    {
        return Err("budgets.max_cost_usd must be a positive amount".to_string());
    }
    for (index, check) in config.checks.iter().enumerate() {
        if check.command.trim().is_empty() {
            return Err(format!("checks[{index}].command is blank"));
        }
        if check.timeout_secs == Some(0) {
            return Err(format!("checks[{index}].timeout_secs must be at least 1"));
        }
    }
    for (model, price) in &config.prices {
        let rates = [Some(price.input), price.cached_input, Some(price.output)];
        if rates
            .iter()
            .flatten()
            .any(|rate| !rate.is_finite() || *rate < 0.0)
        {
            return Err(format!(
                "prices.{model:?}: prices must be zero or positive numbers"
            ));
        }
    }
    crate::mcp::check_config(&config.mcp)?;
    let caps = [
        ("solver.max_output_tokens", config.solver.max_output_tokens),
        (
            "director.max_output_tokens",
            config.director.max_output_tokens,
        ),
        (
            "verifiers.max_output_tokens",
            config.verifiers.max_output_tokens,
        ),
    ];
    for (key, value) in caps {
        if value.is_some_and(|cap| cap < 16) {
            return Err(format!("{key} must be at least 16"));
        }
    }
    if config.verifiers.count.is_some_and(|count| count > 16) {
        return Err("verifiers.count must be at most 16".to_string());
    }
    if let Some(url) = &config.provider.base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(format!(
            "provider.base_url {url:?} must start with http:// or https://"
        ));
    }
    crate::telemetry::check(&config.telemetry)?;
    let blank_model = |model: &Option<String>| model.as_ref().is_some_and(|m| m.trim().is_empty());
    if blank_model(&config.solver.model)
        || blank_model(&config.director.model)
        || config
            .verifiers
            .models
            .iter()
            .flatten()
            .any(|m| m.trim().is_empty())
    {
        return Err("a model name is blank".to_string());
    }
    Ok(())
}

/// The completion checks of a new run: the config file's `[[checks]]`, then each `--check`.
pub(crate) fn checks(config: &ConfigFile, flags: &[String]) -> Vec<infty_store::CheckSpec> {
    let mut out: Vec<infty_store::CheckSpec> = config
        .checks
        .iter()
        .map(|check| infty_store::CheckSpec {
            name: check
                .name
                .clone()
                .filter(|name| !name.trim().is_empty())
                .unwrap_or_else(|| check.command.trim().to_string()),
            command: check.command.clone(),
            timeout_secs: check
                .timeout_secs
                .unwrap_or(infty_store::CheckSpec::DEFAULT_TIMEOUT_SECS),
            dir: check.dir.unwrap_or_default(),
        })
        .collect();
    out.extend(
        flags
            .iter()
            .filter(|command| !command.trim().is_empty())
            .map(|command| infty_store::CheckSpec {
                name: command.trim().to_string(),
                command: command.clone(),
                timeout_secs: infty_store::CheckSpec::DEFAULT_TIMEOUT_SECS,
                dir: infty_store::CheckDir::default(),
            }),
    );
    out
}

/// The prices of `models`: the config file's `[prices."MODEL"]` first, then infty's table of
/// OpenAI prices when the run talks to OpenAI; other models cost 0 and are left out.
pub(crate) fn prices<'a>(
    config: &ConfigFile,
    base_url: &str,
    models: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, infty_store::ModelPrice> {
    let openai = infty_core::pricing::is_openai(base_url);
    models
        .into_iter()
        .filter_map(|model| {
            let price = config
                .prices
                .get(model)
                .map(PriceSection::price)
                .or_else(|| {
                    openai
                        .then(|| infty_core::pricing::openai_price(model))
                        .flatten()
                })?;
            Some((model.to_string(), price))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_line() {
        let cases: &[(&str, &str)] = &[
            ("[solver]\nmodel = 3\n", "line 2: invalid type"),
            ("[solver]\nmodl = \"x\"\n", "line 2: unknown field `modl`"),
            ("\n\n[budgets\n", "line 3:"),
            (
                "[provider]\nwire_api = \"grpc\"\n",
                "line 2: unknown variant `grpc`",
            ),
            (
                "[budgets]\nmax_turns = 0\n",
                "budgets.max_turns must be at least 1",
            ),
            (
                "[verifiers]\ncount = 17\n",
                "verifiers.count must be at most 16",
            ),
            (
                "[provider]\nbase_url = \"localhost:1\"\n",
                "must start with http://",
            ),
            ("[director]\nmodel = \" \"\n", "a model name is blank"),
            (
                "[telemetry]\nendpoint = \"localhost:4317\"\n",
                "telemetry.endpoint \"localhost:4317\" must start with http://",
            ),
            (
                "[telemetry]\nprotocol = \"udp\"\n",
                "line 2: unknown variant `udp`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.contains(expected), "{text:?} gave {error:?}");
            assert!(!error.contains('\n'), "{error:?} is not one line");
        }
    }

    #[test]
    fn a_full_file_parses() {
        let text = r#"
            [provider]
            base_url = "http://localhost:11434/v1"
            wire_api = "chat"
            [solver]
            model = "qwen3:14b"
            [director]
            model = "qwen3:32b"
            effort = "high"
            [verifiers]
            count = 2
            models = ["a", "b"]
            policy = "majority"
            [budgets]
            max_turns = 40
            max_rounds = 5
            max_tokens = 2000000
            max_wall_secs = 7200
            [timeouts]
            turn_secs = 600
            [telemetry]
            endpoint = "http://localhost:4317"
            protocol = "grpc"
            capture_content = true
        "#;
        let config = parse(text).unwrap();
        assert_eq!(config.provider.wire_api, Some(WireApiArg::Chat));
        assert_eq!(config.director.effort, Some(EffortArg::High));
        assert_eq!(config.verifiers.policy, Some(PolicyArg::Majority));
        assert_eq!(config.budgets.max_tokens, Some(2_000_000));
        assert_eq!(config.timeouts.turn_secs, Some(600));
        assert_eq!(
            config.telemetry.protocol,
            Some(crate::telemetry::OtlpProtocol::Grpc)
        );
        assert_eq!(config.telemetry.capture_content, Some(true));
        assert_eq!(parse("").unwrap(), ConfigFile::default());
    }

    #[test]
    fn prices_come_from_the_file_then_the_openai_table() {
        let config = parse(
            "[prices.\"local\"]\ninput = 1.0\noutput = 2.0\n[prices.\"gpt-5\"]\ninput = 9.0\noutput = 9.0\n",
        )
        .unwrap();
        let openai = prices(
            &config,
            "https://api.openai.com/v1",
            ["gpt-5", "gpt-5-mini", "local", "unknown"],
        );
        let input = |prices: &BTreeMap<String, infty_store::ModelPrice>, model: &str| {
            prices.get(model).map(|p| p.input_per_mtok)
        };
        assert_eq!(input(&openai, "gpt-5"), Some(9.0));
        assert_eq!(input(&openai, "gpt-5-mini"), Some(0.25));
        assert_eq!(input(&openai, "local"), Some(1.0));
        assert_eq!(input(&openai, "unknown"), None);
        // A local server: only what the file prices costs anything.
        let local = prices(&config, "http://127.0.0.1:8080/v1", ["gpt-5-mini", "local"]);
        assert_eq!(input(&local, "gpt-5-mini"), None);
        assert_eq!(local["local"].cached_input_per_mtok, 1.0);
    }

    #[test]
    fn checks_from_the_file_then_the_flags() {
        let config =
            parse("[[checks]]\ncommand = \"make test\"\n[[checks]]\nname = \"lint\"\ncommand = \"make lint\"\ntimeout_secs = 5\ndir = \"run\"\n").unwrap();
        let checks = checks(&config, &["cargo build".to_string(), " ".to_string()]);
        let got: Vec<(&str, &str, u64, infty_store::CheckDir)> = checks
            .iter()
            .map(|c| (c.name.as_str(), c.command.as_str(), c.timeout_secs, c.dir))
            .collect();
        use infty_store::CheckDir::{Run, Workspace};
        assert_eq!(
            got,
            [
                ("make test", "make test", 600, Workspace),
                ("lint", "make lint", 5, Run),
                ("cargo build", "cargo build", 600, Workspace),
            ]
        );
        for (text, error) in [
            (
                "[[checks]]\ncommand = \" \"\n",
                "checks[0].command is blank",
            ),
            (
                "[[checks]]\ncommand = \"x\"\ntimeout_secs = 0\n",
                "at least 1",
            ),
            (
                "[prices.m]\ninput = -1.0\noutput = 1.0\n",
                "zero or positive",
            ),
            ("[budgets]\nmax_cost_usd = 0.0\n", "positive amount"),
            ("[stall]\nrepeat = 2\n", "unknown field"),
        ] {
            let got = parse(text).expect_err(text);
            assert!(got.contains(error), "{text:?} gave {got:?}");
        }
    }

    #[test]
    fn home_folder() {
        let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
            (Some("/x"), Some("/h"), Some("/x")),
            (None, Some("/h"), Some("/h/.infty")),
            (Some(" "), Some("/h"), Some("/h/.infty")),
            (None, None, None),
        ];
        for (infty, home, expected) in cases {
            let got = home_from(infty.map(str::to_string), home.map(str::to_string)).ok();
            assert_eq!(got.as_ref().map(|p| p.as_str()), *expected);
        }
    }
}
