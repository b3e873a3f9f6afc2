//! A run's settings, resolved once, each with where it came from.
//!
//! A new run takes each value from the first layer that has one (flag > environment >
//! config file > built-in default): `create` and `submit` resolve their flags with
//! [`for_new_run`]; `infty config` resolves the same way with no flags, so what it shows is
//! what a `create` without flags would use, source by source. `create` writes its resolved
//! settings, with their sources, to infty's log file.
//!
//! A resumed run keeps what its `run.json` recorded (resolved when the run was created),
//! which stands in for the environment, the config file and the defaults; only a flag given
//! to `resume` changes it. [`for_resume`] describes what `resume` applies (flag > recorded);
//! `resume` logs it and `infty config --run ID` shows it for a resume without flags.
//! Changing the config file or `OPENAI_BASE_URL` therefore never moves a run that already
//! exists.
//!
//! Nothing here reads or shows a secret: the API key stays in the environment, and only
//! whether it is set is shown.

use std::collections::BTreeMap;

use camino::Utf8Path;
use serde::Serialize;

use crate::args::{CreateArgs, DEFAULT_MODEL, RoleOutputCaps, RoleSummaries};
use crate::config::{ConfigFile, HOME_ENV, config_path};
use crate::output_caps::OutputCaps;
use crate::provider::{API_KEY_ENV, BASE_URL_ENV, OPENAI_BASE_URL};

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// A command-line flag.
    Flag,
    /// An environment variable.
    Env,
    /// The config file.
    Config,
    /// infty's built-in default.
    Default,
    /// What the run's `run.json` recorded (a resumed run).
    Recorded,
}

impl Source {
    /// The name `infty config` shows.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Config => "config",
            Source::Default => "default",
            Source::Recorded => "recorded",
        }
    }
}

/// One resolved setting, as `infty config` and the log show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Setting {
    /// Its value, as text (`null` when unset and unlimited).
    pub value: Option<String>,
    /// Where it came from.
    pub source: Source,
}

/// Resolved settings, keyed as in the config file.
pub(crate) type Settings = BTreeMap<&'static str, Setting>;

/// The environment the resolution reads, so tests can give their own.
#[derive(Debug, Clone, Default)]
pub(crate) struct Environment {
    /// `INFTY_HOME`.
    pub infty_home: Option<String>,
    /// `OPENAI_BASE_URL`.
    pub base_url: Option<String>,
    /// Whether `OPENAI_API_KEY` is set (its value is never read here).
    pub api_key_set: bool,
}

impl Environment {
    /// The process environment (a blank variable counts as unset).
    pub(crate) fn current() -> Environment {
        let non_blank = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Environment {
            infty_home: non_blank(HOME_ENV),
            base_url: non_blank(BASE_URL_ENV),
            api_key_set: non_blank(API_KEY_ENV).is_some(),
        }
    }
}

/// Which `create` flags with a built-in default were given on the command line (clap
/// fills defaults, so their presence alone does not tell).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GivenFlags {
    /// `--model` was given.
    pub model: bool,
    /// `--verification-policy` was given.
    pub verification_policy: bool,
}

/// A new run's resolved settings.
#[derive(Debug)]
pub(crate) struct NewRun {
    /// What each setting is and where it came from.
    pub settings: Settings,
    /// The sandbox the run records.
    pub sandbox: infty_store::SandboxSettings,
}

/// The first layer that has a value, highest first, with its source.
fn first<T>(layers: impl IntoIterator<Item = (Source, Option<T>)>) -> Option<(T, Source)> {
    layers
        .into_iter()
        .find_map(|(source, value)| value.map(|value| (value, source)))
}

/// The source of a setting that the flags and the file add to or that is resolved
/// elsewhere: the highest layer that says anything about it.
fn layer_of(flagged: bool, configured: bool) -> Source {
    match (flagged, configured) {
        (true, _) => Source::Flag,
        (false, true) => Source::Config,
        (false, false) => Source::Default,
    }
}

/// The first layer that has a value, else `default` (shown as the default's text).
fn or_default<T>(
    layers: impl IntoIterator<Item = (Source, Option<T>)>,
    default: Option<String>,
    show: impl Fn(&T) -> String,
) -> (Option<T>, Setting) {
    match first(layers) {
        Some((value, source)) => {
            let text = show(&value);
            (
                Some(value),
                Setting {
                    value: Some(text),
                    source,
                },
            )
        }
        None => (
            None,
            Setting {
                value: default,
                source: Source::Default,
            },
        ),
    }
}

/// Resolves a new run's settings: fills what `args` (the flags) left unset from the
/// environment and the config file, in place, and returns every setting with its source.
/// Settings left unset are decided when the run is made (the provider's preset, the caps
/// of its server); their entry describes how.
pub(crate) fn for_new_run(
    args: &mut CreateArgs,
    given: GivenFlags,
    config: &ConfigFile,
    env: &Environment,
) -> Result<NewRun, String> {
    use Source::{Config, Env, Flag};
    let mut out = Settings::new();

    // Where the models are served. The environment's URL is read again by the provider
    // resolution (where it also serves `resume`), so only the file's fills the flag.
    let flag_url = args.provider.base_url.clone();
    let (url, setting) = or_default(
        [
            (Flag, flag_url.clone()),
            (Env, env.base_url.clone()),
            (Config, config.provider.base_url.clone()),
        ],
        Some(OPENAI_BASE_URL.to_string()),
        Clone::clone,
    );
    if flag_url.is_none() && setting.source == Config {
        args.provider.base_url = url;
    }
    out.insert("provider.base_url", setting);
    let (preset, setting) = or_default(
        [
            (Flag, args.provider.provider),
            (Config, config.provider.name),
        ],
        Some("detected (llama.cpp), else openai for api.openai.com, else vllm".to_string()),
        |p| p.as_str().to_string(),
    );
    args.provider.provider = preset;
    out.insert("provider.name", setting);
    // A named preset brings its own wire API; an unnamed server speaks Responses.
    let preset_wire = preset
        .and_then(|preset| infty_model::ProviderConfig::preset(preset.as_str()))
        .map_or_else(
            || "responses".to_string(),
            |preset| preset.wire_api.to_string(),
        );
    let (wire, setting) = or_default(
        [
            (Flag, args.provider.wire_api),
            (Config, config.provider.wire_api),
        ],
        Some(preset_wire),
        enum_name,
    );
    args.provider.wire_api = wire;
    out.insert("provider.wire_api", setting);
    out.insert(
        "provider.api_key",
        Setting {
            value: Some(if env.api_key_set {
                format!("set in {API_KEY_ENV}")
            } else {
                format!("{API_KEY_ENV} is not set")
            }),
            source: Env,
        },
    );

    // Caps on each response: `--max-output-tokens` for every role, else the file's per
    // role, else the provider's defaults (known once the preset is).
    let named_caps = preset.map(|preset| OutputCaps::defaults(preset.as_str()));
    let default_cap = |pick: PickCap| match &named_caps {
        Some(caps) => pick(caps).to_string(),
        None => format!(
            "{} (openai, openrouter) or {} (local servers)",
            pick(&OutputCaps::defaults("openai")),
            pick(&OutputCaps::defaults("llamacpp"))
        ),
    };
    let every_role = args.max_output_tokens;
    let mut cap = |key: &'static str, configured: Option<u32>, pick: PickCap| {
        let (cap, setting) = or_default(
            [(Flag, every_role), (Config, configured)],
            Some(default_cap(pick)),
            u32::to_string,
        );
        out.insert(key, setting);
        cap
    };
    args.role_max_output_tokens = RoleOutputCaps {
        solver: cap(
            "solver.max_output_tokens",
            config.solver.max_output_tokens,
            |c| c.solver,
        ),
        director: cap(
            "director.max_output_tokens",
            config.director.max_output_tokens,
            |c| c.director,
        ),
        verifier: cap(
            "verifiers.max_output_tokens",
            config.verifiers.max_output_tokens,
            |c| c.verifier,
        ),
    };
    args.role_summaries = RoleSummaries {
        solver: config.solver.reasoning_summary,
        director: config.director.reasoning_summary,
        verifiers: config.verifiers.reasoning_summary,
    };

    // Models: the Solver's is every other role's unless they name theirs.
    let (solver, setting) = or_default(
        [
            (Flag, given.model.then(|| args.model.clone())),
            (Config, config.solver.model.clone()),
        ],
        Some(DEFAULT_MODEL.to_string()),
        Clone::clone,
    );
    if let Some(model) = solver {
        args.model = model;
    }
    out.insert("solver.model", setting);
    let (director, setting) = or_default(
        [
            (Flag, args.director_model.clone()),
            (Config, config.director.model.clone()),
        ],
        Some(args.model.clone()),
        Clone::clone,
    );
    args.director_model = director;
    out.insert("director.model", setting);
    let flag_models = (!args.verifier_model.is_empty()).then(|| args.verifier_model.clone());
    let (models, setting) = or_default(
        [
            (Flag, flag_models),
            (Config, config.verifiers.models.clone()),
        ],
        Some(args.model.clone()),
        |models| models.join(", "),
    );
    args.verifier_model = models.unwrap_or_default();
    out.insert("verifiers.models", setting);
    let (count, setting) = or_default(
        [(Flag, args.verifiers), (Config, config.verifiers.count)],
        Some(args.verifier_model.len().max(1).to_string()),
        u32::to_string,
    );
    args.verifiers = count;
    out.insert("verifiers.count", setting);
    let (policy, setting) = or_default(
        [
            (
                Flag,
                given
                    .verification_policy
                    .then_some(args.verification_policy),
            ),
            (Config, config.verifiers.policy),
        ],
        Some(enum_name(&args.verification_policy)),
        enum_name,
    );
    if let Some(policy) = policy {
        args.verification_policy = policy;
    }
    out.insert("verifiers.policy", setting);

    // How each role reasons and uses tools.
    let efforts = [
        (
            "solver.effort",
            &mut args.solver_effort,
            config.solver.effort,
        ),
        (
            "director.effort",
            &mut args.director_effort,
            config.director.effort,
        ),
        (
            "verifiers.effort",
            &mut args.verifier_effort,
            config.verifiers.effort,
        ),
    ];
    for (key, flag, configured) in efforts {
        let (effort, setting) = or_default([(Flag, *flag), (Config, configured)], None, enum_name);
        *flag = effort;
        out.insert(key, setting);
    }
    let choices = [
        (
            "solver.tool_choice",
            &mut args.solver_tool_choice,
            config.solver.tool_choice,
        ),
        (
            "director.tool_choice",
            &mut args.director_tool_choice,
            config.director.tool_choice,
        ),
        (
            "verifiers.tool_choice",
            &mut args.verifier_tool_choice,
            config.verifiers.tool_choice,
        ),
    ];
    for (key, flag, configured) in choices {
        let (choice, setting) = or_default(
            [(Flag, *flag), (Config, configured)],
            Some("auto".to_string()),
            enum_name,
        );
        *flag = choice;
        out.insert(key, setting);
    }

    // Limits.
    let budgets = &mut args.budgets;
    let mut limit = |key: &'static str, flag: Option<u64>, configured: Option<u64>| {
        let (value, setting) =
            or_default([(Flag, flag), (Config, configured)], None, u64::to_string);
        out.insert(key, setting);
        value
    };
    budgets.max_turns = limit(
        "budgets.max_turns",
        budgets.max_turns.map(u64::from),
        config.budgets.max_turns.map(u64::from),
    )
    .and_then(|turns| u32::try_from(turns).ok());
    budgets.max_rounds = limit(
        "budgets.max_rounds",
        budgets.max_rounds.map(u64::from),
        config.budgets.max_rounds.map(u64::from),
    )
    .and_then(|rounds| u32::try_from(rounds).ok());
    budgets.max_tokens = limit(
        "budgets.max_tokens",
        budgets.max_tokens,
        config.budgets.max_tokens,
    );
    budgets.max_wall_secs = limit(
        "budgets.max_wall_secs",
        budgets.max_wall_secs,
        config.budgets.max_wall_secs,
    );
    let (cost, setting) = or_default(
        [
            (Flag, budgets.max_cost_usd),
            (Config, config.budgets.max_cost_usd),
        ],
        None,
        f64::to_string,
    );
    budgets.max_cost_usd = cost;
    out.insert("budgets.max_cost_usd", setting);
    let defaults = infty_store::Timeouts::default();
    let (turn, setting) = or_default(
        [
            (Flag, budgets.timeout_secs),
            (Config, config.timeouts.turn_secs),
        ],
        Some(format!(
            "solver {}, director {}, verifier {}",
            defaults.solver_turn_secs, defaults.director_secs, defaults.verifier_secs
        )),
        u64::to_string,
    );
    budgets.timeout_secs = turn;
    out.insert("timeouts.turn_secs", setting);
    let stall = config.stall.policy();
    for (key, configured, default) in [
        ("stall.repeats", config.stall.repeats, stall.repeats),
        (
            "stall.escalations",
            config.stall.escalations,
            stall.escalations,
        ),
    ] {
        let setting = or_default(
            [(Config, configured)],
            Some(default.to_string()),
            u32::to_string,
        );
        out.insert(key, setting.1);
    }
    // Checks add up: the file's first, then each `--check`.
    let checks = crate::config::checks(config, &args.checks);
    let checks_source = layer_of(
        args.checks.iter().any(|c| !c.trim().is_empty()),
        !config.checks.is_empty(),
    );
    out.insert(
        "checks",
        Setting {
            value: (!checks.is_empty()).then(|| {
                checks
                    .iter()
                    .map(|c| c.command.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            source: checks_source,
        },
    );
    args.mcp_config.clone_from(&config.mcp.servers);

    // The sandbox: `--sandbox` sets every role, else the file per role, else defaults.
    let sandbox = crate::sandbox::for_create(&args.sandbox, &config.sandbox)?;
    let section = &config.sandbox;
    let mode_source = |configured: bool| layer_of(args.sandbox.sandbox.is_some(), configured);
    let listed = |names: &[String]| (!names.is_empty()).then(|| names.join(", "));
    let entries = [
        (
            "sandbox.solver",
            Some(sandbox.solver.to_string()),
            mode_source(section.solver.is_some()),
        ),
        (
            "sandbox.director",
            Some(sandbox.director.to_string()),
            mode_source(section.director.is_some()),
        ),
        (
            "sandbox.verifier",
            Some(sandbox.verifier.to_string()),
            mode_source(section.verifier.is_some()),
        ),
        (
            "sandbox.allow_network",
            Some(sandbox.allow_network.to_string()),
            layer_of(args.sandbox.allow_network, section.allow_network.is_some()),
        ),
        (
            "sandbox.env",
            listed(&sandbox.env),
            layer_of(!args.sandbox.env.is_empty(), !section.env.is_empty()),
        ),
        (
            "sandbox.hidden",
            listed(&sandbox.hidden),
            layer_of(false, !section.hidden.is_empty()),
        ),
    ];
    for (key, value, source) in entries {
        out.insert(key, Setting { value, source });
    }
    Ok(NewRun {
        settings: out,
        sandbox,
    })
}

/// A resumed run's settings: what its `run.json` recorded, changed where `args` (the flags
/// typed for the resume) and the `overrides` built from them say so. `api_key_set` tells
/// whether the key's variable is set in this environment.
pub(crate) fn for_resume(
    meta: &infty_store::RunMetadata,
    args: &crate::args::ResumeArgs,
    overrides: &infty_core::ResumeOverrides,
    api_key_set: bool,
) -> Settings {
    use Source::{Env, Flag, Recorded};
    let from = |flagged: bool| if flagged { Flag } else { Recorded };
    let at = |value: Option<String>, source: Source| Setting { value, source };
    let mut out = Settings::new();
    let options = &meta.options;

    let provider = overrides.provider.as_ref().unwrap_or(&options.provider);
    let typed = &args.provider;
    out.insert(
        "provider.base_url",
        at(
            Some(provider.base_url.clone()),
            from(typed.base_url.is_some()),
        ),
    );
    out.insert(
        "provider.name",
        at(provider.name.clone(), from(typed.provider.is_some())),
    );
    out.insert(
        "provider.wire_api",
        at(
            Some(provider.wire_api.clone()),
            from(typed.wire_api.is_some()),
        ),
    );
    let key_env = provider.api_key_env.as_deref().unwrap_or(API_KEY_ENV);
    out.insert(
        "provider.api_key",
        at(
            Some(if api_key_set {
                format!("set in {key_env}")
            } else {
                format!("{key_env} is not set")
            }),
            Env,
        ),
    );

    // Per role: the Solver's and the Director's own, the Verifiers' together.
    let model_of = |role: &infty_store::RoleRecord| {
        overrides
            .models
            .get(&role.role)
            .unwrap_or(&role.model)
            .clone()
    };
    let cap_of = |role: &infty_store::RoleRecord| {
        let recorded = role.max_output_tokens.is_some();
        let source = match (args.max_output_tokens.is_some(), recorded) {
            (true, _) => Flag,
            (false, true) => Recorded,
            (false, false) => Source::Default,
        };
        let cap = overrides
            .max_output_tokens
            .get(&role.role)
            .copied()
            .or(role.max_output_tokens);
        at(cap.map(|cap| cap.to_string()), source)
    };
    let verifiers: Vec<&infty_store::RoleRecord> =
        meta.roles.iter().filter(|r| r.role.is_verifier()).collect();
    for (key, cap_key, role) in [
        (
            "solver.model",
            "solver.max_output_tokens",
            infty_store::Role::Solver,
        ),
        (
            "director.model",
            "director.max_output_tokens",
            infty_store::Role::Director,
        ),
    ] {
        if let Some(record) = meta.roles.iter().find(|r| r.role == role) {
            out.insert(key, at(Some(model_of(record)), from(args.model.is_some())));
            out.insert(cap_key, cap_of(record));
        }
    }
    let models: Vec<String> = verifiers.iter().map(|r| model_of(r)).collect();
    out.insert(
        "verifiers.models",
        at(Some(models.join(", ")), from(args.model.is_some())),
    );
    if let Some(first) = verifiers.first() {
        out.insert("verifiers.max_output_tokens", cap_of(first));
    }
    out.insert(
        "verifiers.count",
        at(Some(verifiers.len().to_string()), Recorded),
    );
    out.insert(
        "verifiers.policy",
        at(Some(enum_name(&options.verification_policy)), Recorded),
    );

    // Limits: each flag replaces one recorded limit.
    let budgets = overrides.budgets.unwrap_or(options.budgets);
    let limits = &args.budgets;
    let limit = |value: Option<String>, flagged: bool| at(value, from(flagged));
    out.insert(
        "budgets.max_turns",
        limit(
            budgets.max_solver_turns.map(|v| v.to_string()),
            limits.max_turns.is_some(),
        ),
    );
    out.insert(
        "budgets.max_rounds",
        limit(
            budgets.max_verification_rounds.map(|v| v.to_string()),
            limits.max_rounds.is_some(),
        ),
    );
    out.insert(
        "budgets.max_tokens",
        limit(
            budgets.max_total_tokens.map(|v| v.to_string()),
            limits.max_tokens.is_some(),
        ),
    );
    out.insert(
        "budgets.max_wall_secs",
        limit(
            budgets.max_wall_clock_secs.map(|v| v.to_string()),
            limits.max_wall_secs.is_some(),
        ),
    );
    out.insert(
        "budgets.max_cost_usd",
        limit(
            budgets.max_cost_usd.map(|v| v.to_string()),
            limits.max_cost_usd.is_some(),
        ),
    );
    let timeouts = overrides.timeouts.unwrap_or(options.timeouts);
    let turn = if timeouts.solver_turn_secs == timeouts.director_secs
        && timeouts.director_secs == timeouts.verifier_secs
    {
        timeouts.solver_turn_secs.to_string()
    } else {
        format!(
            "solver {}, director {}, verifier {}",
            timeouts.solver_turn_secs, timeouts.director_secs, timeouts.verifier_secs
        )
    };
    out.insert(
        "timeouts.turn_secs",
        at(Some(turn), from(limits.timeout_secs.is_some())),
    );
    out.insert(
        "stall.repeats",
        at(Some(options.stall.repeats.to_string()), Recorded),
    );
    out.insert(
        "stall.escalations",
        at(Some(options.stall.escalations.to_string()), Recorded),
    );
    out.insert(
        "checks",
        at(
            (!options.checks.is_empty()).then(|| {
                options
                    .checks
                    .iter()
                    .map(|c| c.command.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
            Recorded,
        ),
    );

    // The sandbox: `--sandbox` sets every role's mode, the other flags their own entry.
    let sandbox = overrides.sandbox.as_ref().unwrap_or(&options.sandbox);
    let typed = &args.sandbox;
    let listed = |names: &[String]| (!names.is_empty()).then(|| names.join(", "));
    let modes_typed = typed.sandbox.is_some();
    for (key, value, source) in [
        (
            "sandbox.solver",
            Some(sandbox.solver.to_string()),
            from(modes_typed),
        ),
        (
            "sandbox.director",
            Some(sandbox.director.to_string()),
            from(modes_typed),
        ),
        (
            "sandbox.verifier",
            Some(sandbox.verifier.to_string()),
            from(modes_typed),
        ),
        (
            "sandbox.allow_network",
            Some(sandbox.allow_network.to_string()),
            from(typed.allow_network),
        ),
        (
            "sandbox.env",
            listed(&sandbox.env),
            from(!typed.env.is_empty()),
        ),
        ("sandbox.hidden", listed(&sandbox.hidden), Recorded),
    ] {
        out.insert(key, Setting { value, source });
    }
    out
}

/// Where infty's own files are, for `infty config`: the home folder (from `INFTY_HOME`,
/// else `~/.infty`), its config and log files, and the runs folder.
pub(crate) fn home_settings(
    env: &Environment,
    home: &Utf8Path,
    runs_root: (&Utf8Path, Source),
) -> Settings {
    let home_source = if env.infty_home.is_some() {
        Source::Env
    } else {
        Source::Default
    };
    let at = |path: String, source: Source| Setting {
        value: Some(path),
        source,
    };
    Settings::from([
        ("home", at(home.to_string(), home_source)),
        (
            "config_file",
            at(config_path(home).to_string(), home_source),
        ),
        ("runs_root", at(runs_root.0.to_string(), runs_root.1)),
        (
            "log_file",
            at(crate::logging::log_path(home).to_string(), home_source),
        ),
    ])
}

/// Picks one role's cap out of a set of caps.
type PickCap = fn(&OutputCaps) -> u32;

/// The name serde gives a unit enum variant.
fn enum_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `infty config`: the settings as an aligned list, or one JSON object.
pub(crate) fn render(settings: &Settings, json: bool) -> Result<String, serde_json::Error> {
    if json {
        return serde_json::to_string_pretty(settings);
    }
    let width = settings.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, setting) in settings {
        let value = setting.value.as_deref().unwrap_or("none");
        out.push_str(&format!(
            "{key:<width$}  {value}  ({})\n",
            setting.source.as_str()
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::args::{Cli, Command};

    fn create_flags(flags: &[&str]) -> CreateArgs {
        let mut argv = vec!["infty", "create", "--objective", "x"];
        argv.extend(flags);
        match Cli::try_parse_from(argv).map(|cli| cli.command) {
            Ok(Command::Create(args)) => args,
            other => panic!("not a create: {other:?}"),
        }
    }

    fn config(text: &str) -> ConfigFile {
        crate::config::parse(text).unwrap()
    }

    fn sources(settings: &Settings) -> BTreeMap<&'static str, (Option<&str>, Source)> {
        settings
            .iter()
            .map(|(key, s)| (*key, (s.value.as_deref(), s.source)))
            .collect()
    }

    #[test]
    fn each_setting_comes_from_the_highest_layer_that_has_it() {
        let file = config(
            "[provider]\nbase_url = \"http://file/v1\"\n[solver]\nmodel = \"file-model\"\n[budgets]\nmax_turns = 9\nmax_rounds = 3\n",
        );
        let env = Environment {
            base_url: Some("http://env/v1".to_string()),
            ..Environment::default()
        };
        let mut args = create_flags(&["--max-turns", "4", "--sandbox", "off"]);
        let given = GivenFlags::default();
        let run = for_new_run(&mut args, given, &file, &env).unwrap();
        let got = sources(&run.settings);
        assert_eq!(
            got["provider.base_url"],
            (Some("http://env/v1"), Source::Env)
        );
        assert_eq!(got["solver.model"], (Some("file-model"), Source::Config));
        assert_eq!(got["director.model"], (Some("file-model"), Source::Default));
        assert_eq!(got["budgets.max_turns"], (Some("4"), Source::Flag));
        assert_eq!(got["budgets.max_rounds"], (Some("3"), Source::Config));
        assert_eq!(got["budgets.max_tokens"], (None, Source::Default));
        assert_eq!(got["sandbox.director"], (Some("off"), Source::Flag));
        // The flags now hold what was resolved; the environment's URL is left to the
        // provider, which reads it itself.
        assert_eq!(args.model, "file-model");
        assert_eq!(args.budgets.max_turns, Some(4));
        assert_eq!(args.budgets.max_rounds, Some(3));
        assert_eq!(args.provider.base_url, None);
        assert_eq!(run.sandbox.director, infty_store::SandboxMode::Off);
    }

    #[test]
    fn a_typed_default_is_a_flag_and_an_untyped_one_gives_way_to_the_file() {
        let file = config("[solver]\nmodel = \"file-model\"\n[verifiers]\npolicy = \"majority\"\n");
        let env = Environment::default();
        let mut untyped = create_flags(&[]);
        let run = for_new_run(&mut untyped, GivenFlags::default(), &file, &env).unwrap();
        assert_eq!(untyped.model, "file-model");
        assert_eq!(run.settings["verifiers.policy"].source, Source::Config);
        let mut typed = create_flags(&["--model", DEFAULT_MODEL]);
        let given = GivenFlags {
            model: true,
            verification_policy: false,
        };
        let run = for_new_run(&mut typed, given, &file, &env).unwrap();
        assert_eq!(typed.model, DEFAULT_MODEL);
        assert_eq!(run.settings["solver.model"].source, Source::Flag);
    }

    #[test]
    fn a_bad_sandbox_variable_in_the_file_is_refused_by_name() {
        let file = config("[sandbox]\nenv = [\"KEY=value\"]\n");
        let error = for_new_run(
            &mut create_flags(&[]),
            GivenFlags::default(),
            &file,
            &Environment::default(),
        )
        .unwrap_err();
        assert!(error.contains("KEY=value"), "{error}");
    }
}
