//! Turns provider flags and the environment into a model client configuration.
//!
//! Precedence: flags, then environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`), then defaults.
//! The key is read from the environment only and is never written anywhere: `run.json`
//! records the variable's name.

use anyhow::{Result, bail};
use infty_model::{ApiKey, ProviderConfig, WireApi};
use infty_store::ProviderRecord;

use crate::args::{ProviderArgs, WireApiArg};

/// The variable holding the API key.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// The variable holding the base URL.
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// OpenAI's API.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The provider to use, and what `run.json` records of it. A resumed run passes what it
/// recorded, which wins over the environment but not over flags.
pub fn resolve(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
) -> Result<(ProviderConfig, ProviderRecord)> {
    let (provider, record) = resolve_unkeyed(args, recorded)?;
    if provider.api_key.is_none() && is_openai(&provider.base_url) {
        bail!(
            "{API_KEY_ENV} is not set: export your OpenAI API key, or point --base-url at a local OpenAI-compatible server"
        );
    }
    Ok((provider, record))
}

/// [`resolve`] without requiring a key: for a run that another machine will drive with its
/// own (`infty submit`).
pub fn resolve_unkeyed(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
) -> Result<(ProviderConfig, ProviderRecord)> {
    let base_url = args
        .base_url
        .clone()
        .or_else(|| {
            recorded
                .map(|r| r.base_url.clone())
                .filter(|url| !url.is_empty())
        })
        .or_else(|| non_blank_env(BASE_URL_ENV))
        .unwrap_or_else(|| OPENAI_BASE_URL.to_string());
    let base_url = base_url.trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        bail!(crate::Coded {
            code: crate::EXIT_USAGE,
            message: format!("invalid base URL {base_url:?}: expected http://... or https://..."),
        });
    }
    let wire_api = match args.wire_api {
        Some(WireApiArg::Chat) => WireApi::Chat,
        Some(WireApiArg::Responses) => WireApi::Responses,
        None => recorded
            .and_then(|r| r.wire_api.parse().ok())
            .unwrap_or(WireApi::Responses),
    };
    let mut provider = if is_openai(&base_url) {
        ProviderConfig::openai()
    } else {
        ProviderConfig::vllm()
    };
    provider.base_url = base_url.clone();
    provider.wire_api = wire_api;
    provider.api_key_env = Some(API_KEY_ENV.to_string());
    provider.api_key = non_blank_env(API_KEY_ENV).map(ApiKey::new);
    let record = ProviderRecord {
        base_url,
        wire_api: wire_api.to_string(),
        api_key_env: Some(API_KEY_ENV.to_string()),
    };
    Ok((provider, record))
}

fn is_openai(base_url: &str) -> bool {
    base_url.contains("://api.openai.com")
}

fn non_blank_env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}
