//! The one error type of this crate, [`SignalError`].
//!
//! Every message is written to be sent back, verbatim, to the model that produced the
//! reply: it says what was found, what was expected, and names the field or type. This
//! module must never grow variants that only make sense to a human operator (IO, config).

/// Why a reply could not be read as the expected JSON object.
///
/// The `Display` text is meant for the model that wrote the reply: the orchestrator sends it
/// back as it is, so the model can correct itself on the next turn.
///
/// ```
/// use infty_signals::{parse_solver_signal, SignalError};
///
/// let err = parse_solver_signal(r#"{"type":"direction_request"}"#).unwrap_err();
/// assert_eq!(err, SignalError::MissingField { object: "direction_request", field: "prompt" });
/// assert_eq!(err.to_string(), r#"direction_request is missing "prompt""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The reply is empty or only whitespace: ask the model to answer with the JSON object.
    #[error("the reply is empty; expected {expected}")]
    Empty {
        /// A short template of the object that was expected.
        expected: &'static str,
    },
    /// The reply holds no JSON object at all: ask the model to add one.
    #[error("no JSON object found in the reply; expected {expected}")]
    NoJson {
        /// A short template of the object that was expected.
        expected: &'static str,
    },
    /// The reply starts a JSON object that is not valid JSON: ask the model to fix the syntax.
    #[error(
        "invalid JSON at line {line} column {column} of the reply: {message}; expected {expected}"
    )]
    InvalidJson {
        /// 1-based line of the reply where parsing stopped.
        line: usize,
        /// 1-based byte column within that line where parsing stopped.
        column: usize,
        /// What the JSON parser found wrong, without its position.
        message: String,
        /// A short template of the object that was expected.
        expected: &'static str,
    },
    /// The reply holds JSON objects, but none carries the key that identifies the expected
    /// object (`type`, `directive` or `verdict`): ask the model for the right object.
    #[error("the JSON object in the reply has no \"{key}\"; expected {expected}")]
    Unrecognized {
        /// The key that identifies the expected object.
        key: &'static str,
        /// A short template of the object that was expected.
        expected: &'static str,
    },
    /// A solver signal names a `type` that is not a signal.
    #[error(
        "unknown signal type \"{found}\"; expected \"direction_request\" or \"final_delivery\""
    )]
    UnknownType {
        /// The `type` that was found (shortened if very long).
        found: String,
    },
    /// A verifier reply has a `verdict` that is neither `pass` nor `fail`.
    #[error("unknown verdict \"{found}\"; expected \"pass\" or \"fail\"")]
    UnknownVerdict {
        /// The `verdict` that was found (shortened if very long).
        found: String,
    },
    /// A required field is absent or `null`.
    #[error("{object} is missing \"{field}\"")]
    MissingField {
        /// The object that needs the field (`direction_request`, `the directive`, ...).
        object: &'static str,
        /// The missing field.
        field: &'static str,
    },
    /// A field that must say something is empty or only whitespace.
    #[error("{object} has a blank \"{field}\"; it must be a non-empty string")]
    BlankField {
        /// The object that holds the field.
        object: &'static str,
        /// The blank field.
        field: &'static str,
    },
    /// A field holds the wrong kind of JSON value.
    #[error("\"{field}\" in {object} must be {expected}, found {found}")]
    WrongType {
        /// The object that holds the field.
        object: &'static str,
        /// The field, with an index for list items (`reasons[2]`).
        field: String,
        /// The kind of value expected (`a string`, `an array of strings`).
        expected: &'static str,
        /// The kind of value found (`a number`, `an object`, `null`, ...).
        found: &'static str,
    },
}

/// The longest quoted value an error repeats back; a model that sent a page as a `type`
/// gains nothing from getting the page back.
const QUOTE_LIMIT: usize = 80;

/// Shortens `text` to at most [`QUOTE_LIMIT`] characters for quoting in an error.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}...", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quote_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(quote("pass"), "pass");
        let long = "é".repeat(200);
        let cut = quote(&long);
        assert_eq!(cut.chars().count(), 83);
        assert!(cut.ends_with("..."));
    }
}
