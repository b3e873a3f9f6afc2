//! The scripted server answers per route, records bodies, and fails clearly when empty.

use infty_model::test_support::{ChatSse, ResponsesSse, ScriptedReply, ScriptedServer};
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

#[tokio::test]
async fn concurrent_callers_get_their_own_scripts() {
    let server = ScriptedServer::start_async(|body| {
        body["messages"][0]["content"]
            .as_str()
            .unwrap_or("none")
            .to_owned()
    })
    .await;
    let roles = ["verifier-1", "verifier-2", "verifier-3"];
    for role in roles {
        for turn in 0..2 {
            server.push(
                role,
                ScriptedReply::sse(
                    ChatSse::new(role)
                        .text(&format!("{role} turn {turn}"))
                        .build(),
                ),
            );
        }
    }
    let client = ModelClient::new(provider(server.base_url(), WireApi::Chat)).unwrap();
    let calls = roles.map(|role| {
        let client = client.clone();
        tokio::spawn(async move {
            let request = ModelRequest {
                model: "m".into(),
                instructions: role.into(),
                input: vec![Item::user("judge")],
                ..ModelRequest::default()
            };
            let first = client.complete(&request, &|_| {}).await.unwrap().text();
            let second = client.complete(&request, &|_| {}).await.unwrap().text();
            (first, second)
        })
    });
    for (role, call) in roles.into_iter().zip(calls) {
        let (first, second) = call.await.unwrap();
        assert_eq!(first, format!("{role} turn 0"));
        assert_eq!(second, format!("{role} turn 1"));
    }
    assert_eq!(server.requests().len(), 6);
    assert!(server.remaining().values().all(|left| *left == 0));
}

#[test]
fn starts_outside_a_runtime_and_serves_error_replies_with_headers() {
    let server = ScriptedServer::start(|_| "only".to_owned());
    server.push(
        "only",
        ScriptedReply::error(400, r#"{"error":{"message":"nope"}}"#)
            .with_header("x-request-id", "req_9"),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = ModelClient::new(provider(server.base_url(), WireApi::Chat)).unwrap();
    let request = ModelRequest {
        model: "m".into(),
        ..ModelRequest::default()
    };
    let err = rt.block_on(client.complete(&request, &|_| {})).unwrap_err();
    assert_eq!(err.request_id(), Some("req_9"));
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn the_in_process_model_follows_the_same_scripts() {
    use infty_model::StreamEvent;
    use infty_model::test_support::ScriptedModel;
    use std::sync::Mutex;

    let model = ScriptedModel::new(WireApi::Responses, |body| {
        body["instructions"].as_str().unwrap_or("none").to_owned()
    });
    model.push(
        "solver",
        ScriptedReply::sse(
            ResponsesSse::new("resp_1")
                .function_call("call_1", "shell", r#"{"command":"ls"}"#)
                .usage(5, 1)
                .build(),
        ),
    );
    model.push(
        "solver",
        ScriptedReply::error(
            400,
            r#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#,
        )
        .with_header("x-request-id", "req_7"),
    );
    let request = ModelRequest {
        model: "m".into(),
        instructions: "solver".into(),
        input: vec![Item::user("go")],
        ..ModelRequest::default()
    };
    let seen = Mutex::new(Vec::new());
    let record = |event: StreamEvent| seen.lock().unwrap().push(event);
    let api: &dyn ModelApi = &model;
    let response = api.complete(&request, &record).await.unwrap();
    assert_eq!(response.function_calls().count(), 1);
    assert!(
        seen.lock()
            .unwrap()
            .contains(&StreamEvent::ToolCallStarted {
                call_id: "call_1".into(),
                name: "shell".into()
            })
    );
    let err = api.complete(&request, &record).await.unwrap_err();
    assert!(err.is_context_overflow());
    assert_eq!(err.request_id(), Some("req_7"));
    let err = api.complete(&request, &record).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("script exhausted for route solver"),
        "{err}"
    );
    assert_eq!(model.requests().len(), 3);
    assert_eq!(model.requests()[0].1["instructions"], "solver");
}
