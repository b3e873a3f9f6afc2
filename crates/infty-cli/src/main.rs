//! The `infty` command: composes the store, the model client and the orchestrator, and
//! talks to people (progress on stderr, results on stdout, `--json` for programs).
//!
//! Exit codes: 0 success, 1 the run failed or exhausted its budget (or any other error),
//! 2 usage errors, 130 interrupted.

mod args;
mod config;
mod inspect;
mod logging;
mod logs;
mod provider;
mod run;
mod sandbox;
mod send;
mod terminal;

use std::process::ExitCode;

use anyhow::Result;
use camino::Utf8PathBuf;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};
use crate::config::GivenFlags;

/// Exit code for usage errors (bad flags, invalid run ids).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for an interrupted run.
pub const EXIT_INTERRUPTED: u8 = 130;

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
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let given = given_flags(&matches);
    // Logging is best effort: without a home folder or a writable log, commands still work.
    if let Ok(home) = config::infty_home()
        && let Err(reason) = logging::init(&home)
    {
        eprintln!("warning: logging is off: {reason}");
    }
    tracing::info!(
        command = command_name(&cli.command),
        "infty {}",
        env!("CARGO_PKG_VERSION")
    );
    match dispatch(cli, given) {
        Ok(code) => {
            tracing::info!(code, "done");
            ExitCode::from(code)
        }
        Err(error) => {
            let code = error.downcast_ref::<Coded>().map_or(1, |coded| coded.code);
            tracing::error!(code, "{error:#}");
            terminal::print_error(&error);
            ExitCode::from(code)
        }
    }
}

/// Which defaulted `create` flags the user typed (clap fills in defaults otherwise).
fn given_flags(matches: &clap::ArgMatches) -> GivenFlags {
    let Some(("create", create)) = matches.subcommand() else {
        return GivenFlags::default();
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
            let env = config::Environment::current();
            let (root, source) = match &cli.runs_root {
                Some(root) => (root.clone(), config::Source::Flag),
                None if env.infty_home.is_some() => (home.join("runs"), config::Source::Env),
                None => (home.join("runs"), config::Source::Default),
            };
            let settings = config::effective(&file, &env, &home, (&root, source));
            print!("{}", config::render(&settings, args.json)?);
            Ok(0)
        }
        Command::Create(mut args) => {
            let runs_root = runs_root(cli.runs_root)?;
            let home = config::infty_home()?;
            let file = config::load(&config::config_path(&home))?;
            let base_url_env = std::env::var(provider::BASE_URL_ENV).ok();
            config::apply_to_create(&mut args, given, &file, base_url_env.as_deref());
            let sandbox =
                sandbox::for_create(&args.sandbox, &file.sandbox).map_err(Coded::usage)?;
            terminal::configure(terminal::TerminalOptions {
                stream: args.stream,
            });
            run::create(&runs_root, args, sandbox)
        }
        Command::Resume(args) => {
            let runs_root = runs_root(cli.runs_root)?;
            terminal::configure(terminal::TerminalOptions {
                stream: args.stream,
            });
            run::resume(&runs_root, args)
        }
        Command::List(args) => inspect::list(&runs_root(cli.runs_root)?, &args),
        Command::Show(args) => inspect::show(&runs_root(cli.runs_root)?, &args),
        Command::Send(args) => send::send(&runs_root(cli.runs_root)?, &args),
        Command::Logs(args) => logs::logs(&runs_root(cli.runs_root)?, &args),
    }
}

fn runs_root(flag: Option<Utf8PathBuf>) -> Result<Utf8PathBuf> {
    match flag {
        Some(root) => Ok(root),
        None => Ok(infty_store::default_runs_root()?),
    }
}
