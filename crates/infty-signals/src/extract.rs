//! Finding the JSON objects in a model's reply, in one left-to-right pass.
//!
//! Every `{` that could open an object (the next non-blank byte is `"` or `}`) is handed to
//! serde_json, which reads one object from there and stops. A success is a candidate and
//! the scan resumes after it, so objects nested in a candidate are never candidates of
//! their own; a failure is remembered and the scan resumes at the next `{`, so an object
//! inside broken JSON or prose is still found. Fences need no special case: the `{` inside
//! a fenced block is found like any other, whatever the fence says or how lines end.
//!
//! Why this stays linear: a failing attempt only reads as far as its JSON stays valid, and
//! [`crate::fields::MAX_DEPTH`] bounds how many attempts can be nested around any byte.
//! This module must never judge what a candidate means; it only finds them.

use serde_json::Deserializer;

use crate::fields::Fields;

/// The last place where something that looked like a JSON object failed to parse.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Byte offset of the `{` where the attempt started.
    pub(crate) start: usize,
    /// What serde_json reported, positioned relative to `start`.
    pub(crate) error: serde_json::Error,
}

/// Hands each outermost JSON object of `text` to `on_object`, in order, and returns the
/// last failed attempt. Nothing is collected, so memory stays flat whatever the reply.
pub(crate) fn scan(text: &str, mut on_object: impl FnMut(Fields)) -> Option<Failure> {
    let bytes = text.as_bytes();
    let mut last_failure = None;
    let mut from = 0;
    while let Some(offset) = bytes.get(from..).and_then(find_brace) {
        let start = from + offset;
        from = start + 1;
        if !opens_object(bytes, from) {
            continue;
        }
        // `{` is ASCII, so `start` is always a char boundary.
        let Some(rest) = text.get(start..) else {
            continue;
        };
        let mut stream = Deserializer::from_str(rest).into_iter::<Fields>();
        match stream.next() {
            Some(Ok(fields)) => {
                on_object(fields);
                from = start + stream.byte_offset().max(1);
            }
            Some(Err(error)) => last_failure = Some(Failure { start, error }),
            None => {}
        }
    }
    last_failure
}

fn find_brace(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'{')
}

/// Whether the `{` just before `at` can start an object: prose braces (`{this}`, `{{`)
/// are skipped without a parse attempt, which keeps walls of `{` cheap and keeps them
/// out of the error report.
fn opens_object(bytes: &[u8], at: usize) -> bool {
    let rest = bytes.get(at..).unwrap_or_default();
    let next = rest
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    matches!(next, Some(b'"' | b'}'))
}

/// 1-based line and byte column of a serde_json error inside `text`, given the byte offset
/// where the failed attempt started.
pub(crate) fn position_in(text: &str, failure: &Failure) -> (usize, usize) {
    let before = text.get(..failure.start).unwrap_or_default();
    let start_line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let start_column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1);
    let (line, column) = (failure.error.line(), failure.error.column());
    if line <= 1 {
        (start_line, start_column + column.max(1))
    } else {
        (start_line + line - 1, column.max(1))
    }
}

/// serde_json's message without its " at line L column C" tail (the caller adds a position
/// relative to the whole reply instead).
pub(crate) fn message_of(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let tail = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&tail) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Option<String>> {
        let mut kinds = Vec::new();
        scan(text, |fields| {
            kinds.push(fields.kind.map(|v| v.to_string()))
        });
        kinds
    }

    fn failure(text: &str) -> Option<Failure> {
        scan(text, |_| {})
    }

    #[test]
    fn finds_outermost_objects_in_order() {
        let text = r#"a {"type":"x","n":{"type":"inner"}} b {"type":"y"} {not json} {}"#;
        assert_eq!(
            kinds(text),
            [Some("\"x\"".into()), Some("\"y\"".into()), None]
        );
    }

    #[test]
    fn finds_objects_inside_broken_json() {
        let text = r#"{"outer": {"type":"x"} oops"#;
        assert_eq!(kinds(text), [Some("\"x\"".into())]);
        assert!(failure(text).is_some());
    }

    #[test]
    fn prose_braces_are_not_failures() {
        let text = "use {curly} and {{ braces }}";
        assert!(kinds(text).is_empty());
        assert!(failure(text).is_none());
    }

    #[test]
    fn positions_are_relative_to_the_whole_reply() {
        let cases = [
            ("{\"a\" 1}", (1, 6)),
            ("xy\nab {\"a\" 1}", (2, 9)),
            ("x\n{\"a\":\n 1 2}", (3, 4)),
        ];
        for (text, expected) in cases {
            let failure = failure(text).unwrap();
            assert_eq!(position_in(text, &failure), expected, "{text:?}");
        }
    }

    #[test]
    fn messages_lose_their_relative_position() {
        let failure = failure("{\"a\" 1}").unwrap();
        assert_eq!(message_of(&failure.error), "expected `:`");
    }
}
