//! Tools that come from outside infty, such as the tools of Model Context Protocol servers:
//! the one seam through which they join a role's tool set.
//!
//! A [`ToolProvider`] lists definitions per role and runs calls by the name the model sees.
//! The tool set offers a role only the external tools its [`super::ToolPolicy`] allows, and
//! sends every call through the same journaling and at-most-once rules as the built-in tools.
//! A provider must never fail the session: like the built-in tools, every problem (server
//! down, timeout, bad arguments) is a [`ToolResult`] with `ok == false` for the model.

use std::fmt;

use futures::future::BoxFuture;

use super::{ToolDefinition, ToolResult};

/// A source of tools other than infty's own.
pub trait ToolProvider: Send + Sync + fmt::Debug {
    /// The tools `role` may use, by the names the model calls them by (never the name of a
    /// built-in tool).
    fn definitions(&self, role: &str) -> Vec<ToolDefinition>;

    /// Runs the tool `name` with the model's raw JSON `arguments`; the output the model reads
    /// is cut to `output_budget` bytes the way the built-in tools' output is.
    fn call<'a>(
        &'a self,
        name: &'a str,
        arguments: &'a str,
        output_budget: usize,
    ) -> BoxFuture<'a, ToolResult>;
}
