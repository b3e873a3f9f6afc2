//! Which preset a server is, when it says so itself: llama.cpp's `llama-server` answers
//! `GET /props` with its generation settings, which no other supported server does.
//!
//! Detection is a hint for callers that were given a URL and no preset name; a named preset
//! always wins. It must never fail a run: any error, timeout or unexpected answer means
//! "unknown", and it never sends the API key (the probed route needs none).

use std::time::Duration;

use serde::Deserialize;

/// What the probe reads of llama.cpp's `/props` (the fields every version since 2024 has).
#[derive(Deserialize)]
struct LlamaCppProps {
    default_generation_settings: serde_json::Value,
    total_slots: u64,
}

/// The preset name (see [`crate::PRESET_NAMES`]) of the server at `base_url`, when it
/// identifies itself, within `timeout`; `None` when it does not or cannot be asked.
pub async fn detect_preset(base_url: &str, timeout: Duration) -> Option<&'static str> {
    let client = reqwest::Client::builder()
        .connect_timeout(timeout)
        .timeout(timeout)
        .build()
        .ok()?;
    let url = format!("{}/props", server_root(base_url));
    let response = client.get(&url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let props: LlamaCppProps = response.json().await.ok()?;
    (props.default_generation_settings.is_object() && props.total_slots > 0).then_some("llamacpp")
}

/// The server's root: the base URL without its trailing API version (`/v1`).
fn server_root(base_url: &str) -> &str {
    let trimmed = base_url.trim_end_matches('/');
    trimmed.strip_suffix("/v1").unwrap_or(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_drops_the_api_version() {
        assert_eq!(
            server_root("http://127.0.0.1:8080/v1/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(server_root("http://h/api"), "http://h/api");
    }
}
