//! Token usage as servers report it, read leniently: a usage object that cannot be trusted
//! is *unknown*, never a reason to drop the event that carries it.
//!
//! A count must be a non-negative integer no larger than [`MAX_PLAUSIBLE_TOKENS`]; a
//! negative, fractional, textual or absurdly large value makes the whole report unknown
//! (with a warning), because a budget fed such a number would either wrap around or stop a
//! run for nothing. This module must never fail a stream.

use serde_json::Value;

use crate::response::Usage;

/// No response of any model comes near this many tokens: the largest context windows are
/// around ten million.
pub(crate) const MAX_PLAUSIBLE_TOKENS: u64 = 100_000_000;

/// Field paths of one API's usage object.
pub(crate) struct UsageFields {
    pub(crate) input: &'static str,
    pub(crate) cached: &'static str,
    pub(crate) output: &'static str,
    pub(crate) reasoning: &'static str,
    pub(crate) total: &'static str,
}

/// Responses API: `input_tokens`, `output_tokens`, their details, `total_tokens`.
pub(crate) const RESPONSES: UsageFields = UsageFields {
    input: "/input_tokens",
    cached: "/input_tokens_details/cached_tokens",
    output: "/output_tokens",
    reasoning: "/output_tokens_details/reasoning_tokens",
    total: "/total_tokens",
};

/// Chat Completions: `prompt_tokens`, `completion_tokens`, their details, `total_tokens`.
pub(crate) const CHAT: UsageFields = UsageFields {
    input: "/prompt_tokens",
    cached: "/prompt_tokens_details/cached_tokens",
    output: "/completion_tokens",
    reasoning: "/completion_tokens_details/reasoning_tokens",
    total: "/total_tokens",
};

/// Reads a usage object; `None` when it is absent, `null`, or not to be trusted.
pub(crate) fn read(value: Option<&Value>, fields: &UsageFields) -> Option<Usage> {
    let value = value.filter(|v| !v.is_null())?;
    if !value.is_object() {
        tracing::warn!(usage = %value, "ignoring a usage report that is not an object");
        return None;
    }
    let count = |path: &str| -> Result<u64, ()> {
        match value.pointer(path) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(count) if count <= MAX_PLAUSIBLE_TOKENS => Ok(count),
                _ => Err(()),
            },
            Some(_) => Err(()),
        }
    };
    let counts = (|| {
        Ok::<_, ()>((
            count(fields.input)?,
            count(fields.cached)?,
            count(fields.output)?,
            count(fields.reasoning)?,
            count(fields.total)?,
        ))
    })();
    let Ok((input, cached, output, reasoning, total)) = counts else {
        tracing::warn!(
            usage = %value,
            "ignoring an implausible usage report (negative, fractional, textual, or over {MAX_PLAUSIBLE_TOKENS} tokens): usage unknown"
        );
        return None;
    };
    Some(Usage {
        input_tokens: input,
        cached_input_tokens: cached,
        output_tokens: output,
        reasoning_tokens: reasoning,
        total_tokens: if total == 0 {
            input.saturating_add(output)
        } else {
            total
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_table() {
        let ok = |input, output, total| {
            Some(Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: total,
                ..Usage::default()
            })
        };
        let cases = [
            (
                "plain",
                json!({"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}),
                ok(10, 2, 12),
            ),
            (
                "total missing",
                json!({"input_tokens": 10, "output_tokens": 2}),
                ok(10, 2, 12),
            ),
            (
                "null details",
                json!({"input_tokens": 1, "output_tokens": 1, "input_tokens_details": null}),
                ok(1, 1, 2),
            ),
            (
                "negative",
                json!({"input_tokens": -5, "output_tokens": 2}),
                None,
            ),
            (
                "float",
                json!({"input_tokens": 1.5, "output_tokens": 2}),
                None,
            ),
            (
                "whole float",
                json!({"input_tokens": 10.0, "output_tokens": 2}),
                None,
            ),
            (
                "string",
                json!({"input_tokens": "10", "output_tokens": 2}),
                None,
            ),
            (
                "2^64-1",
                json!({"input_tokens": 1, "output_tokens": 1, "total_tokens": u64::MAX}),
                None,
            ),
            (
                "beyond any window",
                json!({"input_tokens": MAX_PLAUSIBLE_TOKENS + 1}),
                None,
            ),
            (
                "at the limit",
                json!({"input_tokens": MAX_PLAUSIBLE_TOKENS, "output_tokens": MAX_PLAUSIBLE_TOKENS}),
                ok(
                    MAX_PLAUSIBLE_TOKENS,
                    MAX_PLAUSIBLE_TOKENS,
                    2 * MAX_PLAUSIBLE_TOKENS,
                ),
            ),
            ("not an object", json!([1, 2]), None),
            ("null", Value::Null, None),
        ];
        for (name, value, expected) in cases {
            assert_eq!(read(Some(&value), &RESPONSES), expected, "{name}");
        }
        let chat = json!({"prompt_tokens": 7, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 1}});
        assert_eq!(
            read(Some(&chat), &CHAT),
            Some(Usage {
                input_tokens: 7,
                cached_input_tokens: 4,
                output_tokens: 3,
                reasoning_tokens: 1,
                total_tokens: 10
            })
        );
    }
}
