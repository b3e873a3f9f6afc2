//! The tools' definitions as the model sees them, and the parsing of its JSON arguments.
//!
//! Schemas are strict-mode compatible: every object is closed (`additionalProperties:
//! false`) and lists all its properties in `required`; optional ones are nullable, so a
//! `null` argument means "use the default". Parsing must never accept what the schema
//! forbids (unknown keys are refused) and its errors show the expected shape.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{ToolDefinition, ToolError, ToolName, ToolPolicy};

/// The definition of `tool` under `policy` (whose bounds the descriptions quote).
pub(crate) fn definition(tool: ToolName, policy: &ToolPolicy) -> ToolDefinition {
    ToolDefinition {
        name: tool.as_str().to_owned(),
        description: description(tool, policy),
        parameters: parameters(tool),
        strict: true,
    }
}

fn description(tool: ToolName, policy: &ToolPolicy) -> String {
    let text = match tool {
        ToolName::Shell => {
            return format!(
                "Run a command with `bash -c` and return its exit status and output. The \
                 command starts in the base folder (or `workdir`), reads no input, and is \
                 killed with everything it started when it finishes or exceeds `timeout_ms` \
                 (default {}, at most {}); output beyond {} bytes keeps its beginning and its \
                 end. Secrets are removed from the environment. Prefer non-interactive flags \
                 (no pagers, no prompts).",
                policy.shell_default_timeout.as_millis(),
                policy.shell_max_timeout.as_millis(),
                policy.max_output_bytes,
            );
        }
        ToolName::ReadFile => {
            return format!(
                "Read a UTF-8 text file as numbered lines. `offset` is the first line to show \
                 (1-based, default 1) and `limit` how many lines (default and maximum {}); \
                 very long lines are shortened. The output says when more lines follow and \
                 which offset reads them. Binary files are refused.",
                policy.read_max_lines
            );
        }
        ToolName::WriteFile => {
            "Create or overwrite a file with `content`, creating missing parent folders. The \
             write is atomic: readers see the old file or the new one, never a mix."
        }
        ToolName::EditFile => {
            "Replace the exact text `old_string` with `new_string` in a file. `old_string` must \
             occur exactly once unless `replace_all` is true; copy it from the file with its \
             whitespace and enough surrounding lines to make it unique."
        }
        ToolName::ListDir => {
            return format!(
                "List a folder as a sorted, indented tree, folders marked with a trailing `/` \
                 and symbolic links shown as `name -> target` (not followed; `.git` is not \
                 opened). `path` defaults to the base folder, `depth` to 2 (maximum 5); at \
                 most {} entries are shown.",
                policy.list_max_entries
            );
        }
        ToolName::UpdatePlan => {
            "Record your plan as a list of steps with their status (pending, in_progress, \
             completed), keeping at most one step in progress. Send the whole plan each time; \
             it is saved to memory/plan.json in the run folder and shown as progress."
        }
    };
    text.to_owned()
}

fn parameters(tool: ToolName) -> Value {
    match tool {
        ToolName::Shell => object(&[
            (
                "command",
                json!({"type": "string", "description": "The command line, run by `bash -c`."}),
            ),
            (
                "timeout_ms",
                json!({"type": ["integer", "null"], "description": "Milliseconds before the command is killed; null for the default."}),
            ),
            (
                "workdir",
                json!({"type": ["string", "null"], "description": "Folder to start in, relative to the base folder; null for the base folder."}),
            ),
        ]),
        ToolName::ReadFile => object(&[
            (
                "path",
                json!({"type": "string", "description": "File to read, relative to the base folder, or absolute inside an allowed folder."}),
            ),
            (
                "offset",
                json!({"type": ["integer", "null"], "description": "First line to show, 1-based; null for 1."}),
            ),
            (
                "limit",
                json!({"type": ["integer", "null"], "description": "How many lines to show; null for the maximum."}),
            ),
        ]),
        ToolName::WriteFile => object(&[
            (
                "path",
                json!({"type": "string", "description": "File to write, relative to the base folder, or absolute inside an allowed folder."}),
            ),
            (
                "content",
                json!({"type": "string", "description": "The whole new content of the file."}),
            ),
        ]),
        ToolName::EditFile => object(&[
            (
                "path",
                json!({"type": "string", "description": "File to edit, relative to the base folder, or absolute inside an allowed folder."}),
            ),
            (
                "old_string",
                json!({"type": "string", "description": "Exact text to replace (not empty)."}),
            ),
            (
                "new_string",
                json!({"type": "string", "description": "Text to put in its place."}),
            ),
            (
                "replace_all",
                json!({"type": ["boolean", "null"], "description": "Replace every occurrence; null or false for exactly one."}),
            ),
        ]),
        ToolName::ListDir => object(&[
            (
                "path",
                json!({"type": ["string", "null"], "description": "Folder to list; null for the base folder."}),
            ),
            (
                "depth",
                json!({"type": ["integer", "null"], "description": "Levels to descend, 1 to 5; null for 2."}),
            ),
        ]),
        ToolName::UpdatePlan => object(&[
            (
                "explanation",
                json!({"type": ["string", "null"], "description": "Why the plan changed, if it did."}),
            ),
            (
                "plan",
                json!({
                    "type": "array",
                    "description": "Every step of the plan, in order.",
                    "items": object(&[
                        ("step", json!({"type": "string", "description": "What the step does."})),
                        ("status", json!({"type": "string", "enum": ["pending", "in_progress", "completed"]})),
                    ]),
                }),
            ),
        ]),
    }
}

/// A closed object schema requiring every one of `properties`.
fn object(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: serde_json::Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A one-line rendering of `tool`'s arguments for error messages, e.g.
/// `{"path": string, "offset": integer|null}`.
pub(crate) fn signature(tool: ToolName) -> String {
    let schema = parameters(tool);
    render_shape(&schema)
}

fn render_shape(schema: &Value) -> String {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().map(Value::to_string).collect();
        return names.join("|");
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("|"),
        _ => "any".to_owned(),
    };
    match kind.as_str() {
        "object" => {
            // `required` lists every property in declaration order (the map may be sorted).
            let names = schema.get("required").and_then(Value::as_array);
            let fields: Vec<String> = names
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|name| {
                    let field = &schema["properties"][name];
                    format!("\"{name}\": {}", render_shape(field))
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        "array" => {
            let item = schema.get("items").map(render_shape).unwrap_or_default();
            format!("[{item}, ...]")
        }
        _ => kind,
    }
}

/// Parses the model's raw `arguments` for `tool`. Blank text counts as `{}`, since some
/// models send nothing for a call whose arguments are all optional.
pub(crate) fn parse_arguments<T: DeserializeOwned>(
    tool: ToolName,
    arguments: &str,
) -> Result<T, ToolError> {
    let text = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let invalid = |problem: String| ToolError::InvalidArguments {
        tool,
        problem,
        expected: signature(tool),
    };
    // Parsed as a value first: serde would also accept a struct written as an array.
    let value: Value =
        serde_json::from_str(text).map_err(|error| invalid(describe_json_error(&error)))?;
    if !value.is_object() {
        return Err(invalid(format!(
            "the arguments must be a JSON object, not {}",
            kind_of(&value)
        )));
    }
    serde_json::from_value(value).map_err(|error| invalid(describe_json_error(&error)))
}

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

fn describe_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof => format!("not valid JSON ({error})"),
        // Serde names Rust types; the model knows JSON ones.
        Category::Data | Category::Io => error
            .to_string()
            .replace("expected u64", "expected a non-negative integer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_strict() {
        fn check(schema: &Value, at: &str) {
            if schema.get("type") == Some(&json!("object")) {
                assert_eq!(schema["additionalProperties"], json!(false), "{at}");
                let properties = schema["properties"].as_object().expect("properties");
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .expect("required")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                let names: Vec<&str> = properties.keys().map(String::as_str).collect();
                let mut sorted_required = required.clone();
                sorted_required.sort_unstable();
                let mut sorted_names = names.clone();
                sorted_names.sort_unstable();
                assert_eq!(sorted_required, sorted_names, "{at}");
                for (name, field) in properties {
                    check(field, &format!("{at}.{name}"));
                }
            }
            if let Some(items) = schema.get("items") {
                check(items, &format!("{at}[]"));
            }
        }
        for tool in ToolName::ALL {
            check(&parameters(tool), tool.as_str());
        }
    }

    #[test]
    fn signatures_are_short_and_complete() {
        let cases = [
            (
                ToolName::ReadFile,
                r#"{"path": string, "offset": integer|null, "limit": integer|null}"#,
            ),
            (
                ToolName::UpdatePlan,
                r#"{"explanation": string|null, "plan": [{"step": string, "status": "pending"|"in_progress"|"completed"}, ...]}"#,
            ),
        ];
        for (tool, expected) in cases {
            assert_eq!(signature(tool), expected);
        }
    }
}
