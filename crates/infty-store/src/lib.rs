//! The run folder of infty (DESIGN §3.2): the product's memory, made hard to corrupt and
//! quick to read.
//!
//! ```text
//! <runs_root>/<run_id>/
//!   run.json        metadata, replaced atomically            RunStore, RunMetadata
//!   events.jsonl    append-only event journal                 Journal, read_journal
//!   rollouts/       each role's conversation, item by item    JsonlWriter, read_jsonl
//!   inbox/          messages queued by `infty send`           Inbox
//!   run.lock        held by the process driving the run       RunLock
//!   artifacts/ memory/ index/ deliverable/   the Solver's space
//! ```
//!
//! Crash rules: `run.json` is always the old or the new version, never a mix; a journal or
//! rollout may end in a torn line, which readers skip and writers cut off, and any other
//! damage is reported with its line number; a lock dies with its process.
//!
//! Architecture invariant: this crate is synchronous `std::fs` only. It depends on no other
//! infty crate, runs no async runtime, makes no network call, and never stores a secret
//! (`run.json` holds the *name* of the API key variable, never its value).

mod deliverable;
mod durable;
mod error;
mod ids;
mod inbox;
mod journal;
mod jsonl;
mod listing;
mod lock;
mod metadata;
mod run;
mod sandbox;

pub use durable::{DurableWrite, write_atomic};
pub use error::{DeliverableError, StoreError};
pub use ids::{MAX_ROLE_LEN, MAX_RUN_ID_LEN, generate_run_id, validate_role, validate_run_id};
pub use inbox::{Inbox, InboxMessage};
pub use journal::{
    Journal, JournalCursor, JournalEntry, JournalReader, read_journal, read_journal_after,
};
pub use jsonl::{JsonlReader, JsonlWriter, read_jsonl};
pub use listing::{RunListing, list_runs};
pub use lock::RunLock;
pub use metadata::{
    Budgets, OutcomeRecord, ProviderRecord, RoleRecord, RunMetadata, RunOptions, RunStatus,
    RunSummary, SCHEMA_VERSION, Timeouts, TokenUsage, VerificationPolicy,
};
pub use run::{
    EVENTS_JSONL, RUN_JSON, RUN_LOCK, RUN_SUBDIRS, RunInit, RunStore, default_runs_root,
    runs_root_from,
};
pub use sandbox::{SandboxMode, SandboxSettings};
