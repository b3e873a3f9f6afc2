//! The test server over streamable HTTP on loopback, in process: tools listed and called,
//! headers taken from named environment variables.

use infty_core::tools::ToolProvider;
use infty_mcp::{HostEnv, McpTools};
use infty_store::McpServerRecord;
use tokio_util::sync::CancellationToken;

use super::{counter_in, received};

#[tokio::test]
async fn an_http_server_is_listed_and_called() {
    let dir = tempfile::tempdir().unwrap();
    let counter = counter_in(&dir);
    let cancel = CancellationToken::new();
    let url = infty_mcp::test_server::serve_http(Some(counter.clone()), cancel.clone())
        .await
        .unwrap();
    let record = McpServerRecord {
        name: "web".into(),
        url: Some(url),
        headers: [("X-Api-Token".to_string(), "WEB_TOKEN".to_string())].into(),
        roles: vec!["solver".into()],
        timeout_secs: 10,
        ..McpServerRecord::default()
    };
    let env = HostEnv::of([("WEB_TOKEN", "tok-123")]);
    let tools = McpTools::start(std::slice::from_ref(&record), &env, None)
        .await
        .unwrap();
    assert!(tools.records()[0].offered.contains(&"web__add".to_string()));
    let result = tools.call("web__add", r#"{"a": 1, "b": 2}"#, 1000).await;
    assert!(result.ok, "{}", result.output);
    assert_eq!(result.output, "3");
    assert_eq!(received(&counter).len(), 1);
    tools.shutdown().await;

    // Without the variable that holds the header's value, nothing starts.
    let error = McpTools::start(&[record], &HostEnv::default(), None)
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "mcp server web: environment variable WEB_TOKEN is not set"
    );
    cancel.cancel();
}

#[tokio::test]
async fn an_unreachable_url_stops_start_with_one_line() {
    // A port nothing listens on: bind one, then let it go.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    drop(listener);
    let record = McpServerRecord {
        name: "web".into(),
        url: Some(url),
        roles: vec!["solver".into()],
        timeout_secs: 5,
        ..McpServerRecord::default()
    };
    let error = McpTools::start(&[record], &HostEnv::default(), None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("mcp server web could not start: "),
        "{error}"
    );
    assert!(!error.contains('\n'), "{error}");
}
