//! The `infty` command: composes the store, the model client and the orchestrator, and
//! talks to people (progress on stderr, results on stdout, `--json` for programs).
//!
//! Exit codes: 0 success, 1 the run failed or exhausted its budget (or any other error),
//! 2 usage errors, 130 interrupted.

mod args;
mod inspect;
mod provider;
mod run;
mod send;
mod terminal;

use std::process::ExitCode;

use anyhow::Result;
use camino::Utf8PathBuf;
use clap::Parser;

use crate::args::{Cli, Command};

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
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let code = error.downcast_ref::<Coded>().map_or(1, |coded| coded.code);
            terminal::print_error(&error);
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    let runs_root = runs_root(cli.runs_root)?;
    match cli.command {
        Command::Create(args) => run::create(&runs_root, args),
        Command::List(args) => inspect::list(&runs_root, &args),
        Command::Show(args) => inspect::show(&runs_root, &args),
        Command::Resume(args) => run::resume(&runs_root, args),
        Command::Send(args) => send::send(&runs_root, &args),
    }
}

fn runs_root(flag: Option<Utf8PathBuf>) -> Result<Utf8PathBuf> {
    match flag {
        Some(root) => Ok(root),
        None => Ok(infty_store::default_runs_root()?),
    }
}
