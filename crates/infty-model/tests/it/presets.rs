//! The documented provider presets, as configured.

use std::time::Duration;

use infty_model::{PRESET_NAMES, ProviderConfig, detect_preset};

#[test]
fn presets_are_documented_settings() {
    let presets: Vec<String> = PRESET_NAMES
        .iter()
        .map(|name| format!("{:#?}", ProviderConfig::preset(name).unwrap()))
        .collect();
    insta::assert_snapshot!(presets.join("\n\n"));
}

#[test]
fn preset_aliases() {
    for (alias, name) in [
        ("llama.cpp", "llamacpp"),
        ("llama-cpp", "llamacpp"),
        ("lm-studio", "lmstudio"),
    ] {
        assert_eq!(ProviderConfig::preset(alias).unwrap().name, name);
    }
}

#[tokio::test]
async fn llama_cpp_is_detected_by_its_props() {
    let mut server = mockito::Server::new_async().await;
    let props = server
        .mock("GET", "/props")
        .with_header("content-type", "application/json")
        .with_body(r#"{"default_generation_settings":{"n_ctx":2048},"total_slots":1,"model_path":"m.gguf","build_info":"b1"}"#)
        .create_async()
        .await;
    let base = format!("{}/v1", server.url());
    assert_eq!(
        detect_preset(&base, Duration::from_secs(2)).await,
        Some("llamacpp")
    );
    props.assert_async().await;
}

#[tokio::test]
async fn other_servers_are_not_detected() {
    let mut server = mockito::Server::new_async().await;
    let base = format!("{}/v1", server.url());
    // No route at all (mockito answers 501), then JSON of another shape, then not JSON.
    assert_eq!(detect_preset(&base, Duration::from_secs(2)).await, None);
    for body in [r#"{"object":"list","data":[]}"#, "<html>props</html>"] {
        let mock = server
            .mock("GET", "/props")
            .with_body(body)
            .create_async()
            .await;
        assert_eq!(
            detect_preset(&base, Duration::from_secs(2)).await,
            None,
            "{body}"
        );
        mock.remove_async().await;
    }
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    assert_eq!(detect_preset(&url, Duration::from_secs(2)).await, None);
}
