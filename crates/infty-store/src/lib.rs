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
//! Beside the run folders, `<runs_root>/.keys/` holds each run's sealing key and record
//! head (`RecordKey`, `RunStore::check_record`): every line of the journal and rollouts is
//! sealed with a keyed hash chain, so a changed record is told apart from a torn one.
//! `Folder` opens files below a folder in one step without following links, for the file
//! tools, and is the one atomic replace everything here uses.
//!
//! Crash rules: `run.json` is always the old or the new version, never a mix; a journal or
//! rollout may end in a torn line, which readers skip and writers cut off, and any other
//! damage is reported with its line number; a lock dies with its process.
//!
//! Architecture invariant: this crate makes synchronous file-system calls only (`std::fs`,
//! and `rustix` for `openat2`, `renameat` and `getrandom`). It depends on no other infty
//! crate, runs no async runtime, makes no network call, and never stores a secret
//! (`run.json` holds the *name* of the API key variable, never its value; a run's key is
//! kept outside its folder and never printed).

mod browse;
mod catalog;
mod deliverable;
mod durable;
mod error;
mod folder;
mod ids;
mod inbox;
mod journal;
mod journal_view;
mod jsonl;
mod listing;
mod lock;
mod mcp;
mod metadata;
mod role;
mod run;
mod sandbox;
mod seal;

pub use browse::{BrowseError, Browsed, FileView, FolderEntry, browse};
pub use catalog::{CatalogChanges, RunCatalog};
pub use deliverable::{DeliverableFingerprint, FileFingerprint};
pub use durable::{DurableWrite, write_atomic};
pub use error::{DeliverableError, StoreError};
pub use folder::{Entry, EntryKind, Folder, OpenError};
pub use ids::{MAX_ROLE_LEN, MAX_RUN_ID_LEN, generate_run_id, validate_run_id};
pub use inbox::{Inbox, InboxMessage};
pub use journal::{
    Journal, JournalCursor, JournalEntry, JournalReader, read_journal, read_journal_after,
};
pub use journal_view::{JournalLine, JournalPage, JournalTail, end_cursor, read_journal_page};
pub use jsonl::{JsonlReader, JsonlWriter, read_jsonl};
pub use listing::{RunListing, list_runs};
pub use lock::{LockState, RunLock};
pub use mcp::{McpSandbox, McpServerRecord};
pub use metadata::{
    Budgets, CheckDir, CheckSpec, ModelPrice, OutcomeRecord, ProviderRecord, RoleRecord,
    RunMetadata, RunOptions, RunStatus, RunSummary, SCHEMA_VERSION, StallPolicy, Timeouts,
    TokenUsage, TurnToolChoice, VerificationPolicy,
};
pub use role::Role;
pub use run::{
    EVENTS_JSONL, INBOX_DIR, PROTECTED_FILES, PROTECTED_FOLDERS, ROLLOUTS_DIR, RUN_JSON, RUN_LOCK,
    RUN_SUBDIRS, RunInit, RunStore, default_runs_root, runs_root_from,
};
pub use sandbox::{SandboxMode, SandboxSettings};
pub use seal::{BrokenLine, FileCheck, FileState, KEYS_DIR, RecordCheck, RecordKey, SEAL_KEY};
