//! The lenient view of one JSON object found in a reply: [`Fields`] keeps the keys any
//! reply may use and drops everything else, then hands out checked values.
//!
//! Deserializing here must stay cheap and bounded: it runs once for every object-looking
//! `{` in a reply, so it caps nesting at [`MAX_DEPTH`] and never builds values for keys
//! it does not know. It must never decide which candidate wins; that is `lib.rs`'s job.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::SignalError;

/// How deep a candidate object may nest, the object itself counting as level 1.
///
/// Replies are flat (a verdict's lists are level 2); the cap is what keeps hostile input
/// like `{"a":{"a":{"a":...` linear, since every `{` in it is tried as a candidate.
pub(crate) const MAX_DEPTH: usize = 16;

/// The keys of every reply kind, each `None` when absent or `null`.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) kind: Option<Value>,
    pub(crate) prompt: Option<Value>,
    pub(crate) deliverable_path: Option<Value>,
    pub(crate) summary: Option<Value>,
    pub(crate) directive: Option<Value>,
    pub(crate) rationale: Option<Value>,
    pub(crate) verdict: Option<Value>,
    pub(crate) reasons: Option<Value>,
    pub(crate) suggestions: Option<Value>,
}

/// A key of a candidate object: one the replies use, or any other.
enum Key {
    Kind,
    Prompt,
    DeliverablePath,
    Summary,
    Directive,
    Rationale,
    Verdict,
    Reasons,
    Suggestions,
    Other,
}

impl<'de> de::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "type" => Key::Kind,
            "prompt" => Key::Prompt,
            "deliverable_path" => Key::DeliverablePath,
            "summary" => Key::Summary,
            "directive" => Key::Directive,
            "rationale" => Key::Rationale,
            "verdict" => Key::Verdict,
            "reasons" => Key::Reasons,
            "suggestions" => Key::Suggestions,
            _ => Key::Other,
        })
    }
}

impl<'de> de::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        let below = Bounded {
            levels_left: MAX_DEPTH - 1,
        };
        while let Some(key) = map.next_key::<Key>()? {
            if matches!(key, Key::Other) {
                // Skipped without building a value: cheap, and no allocation per attempt.
                map.next_value_seed(Skip(below))?;
                continue;
            }
            let value = map.next_value_seed(below)?;
            // Later duplicates win, as in serde_json's own maps; `null` means absent.
            let value = (!value.is_null()).then_some(value);
            let slot = match key {
                Key::Kind => &mut fields.kind,
                Key::Prompt => &mut fields.prompt,
                Key::DeliverablePath => &mut fields.deliverable_path,
                Key::Summary => &mut fields.summary,
                Key::Directive => &mut fields.directive,
                Key::Rationale => &mut fields.rationale,
                Key::Verdict => &mut fields.verdict,
                Key::Reasons => &mut fields.reasons,
                Key::Suggestions => &mut fields.suggestions,
                Key::Other => continue,
            };
            *slot = value;
        }
        Ok(fields)
    }
}

/// Reads any JSON value with at most `levels_left` more levels of arrays and objects.
#[derive(Clone, Copy)]
struct Bounded {
    levels_left: usize,
}

impl Bounded {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        match self.levels_left.checked_sub(1) {
            Some(levels_left) => Ok(Self { levels_left }),
            None => Err(E::custom(format_args!(
                "nesting deeper than {MAX_DEPTH} levels"
            ))),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Reads and discards any JSON value, with the same nesting cap as [`Bounded`].
#[derive(Clone, Copy)]
struct Skip(Bounded);

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = Skip(self.0.enter()?);
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = Skip(self.0.enter()?);
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}

/// How an error names the kind of a JSON value.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field that must be present and non-blank.
pub(crate) fn required_text(
    value: Option<Value>,
    object: &'static str,
    field: &'static str,
) -> Result<String, SignalError> {
    match value {
        None => Err(SignalError::MissingField { object, field }),
        Some(Value::String(text)) if text.trim().is_empty() => {
            Err(SignalError::BlankField { object, field })
        }
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(wrong_type(object, field.to_owned(), "a string", &other)),
    }
}

/// A string field that may be absent; blank counts as absent.
pub(crate) fn optional_text(
    value: Option<Value>,
    object: &'static str,
    field: &'static str,
) -> Result<Option<String>, SignalError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(object, field.to_owned(), "a string", &other)),
    }
}

/// A list of strings that may be absent (empty); a lone string counts as a list of one,
/// because models often drop the brackets around a single reason.
pub(crate) fn text_list(
    value: Option<Value>,
    object: &'static str,
    field: &'static str,
) -> Result<Vec<String>, SignalError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(text) => Ok(text),
                other => Err(wrong_type(
                    object,
                    format!("{field}[{index}]"),
                    "a string",
                    &other,
                )),
            })
            .collect(),
        Some(other) => Err(wrong_type(
            object,
            field.to_owned(),
            "an array of strings",
            &other,
        )),
    }
}

/// A string naming one of a closed set of words (`type`, `verdict`), returned as is.
pub(crate) fn word(
    value: Value,
    object: &'static str,
    field: &'static str,
) -> Result<String, SignalError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(wrong_type(object, field.to_owned(), "a string", &other)),
    }
}

fn wrong_type(
    object: &'static str,
    field: String,
    expected: &'static str,
    found: &Value,
) -> SignalError {
    SignalError::WrongType {
        object,
        field,
        expected,
        found: kind_of(found),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Result<Fields, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn keeps_known_keys_drops_unknown_and_null() {
        let f = fields(r#"{"type":"x","prompt":null,"notes":{"a":[1,2]},"summary":"s"}"#).unwrap();
        assert_eq!(f.kind, Some(Value::from("x")));
        assert_eq!(f.prompt, None);
        assert_eq!(f.summary, Some(Value::from("s")));
    }

    #[test]
    fn later_duplicate_keys_win() {
        let f = fields(r#"{"prompt":"a","prompt":"b"}"#).unwrap();
        assert_eq!(f.prompt, Some(Value::from("b")));
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(fields(&format!(r#"{{"notes":{ok}}}"#)).is_ok());
        let deep = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let err = fields(&format!(r#"{{"notes":{deep}}}"#)).unwrap_err();
        assert!(
            err.to_string().starts_with("nesting deeper than 16 levels"),
            "{err}"
        );
    }

    #[test]
    fn text_checks_name_what_was_found() {
        let cases: &[(Option<Value>, &str)] = &[
            (None, r#"x is missing "f""#),
            (
                Some(Value::from("  ")),
                r#"x has a blank "f"; it must be a non-empty string"#,
            ),
            (
                Some(Value::from(3)),
                r#""f" in x must be a string, found a number"#,
            ),
            (
                Some(serde_json::json!([])),
                r#""f" in x must be a string, found an array"#,
            ),
        ];
        for (value, message) in cases {
            let err = required_text(value.clone(), "x", "f").unwrap_err();
            assert_eq!(err.to_string(), *message);
        }
    }

    #[test]
    fn lists_accept_a_lone_string_and_name_bad_items() {
        assert_eq!(
            text_list(Some(Value::from("r")), "v", "reasons").unwrap(),
            ["r"]
        );
        let err = text_list(Some(serde_json::json!(["a", 1])), "v", "reasons").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""reasons[1]" in v must be a string, found a number"#
        );
        let err = text_list(Some(serde_json::json!({})), "v", "reasons").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""reasons" in v must be an array of strings, found an object"#
        );
    }
}
