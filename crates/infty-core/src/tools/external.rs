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

    /// Stops what the provider started (its servers and their processes) once the run's
    /// drive is over; nothing by default.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::tools::{ToolContext, ToolPolicy, ToolSet};

    /// Offers `ext__echo` to the Solver and `ext__secret` to nobody it is asked about.
    #[derive(Debug)]
    struct Fake;

    fn definition(name: &str) -> ToolDefinition {
        ToolDefinition {
            name: name.to_string(),
            description: "fake".into(),
            parameters: json!({"type": "object"}),
            strict: false,
        }
    }

    impl ToolProvider for Fake {
        fn definitions(&self, role: &str) -> Vec<ToolDefinition> {
            let mut all = vec![definition("ext__secret")];
            if role == "solver" {
                all.push(definition("ext__echo"));
            }
            all
        }

        fn call<'a>(
            &'a self,
            name: &'a str,
            arguments: &'a str,
            budget: usize,
        ) -> BoxFuture<'a, ToolResult> {
            Box::pin(async move { ToolResult::success(format!("{name} {arguments} {budget}")) })
        }
    }

    #[tokio::test]
    async fn the_policy_decides_which_external_tools_a_role_holds() {
        let mut policy = ToolPolicy::director();
        policy.external.insert("ext__echo".into());
        let tools = ToolSet::new(ToolContext::new("/nonexistent"), policy)
            .with_provider(Arc::new(Fake), "solver");
        let names: Vec<String> = tools.definitions().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["read_file", "list_dir", "ext__echo"]);
        assert!(!tools.definitions()[2].strict);

        let echoed = tools.execute("ext__echo", "{}").await;
        assert_eq!(
            echoed.output,
            format!("ext__echo {{}} {}", ToolPolicy::DEFAULT_MAX_OUTPUT_BYTES)
        );
        // Offered by the provider but not allowed by the policy: unknown to this role.
        let refused = tools.execute("ext__secret", "{}").await;
        assert!(!refused.ok);
        assert_eq!(
            refused.output,
            "error: unknown tool `ext__secret`; available tools: read_file, list_dir, ext__echo"
        );
    }
}
