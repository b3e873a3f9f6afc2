//! Turns provider flags, the environment and what a run recorded into a model client
//! configuration.
//!
//! The preset (what the server accepts) is chosen by name (`--provider`, `provider.name` in
//! the config file, or what the run recorded); without one, a server that identifies itself
//! (llama.cpp on `GET /props`) picks its preset, api.openai.com is `openai`, and anything
//! else gets the conservative `vllm` capabilities with the Responses API, as before presets
//! were named. Precedence of the base URL: flag (or config) > recorded > `OPENAI_BASE_URL` >
//! the preset's own URL > OpenAI. The key is read from the environment only
//! (`OPENAI_API_KEY`, else the preset's own variable such as `OPENROUTER_API_KEY`) and is
//! never written anywhere: `run.json` records the variable's name.

use std::time::Duration;

use anyhow::{Result, bail};
use infty_model::{ApiKey, ProviderConfig, WireApi};
use infty_store::ProviderRecord;

use crate::args::{ProviderArgs, WireApiArg};

/// The variable holding the API key.
pub(crate) const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// The variable holding the base URL.
pub(crate) const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// OpenAI's API.
pub(crate) const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// How long detection may wait for a server's answer.
const DETECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The provider to use, and what `run.json` records of it. A resumed run passes what it
/// recorded, which wins over the environment but not over flags.
pub(crate) fn resolve(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
) -> Result<(ProviderConfig, ProviderRecord)> {
    resolve_here(args, recorded, true)
}

/// [`resolve`] without requiring a key: for a run that another machine will drive with its
/// own (`infty submit`).
pub(crate) fn resolve_unkeyed(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
) -> Result<(ProviderConfig, ProviderRecord)> {
    resolve_here(args, recorded, false)
}

/// [`resolve_with`] over this process's environment and the real detector.
fn resolve_here(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
    require_key: bool,
) -> Result<(ProviderConfig, ProviderRecord)> {
    let env = |name: &str| std::env::var(name).ok();
    resolve_with(args, recorded, env, detect, require_key)
}

/// [`resolve`] with an injected environment and detector, for tests; `require_key` says
/// whether a provider that needs a key must have one here.
fn resolve_with(
    args: &ProviderArgs,
    recorded: Option<&ProviderRecord>,
    env: impl Fn(&str) -> Option<String>,
    detect: impl FnOnce(&str) -> Option<&'static str>,
    require_key: bool,
) -> Result<(ProviderConfig, ProviderRecord)> {
    let non_blank = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let named = args
        .provider
        .map(|preset| preset.as_str().to_string())
        .or_else(|| recorded.and_then(|r| r.name.clone()))
        .and_then(|name| ProviderConfig::preset(&name));
    let base_url = args
        .base_url
        .clone()
        .or_else(|| {
            recorded
                .map(|r| r.base_url.clone())
                .filter(|url| !url.is_empty())
        })
        .or_else(|| non_blank(BASE_URL_ENV))
        .or_else(|| named.as_ref().map(|preset| preset.base_url.clone()))
        .unwrap_or_else(|| OPENAI_BASE_URL.to_string());
    let base_url = base_url.trim_end_matches('/').to_string();
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        bail!(crate::Coded {
            code: crate::EXIT_USAGE,
            message: format!("invalid base URL {base_url:?}: expected http://... or https://..."),
        });
    }
    let (mut provider, chosen) = match named {
        Some(preset) => (preset, true),
        None if is_openai(&base_url) => (ProviderConfig::openai(), true),
        None => match detect(&base_url).and_then(ProviderConfig::preset) {
            Some(preset) => (preset, true),
            None => (ProviderConfig::vllm(), false),
        },
    };
    let wire_api = match args.wire_api {
        Some(WireApiArg::Chat) => WireApi::Chat,
        Some(WireApiArg::Responses) => WireApi::Responses,
        None => recorded
            .and_then(|r| r.wire_api.parse().ok())
            .unwrap_or(if chosen {
                provider.wire_api
            } else {
                WireApi::Responses
            }),
    };
    provider.base_url = base_url.clone();
    provider.wire_api = wire_api;
    let own_var = provider
        .api_key_env
        .clone()
        .filter(|var| var != API_KEY_ENV);
    let (key_var, key) = match non_blank(API_KEY_ENV) {
        Some(key) => (API_KEY_ENV.to_string(), Some(key)),
        None => match own_var.and_then(|var| non_blank(&var).map(|key| (var, key))) {
            Some((var, key)) => (var, Some(key)),
            None => (API_KEY_ENV.to_string(), None),
        },
    };
    provider.api_key = key.map(|key| ApiKey::new(key.trim()));
    if require_key && provider.api_key.is_none() && is_openai(&base_url) {
        bail!(
            "{API_KEY_ENV} is not set: export your OpenAI API key, or point --base-url at a local OpenAI-compatible server"
        );
    }
    if require_key && provider.api_key.is_none() && provider.capabilities.needs_api_key {
        let own = provider
            .api_key_env
            .as_deref()
            .filter(|var| *var != API_KEY_ENV)
            .map(|var| format!(" or {var}"))
            .unwrap_or_default();
        bail!(
            "provider {} needs an API key: set {API_KEY_ENV}{own}",
            provider.name
        );
    }
    provider.api_key_env = Some(key_var.clone());
    let record = ProviderRecord {
        base_url,
        wire_api: wire_api.to_string(),
        api_key_env: Some(key_var),
        name: Some(provider.name.clone()),
    };
    Ok((provider, record))
}

/// Asks the server what it is (llama.cpp answers on `/props`); `None` when it does not say.
fn detect(base_url: &str) -> Option<&'static str> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    let found = runtime.block_on(infty_model::detect_preset(base_url, DETECT_TIMEOUT));
    tracing::info!(
        base_url,
        preset = found.unwrap_or("none"),
        "provider detection"
    );
    found
}

fn is_openai(base_url: &str) -> bool {
    base_url.contains("://api.openai.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::ProviderArg;

    fn resolved(
        args: &ProviderArgs,
        recorded: Option<&ProviderRecord>,
        env: &[(&str, &str)],
        detected: Option<&'static str>,
    ) -> Result<(ProviderConfig, ProviderRecord)> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        resolve_with(
            args,
            recorded,
            |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
            |_| detected,
            true,
        )
    }

    fn summary(result: Result<(ProviderConfig, ProviderRecord)>) -> String {
        match result {
            Ok((provider, record)) => format!(
                "{} {} {} key={} record={:?}",
                provider.name,
                provider.base_url,
                provider.wire_api,
                provider.api_key.is_some(),
                record
            ),
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn presets_urls_wire_apis_and_keys() {
        let llamacpp = ProviderArgs {
            provider: Some(ProviderArg::Llamacpp),
            ..ProviderArgs::default()
        };
        let at = |url: &str| ProviderArgs {
            base_url: Some(url.to_string()),
            ..ProviderArgs::default()
        };
        let recorded = ProviderRecord {
            base_url: "http://127.0.0.1:9/v1".into(),
            wire_api: "responses".into(),
            api_key_env: Some(API_KEY_ENV.into()),
            name: Some("llamacpp".into()),
        };
        let key = [(API_KEY_ENV, "sk-1")];
        let cases: Vec<(&str, String)> = vec![
            (
                "named preset: its URL and wire API",
                summary(resolved(&llamacpp, None, &[], None)),
            ),
            (
                "named preset under OPENAI_BASE_URL",
                summary(resolved(
                    &llamacpp,
                    None,
                    &[(BASE_URL_ENV, "http://h:1/v1/")],
                    None,
                )),
            ),
            (
                "detected",
                summary(resolved(&at("http://h:2/v1"), None, &[], Some("llamacpp"))),
            ),
            (
                "neither named nor detected",
                summary(resolved(&at("http://h:3/v1"), None, &[], None)),
            ),
            (
                "openai",
                summary(resolved(&ProviderArgs::default(), None, &key, None)),
            ),
            (
                "openai without a key",
                summary(resolved(&ProviderArgs::default(), None, &[], None)),
            ),
            (
                "resumed: what the run recorded",
                summary(resolved(
                    &ProviderArgs::default(),
                    Some(&recorded),
                    &[],
                    None,
                )),
            ),
            (
                "openrouter with its own key variable",
                summary(resolved(
                    &ProviderArgs {
                        provider: Some(ProviderArg::Openrouter),
                        ..ProviderArgs::default()
                    },
                    None,
                    &[("OPENROUTER_API_KEY", "sk-or")],
                    None,
                )),
            ),
            (
                "openrouter without a key",
                summary(resolved(
                    &ProviderArgs {
                        provider: Some(ProviderArg::Openrouter),
                        ..ProviderArgs::default()
                    },
                    None,
                    &[],
                    None,
                )),
            ),
        ];
        let text: String = cases
            .iter()
            .map(|(name, got)| format!("{name}:\n  {got}\n"))
            .collect();
        insta::assert_snapshot!(text);
    }
}
