//! The run's inbox: messages `infty send` queues for a role, delivered by the driver at
//! the next turn boundary.
//!
//! Each message is one file, `inbox/<id>.json`, written atomically so another process can
//! queue while the run is driven; delivery moves it to `inbox/delivered/`. This module
//! must never show a half-written message or deliver one twice.

use std::fs;
use std::io;

use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::Role;
use crate::StoreError;
use crate::durable::{self, write_atomic};
use crate::ids;

/// A message queued for a role.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    /// Sorts by creation time; also the file name.
    pub id: String,
    /// The role it is for.
    pub role: Role,
    /// What to tell the role.
    pub text: String,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A run's `inbox/` folder.
#[derive(Debug, Clone)]
pub struct Inbox {
    dir: Utf8PathBuf,
}

impl Inbox {
    pub(crate) fn new(dir: Utf8PathBuf) -> Self {
        Inbox { dir }
    }

    /// The inbox folder.
    pub fn dir(&self) -> &Utf8Path {
        &self.dir
    }

    fn delivered_dir(&self) -> Utf8PathBuf {
        self.dir.join("delivered")
    }

    /// Queues `text` for `role`. The message appears whole or not at all, even to a driver
    /// in another process reading at the same moment.
    pub fn enqueue(&self, role: &Role, text: &str) -> Result<InboxMessage, StoreError> {
        if text.trim().is_empty() {
            return Err(StoreError::EmptyMessage {
                role: role.to_string(),
            });
        }
        let (id, created_at) = ids::message_id();
        let message = InboxMessage {
            id,
            role: role.clone(),
            text: text.to_owned(),
            created_at,
        };
        let path = self.dir.join(format!("{}.json", message.id));
        let bytes =
            serde_json::to_vec_pretty(&message).map_err(|e| StoreError::Unserializable {
                what: "a message",
                path: path.clone(),
                reason: e.to_string(),
            })?;
        fs::create_dir_all(&self.dir).map_err(|e| StoreError::io("create folder", &self.dir, e))?;
        write_atomic(&path, &bytes)?;
        Ok(message)
    }

    /// Messages for `role` not yet delivered, oldest first. Temp files of writes in flight
    /// are skipped.
    pub fn pending(&self, role: &str) -> Result<Vec<InboxMessage>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io("list", &self.dir, e)),
        };
        let mut messages = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StoreError::io("list", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if name.starts_with('.') || !ids::is_message_id(id) {
                continue;
            }
            let path = self.dir.join(name);
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                // Delivered by someone else between listing and reading.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io("read", &path, e)),
            };
            let message: InboxMessage =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::CorruptMessage {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if message.id != id {
                return Err(StoreError::CorruptMessage {
                    path,
                    reason: format!("its id `{}` does not match its file name", message.id),
                });
            }
            if message.role == role {
                messages.push(message);
            }
        }
        messages.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(messages)
    }

    /// Marks a message delivered by moving it to `inbox/delivered/`. Marking it again is a
    /// no-op, so a driver that crashed after delivering can safely repeat the call.
    pub fn mark_delivered(&self, id: &str) -> Result<(), StoreError> {
        let unknown = || StoreError::UnknownMessage {
            id: id.to_owned(),
            dir: self.dir.clone(),
        };
        if !ids::is_message_id(id) {
            return Err(unknown());
        }
        let delivered = self.delivered_dir();
        let from = self.dir.join(format!("{id}.json"));
        let to = delivered.join(format!("{id}.json"));
        fs::create_dir_all(&delivered)
            .map_err(|e| StoreError::io("create folder", &delivered, e))?;
        match fs::rename(&from, &to) {
            Ok(()) => {
                durable::sync_dir(&delivered)?;
                durable::sync_dir(&self.dir)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if to.exists() {
                    Ok(())
                } else {
                    Err(unknown())
                }
            }
            Err(e) => Err(StoreError::io("move", &from, e)),
        }
    }

    /// Messages already delivered to `role`, oldest first.
    pub fn delivered(&self, role: &str) -> Result<Vec<InboxMessage>, StoreError> {
        Inbox::new(self.delivered_dir()).pending(role)
    }
}
