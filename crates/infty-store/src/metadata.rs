//! The contents of `run.json` (DESIGN §3.2): plain serde data, the status machine, and the
//! guard that keeps secrets out.
//!
//! This module must never do IO; [`crate::RunStore`] reads and writes these types.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Add, AddAssign};

use camino::Utf8PathBuf;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Role, StoreError};

/// The `run.json` layout this crate reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything `run.json` holds. Paths inside are relative to the run folder.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunMetadata {
    /// Layout version, [`SCHEMA_VERSION`] when written by this crate.
    pub schema_version: u32,
    /// The run's id, also the name of its folder.
    pub run_id: String,
    /// The objective the run works towards.
    pub objective: String,
    /// Where the run is in its life.
    pub status: RunStatus,
    /// When the run folder was created (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When `run.json` was last written (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The run's role sessions.
    #[serde(default)]
    pub roles: Vec<RoleRecord>,
    /// The settings a resume must reuse.
    #[serde(default)]
    pub options: RunOptions,
    /// Tokens used, per role name.
    #[serde(default)]
    pub usage: BTreeMap<String, TokenUsage>,
    /// The accepted deliverable, once the run succeeded.
    #[serde(default)]
    pub outcome: Option<OutcomeRecord>,
    /// Why the run stopped, once it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Cost in US dollars per role name, priced when the usage was recorded.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cost_usd: BTreeMap<String, f64>,
    /// When a `usage_limited` run may continue (RFC 3339, UTC).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resume_after: Option<OffsetDateTime>,
}

impl RunMetadata {
    /// The record of one role, if the run has it.
    pub fn role(&self, role: &str) -> Option<&RoleRecord> {
        self.roles.iter().find(|r| r.role == role)
    }

    /// The tokens used by all roles together.
    pub fn total_usage(&self) -> TokenUsage {
        self.usage
            .values()
            .fold(TokenUsage::default(), |a, b| a + *b)
    }

    /// The cost of all roles together, in US dollars.
    pub fn total_cost_usd(&self) -> f64 {
        self.cost_usd.values().fold(0.0, |total, usd| total + usd)
    }

    /// The short form `infty list` shows.
    pub fn summary(&self) -> RunSummary {
        RunSummary {
            run_id: self.run_id.clone(),
            status: self.status,
            objective: self.objective.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// Refuses values that look like secrets: `run.json` is meant to be shared and audited.
    pub fn check_no_secrets(&self) -> Result<(), StoreError> {
        self.options.check_no_secrets()
    }
}

pub(crate) fn is_env_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

pub(crate) fn url_has_userinfo(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// The fields `infty list --json` prints for each run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// Its status.
    pub status: RunStatus,
    /// Its objective.
    pub objective: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was last updated.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Where a run is in its life.
///
/// `created` → `running` → `succeeded` | `failed` | `interrupted` | `budget_exhausted` |
/// `blocked` | `usage_limited`, and back to `running` on resume from anything but
/// `succeeded`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The folder exists; nothing has been driven yet.
    Created,
    /// A driver is working on it, or was when it crashed.
    Running,
    /// Verification passed; the outcome is recorded.
    Succeeded,
    /// The run stopped on an error; `error` says why.
    Failed,
    /// The run was cancelled (Ctrl-C).
    Interrupted,
    /// A budget ran out.
    BudgetExhausted,
    /// Submitted to a fleet's work queue (`infty submit`); no worker has driven it yet.
    Queued,
    /// The Solver kept repeating itself after every escalation to the Director; `error`
    /// names the repetition. Resume after `infty send`.
    Blocked,
    /// A provider's rate or usage limit did not clear in time; `resume_after` says when the
    /// run may continue.
    UsageLimited,
}

impl RunStatus {
    /// Every status, in life order.
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Created,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Interrupted,
        RunStatus::BudgetExhausted,
        RunStatus::Blocked,
        RunStatus::UsageLimited,
    ];

    /// The name used in `run.json` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Created => "created",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::BudgetExhausted => "budget_exhausted",
            RunStatus::Queued => "queued",
            RunStatus::Blocked => "blocked",
            RunStatus::UsageLimited => "usage_limited",
        }
    }

    /// True when no driver works on the run any more (it has stopped, for good or not).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            RunStatus::Created | RunStatus::Running | RunStatus::Queued
        )
    }

    /// True when `infty resume` may pick the run up. `running` counts: a run whose driver
    /// crashed still says `running`, and the lock tells whether a driver is alive.
    pub fn can_resume(self) -> bool {
        self != RunStatus::Succeeded
    }

    /// Whether `self` → `to` is a legal step. The same status is always allowed (a no-op).
    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        if self == to {
            return true;
        }
        match (self, to) {
            // A run may fail or be interrupted before its first turn.
            (Created, Running | Failed | Interrupted | Queued) => true,
            // A worker picks a queued run up, or a fleet gives up on it.
            (Queued, Running | Failed | Interrupted) => true,
            (
                Running,
                Succeeded | Failed | Interrupted | BudgetExhausted | Blocked | UsageLimited,
            ) => true,
            (Failed | Interrupted | BudgetExhausted | Blocked | UsageLimited, Running) => true,
            _ => false,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One role session of the run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    /// The role (`solver`, `director`, `verifier-1`, ...).
    pub role: Role,
    /// The model it talks to.
    pub model: String,
    /// The reasoning effort asked of the model, if any.
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// The current rollout, relative to the run folder.
    pub rollout_path: Utf8PathBuf,
    /// The role's configuration file, relative to the run folder, if any.
    #[serde(default)]
    pub config_path: Option<Utf8PathBuf>,
    /// Rollouts of sessions this role replaced, oldest first.
    #[serde(default)]
    pub previous_rollouts: Vec<Utf8PathBuf>,
    /// The model's context window in tokens, when known (it enables compaction, and a resumed
    /// run needs it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// The reasoning summary asked of the model (`auto`, `concise`, `detailed`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<String>,
    /// Cap on the tokens of each of the role's responses (a resumed run sends it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// How the first request of each of the role's turns may use tools.
    #[serde(default, skip_serializing_if = "TurnToolChoice::is_auto")]
    pub tool_choice: TurnToolChoice,
}

/// How the first model request of a role's turn may use its tools; every later request of
/// the turn leaves the choice to the model. `Required` makes a model that would otherwise
/// only talk act first (small local models need it); the model can still reply without
/// tools once a call has run.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TurnToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The first response of a turn must call a tool.
    Required,
}

impl TurnToolChoice {
    /// The name in `run.json` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnToolChoice::Auto => "auto",
            TurnToolChoice::Required => "required",
        }
    }

    /// Whether it is the default, which `run.json` leaves out.
    pub fn is_auto(&self) -> bool {
        *self == TurnToolChoice::Auto
    }
}

impl fmt::Display for TurnToolChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RoleRecord {
    /// A role whose rollout is `rollouts/<role>.jsonl`.
    pub fn new(role: Role, model: &str, reasoning_effort: Option<&str>) -> Self {
        RoleRecord {
            rollout_path: Utf8PathBuf::from(format!("rollouts/{role}.jsonl")),
            role,
            model: model.to_owned(),
            reasoning_effort: reasoning_effort.map(str::to_owned),
            config_path: None,
            previous_rollouts: Vec::new(),
            context_window: None,
            reasoning_summary: None,
            max_output_tokens: None,
            tool_choice: TurnToolChoice::Auto,
        }
    }
}

/// Tokens used by a model, as the provider reports them.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(default)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Reasoning tokens (part of the output).
    pub reasoning_tokens: u64,
    /// All tokens billed.
    pub total_tokens: u64,
}

impl AddAssign for TokenUsage {
    fn add_assign(&mut self, rhs: Self) {
        // Saturating: a usage counter is a report, never worth a crash.
        self.input_tokens = self.input_tokens.saturating_add(rhs.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(rhs.cached_input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(rhs.output_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(rhs.reasoning_tokens);
        self.total_tokens = self.total_tokens.saturating_add(rhs.total_tokens);
    }
}

impl Add for TokenUsage {
    type Output = TokenUsage;
    fn add(mut self, rhs: Self) -> Self {
        self += rhs;
        self
    }
}

/// The accepted deliverable of a succeeded run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    /// The deliverable, relative to the run folder.
    pub deliverable_path: String,
    /// The Solver's summary, if it gave one.
    #[serde(default)]
    pub summary: Option<String>,
}

/// Everything the orchestrator needs to resume with the same settings.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(default)]
pub struct RunOptions {
    /// Per-turn time limits.
    pub timeouts: Timeouts,
    /// Limits on the whole run.
    pub budgets: Budgets,
    /// How verdicts of several Verifiers combine.
    pub verification_policy: VerificationPolicy,
    /// Solver replies without a valid signal in a row before the run fails.
    pub max_invalid_signals: u32,
    /// Tool steps allowed within one Solver turn.
    pub max_tool_steps: u32,
    /// The model provider.
    pub provider: ProviderRecord,
    /// The folder the Solver's tools work in, if not the run folder.
    pub workspace: Option<Utf8PathBuf>,
    /// Completion checks run after each valid delivery, before any Verifier.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// When repeated work counts as a stall.
    pub stall: StallPolicy,
    /// The prices used to cost token usage, per model name (what a resume and `show` use).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub prices: BTreeMap<String, ModelPrice>,
    /// The Model Context Protocol servers whose tools the roles use.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mcp: Vec<crate::McpServerRecord>,
    /// The sandbox of the tools' processes (absent in older runs: the defaults).
    #[serde(default)]
    pub sandbox: crate::SandboxSettings,
}

impl RunOptions {
    /// Refuses values that look like secrets: `run.json` is meant to be shared and audited.
    pub fn check_no_secrets(&self) -> Result<(), StoreError> {
        if let Some(name) = &self.provider.api_key_env
            && !is_env_var_name(name)
        {
            return Err(StoreError::SecretRefused {
                field: "options.provider.api_key_env",
                reason: "it must be the NAME of an environment variable (letters, digits, `_`), not a key",
            });
        }
        if self.sandbox.env.iter().any(|name| !is_env_var_name(name)) {
            return Err(StoreError::SecretRefused {
                field: "options.sandbox.env",
                reason: "it must hold NAMES of environment variables (letters, digits, `_`), not values",
            });
        }
        if url_has_userinfo(&self.provider.base_url) {
            return Err(StoreError::SecretRefused {
                field: "options.provider.base_url",
                reason: "it carries credentials before `@`",
            });
        }
        for server in &self.mcp {
            server.check_no_secrets()?;
        }
        Ok(())
    }

    /// Default for [`RunOptions::max_invalid_signals`].
    pub const DEFAULT_MAX_INVALID_SIGNALS: u32 = 3;
    /// Default for [`RunOptions::max_tool_steps`].
    pub const DEFAULT_MAX_TOOL_STEPS: u32 = 200;
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeouts: Timeouts::default(),
            budgets: Budgets::default(),
            verification_policy: VerificationPolicy::default(),
            max_invalid_signals: Self::DEFAULT_MAX_INVALID_SIGNALS,
            max_tool_steps: Self::DEFAULT_MAX_TOOL_STEPS,
            provider: ProviderRecord::default(),
            workspace: None,
            checks: Vec::new(),
            stall: StallPolicy::default(),
            prices: BTreeMap::new(),
            mcp: Vec::new(),
            sandbox: crate::SandboxSettings::default(),
        }
    }
}

/// Time limits per role turn, in seconds.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(default)]
pub struct Timeouts {
    /// One Solver turn (default 3600).
    pub solver_turn_secs: u64,
    /// One Director answer (default 1200).
    pub director_secs: u64,
    /// One Verifier verdict (default 1800).
    pub verifier_secs: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            solver_turn_secs: 3600,
            director_secs: 1200,
            verifier_secs: 1800,
        }
    }
}

/// Limits on the whole run; `None` means unlimited.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(default)]
pub struct Budgets {
    /// Solver turns.
    pub max_solver_turns: Option<u32>,
    /// Verification rounds.
    pub max_verification_rounds: Option<u32>,
    /// Tokens across all roles.
    pub max_total_tokens: Option<u64>,
    /// Wall-clock seconds spent driving the run.
    pub max_wall_clock_secs: Option<u64>,
    /// US dollars across all roles, priced by [`RunOptions::prices`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_usd: Option<f64>,
}

/// A completion check: a command that must exit 0 before any Verifier is asked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// A short name for messages (`tests`, `lint`, or the command itself).
    pub name: String,
    /// The command line, run by `bash -c`.
    pub command: String,
    /// How long it may run.
    #[serde(default = "CheckSpec::default_timeout_secs")]
    pub timeout_secs: u64,
    /// The folder it runs in.
    #[serde(default)]
    pub dir: CheckDir,
}

impl CheckSpec {
    /// Default for [`CheckSpec::timeout_secs`].
    pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

    fn default_timeout_secs() -> u64 {
        Self::DEFAULT_TIMEOUT_SECS
    }
}

/// Where a completion check runs.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum CheckDir {
    /// The workspace when the run has one, else the run folder.
    #[default]
    Workspace,
    /// The run folder.
    Run,
}

/// When the Solver's repeated work counts as a stall.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(default)]
pub struct StallPolicy {
    /// Solver turns in a row that repeat earlier work before the Director is asked; 0 turns
    /// stall detection off.
    pub repeats: u32,
    /// Escalations to the Director without progress before the run is `blocked`.
    pub escalations: u32,
}

impl StallPolicy {
    /// Default for [`StallPolicy::repeats`].
    pub const DEFAULT_REPEATS: u32 = 3;
    /// Default for [`StallPolicy::escalations`].
    pub const DEFAULT_ESCALATIONS: u32 = 2;
}

impl Default for StallPolicy {
    fn default() -> Self {
        StallPolicy {
            repeats: Self::DEFAULT_REPEATS,
            escalations: Self::DEFAULT_ESCALATIONS,
        }
    }
}

/// What a model's tokens cost, in US dollars per million tokens.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(default)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    pub input_per_mtok: f64,
    /// Prompt tokens served from the provider's cache.
    pub cached_input_per_mtok: f64,
    /// Completion tokens (reasoning included).
    pub output_per_mtok: f64,
}

impl ModelPrice {
    /// The cost of `usage` in US dollars. Cached tokens are part of the input count, so they
    /// are priced at the cached rate and the rest at the full rate.
    pub fn cost_usd(&self, usage: &TokenUsage) -> f64 {
        let cached = usage.cached_input_tokens.min(usage.input_tokens);
        let uncached = usage.input_tokens - cached;
        (uncached as f64 * self.input_per_mtok
            + cached as f64 * self.cached_input_per_mtok
            + usage.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// How the verdicts of several Verifiers combine.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum VerificationPolicy {
    /// Every Verifier must pass.
    #[default]
    All,
    /// More than half must pass.
    Majority,
}

/// The model provider, without credentials.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
#[serde(default)]
pub struct ProviderRecord {
    /// The API base URL.
    pub base_url: String,
    /// `responses` or `chat`.
    pub wire_api: String,
    /// The NAME of the environment variable holding the key, never the key.
    pub api_key_env: Option<String>,
    /// The provider preset (`openai`, `ollama`, `vllm`, `llamacpp`, `lmstudio`,
    /// `openrouter`), named or detected; absent in runs made before presets were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        use RunStatus::*;
        let allowed = [
            (Created, Running),
            (Created, Failed),
            (Created, Interrupted),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Interrupted),
            (Running, BudgetExhausted),
            (Failed, Running),
            (Interrupted, Running),
            (BudgetExhausted, Running),
            (Created, Queued),
            (Queued, Running),
            (Queued, Failed),
            (Queued, Interrupted),
            (Running, Blocked),
            (Running, UsageLimited),
            (Blocked, Running),
            (UsageLimited, Running),
        ];
        for from in RunStatus::ALL {
            for to in RunStatus::ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(from.can_become(to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn status_names_match_serde() {
        for status in RunStatus::ALL {
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<RunStatus>(&json).unwrap(), status);
        }
        let resumable: Vec<_> = RunStatus::ALL
            .into_iter()
            .filter(|s| s.can_resume())
            .collect();
        assert!(!resumable.contains(&RunStatus::Succeeded));
        assert_eq!(resumable.len(), 8);
        let terminal: Vec<_> = RunStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                RunStatus::Succeeded,
                RunStatus::Failed,
                RunStatus::Interrupted,
                RunStatus::BudgetExhausted,
                RunStatus::Blocked,
                RunStatus::UsageLimited,
            ]
        );
    }

    #[test]
    fn usage_adds_and_saturates() {
        let mut a = TokenUsage {
            input_tokens: 1,
            cached_input_tokens: 2,
            output_tokens: 3,
            reasoning_tokens: 4,
            total_tokens: u64::MAX,
        };
        a += TokenUsage {
            input_tokens: 10,
            cached_input_tokens: 20,
            output_tokens: 30,
            reasoning_tokens: 40,
            total_tokens: 5,
        };
        assert_eq!(
            a,
            TokenUsage {
                input_tokens: 11,
                cached_input_tokens: 22,
                output_tokens: 33,
                reasoning_tokens: 44,
                total_tokens: u64::MAX
            }
        );
    }

    #[test]
    fn options_default_when_fields_are_missing() {
        let options: RunOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(options, RunOptions::default());
        assert_eq!(options.max_invalid_signals, 3);
        assert_eq!(options.max_tool_steps, 200);
        assert_eq!(options.timeouts.solver_turn_secs, 3600);
        assert_eq!(options.timeouts.director_secs, 1200);
        assert_eq!(options.timeouts.verifier_secs, 1800);
        let partial: RunOptions = serde_json::from_str(
            r#"{"timeouts":{"director_secs":5},"verification_policy":"majority"}"#,
        )
        .unwrap();
        assert_eq!(partial.timeouts.director_secs, 5);
        assert_eq!(partial.timeouts.verifier_secs, 1800);
        assert_eq!(partial.verification_policy, VerificationPolicy::Majority);
    }

    #[test]
    fn secret_guard() {
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("https://api.openai.com/v1", Some("OPENAI_API_KEY"), true),
            ("http://127.0.0.1:8080", None, true),
            ("", Some("_key2"), true),
            ("https://api.example.com/v1?x=a@b", None, true),
            ("https://user:pass@api.example.com/v1", None, false),
            ("https://api.example.com", Some("sk-proj-abc123"), false),
            ("https://api.example.com", Some("2KEY"), false),
            ("https://api.example.com", Some(""), false),
        ];
        for (base_url, key_env, ok) in cases {
            let mut meta = sample();
            meta.options.provider.base_url = (*base_url).to_owned();
            meta.options.provider.api_key_env = key_env.map(str::to_owned);
            assert_eq!(
                meta.check_no_secrets().is_ok(),
                *ok,
                "{base_url} {key_env:?}"
            );
        }
    }

    #[test]
    fn role_record_points_at_its_rollout() {
        let role = RoleRecord::new(Role::verifier(1), "gpt-x", Some("high"));
        assert_eq!(role.rollout_path, "rollouts/verifier-1.jsonl");
        assert_eq!(role.reasoning_effort.as_deref(), Some("high"));
    }

    fn sample() -> RunMetadata {
        let at = time::macros::datetime!(2026-11-24 01:35:12 UTC);
        RunMetadata {
            schema_version: SCHEMA_VERSION,
            run_id: "r".into(),
            objective: "o".into(),
            status: RunStatus::Created,
            created_at: at,
            updated_at: at,
            roles: vec![],
            options: RunOptions::default(),
            usage: BTreeMap::new(),
            outcome: None,
            error: None,
            cost_usd: BTreeMap::new(),
            resume_after: None,
        }
    }

    #[test]
    fn prices_cached_tokens_at_their_own_rate() {
        let price = ModelPrice {
            input_per_mtok: 2.0,
            cached_input_per_mtok: 0.5,
            output_per_mtok: 8.0,
        };
        let usage = TokenUsage {
            input_tokens: 1_000_000,
            cached_input_tokens: 400_000,
            output_tokens: 100_000,
            reasoning_tokens: 50_000,
            total_tokens: 1_100_000,
        };
        // 600k × 2 + 400k × 0.5 + 100k × 8, per million.
        assert!((price.cost_usd(&usage) - 2.2).abs() < 1e-9);
        assert_eq!(ModelPrice::default().cost_usd(&usage), 0.0);
    }
}
