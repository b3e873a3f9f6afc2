//! The strict-mode schemas: their shape, snapshots, and agreement with the parser.

use infty_signals::{parse_directive, parse_solver_signal, parse_verdict, schema};
use serde_json::Value;

fn all() -> [(&'static str, Value, &'static [&'static str]); 3] {
    [
        (
            schema::SOLVER_SIGNAL_NAME,
            schema::solver_signal(),
            schema::SOLVER_SIGNAL_EXAMPLES,
        ),
        (
            schema::DIRECTIVE_NAME,
            schema::directive(),
            schema::DIRECTIVE_EXAMPLES,
        ),
        (
            schema::VERDICT_NAME,
            schema::verdict(),
            schema::VERDICT_EXAMPLES,
        ),
    ]
}

/// Whether `value` fits `schema`, for the few keywords strict mode and these schemas use.
fn fits(schema: &Value, value: &Value) -> bool {
    let type_ok = match &schema["type"] {
        Value::String(kind) => has_type(kind, value),
        Value::Array(kinds) => kinds.iter().any(|k| has_type(k.as_str().unwrap(), value)),
        _ => true,
    };
    let enum_ok = schema["enum"]
        .as_array()
        .is_none_or(|options| options.contains(value));
    let items_ok = match (&schema["items"], value) {
        (Value::Object(_), Value::Array(items)) => items.iter().all(|i| fits(&schema["items"], i)),
        _ => true,
    };
    let object_ok = match (&schema["properties"], value) {
        (Value::Object(properties), Value::Object(object)) => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap())
                .collect();
            required.iter().all(|r| object.contains_key(*r))
                && object
                    .iter()
                    .all(|(k, v)| properties.get(k).is_some_and(|p| fits(p, v)))
        }
        _ => true,
    };
    type_ok && enum_ok && items_ok && object_ok
}

fn has_type(kind: &str, value: &Value) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "null" => value.is_null(),
        other => panic!("schema uses type {other}"),
    }
}

#[test]
fn schemas_are_strict_mode_compatible() {
    for (name, schema, _) in all() {
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert_eq!(schema["type"], "object", "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        let properties: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert_eq!(
            properties.len(),
            required.len(),
            "{name}: every property is required"
        );
        for property in properties {
            assert!(
                required.contains(&property.as_str()),
                "{name}: {property} not required"
            );
        }
        for keyword in ["minLength", "pattern", "oneOf", "examples", "format"] {
            assert!(
                !schema.to_string().contains(&format!("\"{keyword}\"")),
                "{name}: {keyword}"
            );
        }
    }
}

#[test]
fn every_example_fits_its_schema_and_parses() {
    for (name, schema, examples) in all() {
        assert!(!examples.is_empty(), "{name}");
        for example in examples {
            let value: Value = serde_json::from_str(example).unwrap();
            assert!(fits(&schema, &value), "{name}: {example}");
            let parsed = match name {
                schema::SOLVER_SIGNAL_NAME => parse_solver_signal(example).map(|_| ()),
                schema::DIRECTIVE_NAME => parse_directive(example).map(|_| ()),
                _ => parse_verdict(example).map(|_| ()),
            };
            assert_eq!(parsed, Ok(()), "{name}: {example}");
        }
    }
}

#[test]
fn the_checker_refuses_what_strict_mode_would() {
    let schema = schema::solver_signal();
    let refused = [
        r#"{"type":"direction_request","prompt":"p"}"#,
        r#"{"type":"other","prompt":"p","deliverable_path":null,"summary":null}"#,
        r#"{"type":"direction_request","prompt":"p","deliverable_path":null,"summary":null,"x":1}"#,
    ];
    for example in refused {
        assert!(
            !fits(&schema, &serde_json::from_str(example).unwrap()),
            "{example}"
        );
    }
}

#[test]
fn schema_snapshots() {
    insta::assert_json_snapshot!("solver_signal", schema::solver_signal());
    insta::assert_json_snapshot!("directive", schema::directive());
    insta::assert_json_snapshot!("verdict", schema::verdict());
}
