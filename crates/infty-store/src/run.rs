//! [`RunStore`]: one run folder (DESIGN §3.2), its `run.json`, and the doors to its
//! journal, rollouts, inbox and lock.
//!
//! `run.json` is only ever replaced atomically, and the in-memory copy changes only once
//! the file did, so the two never disagree. This module must never store a secret and
//! never write outside the run folder.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::time::Duration;

use camino::{Utf8Component, Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::deliverable;
use crate::durable::{self, write_atomic};
use crate::folder::Durability;
use crate::ids::{generate_run_id, validate_role, validate_run_id};
use crate::inbox::Inbox;
use crate::journal::Journal;
use crate::jsonl::JsonlWriter;
use crate::lock::RunLock;
use crate::metadata::{RoleRecord, RunMetadata, RunOptions, RunStatus, SCHEMA_VERSION, TokenUsage};
use crate::seal::{self, RecordCheck, RecordKey};
use crate::{DeliverableError, StoreError};

/// `run.json`.
pub const RUN_JSON: &str = "run.json";
/// `events.jsonl`.
pub const EVENTS_JSONL: &str = "events.jsonl";
/// `run.lock`.
pub const RUN_LOCK: &str = "run.lock";
/// The folder of each role's rollouts.
pub const ROLLOUTS_DIR: &str = "rollouts";
/// The folder of queued operator messages.
pub const INBOX_DIR: &str = "inbox";
/// Run-folder files that belong to the orchestrator: no tool ever writes them.
pub const PROTECTED_FILES: [&str; 3] = [RUN_JSON, EVENTS_JSONL, RUN_LOCK];
/// Run-folder folders that belong to the orchestrator: no tool ever writes into them.
pub const PROTECTED_FOLDERS: [&str; 2] = [ROLLOUTS_DIR, INBOX_DIR];
/// The folders every run has.
pub const RUN_SUBDIRS: [&str; 6] = [
    "rollouts",
    "inbox",
    "artifacts",
    "memory",
    "index",
    "deliverable",
];

/// Age after which an inbox temp file is taken to be left by a crashed `infty send`.
const STALE_INBOX_TEMP_AGE: Duration = Duration::from_secs(3600);

/// How many fresh ids [`RunStore::create`] tries before giving up on collisions.
const CREATE_ATTEMPTS: usize = 16;

/// What a new run starts with.
#[derive(Debug, Clone, Default)]
pub struct RunInit {
    /// The objective.
    pub objective: String,
    /// The role sessions (names must be `[a-z0-9_-]{1,64}` and distinct).
    pub roles: Vec<RoleRecord>,
    /// Settings a resume must reuse.
    pub options: RunOptions,
}

/// One run folder and its metadata.
#[derive(Debug, Clone)]
pub struct RunStore {
    dir: Utf8PathBuf,
    meta: RunMetadata,
}

impl RunStore {
    /// Creates `<runs_root>/<run_id>/` with `run.json`, an empty `events.jsonl`, and the
    /// folders `rollouts/ inbox/ artifacts/ memory/ index/ deliverable/`.
    ///
    /// Refuses a run id whose folder already has a `run.json`. With `run_id = None` a fresh
    /// id is generated, and a collision (another process, same second, same suffix) retries
    /// with a new one.
    pub fn create(
        runs_root: &Utf8Path,
        run_id: Option<&str>,
        init: RunInit,
    ) -> Result<RunStore, StoreError> {
        if let Some(id) = run_id {
            validate_run_id(id)?;
        }
        init.options.check_no_secrets()?;
        let mut seen = Vec::new();
        for role in &init.roles {
            if seen.contains(&role.role.as_str()) {
                return Err(StoreError::InvalidRole {
                    role: role.role.to_string(),
                    reason: "the run already has a role with this name",
                });
            }
            seen.push(role.role.as_str());
        }
        fs::create_dir_all(runs_root).map_err(|e| StoreError::io("create folder", runs_root, e))?;
        let (run_id, dir) = match run_id {
            Some(id) => {
                let dir = runs_root.join(id);
                match fs::create_dir(&dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        // A folder without run.json is an unfinished creation (or one the
                        // user prepared): completing it is safe.
                        if dir.join(RUN_JSON).exists() {
                            return Err(StoreError::AlreadyExists {
                                run_id: id.to_owned(),
                                path: dir,
                            });
                        }
                    }
                    Err(e) => return Err(StoreError::io("create folder", &dir, e)),
                }
                (id.to_owned(), dir)
            }
            None => create_fresh_dir(runs_root)?,
        };
        let now = OffsetDateTime::now_utc();
        let meta = RunMetadata {
            schema_version: SCHEMA_VERSION,
            run_id,
            objective: init.objective,
            status: RunStatus::Created,
            created_at: now,
            updated_at: now,
            roles: init.roles,
            options: init.options,
            usage: BTreeMap::new(),
            outcome: None,
            error: None,
            cost_usd: BTreeMap::new(),
            resume_after: None,
        };
        for sub in RUN_SUBDIRS {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|e| StoreError::io("create folder", &path, e))?;
        }
        // Before any line is written, so that every line of a new run is sealed.
        RecordKey::load_or_create(&dir)?;
        let events = dir.join(EVENTS_JSONL);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&events)
            .map_err(|e| StoreError::io("create", &events, e))?;
        // run.json comes last: a folder with run.json is a complete run. Created only if
        // absent, so two processes racing for the same id cannot both win.
        let path = dir.join(RUN_JSON);
        if !durable::create_atomic(&path, &render_metadata(&meta, &path)?)? {
            return Err(StoreError::AlreadyExists {
                run_id: meta.run_id,
                path: dir,
            });
        }
        durable::sync_dir(runs_root)?;
        Ok(RunStore { dir, meta })
    }

    /// Opens the run folder `run_dir`: reads `run.json` and checks its schema version.
    /// Leftover temp files are ignored here and removed by [`RunStore::lock`].
    pub fn open(run_dir: &Utf8Path) -> Result<RunStore, StoreError> {
        let meta = read_metadata(run_dir)?;
        Ok(RunStore {
            dir: run_dir.to_owned(),
            meta,
        })
    }

    /// Opens the run `run_id` under `runs_root`.
    pub fn open_id(runs_root: &Utf8Path, run_id: &str) -> Result<RunStore, StoreError> {
        validate_run_id(run_id)?;
        let dir = runs_root.join(run_id);
        match RunStore::open(&dir) {
            Err(StoreError::NotARun { .. }) => Err(StoreError::NotFound {
                run_id: run_id.to_owned(),
                root: runs_root.to_owned(),
            }),
            other => other,
        }
    }

    /// The run folder.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.meta.run_id
    }

    /// The metadata as last written.
    pub fn metadata(&self) -> &RunMetadata {
        &self.meta
    }

    /// Re-reads `run.json`, for a reader following a run another process drives.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.meta = read_metadata(&self.dir)?;
        Ok(())
    }

    /// Applies `f` to a copy of the metadata, bumps `updated_at`, and writes `run.json`
    /// atomically; the copy in memory changes only if the write succeeded. `run_id`,
    /// `schema_version` and `created_at` cannot be changed this way. A change that leaves
    /// the record as it was writes nothing (no rewrite, no fsync, `updated_at` stays):
    /// `run.json` changes only when what a reader is shown changes.
    pub fn update(&mut self, f: impl FnOnce(&mut RunMetadata)) -> Result<(), StoreError> {
        self.update_syncing(f, Durability::Durable)
    }

    fn update_syncing(
        &mut self,
        f: impl FnOnce(&mut RunMetadata),
        durability: Durability,
    ) -> Result<(), StoreError> {
        let mut next = self.meta.clone();
        f(&mut next);
        next.run_id.clone_from(&self.meta.run_id);
        next.schema_version = SCHEMA_VERSION;
        next.created_at = self.meta.created_at;
        if next == self.meta {
            return Ok(());
        }
        // Never backwards, even if the clock is.
        next.updated_at = OffsetDateTime::now_utc().max(self.meta.updated_at);
        next.check_no_secrets()?;
        let path = self.dir.join(RUN_JSON);
        durable::write_atomic_via(&path, &render_metadata(&next, &path)?, durability, |file| {
            file
        })?;
        self.meta = next;
        Ok(())
    }

    /// Moves the run to `status` if the step is allowed (see [`RunStatus::can_become`]);
    /// the same status is a no-op. Going back to `running` clears the previous `error`.
    pub fn set_status(&mut self, status: RunStatus) -> Result<(), StoreError> {
        self.set_status_with(status, |_| {})
    }

    /// [`RunStore::set_status`] and `f` (the error, the outcome that go with the status) in
    /// one write of `run.json`, so a run's ending costs one rewrite, not two.
    pub fn set_status_with(
        &mut self,
        status: RunStatus,
        f: impl FnOnce(&mut RunMetadata),
    ) -> Result<(), StoreError> {
        let from = self.meta.status;
        if from != status && !from.can_become(status) {
            return Err(StoreError::InvalidTransition {
                run_id: self.meta.run_id.clone(),
                from,
                to: status,
            });
        }
        // A crash may undo a start from a status that the next resume or delivery drives
        // anyway (the lock, not run.json, tells whether a run is driven): that rewrite
        // syncs the file, not its rename.
        let durability = if status == RunStatus::Running
            && matches!(
                from,
                RunStatus::Created
                    | RunStatus::Queued
                    | RunStatus::Running
                    | RunStatus::Interrupted
                    | RunStatus::UsageLimited
            ) {
            Durability::Whole
        } else {
            Durability::Durable
        };
        self.update_syncing(
            |m| {
                f(m);
                m.status = status;
                if status == RunStatus::Running && from != RunStatus::Running {
                    m.error = None;
                    m.resume_after = None;
                }
            },
            durability,
        )
    }

    /// Adds `usage` to the tokens recorded for `role` (see [`RunStore::add_usage_and_cost`]).
    pub fn add_usage(&mut self, role: &str, usage: TokenUsage) -> Result<(), StoreError> {
        self.add_usage_and_cost(&[(role, usage, 0.0)])
    }

    /// Adds token usage, and its cost in US dollars, to what is recorded for each role, in
    /// one rewrite of `run.json`. That usage copies the journal's `usage_recorded` inputs:
    /// the driver adds it once they are durable, and catches it up on resume
    /// ([`RunStore::catch_up_usage`]). So this rewrite leaves the folder unsynced (one fsync,
    /// not two): a crash leaves the old totals or the new ones, each in a whole file.
    pub fn add_usage_and_cost(
        &mut self,
        additions: &[(&str, TokenUsage, f64)],
    ) -> Result<(), StoreError> {
        self.update_syncing(
            |m| {
                for (role, usage, cost_usd) in additions {
                    *m.usage.entry((*role).to_owned()).or_default() += *usage;
                    if *cost_usd > 0.0 {
                        *m.cost_usd.entry((*role).to_owned()).or_default() += *cost_usd;
                    }
                }
            },
            Durability::Whole,
        )
    }

    /// Raises each role's recorded tokens and cost to what the journal holds where it holds
    /// more (a crash came between the journal's write and `run.json`'s), in one durable
    /// write; writes nothing when they agree. `journaled` maps a role to the sums of its
    /// `usage_recorded` inputs.
    pub fn catch_up_usage(
        &mut self,
        journaled: &BTreeMap<String, (TokenUsage, f64)>,
    ) -> Result<(), StoreError> {
        self.update(|m| {
            for (role, (usage, cost_usd)) in journaled {
                let recorded = m.usage.get(role).map_or(0, |u| u.total_tokens);
                if usage.total_tokens > recorded {
                    m.usage.insert(role.clone(), *usage);
                }
                if *cost_usd > m.cost_usd.get(role).copied().unwrap_or(0.0) {
                    m.cost_usd.insert(role.clone(), *cost_usd);
                }
            }
        })
    }

    /// Resolves a deliverable path (relative to the run folder, or absolute) to its
    /// canonical absolute path. It must exist, be a file or a folder, and stay inside the
    /// run folder with symlinks followed.
    pub fn resolve_deliverable(&self, candidate: &str) -> Result<Utf8PathBuf, DeliverableError> {
        deliverable::resolve(&self.dir, candidate)
    }

    /// Fingerprints a deliverable [`RunStore::resolve_deliverable`] accepted: the path, size
    /// and SHA-256 of each of its files. Refuses (naming the path) a symbolic link inside it
    /// that leads out of the run folder, and a file with more than one name.
    pub fn fingerprint_deliverable(
        &self,
        resolved: &Utf8Path,
        candidate: &str,
    ) -> Result<deliverable::DeliverableFingerprint, DeliverableError> {
        deliverable::fingerprint(&self.dir, resolved, candidate)
    }

    /// The part of a path from [`RunStore::resolve_deliverable`] below the run folder, as
    /// [`crate::OutcomeRecord::deliverable_path`] wants it.
    pub fn relative_to_run(&self, resolved: &Utf8Path) -> Option<Utf8PathBuf> {
        let canon = fs::canonicalize(&self.dir).ok()?;
        let canon = Utf8PathBuf::from_path_buf(canon).ok()?;
        resolved
            .strip_prefix(&canon)
            .or_else(|_| resolved.strip_prefix(&self.dir))
            .ok()
            .map(Utf8Path::to_owned)
    }

    /// Takes the run's exclusive lock for as long as the returned guard lives. Fails with
    /// `run <id> is being driven by pid <n>` while another live process holds it; a lock
    /// left by a crashed process is no obstacle. Holding the lock, it also removes temp
    /// files that crashed atomic writes left behind.
    pub fn lock(&self) -> Result<RunLock, StoreError> {
        let lock = RunLock::acquire(&self.dir.join(RUN_LOCK), &self.meta.run_id)?;
        // run.json is written only by the lock holder (and by create, before any lock).
        durable::remove_stale_temps(&self.dir, Duration::ZERO)?;
        // Inbox messages are written by `infty send` without the lock: only old temp files
        // can be from a crash rather than a write in flight.
        durable::remove_stale_temps(self.inbox().dir(), STALE_INBOX_TEMP_AGE)?;
        Ok(lock)
    }

    /// The journal, opened for append after repairing a torn last line; sealed when the run
    /// has a key (every run made since records are sealed, and older runs once resealed).
    pub fn journal(&self) -> Result<Journal, StoreError> {
        match RecordKey::load(&self.dir)? {
            Some(key) => Journal::open_sealed(&self.events_path(), key, EVENTS_JSONL),
            None => Journal::open(&self.events_path()),
        }
    }

    /// Checks every line of the journal and of each rollout (every `rollouts/*.jsonl`, not
    /// only those `run.json` names) against the run's key. Never writes anything.
    pub fn check_record(&self) -> Result<RecordCheck, StoreError> {
        let key = RecordKey::load(&self.dir)?;
        let head = seal::Head::load(&self.dir);
        let mut seeds = vec![EVENTS_JSONL.to_owned()];
        seeds.extend(self.rollout_files()?);
        // A file the head remembers but that is gone was removed: check it as empty.
        for seed in head.lines.keys() {
            if !seeds.contains(seed) {
                seeds.push(seed.clone());
            }
        }
        let mut files = Vec::new();
        for seed in seeds {
            let mut check = seal::check_file(&self.dir.join(&seed), &seed, key.as_ref())?;
            seal::check_head(&mut check, head.lines.get(&seed).copied());
            files.push(check);
        }
        Ok(RecordCheck {
            keyed: key.is_some(),
            files,
        })
    }

    /// Remembers, beside the run's key, how many lines each file of the record has now, so
    /// that a later check finds lines cut off their end. The driver calls it when it stops
    /// cleanly and after a resume's check; a crash leaves an older head, which still holds.
    /// Does nothing for a record that is not sealed or not whole.
    pub fn save_record_head(&self) -> Result<(), StoreError> {
        let check = self.check_record()?;
        if check.summary() != "sealed" {
            return Ok(());
        }
        let head = seal::Head {
            lines: check
                .files
                .into_iter()
                .map(|file| (file.path.to_string(), file.lines))
                .collect(),
        };
        head.save(&self.dir)
    }

    /// Seals the record afresh as it is now: makes the run's key if it has none (an older
    /// run), then rewrites the journal and every rollout atomically with new seals. Used
    /// when an older run is resumed, and when the operator accepts an edited record. Only
    /// the holder of the run's lock may call this, before opening any writer.
    pub fn reseal_record(&self) -> Result<(), StoreError> {
        let key = RecordKey::load_or_create(&self.dir)?;
        let mut seeds = vec![EVENTS_JSONL.to_owned()];
        seeds.extend(self.rollout_files()?);
        for seed in seeds {
            let path = self.dir.join(&seed);
            if !path.exists() {
                continue;
            }
            let content = seal::resealed(&path, &seed, &key)?;
            write_atomic(&path, &content)?;
        }
        // What was accepted is the new baseline, cut-off lines included.
        self.save_record_head()
    }

    /// Every `rollouts/*.jsonl` file, relative to the run folder, by name.
    fn rollout_files(&self) -> Result<Vec<String>, StoreError> {
        let dir = self.dir.join(ROLLOUTS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &dir, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with(".jsonl") && !name.starts_with('.') {
                names.push(format!("{ROLLOUTS_DIR}/{name}"));
            }
        }
        names.sort();
        Ok(names)
    }

    /// `events.jsonl`.
    pub fn events_path(&self) -> Utf8PathBuf {
        self.dir.join(EVENTS_JSONL)
    }

    /// The role's current rollout, relative to the run folder (e.g. `rollouts/solver.jsonl`).
    pub fn rollout_path(&self, role: &str) -> Option<Utf8PathBuf> {
        self.meta.role(role).map(|r| r.rollout_path.clone())
    }

    /// Opens the role's current rollout for append (creating it), after repairing a torn
    /// last line.
    pub fn rollout_writer(&self, role: &str) -> Result<JsonlWriter, StoreError> {
        let relative = self
            .rollout_path(role)
            .ok_or_else(|| self.unknown_role(role))?;
        let path = self.inside_run(&relative, role)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("create folder", parent, e))?;
        }
        match RecordKey::load(&self.dir)? {
            Some(key) => JsonlWriter::open_sealed(&path, key, relative.as_str()),
            None => JsonlWriter::open(&path),
        }
    }

    /// Starts a fresh rollout for a replaced session, `rollouts/<role>.<n>.jsonl`; the old
    /// path moves to [`RoleRecord::previous_rollouts`] and `run.json` is updated. Returns
    /// the new path, relative to the run folder.
    pub fn rotate_rollout(&mut self, role: &str) -> Result<Utf8PathBuf, StoreError> {
        let record = self
            .meta
            .role(role)
            .ok_or_else(|| self.unknown_role(role))?;
        validate_role(role)?;
        let mut n = record.previous_rollouts.len() + 1;
        let next = loop {
            let candidate = Utf8PathBuf::from(format!("rollouts/{role}.{n}.jsonl"));
            let taken = candidate == record.rollout_path
                || record.previous_rollouts.contains(&candidate)
                || self.dir.join(&candidate).exists();
            if !taken {
                break candidate;
            }
            n += 1;
        };
        let path = self.dir.join(&next);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| StoreError::io("create folder", parent, e))?;
        }
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("create", &path, e))?;
        let role_name = role.to_owned();
        let new_path = next.clone();
        self.update(move |m| {
            if let Some(r) = m.roles.iter_mut().find(|r| r.role == role_name.as_str()) {
                let old = std::mem::replace(&mut r.rollout_path, new_path);
                r.previous_rollouts.push(old);
            }
        })?;
        Ok(next)
    }

    /// The run's inbox.
    pub fn inbox(&self) -> Inbox {
        Inbox::new(self.dir.join(INBOX_DIR))
    }

    /// Joins a path taken from run.json to the run folder, refusing one that could leave it
    /// (a hand-edited `"../../x"` must not make the store write elsewhere).
    fn inside_run(&self, relative: &Utf8Path, role: &str) -> Result<Utf8PathBuf, StoreError> {
        let plain = relative
            .components()
            .all(|c| matches!(c, Utf8Component::Normal(_)));
        if plain && !relative.as_str().is_empty() {
            Ok(self.dir.join(relative))
        } else {
            Err(StoreError::CorruptMetadata {
                path: self.dir.join(RUN_JSON),
                reason: format!(
                    "the rollout path `{relative}` of role `{role}` is not a plain path inside the run folder"
                ),
            })
        }
    }

    fn unknown_role(&self, role: &str) -> StoreError {
        StoreError::UnknownRole {
            run_id: self.meta.run_id.clone(),
            role: role.to_owned(),
        }
    }
}

/// `run.json` as written: pretty, for the people who read it, with a final newline.
fn render_metadata(meta: &RunMetadata, path: &Utf8Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(|e| StoreError::Unserializable {
        what: "run metadata",
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn create_fresh_dir(runs_root: &Utf8Path) -> Result<(String, Utf8PathBuf), StoreError> {
    let mut last_error = None;
    for _ in 0..CREATE_ATTEMPTS {
        let id = generate_run_id();
        let dir = runs_root.join(&id);
        match fs::create_dir(&dir) {
            Ok(()) => return Ok((id, dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some((dir, e)),
            Err(e) => return Err(StoreError::io("create folder", &dir, e)),
        }
    }
    match last_error {
        Some((dir, e)) => Err(StoreError::io("create folder", dir, e)),
        None => Err(StoreError::io(
            "create folder",
            runs_root,
            io::Error::other("no attempt made"),
        )),
    }
}

/// Reads and checks `<run_dir>/run.json`.
pub(crate) fn read_metadata(run_dir: &Utf8Path) -> Result<RunMetadata, StoreError> {
    let path = run_dir.join(RUN_JSON);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StoreError::NotARun {
                path: run_dir.to_owned(),
            });
        }
        Err(e) => return Err(StoreError::io("read", &path, e)),
    };
    match serde_json::from_slice::<RunMetadata>(&bytes) {
        Ok(meta) if meta.schema_version == SCHEMA_VERSION => Ok(meta),
        Ok(meta) => Err(StoreError::UnsupportedSchema {
            path,
            found: u64::from(meta.schema_version),
            supported: SCHEMA_VERSION,
        }),
        Err(e) => {
            // A newer layout may fail to parse as this one: name the version if it has one.
            #[derive(Deserialize)]
            struct VersionOnly {
                schema_version: u64,
            }
            match serde_json::from_slice::<VersionOnly>(&bytes) {
                Ok(v) if v.schema_version != u64::from(SCHEMA_VERSION) => {
                    Err(StoreError::UnsupportedSchema {
                        path,
                        found: v.schema_version,
                        supported: SCHEMA_VERSION,
                    })
                }
                _ => Err(StoreError::CorruptMetadata {
                    path,
                    reason: e.to_string(),
                }),
            }
        }
    }
}

/// The default runs root: `$INFTY_HOME/runs`, with `INFTY_HOME` defaulting to `~/.infty`.
pub fn default_runs_root() -> Result<Utf8PathBuf, StoreError> {
    runs_root_from(std::env::var_os("INFTY_HOME"), std::env::var_os("HOME"))
}

/// [`default_runs_root`] from given variable values, so it can be tested without touching
/// the process environment.
pub fn runs_root_from(
    infty_home: Option<OsString>,
    home: Option<OsString>,
) -> Result<Utf8PathBuf, StoreError> {
    let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    let utf8 = |v: OsString| {
        v.into_string()
            .map(Utf8PathBuf::from)
            .map_err(|_| StoreError::NoHome)
    };
    if let Some(infty_home) = non_empty(infty_home) {
        return Ok(utf8(infty_home)?.join("runs"));
    }
    match non_empty(home) {
        Some(home) => Ok(utf8(home)?.join(".infty").join("runs")),
        None => Err(StoreError::NoHome),
    }
}
