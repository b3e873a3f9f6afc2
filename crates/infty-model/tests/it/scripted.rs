//! The scripted server answers per route, records bodies, and fails clearly when empty.

use infty_model::test_support::{ResponsesSse, ScriptedReply, ScriptedServer};
use infty_model::{Item, ModelApi, ModelClient, ModelRequest, ProviderConfig, WireApi};

fn provider(base_url: String, wire_api: WireApi) -> ProviderConfig {
    let mut config = ProviderConfig::ollama();
    config.base_url = base_url;
    config.wire_api = wire_api;
    config
}

#[tokio::test]
async fn routes_replies_and_records_requests() {
    let server = ScriptedServer::start_async(|body| {
        body["instructions"].as_str().unwrap_or("none").to_owned()
    })
    .await;
    server.push(
        "solver",
        ScriptedReply::sse(ResponsesSse::new("resp_1").text("hello").build()),
    );
    let client = ModelClient::new(provider(server.base_url(), WireApi::Responses)).unwrap();
    let request = ModelRequest {
        model: "m".into(),
        instructions: "solver".into(),
        input: vec![Item::user("hi")],
        ..ModelRequest::default()
    };
    let response = client.complete(&request, &|_| {}).await.unwrap();
    assert_eq!(response.text(), "hello");

    let err = client.complete(&request, &|_| {}).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("script exhausted for route solver"),
        "{err}"
    );
    let routes: Vec<String> = server.requests().into_iter().map(|(r, _)| r).collect();
    assert_eq!(routes, ["solver", "solver"]);
    assert_eq!(server.remaining().get("solver"), Some(&0));
}
