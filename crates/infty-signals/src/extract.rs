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
//! [`MAX_DEPTH`] bounds how many attempts can be nested around any byte. Once a reply has
//! failed [`FAILURES_BEFORE_STRUCTURAL_PASS`] attempts, a structural pass
//! ([`hopeless_starts`]) marks the `{`s that provably cannot open a valid object (never
//! closed, closed by a mismatched bracket, or nested too deep); those are not attempted,
//! which makes walls of `{"a":` or `{"a":[` cost a few passes instead of a parse per brace.
//! This module must never judge what a candidate means; it only finds them.

use serde_json::Deserializer;

use crate::fields::{Fields, MAX_DEPTH};

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
    // The structural pass costs about as much as parsing a typical reply, so it only runs
    // once a reply has shown itself hostile by failing many attempts.
    let mut hopeless = None;
    let mut failures = 0_usize;
    let mut last_failure = None;
    let mut last_hopeless = None;
    let mut from = 0;
    while let Some(offset) = bytes.get(from..).and_then(find_brace) {
        let start = from + offset;
        from = start + 1;
        let opening = opening(bytes, from);
        if let Opening::Empty { len } = opening {
            // `{}` needs no parser; walls of them are a cheap way to make one do work.
            on_object(Fields::default());
            from = start + len;
            continue;
        }
        if opening == Opening::Prose {
            continue;
        }
        if hopeless
            .as_ref()
            .is_some_and(|marks: &Marks| marks.contains(start))
        {
            last_hopeless = Some(start);
            continue;
        }
        match attempt(text, start) {
            Some(Ok((fields, len))) => {
                on_object(fields);
                from = start + len.max(1);
            }
            Some(Err(failure)) => {
                last_failure = Some(failure);
                failures += 1;
                if failures == FAILURES_BEFORE_STRUCTURAL_PASS {
                    hopeless = Some(hopeless_starts(bytes));
                }
            }
            None => {}
        }
    }
    // A hopeless start after the last failure is the last broken object (often a reply cut
    // short); parse it once, only to say what is wrong with it.
    if let Some(start) =
        last_hopeless.filter(|&s| last_failure.as_ref().is_none_or(|f| f.start < s))
    {
        match attempt(text, start) {
            Some(Ok((fields, _))) => on_object(fields),
            Some(Err(failure)) => last_failure = Some(failure),
            None => {}
        }
    }
    last_failure
}

/// How many failed attempts make a reply worth the structural pass.
const FAILURES_BEFORE_STRUCTURAL_PASS: usize = 32;

/// Reads one object starting at byte `start`: its fields and length, or why it failed.
fn attempt(text: &str, start: usize) -> Option<Result<(Fields, usize), Failure>> {
    // `{` is ASCII, so a `start` found at one is always a char boundary.
    let rest = text.get(start..)?;
    let mut stream = Deserializer::from_str(rest).into_iter::<Fields>();
    Some(match stream.next()? {
        Ok(fields) => Ok((fields, stream.byte_offset())),
        Err(error) => Err(Failure { start, error }),
    })
}

/// A set of byte positions, one bit each.
struct Marks(Vec<u64>);

impl Marks {
    fn new(len: usize) -> Self {
        Self(vec![0; len / 64 + 1])
    }

    fn insert(&mut self, at: usize) {
        if let Some(word) = self.0.get_mut(at / 64) {
            *word |= 1 << (at % 64);
        }
    }

    fn contains(&self, at: usize) -> bool {
        self.0
            .get(at / 64)
            .is_some_and(|word| word & (1 << (at % 64)) != 0)
    }
}

/// An open `{` or `[` during the structural pass.
struct Open {
    at: usize,
    brace: bool,
    /// How many levels of brackets this one holds, itself included.
    height: usize,
}

/// How many structural passes may run side by side (see [`hopeless_starts`]).
const MAX_PASSES: usize = 4;

/// Marks every `{` that cannot open a valid JSON object of at most [`MAX_DEPTH`] levels.
///
/// A pass keeps a stack of open `{`/`[` and tracks strings while anything is open (prose
/// quotes outside any bracket are ignored). A pass pushes only a `{` it sees outside a
/// string: from there on it reads strings exactly as a JSON parser starting at that `{`
/// would, so a valid object there would be closed by its matching `}`, with the nesting
/// the pass measured. A pushed `{` that is never closed, closed by a mismatched bracket,
/// or nested deeper than the cap is hopeless.
///
/// A stray prose quote can put a pass out of step, so that it sees every later `{` inside
/// a string and proves nothing about them. So when no running pass sees a `{` outside a
/// string, a new pass starts at it (up to [`MAX_PASSES`]); a `{` no pass sees outside a
/// string is never marked, and is simply attempted.
fn hopeless_starts(bytes: &[u8]) -> Marks {
    let mut hopeless = Marks::new(bytes.len());
    let mut passes = vec![Pass::default()];
    for (at, &byte) in bytes.iter().enumerate() {
        let mut pushed = false;
        for pass in &mut passes {
            pushed |= pass.step(at, byte, &mut hopeless);
        }
        if byte == b'{' && !pushed && passes.len() < MAX_PASSES {
            let mut pass = Pass::default();
            pass.step(at, byte, &mut hopeless);
            passes.push(pass);
        }
    }
    for open in passes.into_iter().flat_map(|pass| pass.stack) {
        if open.brace {
            hopeless.insert(open.at);
        }
    }
    hopeless
}

/// One structural pass: its string state and its stack of open brackets.
#[derive(Default)]
struct Pass {
    in_string: bool,
    escaped: bool,
    stack: Vec<Open>,
}

impl Pass {
    /// Reads the byte at `at`; returns whether it was a `{` outside a string (pushed).
    fn step(&mut self, at: usize, byte: u8, hopeless: &mut Marks) -> bool {
        if self.in_string {
            match (self.escaped, byte) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
            return false;
        }
        match byte {
            b'"' if !self.stack.is_empty() => self.in_string = true,
            b'{' | b'[' => {
                self.stack.push(Open {
                    at,
                    brace: byte == b'{',
                    height: 1,
                });
                return byte == b'{';
            }
            b'}' | b']' => self.close(byte == b'}', hopeless),
            _ => {}
        }
        false
    }

    /// Closes the innermost open bracket of the kind of `brace`; any other kind popped on
    /// the way was closed by a mismatched bracket, which no valid object contains.
    fn close(&mut self, brace: bool, hopeless: &mut Marks) {
        while let Some(open) = self.stack.pop() {
            if let Some(parent) = self.stack.last_mut() {
                parent.height = parent.height.max(open.height + 1);
            }
            let matched = open.brace == brace;
            if open.brace && (!matched || open.height > MAX_DEPTH) {
                hopeless.insert(open.at);
            }
            if matched {
                return;
            }
        }
    }
}

fn find_brace(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'{')
}

/// What the `{` just before `at` opens, judged by the next non-blank byte.
#[derive(Debug, PartialEq, Eq)]
enum Opening {
    /// `{` then `}`: an empty object `len` bytes long, counted from the `{`.
    Empty { len: usize },
    /// `{` then `"`: maybe an object; worth a parse attempt.
    Keys,
    /// Anything else (`{this}`, `{{`): prose, skipped without an attempt, which keeps
    /// walls of `{` cheap and keeps them out of the error report.
    Prose,
}

fn opening(bytes: &[u8], at: usize) -> Opening {
    let rest = bytes.get(at..).unwrap_or_default();
    let next = rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    match next.and_then(|i| Some((i, *rest.get(i)?))) {
        Some((_, b'"')) => Opening::Keys,
        Some((i, b'}')) => Opening::Empty { len: i + 2 },
        _ => Opening::Prose,
    }
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
    fn openings_are_judged_by_the_next_non_blank_byte() {
        let cases = [
            ("{\"a\"", Opening::Keys),
            ("{ \r\n\"a\"", Opening::Keys),
            ("{}", Opening::Empty { len: 2 }),
            ("{ \n }", Opening::Empty { len: 5 }),
            ("{this}", Opening::Prose),
            ("{{", Opening::Prose),
            ("{", Opening::Prose),
        ];
        for (text, expected) in cases {
            assert_eq!(opening(text.as_bytes(), 1), expected, "{text:?}");
        }
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

    fn hopeless(text: &str) -> Vec<usize> {
        let marks = hopeless_starts(text.as_bytes());
        (0..text.len()).filter(|&at| marks.contains(at)).collect()
    }

    #[test]
    fn hopeless_starts_are_unclosed_mismatched_or_too_deep() {
        let deep = format!(
            "{}{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        let cases: &[(&str, &[usize])] = &[
            (r#"{"a":1}"#, &[]),
            (r#"{"a":1"#, &[0]),
            (r#"{"a":{"b":2}"#, &[0]),
            (r#"{"a":[}"#, &[]),
            (r#"[{"a":1]"#, &[1]),
            (r#"say "{" {"a":"}"}"#, &[]),
            // A `{` inside a string gets a pass of its own, which proves these unclosed.
            (r#"{"s":"{"}"#, &[6]),
            (r#"{"s":"\"{"}"#, &[8]),
            (r#"{"s":"{}"}"#, &[]),
            // A stray quote: the first pass sees the inner `{` in a string, a second
            // pass starts there and proves it unclosed, or leaves it.
            (r#"{" {"a":1"#, &[0, 3]),
            (r#"{" {"a":1}"#, &[0]),
            (&deep, &[0]),
        ];
        for (text, expected) in cases {
            assert_eq!(hopeless(text), *expected, "{text}");
        }
        let ok = format!("{}{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(hopeless(&ok).is_empty());
    }

    /// Bytes that steer the structural pass, with some valid objects mixed in.
    fn jsonish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(
            prop_oneof![
                Just("{"),
                Just("}"),
                Just("["),
                Just("]"),
                Just("\""),
                Just("\\"),
                Just(":"),
                Just(","),
                Just("1"),
                Just(" "),
                Just(r#"{"a":1}"#),
                Just(r#"{"a":[{"b":"}"}]}"#),
            ],
            0..48,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        /// Soundness: a `{` marked hopeless never opens an object the parser accepts.
        #[test]
        fn hopeless_marks_never_hide_a_valid_object(text in jsonish()) {
            let marks = hopeless_starts(text.as_bytes());
            for (at, _) in text.match_indices('{') {
                if marks.contains(at) {
                    let parsed = attempt(&text, at).map(|r| r.is_ok());
                    proptest::prop_assert_eq!(parsed, Some(false), "{} at {}", text, at);
                }
            }
        }
    }

    #[test]
    fn a_hopeless_last_object_still_reports_its_error() {
        let text = r#"{"ok":1} then {"type":"final_delivery","deliverable_path":"a.md""#;
        let failure = failure(text).unwrap();
        assert_eq!(failure.start, 14);
        assert_eq!(message_of(&failure.error), "EOF while parsing an object");
    }

    #[test]
    fn messages_lose_their_relative_position() {
        let failure = failure("{\"a\" 1}").unwrap();
        assert_eq!(message_of(&failure.error), "expected `:`");
    }
}
