//! How many tokens a model's context holds: built in for known OpenAI models, asked of the
//! server where it says it (vLLM and OpenRouter `GET /v1/models`, llama.cpp `GET /props`,
//! Ollama `POST /api/show`).
//!
//! Compaction needs this number; with it known by default, a long run on defaults never
//! dies of a full context. [`discover_context_window`] never fails: a server that does not
//! answer, answers slowly or answers nonsense yields `None` (compaction off, said in the
//! log). This module must never send the API key anywhere but the provider's own base URL,
//! and never wait more than a few seconds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::provider::ProviderConfig;
use crate::wire::usage::MAX_PLAUSIBLE_TOKENS;

/// Where a context window came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowSource {
    /// infty's table of known models.
    BuiltIn,
    /// The server said so, at this URL.
    Server(String),
}

/// A model's context window and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextWindow {
    /// Tokens the context holds (prompt and output together).
    pub tokens: u64,
    /// Where the number came from.
    pub source: WindowSource,
}

/// One known model family: names equal to `prefix` or continuing it after `-`, `.`, `:`
/// or `@` (dated and sized variants).
struct Known {
    prefix: &'static str,
    tokens: u64,
    reasoning: bool,
}

/// OpenAI's published context windows. The longest matching prefix wins.
const KNOWN: &[Known] = &[
    Known {
        prefix: "gpt-5",
        tokens: 400_000,
        reasoning: true,
    },
    Known {
        prefix: "gpt-5-chat",
        tokens: 128_000,
        reasoning: false,
    },
    Known {
        prefix: "gpt-5.1-chat",
        tokens: 128_000,
        reasoning: false,
    },
    Known {
        prefix: "gpt-5.2-chat",
        tokens: 128_000,
        reasoning: false,
    },
    Known {
        prefix: "gpt-4.1",
        tokens: 1_047_576,
        reasoning: false,
    },
    Known {
        prefix: "gpt-4o",
        tokens: 128_000,
        reasoning: false,
    },
    Known {
        prefix: "gpt-4-turbo",
        tokens: 128_000,
        reasoning: false,
    },
    Known {
        prefix: "gpt-4",
        tokens: 8_192,
        reasoning: false,
    },
    Known {
        prefix: "gpt-3.5-turbo",
        tokens: 16_385,
        reasoning: false,
    },
    Known {
        prefix: "o1",
        tokens: 200_000,
        reasoning: true,
    },
    Known {
        prefix: "o1-mini",
        tokens: 128_000,
        reasoning: true,
    },
    Known {
        prefix: "o3",
        tokens: 200_000,
        reasoning: true,
    },
    Known {
        prefix: "o4-mini",
        tokens: 200_000,
        reasoning: true,
    },
    Known {
        prefix: "codex-mini",
        tokens: 200_000,
        reasoning: true,
    },
    Known {
        prefix: "gpt-oss",
        tokens: 131_072,
        reasoning: true,
    },
];

fn known(model: &str) -> Option<&'static Known> {
    // `openai/gpt-5` (OpenRouter and proxies) is `gpt-5`.
    let name = model
        .rsplit('/')
        .next()
        .unwrap_or(model)
        .to_ascii_lowercase();
    KNOWN
        .iter()
        .filter(|k| {
            name.strip_prefix(k.prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', ':', '@']))
        })
        .max_by_key(|k| k.prefix.len())
}

/// The built-in context window of a known OpenAI model.
pub fn known_context_window(model: &str) -> Option<u64> {
    known(model).map(|k| k.tokens)
}

/// True for known models that reason (and so return reasoning items to replay).
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    known(model).is_some_and(|k| k.reasoning)
}

/// How long one question to the server may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The context window of `model` at `provider`: the server's own word where the provider
/// has a way to say it, else the built-in table, else `None`.
///
/// Which question is asked follows the provider preset's name: `openai` is never asked (its
/// `/models` has no sizes); `ollama` is asked `POST /api/show` (`num_ctx` of the model's
/// parameters, else its `*.context_length`); `llama-cpp` `GET /props` (`n_ctx` of the
/// default generation settings), then `GET /v1/models`; any other `GET /v1/models`
/// (`max_model_len`, `context_length`, `max_context_length` or `context_window` of the
/// entry whose `id` is the model), then `GET /props`.
pub async fn discover_context_window(
    provider: &ProviderConfig,
    model: &str,
) -> Option<ContextWindow> {
    let asked = match provider.name.as_str() {
        "openai" => None,
        _ => ask_server(provider, model).await,
    };
    asked.or_else(|| {
        known_context_window(model).map(|tokens| ContextWindow {
            tokens,
            source: WindowSource::BuiltIn,
        })
    })
}

#[derive(Clone, Copy)]
enum Probe {
    Models,
    Props,
    OllamaShow,
}

async fn ask_server(provider: &ProviderConfig, model: &str) -> Option<ContextWindow> {
    let probes: &[Probe] = match provider.name.as_str() {
        "ollama" => &[Probe::OllamaShow],
        "llama-cpp" => &[Probe::Props, Probe::Models],
        _ => &[Probe::Models, Probe::Props],
    };
    let http = reqwest::Client::builder()
        .connect_timeout(provider.connect_timeout.min(PROBE_TIMEOUT))
        .timeout(PROBE_TIMEOUT)
        .build()
        .ok()?;
    let base = provider.base_url.trim_end_matches('/');
    // Servers' own endpoints live beside the OpenAI-compatible `/v1`.
    let root = base.strip_suffix("/v1").unwrap_or(base);
    for probe in probes {
        let (url, request) = match probe {
            Probe::Models => {
                let url = format!("{base}/models");
                (url.clone(), http.get(url))
            }
            Probe::Props => {
                let url = format!("{root}/props");
                (url.clone(), http.get(url))
            }
            Probe::OllamaShow => {
                let url = format!("{root}/api/show");
                (url.clone(), http.post(url).json(&json!({"model": model})))
            }
        };
        let request = match &provider.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        };
        let body = match request.send().await {
            Ok(response) if response.status().is_success() => response.json::<Value>().await,
            Ok(response) => {
                tracing::debug!(%url, status = %response.status(), "no context window here");
                continue;
            }
            Err(err) => {
                tracing::debug!(%url, error = %err.without_url(), "no context window here");
                continue;
            }
        };
        let Ok(body) = body else { continue };
        let tokens = match probe {
            Probe::Models => from_models(&body, model),
            Probe::Props => from_props(&body),
            Probe::OllamaShow => from_ollama_show(&body),
        };
        if let Some(tokens) = tokens {
            tracing::info!(%url, model, tokens, "context window from the server");
            return Some(ContextWindow {
                tokens,
                source: WindowSource::Server(url),
            });
        }
    }
    None
}

/// A plausible window: at least a thousand tokens, at most what any model holds.
fn plausible(value: Option<&Value>) -> Option<u64> {
    let tokens = value?.as_u64()?;
    (1_000..=MAX_PLAUSIBLE_TOKENS)
        .contains(&tokens)
        .then_some(tokens)
}

fn from_models(body: &Value, model: &str) -> Option<u64> {
    let entries = body.get("data")?.as_array()?;
    let entry = entries
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(model))?;
    [
        "max_model_len",
        "context_length",
        "max_context_length",
        "context_window",
    ]
    .iter()
    .find_map(|key| plausible(entry.get(*key)))
}

fn from_props(body: &Value) -> Option<u64> {
    plausible(body.pointer("/default_generation_settings/n_ctx"))
        .or_else(|| plausible(body.get("n_ctx")))
}

fn from_ollama_show(body: &Value) -> Option<u64> {
    // `num_ctx` is what the server will actually use, when the model sets it.
    let num_ctx = body
        .get("parameters")
        .and_then(Value::as_str)
        .and_then(|parameters| {
            parameters.lines().find_map(|line| {
                let mut words = line.split_whitespace();
                (words.next() == Some("num_ctx"))
                    .then(|| words.next()?.parse::<u64>().ok())
                    .flatten()
            })
        });
    plausible(num_ctx.map(Value::from).as_ref()).or_else(|| {
        body.get("model_info")?
            .as_object()?
            .iter()
            .filter(|(key, _)| key.ends_with(".context_length"))
            .find_map(|(_, value)| plausible(Some(value)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_table() {
        let cases = [
            ("gpt-5", Some(400_000)),
            ("gpt-5-mini", Some(400_000)),
            ("gpt-5.1-codex", Some(400_000)),
            ("gpt-5-chat-latest", Some(128_000)),
            ("gpt-4o-2024-08-06", Some(128_000)),
            ("gpt-4o-mini", Some(128_000)),
            ("gpt-4.1-nano", Some(1_047_576)),
            ("gpt-4", Some(8_192)),
            ("o3-mini", Some(200_000)),
            ("o1-mini", Some(128_000)),
            ("openai/gpt-5", Some(400_000)),
            ("GPT-5", Some(400_000)),
            ("gpt-50", None),
            ("qwen3:14b", None),
            ("", None),
        ];
        for (model, expected) in cases {
            assert_eq!(known_context_window(model), expected, "{model}");
        }
        assert!(is_reasoning_model("gpt-5-mini"));
        assert!(!is_reasoning_model("gpt-4o"));
        assert!(!is_reasoning_model("llama3"));
    }

    #[test]
    fn server_answers() {
        let models = json!({"data": [
            {"id": "other", "max_model_len": 4096},
            {"id": "qwen", "max_model_len": 32768}
        ]});
        assert_eq!(from_models(&models, "qwen"), Some(32_768));
        assert_eq!(from_models(&models, "missing"), None);
        let openrouter = json!({"data": [{"id": "a/b", "context_length": 200000}]});
        assert_eq!(from_models(&openrouter, "a/b"), Some(200_000));
        let absurd = json!({"data": [{"id": "m", "max_model_len": -1}, {"id": "n", "max_model_len": 1u64 << 60}]});
        assert_eq!(from_models(&absurd, "m"), None);
        assert_eq!(from_models(&absurd, "n"), None);
        assert_eq!(
            from_props(&json!({"default_generation_settings": {"n_ctx": 8192}})),
            Some(8192)
        );
        assert_eq!(from_props(&json!({"n_ctx": 4096})), Some(4096));
        assert_eq!(from_props(&json!({})), None);
        let show = json!({"parameters": "stop \"<|im_end|>\"\nnum_ctx 16384", "model_info": {"qwen3.context_length": 40960}});
        assert_eq!(from_ollama_show(&show), Some(16_384));
        let show =
            json!({"model_info": {"general.architecture": "qwen3", "qwen3.context_length": 40960}});
        assert_eq!(from_ollama_show(&show), Some(40_960));
    }
}
