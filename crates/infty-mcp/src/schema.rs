//! A server's input schema made acceptable to the model's API, and the model's arguments
//! made acceptable to the server again.
//!
//! Both OpenAI wire APIs (Responses and Chat Completions) accept the same strict subset of
//! JSON Schema for function tools: every object closed (`additionalProperties: false`) and
//! listing all its properties in `required`, no composition beyond `anyOf`, a short list of
//! keywords. [`for_model`] converts a server's schema into that subset when it can: optional
//! properties become required and nullable, `oneOf` becomes `anyOf`, `const` becomes a
//! one-value `enum`, annotations and constraints the subset lacks (or that the API could
//! refuse: `pattern`, unknown `format`s) are dropped (the server still enforces them), open
//! objects are closed. When it cannot (a map-like object, `allOf`, `not`, conditionals, tuples, a
//! nested object without properties, too deep or too large), the tool is sent non-strict
//! with its schema as the server gave it; the wire layer adds or omits `strict` per provider.
//!
//! [`Nulls`] remembers which properties were made nullable so that [`Nulls::strip`] removes
//! the `null`s a strict model sends for them before the call reaches the server, which never
//! declared them nullable. This module never makes a schema stricter than the server's in a
//! way the server would reject: it only closes objects and drops what it cannot express.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

/// Deepest nesting of objects and arrays a strict schema may have (the APIs' limit).
pub const MAX_STRICT_DEPTH: usize = 10;
/// Most properties, all objects together, a strict schema may have (the APIs' limit).
pub const MAX_STRICT_PROPERTIES: usize = 5000;

/// Keywords the strict subset knows, kept as they are.
const KEPT: &[&str] = &[
    "type",
    "description",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "$ref",
];

/// Keywords dropped from a strict schema: annotations and constraints the subset lacks,
/// which the server checks anyway.
const DROPPED: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "minLength",
    "maxLength",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "contentEncoding",
    "contentMediaType",
    // A regular expression the API's engine may not take would make it refuse every request.
    "pattern",
];

/// String formats the strict subset accepts; others are dropped (the server checks them).
const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// What the model is sent for one tool's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSchema {
    /// The JSON Schema of the arguments object.
    pub parameters: Value,
    /// Whether `parameters` is in the strict subset (the tool is sent with `strict: true`).
    pub strict: bool,
    /// Why the schema could not be made strict, when it could not.
    pub not_strict_because: Option<String>,
    /// The properties made nullable by the conversion, to undo in the arguments.
    pub nulls: Nulls,
}

/// Properties turned from optional into required-and-nullable, at every level.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Nulls {
    /// This object's properties that were optional.
    optional: BTreeSet<String>,
    /// What to undo inside this object's properties.
    properties: BTreeMap<String, Nulls>,
    /// What to undo inside each item, when this is an array.
    items: Option<Box<Nulls>>,
}

impl Nulls {
    fn is_empty(&self) -> bool {
        self.optional.is_empty() && self.properties.is_empty() && self.items.is_none()
    }

    /// Removes the `null`s the model sent for properties the server made optional, so the
    /// server sees them absent, as its schema expects.
    pub fn strip(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                object.retain(|key, field| !(field.is_null() && self.optional.contains(key)));
                for (key, inner) in &self.properties {
                    if let Some(field) = object.get_mut(key) {
                        inner.strip(field);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(inner) = &self.items {
                    for item in items {
                        inner.strip(item);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The schema to send for a tool whose input schema is `input`.
pub fn for_model(input: &Map<String, Value>) -> ModelSchema {
    let mut budget = MAX_STRICT_PROPERTIES;
    let mut strict = Strict {
        properties_left: &mut budget,
    };
    match strict.convert_root(input) {
        Ok((parameters, nulls)) => ModelSchema {
            parameters,
            strict: true,
            not_strict_because: None,
            nulls,
        },
        Err(reason) => ModelSchema {
            parameters: loose(input),
            strict: false,
            not_strict_because: Some(reason),
            nulls: Nulls::default(),
        },
    }
}

/// The server's schema as it is, minus `$schema` (which some APIs refuse), as an object.
fn loose(input: &Map<String, Value>) -> Value {
    let mut schema = input.clone();
    schema.remove("$schema");
    if !schema.contains_key("type") {
        schema.insert("type".into(), json!("object"));
    }
    if schema.get("type") == Some(&json!("object")) && !schema.contains_key("properties") {
        schema.insert("properties".into(), json!({}));
    }
    Value::Object(schema)
}

struct Strict<'a> {
    properties_left: &'a mut usize,
}

type Converted = Result<(Value, Nulls), String>;

impl Strict<'_> {
    fn convert_root(&mut self, input: &Map<String, Value>) -> Converted {
        let kind = input.get("type");
        if kind.is_some() && kind != Some(&json!("object")) {
            return Err("the arguments are not declared as an object".into());
        }
        if input.contains_key("anyOf") || input.contains_key("oneOf") {
            return Err("the arguments object is a choice of schemas (`anyOf`)".into());
        }
        let mut root = input.clone();
        root.insert("type".into(), json!("object"));
        // A top-level object without properties takes no arguments: `{}` says so strictly.
        if !root.contains_key("properties") && open_or_absent(root.get("additionalProperties")) {
            root.insert("properties".into(), json!({}));
            root.remove("additionalProperties");
        }
        let mut defs = Map::new();
        for key in ["$defs", "definitions"] {
            if let Some(found) = root.remove(key) {
                let Value::Object(found) = found else {
                    return Err(format!("`{key}` is not an object"));
                };
                let mut converted = Map::new();
                for (name, schema) in found {
                    let (schema, _) = self.convert(&schema, 1)?;
                    converted.insert(name, schema);
                }
                defs.insert(key.to_string(), Value::Object(converted));
            }
        }
        let (mut schema, nulls) = self.convert(&Value::Object(root), 0)?;
        if let Value::Object(object) = &mut schema {
            object.extend(defs);
        }
        Ok((schema, nulls))
    }

    fn convert(&mut self, schema: &Value, depth: usize) -> Converted {
        if depth > MAX_STRICT_DEPTH {
            return Err(format!("it nests deeper than {MAX_STRICT_DEPTH} levels"));
        }
        let Value::Object(input) = schema else {
            return Err("it uses a boolean schema".into());
        };
        let mut out = Map::new();
        let mut nulls = Nulls::default();
        for (key, value) in input {
            match key.as_str() {
                "properties"
                | "required"
                | "additionalProperties"
                | "items"
                | "anyOf"
                | "oneOf" => {}
                key if KEPT.contains(&key) => {
                    out.insert(key.to_string(), value.clone());
                }
                key if DROPPED.contains(&key) => {}
                "format" => {
                    if value
                        .as_str()
                        .is_some_and(|format| FORMATS.contains(&format))
                    {
                        out.insert(key.to_string(), value.clone());
                    }
                }
                // `enum` of one value says the same and is surely in the subset.
                "const" => {
                    out.insert("enum".to_string(), Value::Array(vec![value.clone()]));
                }
                "$defs" | "definitions" => return Err(format!("it nests `{key}`")),
                other => return Err(format!("it uses `{other}`")),
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(variants) = input.get(key) {
                let Value::Array(variants) = variants else {
                    return Err(format!("`{key}` is not a list"));
                };
                let mut converted = Vec::new();
                for variant in variants {
                    converted.push(self.convert(variant, depth + 1)?.0);
                }
                if out.contains_key("anyOf") {
                    return Err("it uses both `anyOf` and `oneOf`".into());
                }
                out.insert("anyOf".into(), Value::Array(converted));
            }
        }
        let types = type_names(input.get("type"));
        let is_object = types.contains(&"object") || input.contains_key("properties");
        let is_array = types.contains(&"array") || input.contains_key("items");
        if is_object && types.len() > 1 {
            return Err("an object is declared with other types".into());
        }
        if is_object {
            if !open_or_absent(input.get("additionalProperties"))
                && input.get("additionalProperties") != Some(&json!(false))
            {
                return Err("an object takes arbitrary keys (`additionalProperties`)".into());
            }
            let properties = match input.get("properties") {
                Some(Value::Object(properties)) => properties,
                Some(_) => return Err("`properties` is not an object".into()),
                None => return Err("an object has no declared properties".into()),
            };
            let required: BTreeSet<&str> = match input.get("required") {
                Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
                Some(_) => return Err("`required` is not a list".into()),
                None => BTreeSet::new(),
            };
            if properties.len() > *self.properties_left {
                return Err(format!(
                    "it has more than {MAX_STRICT_PROPERTIES} properties"
                ));
            }
            *self.properties_left -= properties.len();
            let mut converted = Map::new();
            for (name, property) in properties {
                let (mut property, inner) = self.convert(property, depth + 1)?;
                if !required.contains(name.as_str()) {
                    property = nullable(property);
                    nulls.optional.insert(name.clone());
                }
                if !inner.is_empty() {
                    nulls.properties.insert(name.clone(), inner);
                }
                converted.insert(name.clone(), property);
            }
            let names: Vec<Value> = converted.keys().cloned().map(Value::String).collect();
            out.insert("type".into(), json!("object"));
            out.insert("properties".into(), Value::Object(converted));
            out.insert("required".into(), Value::Array(names));
            out.insert("additionalProperties".into(), json!(false));
        } else if is_array {
            match input.get("items") {
                Some(items @ Value::Object(_)) => {
                    let (items, inner) = self.convert(items, depth + 1)?;
                    if !inner.is_empty() {
                        nulls.items = Some(Box::new(inner));
                    }
                    out.insert("items".into(), items);
                }
                Some(_) => return Err("an array lists its items as a tuple".into()),
                None => return Err("an array does not say what its items are".into()),
            }
        } else if types.is_empty()
            && !out.contains_key("anyOf")
            && !out.contains_key("enum")
            && !out.contains_key("$ref")
        {
            return Err("a value has no type".into());
        }
        Ok((Value::Object(out), nulls))
    }
}

fn open_or_absent(additional: Option<&Value>) -> bool {
    matches!(additional, None | Some(Value::Bool(true)))
}

fn type_names(kind: Option<&Value>) -> Vec<&str> {
    match kind {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The same schema, also accepting `null`.
fn nullable(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        return schema;
    };
    let simple = object.contains_key("type")
        && !object.contains_key("$ref")
        && !object.contains_key("anyOf");
    if simple {
        match object.get_mut("type") {
            Some(Value::String(name)) if name != "null" => {
                let name = name.clone();
                object.insert("type".into(), json!([name, "null"]));
            }
            Some(Value::Array(names)) if !names.contains(&json!("null")) => {
                names.push(json!("null"));
            }
            _ => {}
        }
        if let Some(Value::Array(values)) = object.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
        return Value::Object(object);
    }
    if let Some(Value::Array(variants)) = object.get_mut("anyOf") {
        if !variants.contains(&json!({"type": "null"})) {
            variants.push(json!({"type": "null"}));
        }
        return Value::Object(object);
    }
    // A `$ref` or an `enum` without a type: offer null beside it.
    let description = object.remove("description");
    let mut wrapped = Map::new();
    if let Some(description) = description {
        wrapped.insert("description".into(), description);
    }
    wrapped.insert(
        "anyOf".into(),
        json!([Value::Object(object), {"type": "null"}]),
    );
    Value::Object(wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(schema: Value) -> ModelSchema {
        let Value::Object(map) = schema else {
            panic!("not an object")
        };
        for_model(&map)
    }

    #[test]
    fn optional_properties_become_nullable_and_their_nulls_are_stripped() {
        let schema = convert(json!({
            "type": "object",
            "properties": {
                "text": {"type": "string", "minLength": 1},
                "count": {"type": "integer", "default": 1},
                "mode": {"enum": ["a", "b"]},
                "inner": {
                    "type": "object",
                    "properties": {"flag": {"type": "boolean"}}
                }
            },
            "required": ["text"]
        }));
        assert!(schema.strict, "{:?}", schema.not_strict_because);
        let mut args = json!({"text": "hi", "count": null, "mode": null, "inner": {"flag": null}});
        schema.nulls.strip(&mut args);
        assert_eq!(args, json!({"text": "hi", "inner": {}}));
        // A null the server declared stays, and so does a value.
        let mut args = json!({"text": null, "count": 2});
        schema.nulls.strip(&mut args);
        assert_eq!(args, json!({"text": null, "count": 2}));
    }

    #[test]
    fn nulls_inside_array_items_are_stripped_too() {
        let schema = convert(json!({
            "type": "object",
            "properties": {
                "rows": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"id": {"type": "integer"}, "note": {"type": "string"}},
                    "required": ["id"]
                }}
            },
            "required": ["rows"]
        }));
        assert!(schema.strict);
        let mut args = json!({"rows": [{"id": 1, "note": null}, {"id": 2, "note": "x"}]});
        schema.nulls.strip(&mut args);
        assert_eq!(args, json!({"rows": [{"id": 1}, {"id": 2, "note": "x"}]}));
    }

    #[test]
    fn what_cannot_be_strict_is_sent_as_the_server_gave_it() {
        let cases = [
            (
                json!({"type": "object", "properties": {"tags": {"type": "object", "additionalProperties": {"type": "string"}}}}),
                "an object takes arbitrary keys (`additionalProperties`)",
            ),
            (
                json!({"type": "object", "properties": {"x": {"allOf": [{"type": "string"}]}}}),
                "it uses `allOf`",
            ),
            (
                json!({"type": "object", "properties": {"x": {"type": "object"}}}),
                "an object has no declared properties",
            ),
            (
                json!({"type": "object", "properties": {"x": {"type": "array"}}}),
                "an array does not say what its items are",
            ),
            (
                json!({"type": "object", "properties": {"x": {}}}),
                "a value has no type",
            ),
            (
                json!({"type": "string"}),
                "the arguments are not declared as an object",
            ),
        ];
        for (schema, reason) in cases {
            let converted = convert(schema.clone());
            assert!(!converted.strict, "{schema}");
            assert_eq!(
                converted.not_strict_because.as_deref(),
                Some(reason),
                "{schema}"
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let mut schema = json!({"type": "string"});
        for _ in 0..(MAX_STRICT_DEPTH + 2) {
            schema = json!({"type": "object", "properties": {"x": schema}, "required": ["x"]});
        }
        let converted = convert(schema);
        assert!(!converted.strict);
    }

    #[test]
    fn no_arguments_is_an_empty_closed_object() {
        let converted = convert(json!({"type": "object"}));
        assert!(converted.strict);
        assert_eq!(
            converted.parameters,
            json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false})
        );
    }
}
