//! The `infty` command: composes the store, the model client and the orchestrator, and
//! talks to people (progress on stderr, results on stdout, `--json` for programs).
//!
//! Exit codes (README table): 0 succeeded, 1 the run failed (or any other error), 2 usage
//! errors, 3 budget exhausted or blocked, 75 usage limited (try again later), 130
//! interrupted by Ctrl-C, 143 interrupted by SIGTERM.

mod args;
mod config;
mod fleet;
mod inspect;
mod logging;
mod logs;
mod mcp;
mod output_caps;
mod pipe;
mod provider;
mod run;
mod sandbox;
mod send;
mod settings;
mod telemetry;
mod terminal;
mod ui;
mod window;

use std::process::ExitCode;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser as _};

use crate::args::{Cli, Command};
use crate::settings::GivenFlags;

/// Exit code for usage errors (bad flags, invalid run ids).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a failed run, and for any other error.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for a run that exhausted its budget or is blocked: resumable after a change.
pub const EXIT_STOPPED: u8 = 3;
/// Exit code for a run parked by a usage limit (`EX_TEMPFAIL`: try again later).
pub const EXIT_USAGE_LIMITED: u8 = 75;
/// Exit code for a run interrupted by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;
/// Exit code for a run interrupted by SIGTERM, and for a worker drained by it.
pub const EXIT_TERMINATED: u8 = 143;

/// An error that maps to a specific exit code, carried through `anyhow`.
#[derive(Debug)]
pub struct Coded {
    /// The exit code.
    pub code: u8,
    /// The message.
    pub message: String,
}

impl Coded {
    /// A usage error (exit code 2).
    pub fn usage(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Coded {
            code: EXIT_USAGE,
            message: message.into(),
        })
    }
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

fn main() -> ExitCode {
    // The sandbox helper re-executes this binary (`infty __sandbox ...`): it must run before
    // anything else, while the process has a single thread.
    infty_sandbox::run_helper_if_requested();
    // Children (tools) must not read the driver's environment (the API key) or memory.
    if let Err(error) = infty_sandbox::harden_current_process() {
        eprintln!("error: {error}");
        return ExitCode::from(1);
    }
    pipe::exit_quietly_on_closed_pipe();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let given = given_flags(&matches);
    let home = config::infty_home().ok();
    // Only the commands that drive runs export spans; a broken config file is reported by
    // the command itself.
    let (telemetry, otel_layer) = match &cli.command {
        Command::Create(_) | Command::Resume(_) => {
            let file = home
                .as_deref()
                .and_then(|home| config::load(&config::config_path(home)).ok());
            telemetry::start(file.as_ref()).unzip()
        }
        _ => (None, None),
    };
    // Logging is best effort: without a home folder or a writable log, commands still work.
    if let Err(reason) = logging::init(home.as_deref(), otel_layer)
        && home.is_some()
    {
        eprintln!("warning: logging is off: {reason}");
    }
    if let Some(telemetry) = &telemetry {
        telemetry.log_started();
    }
    tracing::info!(
        command = command_name(&cli.command),
        "infty {}",
        env!("CARGO_PKG_VERSION")
    );
    let code = match dispatch(cli, given) {
        Ok(code) => {
            tracing::info!(code, "done");
            code
        }
        Err(error) => {
            let code = error.downcast_ref::<Coded>().map_or(1, |coded| coded.code);
            tracing::error!(code, "{error:#}");
            terminal::print_error(&error);
            code
        }
    };
    // The last spans leave before the process does, whatever the outcome.
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    ExitCode::from(code)
}

/// Which defaulted `create` flags the user typed (clap fills in defaults otherwise).
fn given_flags(matches: &clap::ArgMatches) -> GivenFlags {
    let create = match matches.subcommand() {
        Some(("create" | "submit", create)) => create,
        _ => return GivenFlags::default(),
    };
    let typed = |id: &str| {
        create
            .value_source(id)
            .is_some_and(|source| source != ValueSource::DefaultValue)
    };
    GivenFlags {
        model: typed("model"),
        verification_policy: typed("verification_policy"),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Create(_) => "create",
        Command::List(_) => "list",
        Command::Show(_) => "show",
        Command::Resume(_) => "resume",
        Command::Send(_) => "send",
        Command::Logs(_) => "logs",
        Command::Config(_) => "config",
        Command::Completions(_) => "completions",
        Command::Submit(_) => "submit",
        Command::Worker(_) => "worker",
        Command::Ui(_) => "ui",
    }
}

fn dispatch(cli: Cli, given: GivenFlags) -> Result<u8> {
    match cli.command {
        Command::Completions(args) => {
            clap_complete::generate(
                args.shell,
                &mut Cli::command(),
                "infty",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Config(args) => {
            let home = config::infty_home()?;
            let file = config::load(&config::config_path(&home))?;
            let env = settings::Environment::current();
            let (root, source) = match &cli.runs_root {
                Some(root) => (root.clone(), settings::Source::Flag),
                None if env.infty_home.is_some() => (home.join("runs"), settings::Source::Env),
                None => (home.join("runs"), settings::Source::Default),
            };
            let mut shown = settings::home_settings(&env, &home, (&root, source));
            if let Some(run_id) = &args.run {
                infty_store::validate_run_id(run_id)
                    .map_err(|error| Coded::usage(error.to_string()))?;
                // What a `resume` without flags would use, resolved as `resume` resolves it.
                let no_flags = match Cli::try_parse_from(["infty", "resume", run_id.as_str()])
                    .map(|cli| cli.command)
                {
                    Ok(Command::Resume(args)) => args,
                    _ => anyhow::bail!("cannot read resume's built-in defaults"),
                };
                shown.extend(run::plan_resume(&root, &no_flags, &file)?.settings);
                print!("{}", settings::render(&shown, args.json)?);
                return Ok(0);
            }
            // What a `create` without flags would use, resolved as `create` resolves it.
            let mut no_flags = match Cli::try_parse_from(["infty", "create", "--objective", "-"])
                .map(|cli| cli.command)
            {
                Ok(Command::Create(args)) => args,
                _ => anyhow::bail!("cannot read create's built-in defaults"),
            };
            let new_run = settings::for_new_run(&mut no_flags, GivenFlags::default(), &file, &env)
                .map_err(Coded::usage)?;
            shown.extend(new_run.settings);
            print!("{}", settings::render(&shown, args.json)?);
            Ok(0)
        }
        Command::Create(mut args) => {
            let runs_root = runs_root(cli.runs_root)?;
            let home = config::infty_home()?;
            let file = config::load(&config::config_path(&home))?;
            // An existing run keeps what it recorded: only the flags typed now apply.
            if run::exists(&runs_root, &args)? {
                terminal::configure(terminal::TerminalOptions {
                    stream: args.stream,
                });
                return run::continue_existing(&runs_root, args, &file);
            }
            let new_run = new_run_settings(&mut args, given, &file)?;
            terminal::configure(terminal::TerminalOptions {
                stream: args.stream,
            });
            run::create(&runs_root, args, &file, new_run.sandbox)
        }
        Command::Resume(args) => {
            let runs_root = runs_root(cli.runs_root)?;
            let file = config::load(&config::config_path(&config::infty_home()?))?;
            terminal::configure(terminal::TerminalOptions {
                stream: args.stream,
            });
            run::resume(&runs_root, args, &file)
        }
        Command::List(args) => inspect::list(&runs_root(cli.runs_root)?, &args),
        Command::Show(args) => inspect::show(&runs_root(cli.runs_root)?, &args),
        Command::Send(args) => send::send(&runs_root(cli.runs_root)?, &args),
        Command::Logs(args) => logs::logs(&runs_root(cli.runs_root)?, &args),
        Command::Submit(mut args) => {
            let runs_root = runs_root(cli.runs_root)?;
            let home = config::infty_home()?;
            let file = config::load(&config::config_path(&home))?;
            let new_run = new_run_settings(&mut args.create, given, &file)?;
            fleet::submit(&runs_root, args, &file, new_run.sandbox)
        }
        Command::Worker(args) => {
            let runs_root = runs_root(cli.runs_root)?;
            let home = config::infty_home()?;
            let file = config::load(&config::config_path(&home))?;
            fleet::worker(&runs_root, args, &file.queue)
        }
        Command::Ui(args) => ui::ui(&runs_root(cli.runs_root)?, &args),
    }
}

/// Resolves a new run's settings from its flags, the environment and the config file,
/// and writes them, with their sources, to the log file.
fn new_run_settings(
    args: &mut args::CreateArgs,
    given: GivenFlags,
    file: &config::ConfigFile,
) -> Result<settings::NewRun> {
    let env = settings::Environment::current();
    let new_run = settings::for_new_run(args, given, file, &env).map_err(Coded::usage)?;
    match serde_json::to_string(&new_run.settings) {
        Ok(json) => tracing::info!(settings = %json, "the settings of a new run"),
        Err(error) => tracing::warn!(%error, "cannot log the settings of a new run"),
    }
    Ok(new_run)
}

/// The runs folder, canonical: the file tools compare canonical paths, so a root given as
/// `a/../runs` (or through a symlink) must be resolved once, here, for confinement to
/// recognise the run folders under it.
fn runs_root(flag: Option<Utf8PathBuf>) -> Result<Utf8PathBuf> {
    let root = match flag {
        Some(root) => root,
        None => infty_store::default_runs_root()?,
    };
    canonical_root(&root)
}

/// `path` made absolute with its existing part canonicalised; the part that does not exist
/// yet (a runs folder created by the first run) is appended with `.` and `..` resolved,
/// which is safe there because a missing component cannot be a symlink.
fn canonical_root(path: &camino::Utf8Path) -> Result<Utf8PathBuf> {
    use camino::Utf8Component;
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|error| anyhow::anyhow!("cannot read the current folder: {error}"))?;
        Utf8PathBuf::from_path_buf(cwd)
            .map_err(|cwd| anyhow::anyhow!("the current folder {} is not UTF-8", cwd.display()))?
            .join(path)
    };
    let mut existing = absolute.as_path();
    let mut missing = Vec::new();
    let base = loop {
        match existing.canonicalize_utf8() {
            Ok(canonical) => break canonical,
            Err(_) => match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    missing.push(name.to_owned());
                    existing = parent;
                }
                // `..` or `.` as the last component: take the parent lexically.
                (Some(parent), None) => {
                    missing.push("..".to_owned());
                    existing = parent;
                }
                (None, _) => break existing.to_path_buf(),
            },
        }
    };
    let mut root = base;
    for component in missing.iter().rev() {
        match Utf8Path::new(component).components().next() {
            Some(Utf8Component::ParentDir) => {
                root.pop();
            }
            Some(Utf8Component::CurDir) | None => {}
            Some(_) => root.push(component),
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_root_resolves_dot_dot_in_existing_and_missing_parts() {
        let temp = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(temp.path().canonicalize().unwrap()).unwrap();
        std::fs::create_dir_all(base.join("a/b")).unwrap();
        let cases = [
            ("a/b/../runs", "a/runs"),
            ("a/./b", "a/b"),
            ("missing/../runs", "runs"),
            ("missing/deeper/../../a/b", "a/b"),
            ("a/b/new", "a/b/new"),
        ];
        for (given, expected) in cases {
            assert_eq!(
                canonical_root(&base.join(given)).unwrap(),
                base.join(expected),
                "{given}"
            );
        }
    }
}
