//! The `update_plan` tool: the role's plan, saved to `memory/plan.json` in the run folder
//! and handed back to the session as structured progress.
//!
//! The plan file is written through the same confinement as the file tools, so a `memory`
//! link planted by a command cannot carry the write outside the run folder. This module
//! never keeps plan state of its own: the latest call's plan is the plan.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::confine::{self, Access};
use super::files::write_target;
use super::{ToolContext, ToolError, ToolResult};

/// Where the plan is saved, relative to the run folder.
pub const PLAN_FILE: &str = "memory/plan.json";

/// A role's plan: what it intends to do, step by step, and how far it got.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Why the plan is what it is (or changed), when the role said.
    pub explanation: Option<String>,
    /// The steps, in order.
    pub steps: Vec<PlanStep>,
}

/// One step of a [`Plan`].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// What the step does.
    pub step: String,
    /// How far it got.
    pub status: StepStatus,
}

/// The state of a [`PlanStep`].
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Being worked on.
    InProgress,
    /// Done.
    Completed,
}

impl Plan {
    /// How many steps are completed.
    pub fn completed(&self) -> usize {
        self.steps
            .iter()
            .filter(|step| step.status == StepStatus::Completed)
            .count()
    }

    /// The plan as a checklist: `[x]` done, `[>]` in progress, `[ ]` pending.
    pub fn checklist(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let mark = match step.status {
                StepStatus::Completed => "[x]",
                StepStatus::InProgress => "[>]",
                StepStatus::Pending => "[ ]",
            };
            let _ = writeln!(out, "{mark} {}", step.step);
        }
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdatePlanArgs {
    #[serde(default)]
    explanation: Option<String>,
    plan: Vec<PlanStep>,
}

pub(crate) fn update_plan(
    context: &ToolContext,
    args: UpdatePlanArgs,
) -> Result<ToolResult, ToolError> {
    let mut steps = Vec::with_capacity(args.plan.len());
    for (index, step) in args.plan.into_iter().enumerate() {
        let text = step.step.trim();
        if text.is_empty() {
            return Err(ToolError::PlanInvalid {
                problem: format!("step {} is blank; say what the step does", index + 1),
            });
        }
        steps.push(PlanStep {
            step: text.to_owned(),
            status: step.status,
        });
    }
    let explanation = args
        .explanation
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let plan = Plan { explanation, steps };

    let target = context.run_dir.join(PLAN_FILE);
    let resolved = confine::resolve(context, target.as_str(), Access::Write)?;
    let mut json = serde_json::to_string_pretty(&plan).map_err(|error| ToolError::Io {
        action: "encode",
        path: PLAN_FILE.to_owned(),
        source: std::io::Error::other(error),
    })?;
    json.push('\n');
    write_target(&resolved, json.as_bytes())?;

    let output = format!(
        "plan saved to {PLAN_FILE} ({} of {} steps completed)\n{}",
        plan.completed(),
        plan.steps.len(),
        plan.checklist()
    );
    Ok(ToolResult {
        output,
        ok: true,
        plan: Some(plan),
    })
}
