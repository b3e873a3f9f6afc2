//! Cost of preparing MCP tools for the model and their results for it: converting a schema
//! to strict mode (once per tool at start), undoing its nulls (once per call), and rendering
//! a large result within the output budget (once per call).

use criterion::{Criterion, criterion_group, criterion_main};
use rmcp::model::{CallToolResult, ContentBlock};
use serde_json::{Map, Value, json};

/// An object schema with `width` optional properties, each an object of a few fields.
fn wide_schema(width: usize) -> Map<String, Value> {
    let mut properties = Map::new();
    for index in 0..width {
        properties.insert(
            format!("field_{index}"),
            json!({
                "type": "object",
                "description": "one field",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "count": {"type": "integer", "default": 0},
                    "tags": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["name"]
            }),
        );
    }
    let Value::Object(schema) = json!({"type": "object", "properties": properties}) else {
        unreachable!()
    };
    schema
}

fn bench(c: &mut Criterion) {
    let small = wide_schema(5);
    let wide = wide_schema(500);
    c.bench_function("for_model 5 properties", |b| {
        b.iter(|| infty_mcp::schema::for_model(&small))
    });
    c.bench_function("for_model 500 properties", |b| {
        b.iter(|| infty_mcp::schema::for_model(&wide))
    });
    let converted = infty_mcp::schema::for_model(&wide);
    let mut arguments = Map::new();
    for index in 0..500 {
        arguments.insert(
            format!("field_{index}"),
            json!({"name": "x", "count": null, "tags": null}),
        );
    }
    let arguments = Value::Object(arguments);
    c.bench_function("strip nulls 500 properties", |b| {
        b.iter(|| {
            let mut value = arguments.clone();
            converted.nulls.strip(&mut value);
            value
        })
    });
    let text: String = (0..200_000).map(|i| format!("line {i}\n")).collect();
    let result = CallToolResult::success(vec![ContentBlock::text(text)]);
    c.bench_function("render 2 MB result to 32 KiB", |b| {
        b.iter(|| infty_mcp::output::render(&result, 32 * 1024))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
