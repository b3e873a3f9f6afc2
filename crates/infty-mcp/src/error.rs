//! Why MCP servers could not be set up. Once a run is going nothing here reaches it: call
//! failures are tool results for the model.

/// A server could not be configured or started; `create` and `resume` stop with this line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The server's name cannot be used as a tool prefix.
    #[error("mcp server name {name:?} is invalid: {rule}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What a name must look like.
        rule: &'static str,
    },
    /// Two servers have the same name.
    #[error("mcp server {name} is configured twice")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The record names neither a command nor a URL, or both.
    #[error("mcp server {name}: {problem}")]
    Invalid {
        /// The server.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A variable the server needs (a header value, a pass-through variable) is not set.
    #[error("mcp server {name}: environment variable {variable} is not set")]
    MissingVariable {
        /// The server.
        name: String,
        /// The variable.
        variable: String,
    },
    /// The server did not start, or did not complete the protocol's handshake or listing.
    #[error("mcp server {name} could not start: {reason}")]
    StartFailed {
        /// The server.
        name: String,
        /// What went wrong, in one line.
        reason: String,
    },
}
