//! The context window of each role's model for a new run: `--context-window` when given,
//! else what `infty_model::discover_context_window` finds (the server's word, or infty's
//! table of OpenAI models). A model whose window stays unknown runs without compaction, and
//! the user is told how to turn it on. This module must never fail a run over a window.

use std::collections::BTreeMap;

use infty_model::{ProviderConfig, WindowSource, discover_context_window};

/// The window per distinct model of `models`.
pub(crate) fn context_windows(
    provider: &ProviderConfig,
    flag: Option<u64>,
    models: &[&str],
) -> BTreeMap<String, Option<u64>> {
    let mut windows = BTreeMap::new();
    if let Some(tokens) = flag {
        for model in models {
            windows.insert((*model).to_string(), Some(tokens));
        }
        return windows;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!(%error, "cannot ask the server for context windows");
            return windows;
        }
    };
    for model in models {
        if windows.contains_key(*model) {
            continue;
        }
        let found = runtime.block_on(discover_context_window(provider, model));
        match &found {
            Some(window) => {
                let source = match &window.source {
                    WindowSource::BuiltIn => "built in".to_string(),
                    WindowSource::Server(url) => url.clone(),
                };
                tracing::info!(model, tokens = window.tokens, %source, "context window");
            }
            None => eprintln!(
                "warning: the context window of model {model} is unknown, so its history is compacted only when the server refuses a prompt as too long; give --context-window TOKENS to compact it before that"
            ),
        }
        windows.insert((*model).to_string(), found.map(|w| w.tokens));
    }
    windows
}
