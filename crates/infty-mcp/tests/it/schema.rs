//! Schema conversion of the test server's tools, as sent to the model (strict where
//! possible, the server's own schema otherwise).

use infty_mcp::schema::for_model;
use serde_json::json;

#[test]
fn the_test_servers_schemas_as_sent() {
    let converted: Vec<_> = infty_mcp::test_server::tools()
        .iter()
        .map(|tool| {
            let schema = for_model(&tool.input_schema);
            json!({
                "tool": tool.name,
                "strict": schema.strict,
                "not_strict_because": schema.not_strict_because,
                "parameters": schema.parameters,
            })
        })
        .collect();
    insta::assert_json_snapshot!("test_server_schemas", converted);
}

#[test]
fn a_rich_schema_as_sent() {
    let input = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "title": "Search",
        "properties": {
            "query": {"type": "string", "maxLength": 200, "pattern": "^(?=x)"},
            "since": {"type": "string", "format": "date"},
            "link": {"type": "string", "format": "uri"},
            "limit": {"type": ["integer"], "maximum": 50},
            "sort": {"oneOf": [{"const": "new"}, {"const": "old"}]},
            "filter": {"$ref": "#/$defs/filter"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true}
        },
        "required": ["query"],
        "$defs": {
            "filter": {
                "type": "object",
                "properties": {"author": {"type": "string"}, "open": {"type": "boolean"}},
                "required": ["open"],
                "additionalProperties": false
            }
        }
    });
    let serde_json::Value::Object(input) = input else {
        unreachable!()
    };
    let schema = for_model(&input);
    assert!(schema.strict, "{:?}", schema.not_strict_because);
    insta::assert_json_snapshot!("rich_schema", schema.parameters);
}
