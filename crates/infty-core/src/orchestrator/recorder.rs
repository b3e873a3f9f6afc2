//! The recorder: journals the notes of the sessions' events and reports their progress.

use std::sync::{Arc, Mutex, MutexGuard};

use infty_model::StreamEvent;
use infty_store::{Journal, Role, StoreError};

use crate::events::{CompactionCause, Note, RunEvent};
use crate::progress::{Progress, ProgressReporter};
use crate::session::SessionObserver;
use crate::tools::ToolResult;
use crate::work::WorkLog;

/// Journals notes and reports progress for the sessions' events.
pub(super) struct Recorder {
    pub(super) journal: Mutex<Journal>,
    pub(super) progress: Arc<dyn ProgressReporter>,
    pub(super) journal_error: Mutex<Option<StoreError>>,
    /// The Solver's tool calls of the turn in progress, for its work fingerprint.
    pub(super) solver_work: Mutex<WorkLog>,
}

impl Recorder {
    pub(super) fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn append(&self, event: &RunEvent, durable: bool) -> Result<(), StoreError> {
        self.journal().append(event, durable).map(|_| ())
    }

    /// Journals a note from inside a session callback, where an error cannot be returned:
    /// it is kept and surfaced at the next step.
    pub(super) fn note(&self, note: Note) {
        self.progress.report(&Progress::Noted(&note));
        if let Err(error) = self.append(&RunEvent::Note(note), false) {
            let mut slot = self
                .journal_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slot.get_or_insert(error);
        }
    }

    pub(super) fn take_solver_work(&self) -> WorkLog {
        std::mem::take(
            &mut *self
                .solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    pub(super) fn take_error(&self) -> Option<StoreError> {
        self.journal_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl SessionObserver for Recorder {
    fn stream_event(&self, role: &Role, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(delta) => {
                self.progress.report(&Progress::TextDelta {
                    role: role.as_str(),
                    delta,
                });
            }
            StreamEvent::Retrying {
                attempt,
                max,
                delay,
                reason,
            } => {
                self.progress.report(&Progress::ModelRetry {
                    role: role.as_str(),
                    attempt: *attempt,
                    max: *max,
                    delay: *delay,
                    reason,
                });
                self.note(Note::ModelRetry {
                    role: role.clone(),
                    attempt: *attempt,
                    reason: reason.clone(),
                });
            }
            _ => {}
        }
    }

    fn output_capped(&self, role: &Role, max_output_tokens: u32) {
        self.note(Note::OutputCapped {
            role: role.clone(),
            max_output_tokens,
        });
    }

    fn tool_started(&self, role: &Role, call_id: &str, tool: &str, arguments: &str) {
        if *role == Role::Solver {
            // The arguments are hashed with the output when the call finishes.
            self.solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .call(tool, arguments);
        }
        self.progress.report(&Progress::ToolCallStarted {
            role: role.as_str(),
            tool,
            arguments,
        });
        self.note(Note::ToolCallStarted {
            role: role.clone(),
            call_id: call_id.to_string(),
            tool: tool.to_string(),
        });
    }

    fn tool_finished(&self, role: &Role, call_id: &str, tool: &str, result: &ToolResult) {
        if *role == Role::Solver {
            self.solver_work
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .output(&result.output);
        }
        self.progress.report(&Progress::ToolCallFinished {
            role: role.as_str(),
            tool,
            ok: result.ok,
            output: &result.output,
        });
        if let Some(plan) = &result.plan {
            self.progress.report(&Progress::PlanUpdated {
                role: role.as_str(),
                plan,
            });
        }
        self.note(Note::ToolCallFinished {
            role: role.clone(),
            call_id: call_id.to_string(),
            tool: tool.to_string(),
            ok: result.ok,
        });
    }

    fn compacted(
        &self,
        role: &Role,
        prompt_tokens: u64,
        kept_items: usize,
        cause: CompactionCause,
    ) {
        self.note(Note::Compacted {
            role: role.clone(),
            prompt_tokens,
            kept_items,
            cause,
        });
    }
}
