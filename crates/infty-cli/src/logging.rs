//! Diagnostic logs: `tracing` events appended to `$INFTY_HOME/logs/infty.log`.
//!
//! The terminal is for people (progress and one-line errors); the log file is for
//! diagnosing after the fact. `RUST_LOG` sets the level (default: `info` for infty's crates,
//! `warn` for the rest). Logging is best effort: a log file that cannot be opened never
//! stops a command. It must never record a secret (the crates below never log the key).

use std::fs::OpenOptions;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};
use tracing_subscriber::EnvFilter;

/// The default filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str =
    "warn,infty=info,infty_cli=info,infty_core=info,infty_model=info,infty_store=info";

/// The log file of a home folder.
pub fn log_path(home: &Utf8Path) -> Utf8PathBuf {
    home.join("logs").join("infty.log")
}

/// Sends `tracing` events to the log file of `home`. Returns why not, when it cannot.
pub fn init(home: &Utf8Path) -> Result<(), String> {
    let path = log_path(home);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {dir}: {error}"))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| format!("cannot open {path}: {error}"))?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|error| format!("cannot set up logging: {error}"))
}
