//! Known secret values cut out of tool output before anything records it.
//!
//! The sandbox keeps secrets out of a tool's reach; this is the second line: if a tool
//! prints the API key anyway (say, from a file the user left in the workspace), the
//! rollout, the journal, the terminal and the logs get `[redacted]` instead. Every tool
//! result passes through [`Redactor::redact`] in `ToolSet::execute`, the one place.
//! This module must never log or return the values it holds.

use std::fmt;

/// Values shorter than this are not redacted: they would blank out ordinary words.
const MIN_SECRET_LEN: usize = 8;

/// What replaces a secret in recorded text.
pub const REDACTED: &str = "[redacted]";

/// A set of secret values to remove from text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    values: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// A redactor of `values` (short and blank ones are ignored).
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut redactor = Redactor::default();
        redactor.extend(values);
        redactor
    }

    /// Adds more values.
    pub fn extend(&mut self, values: impl IntoIterator<Item = String>) {
        for value in values {
            let value = value.trim().to_owned();
            if value.len() >= MIN_SECRET_LEN && !self.values.contains(&value) {
                self.values.push(value);
            }
        }
        // Longest first, so that a secret containing another is cut out whole.
        self.values
            .sort_by_key(|value| std::cmp::Reverse(value.len()));
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every known secret replaced by [`REDACTED`].
    pub fn redact(&self, text: String) -> String {
        if !self
            .values
            .iter()
            .any(|value| text.contains(value.as_str()))
        {
            return text;
        }
        self.values
            .iter()
            .fold(text, |text, value| text.replace(value.as_str(), REDACTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_out_known_values_only() {
        let redactor = Redactor::new([
            "sk-test-1234567890".to_owned(),
            "short".to_owned(),
            "postgres://u:pw@db/x".to_owned(),
        ]);
        let cases = [
            ("key=sk-test-1234567890\n", "key=[redacted]\n"),
            (
                "sk-test-1234567890sk-test-1234567890",
                "[redacted][redacted]",
            ),
            ("db postgres://u:pw@db/x", "db [redacted]"),
            ("a short word", "a short word"),
            ("nothing here", "nothing here"),
        ];
        for (text, expected) in cases {
            assert_eq!(redactor.redact(text.to_owned()), expected, "{text}");
        }
        assert_eq!(format!("{redactor:?}"), "Redactor(2 values)");
    }
}
