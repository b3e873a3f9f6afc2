//! Tool-call ids within the length a wire API accepts.
//!
//! Servers mint ids of their own lengths (vLLM's `chatcmpl-tool-…` ids run past 40
//! characters), and a run may move between servers on resume: OpenAI Chat refuses a
//! `tool_call_id` over 40 characters, and the Responses API documents `call_id` as at most
//! 64. Each request maps every over-long id of its history to a short one derived from it
//! (`call_` and a hash), unique within the request; the history itself keeps the original
//! ids, so the mapping is recomputed, identically, for every request of a conversation, and
//! [`CallIds::original`] maps a short id back. This module must never change an id that
//! already fits.

use std::collections::{HashMap, HashSet};
use std::hash::Hasher;

use fnv::FnvHasher;

use crate::item::Item;

/// The longest `tool_call_id` OpenAI Chat Completions accepts.
pub(crate) const CHAT_MAX_CALL_ID: usize = 40;
/// The longest `call_id` the Responses API document allows.
pub(crate) const RESPONSES_MAX_CALL_ID: usize = 64;

/// The ids of one request, as sent.
#[derive(Debug, Default)]
pub(crate) struct CallIds {
    to_wire: HashMap<String, String>,
    to_original: HashMap<String, String>,
}

impl CallIds {
    /// Maps the over-long call ids of `items` for a wire API accepting `limit` characters.
    pub(crate) fn for_items(items: &[Item], limit: usize) -> Self {
        let ids = items.iter().filter_map(|item| match item {
            Item::FunctionCall { call_id, .. } | Item::FunctionOutput { call_id, .. } => {
                Some(call_id.as_str())
            }
            _ => None,
        });
        let all: Vec<&str> = ids.collect();
        // Short ids are sent as they are, so no mapped id may take one of them.
        let mut taken: HashSet<String> = all
            .iter()
            .filter(|id| id.chars().count() <= limit)
            .map(|id| (*id).to_owned())
            .collect();
        let mut map = CallIds::default();
        for id in all {
            if id.chars().count() <= limit || map.to_wire.contains_key(id) {
                continue;
            }
            // FNV-1a: a fixed algorithm, so the same id maps the same way in every build.
            let mut hasher = FnvHasher::default();
            hasher.write(id.as_bytes());
            let base = format!("call_{:016x}", hasher.finish());
            let mut short = base.clone();
            let mut n = 2u32;
            while taken.contains(&short) {
                short = format!("{base}_{n}");
                n += 1;
            }
            taken.insert(short.clone());
            map.to_original.insert(short.clone(), id.to_owned());
            map.to_wire.insert(id.to_owned(), short);
        }
        map
    }

    /// The id to send for `id`.
    pub(crate) fn wire<'a>(&'a self, id: &'a str) -> &'a str {
        self.to_wire.get(id).map_or(id, String::as_str)
    }

    /// The original id behind a sent one.
    #[cfg(test)]
    pub(crate) fn original<'a>(&'a self, wire: &'a str) -> &'a str {
        self.to_original.get(wire).map_or(wire, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> Item {
        Item::FunctionCall {
            call_id: id.into(),
            name: "shell".into(),
            arguments: "{}".into(),
        }
    }

    #[test]
    fn long_ids_map_short_unique_and_back() {
        let long_a = format!("chatcmpl-tool-{}", "a".repeat(40));
        let long_b = format!("chatcmpl-tool-{}", "b".repeat(40));
        let items = vec![
            call(&long_a),
            Item::function_output(&long_a, "ok"),
            call(&long_b),
            call("call_short"),
        ];
        let ids = CallIds::for_items(&items, CHAT_MAX_CALL_ID);
        let (a, b) = (ids.wire(&long_a), ids.wire(&long_b));
        assert!(a.len() <= CHAT_MAX_CALL_ID && b.len() <= CHAT_MAX_CALL_ID);
        assert_ne!(a, b);
        assert_eq!(ids.wire("call_short"), "call_short");
        assert_eq!(ids.original(a), long_a);
        assert_eq!(ids.original(b), long_b);
        // The same history maps the same way on every request.
        let again = CallIds::for_items(&items, CHAT_MAX_CALL_ID);
        assert_eq!(again.wire(&long_a), a);
        // Exactly at the limit: unchanged.
        let forty = "x".repeat(CHAT_MAX_CALL_ID);
        assert_eq!(
            CallIds::for_items(&[call(&forty)], CHAT_MAX_CALL_ID).wire(&forty),
            forty
        );
    }

    #[test]
    fn a_mapped_id_never_takes_a_short_one() {
        let long = "y".repeat(50);
        let first = CallIds::for_items(&[call(&long)], CHAT_MAX_CALL_ID)
            .wire(&long)
            .to_owned();
        let ids = CallIds::for_items(&[call(&first), call(&long)], CHAT_MAX_CALL_ID);
        assert_eq!(ids.wire(&first), first);
        assert_ne!(ids.wire(&long), first);
        assert!(ids.wire(&long).starts_with(&first));
    }
}
