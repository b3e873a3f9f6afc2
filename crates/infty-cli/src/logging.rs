//! Diagnostic logs: `tracing` events appended to `$INFTY_HOME/logs/infty.log`.
//!
//! The terminal is for people (progress and one-line errors); the log file is for
//! diagnosing after the fact. `RUST_LOG` sets the level (default: `info` for infty's crates,
//! `warn` for the rest). Logging is best effort: a log file that cannot be opened never
//! stops a command. It must never record a secret (the crates below never log the key), nor
//! prompt or tool text: the content target of the telemetry spans is always off here.
//!
//! Other layers (the OpenTelemetry export) are composed with the file's on one registry,
//! each with its own filter.

use std::fs::OpenOptions;
use std::sync::Mutex;

use camino::{Utf8Path, Utf8PathBuf};
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// A layer to compose with the log file's.
pub(crate) type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// The default filter when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str =
    "warn,infty=info,infty_cli=info,infty_core=info,infty_model=info,infty_store=info";

/// The log file of a home folder.
pub(crate) fn log_path(home: &Utf8Path) -> Utf8PathBuf {
    home.join("logs").join("infty.log")
}

/// Sends `tracing` events to the log file of `home` (when there is one) and to `extra`.
/// Returns why the log file is off, when it is; `extra` is installed either way.
pub(crate) fn init(home: Option<&Utf8Path>, extra: Option<BoxedLayer>) -> Result<(), String> {
    let file = match home {
        Some(home) => file_layer(home).map(Some),
        None => Ok(None),
    };
    let (file, reason) = match file {
        Ok(layer) => (layer, None),
        Err(reason) => (None, Some(reason)),
    };
    let layers: Vec<BoxedLayer> = file.into_iter().chain(extra).collect();
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|error| format!("cannot set up logging: {error}"))?;
    reason.map_or(Ok(()), Err)
}

fn file_layer(home: &Utf8Path) -> Result<BoxedLayer, String> {
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
    // Whatever RUST_LOG says, prompt and tool text never reach the log file.
    let filter = match format!("{}=off", infty_model::telemetry::CONTENT_TARGET).parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    // Events only: the telemetry spans' fields would bury every line (and the spans go to
    // the exporter anyway).
    let filter = filter.and(filter_fn(|meta| !meta.is_span()));
    Ok(tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_filter(filter)
        .boxed())
}
