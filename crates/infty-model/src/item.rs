//! The wire-neutral conversation item: what a session stores, replays and shows.
//!
//! Items are the unit of history for both wire APIs; the wire modules translate them to
//! and from each API's shapes. This module must never know about HTTP or a specific API's
//! field names beyond the opaque reasoning payload.

use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt text (Chat's classic instruction role).
    System,
    /// Developer instructions (the newer name for system on OpenAI).
    Developer,
    /// The user (for infty: the orchestrator speaking to a role).
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::Developer => "developer",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One entry of a conversation, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// Plain text from one speaker.
    Message {
        /// Who says it.
        role: Role,
        /// What is said.
        text: String,
    },
    /// The model asks for a tool to run.
    FunctionCall {
        /// Links the call to its [`Item::FunctionOutput`].
        call_id: String,
        /// Tool name.
        name: String,
        /// The raw JSON argument string, exactly as the model produced it.
        arguments: String,
    },
    /// The result of a tool call, sent back to the model.
    FunctionOutput {
        /// The call this answers.
        call_id: String,
        /// Tool output text.
        output: String,
    },
    /// Model reasoning, kept opaque.
    ///
    /// From the Responses API this is the whole item of `response.output_item.done`
    /// (with `encrypted_content`), replayed verbatim. From Chat servers it is
    /// `{"type":"reasoning","text":...}`, kept for the record and never sent back.
    Reasoning {
        /// The payload as received.
        raw: serde_json::Value,
    },
}

impl Item {
    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::Message {
            role: Role::User,
            text: text.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::Message {
            role: Role::Assistant,
            text: text.into(),
        }
    }

    /// A tool result.
    pub fn function_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self::FunctionOutput {
            call_id: call_id.into(),
            output: output.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_as_tagged_json() {
        let cases = [
            (
                Item::user("hi"),
                r#"{"type":"message","role":"user","text":"hi"}"#,
            ),
            (
                Item::FunctionCall {
                    call_id: "c1".into(),
                    name: "shell".into(),
                    arguments: "{\"command\":\"ls\"}".into(),
                },
                r#"{"type":"function_call","call_id":"c1","name":"shell","arguments":"{\"command\":\"ls\"}"}"#,
            ),
            (
                Item::function_output("c1", "ok"),
                r#"{"type":"function_output","call_id":"c1","output":"ok"}"#,
            ),
            (
                Item::Reasoning {
                    raw: serde_json::json!({"type": "reasoning", "id": "rs_1"}),
                },
                r#"{"type":"reasoning","raw":{"id":"rs_1","type":"reasoning"}}"#,
            ),
        ];
        for (item, json) in cases {
            assert_eq!(serde_json::to_string(&item).expect("serialize"), json);
            let back: Item = serde_json::from_str(json).expect("deserialize");
            assert_eq!(back, item);
        }
    }
}
