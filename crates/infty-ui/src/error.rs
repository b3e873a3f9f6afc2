//! The dashboard's error type: what can stop `infty ui` from serving.
//!
//! Errors of single requests never reach here: they become an HTTP status with an escaped
//! message (see `page::Failure`). This module must never hold a token in a message.

use std::net::SocketAddr;

/// Why the dashboard cannot start or keep serving.
#[derive(thiserror::Error, Debug)]
pub enum UiError {
    /// The port is taken or not allowed; pick another with `--port`.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The random access token could not be drawn from the operating system.
    #[error("cannot draw a random access token: {0}")]
    Random(String),
    /// The server stopped on an IO error.
    #[error("the dashboard stopped: {0}")]
    Serve(std::io::Error),
}
