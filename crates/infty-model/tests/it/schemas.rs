//! The request bodies, per wire API and provider preset, validated against OpenAI's own
//! published schemas (an extract checked in under `tests/schemas/`, its origin stated in
//! its `$comment`): `CreateResponse` for the Responses API, `CreateChatCompletionRequest`
//! for Chat. The 40-character limit OpenAI Chat puts on tool-call ids is not in the
//! document, so it is asserted directly.

use infty_model::ProviderConfig;
use infty_model::WireApi;
use serde_json::{Value, json};

use crate::request_bodies::{rich_request, sent_body, with_wire};

fn validator(root: &str) -> jsonschema::Validator {
    let path = format!(
        "{}/tests/schemas/openai-request-bodies.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    schema["$ref"] = json!(format!("#/$defs/{root}"));
    jsonschema::validator_for(&schema).unwrap()
}

fn problems(validator: &jsonschema::Validator, body: &Value) -> Vec<String> {
    validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

#[tokio::test]
async fn request_bodies_follow_the_published_schemas() {
    let responses = validator("CreateResponse");
    let chat = validator("CreateChatCompletionRequest");
    let cases = [
        ("openai", ProviderConfig::openai()),
        ("ollama", ProviderConfig::ollama()),
        ("vllm", ProviderConfig::vllm()),
        ("llama-cpp", ProviderConfig::llama_cpp()),
        ("lm-studio", ProviderConfig::lm_studio()),
        ("openrouter", ProviderConfig::openrouter()),
    ];
    for (name, provider) in cases {
        for wire_api in [WireApi::Responses, WireApi::Chat] {
            // Local servers without strict schemas omit `strict`, which OpenAI's document
            // requires of a Responses function tool: only OpenAI-shaped providers are held
            // to the Responses schema.
            if wire_api == WireApi::Responses && !provider.capabilities.supports_strict_schema {
                continue;
            }
            let body = sent_body(with_wire(provider.clone(), wire_api), &rich_request()).await;
            let validator = match wire_api {
                WireApi::Responses => &responses,
                WireApi::Chat => &chat,
            };
            let found = problems(validator, &body);
            assert!(found.is_empty(), "{name} {wire_api}: {found:#?}\n{body:#}");
            if wire_api == WireApi::Chat {
                for message in body["messages"].as_array().unwrap() {
                    for id in message["tool_calls"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|call| &call["id"])
                        .chain(message.get("tool_call_id"))
                    {
                        assert!(id.as_str().unwrap().len() <= 40, "{name}: {id}");
                    }
                }
            }
        }
    }
}

#[test]
fn the_schemas_refuse_what_the_api_refuses() {
    let responses = validator("CreateResponse");
    let body =
        |item: Value| json!({"model": "gpt-5", "input": [item], "stream": true, "store": false});
    let refused = [
        // The shape replayed before: an assistant message with output_text parts but no id.
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "hi"}]}),
        // A call id past the documented 64 characters.
        json!({"type": "function_call_output", "call_id": "x".repeat(65), "output": "ok"}),
    ];
    for item in refused {
        assert!(
            !problems(&responses, &body(item.clone())).is_empty(),
            "{item}"
        );
    }
    let accepted = json!({"type": "message", "role": "assistant", "content": "hi"});
    assert_eq!(problems(&responses, &body(accepted)), Vec::<String>::new());
    let summary = json!({"model": "gpt-5", "input": "hi", "reasoning": {"summary": "sometimes"}});
    assert!(!problems(&responses, &summary).is_empty());
}
