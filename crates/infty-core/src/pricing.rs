//! What OpenAI's models cost, per million tokens, for the cost budget and reports.
//!
//! A built-in table, taken from OpenAI's published prices on [`PRICES_TAKEN_ON`]; models not
//! in it (and every model of a local or other server) cost nothing unless the user prices
//! them (`[prices."MODEL"]` in the CLI's config file). The prices a run used are recorded in
//! its `run.json`, so a later change to this table never rewrites a run's history. This
//! module is data and lookup only: no IO.

use infty_store::ModelPrice;

/// The day the built-in prices were read from OpenAI's pricing page.
pub const PRICES_TAKEN_ON: &str = "2025-11-15";

/// US dollars per million tokens: (model, input, cached input, output).
const OPENAI: &[(&str, f64, f64, f64)] = &[
    ("gpt-5.1", 1.25, 0.125, 10.0),
    ("gpt-5", 1.25, 0.125, 10.0),
    ("gpt-5-mini", 0.25, 0.025, 2.0),
    ("gpt-5-nano", 0.05, 0.005, 0.4),
    ("gpt-5-codex", 1.25, 0.125, 10.0),
    ("gpt-5.1-codex", 1.25, 0.125, 10.0),
    ("gpt-5-pro", 15.0, 15.0, 120.0),
    ("gpt-4.1", 2.0, 0.5, 8.0),
    ("gpt-4.1-mini", 0.4, 0.1, 1.6),
    ("gpt-4.1-nano", 0.1, 0.025, 0.4),
    ("gpt-4o", 2.5, 1.25, 10.0),
    ("gpt-4o-mini", 0.15, 0.075, 0.6),
    ("o3", 2.0, 0.5, 8.0),
    ("o3-mini", 1.1, 0.55, 4.4),
    ("o4-mini", 1.1, 0.275, 4.4),
    ("o1", 15.0, 7.5, 60.0),
];

/// The built-in price of an OpenAI model. A dated snapshot (`gpt-5-2025-08-07`) has the
/// price of its model.
pub fn openai_price(model: &str) -> Option<ModelPrice> {
    let lookup = |name: &str| {
        OPENAI
            .iter()
            .find(|(known, ..)| *known == name)
            .map(|(_, input, cached, output)| ModelPrice {
                input_per_mtok: *input,
                cached_input_per_mtok: *cached,
                output_per_mtok: *output,
            })
    };
    lookup(model).or_else(|| lookup(strip_date(model)?))
}

/// `gpt-5-2025-08-07` → `gpt-5`.
fn strip_date(model: &str) -> Option<&str> {
    let (base, date) = model.split_at_checked(model.len().checked_sub(11)?)?;
    let date = date.strip_prefix('-')?;
    let bytes = date.as_bytes();
    let shape = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    shape.then_some(base)
}

/// Whether a base URL is OpenAI's own API, the only server the built-in table prices.
pub fn is_openai(base_url: &str) -> bool {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    host.eq_ignore_ascii_case("api.openai.com")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let cases = [
            ("gpt-5", Some(1.25)),
            ("gpt-5-2025-08-07", Some(1.25)),
            ("gpt-5-mini-2025-08-07", Some(0.25)),
            ("gpt-5-20250807", None),
            ("qwen3:14b", None),
            ("", None),
        ];
        for (model, input) in cases {
            assert_eq!(
                openai_price(model).map(|p| p.input_per_mtok),
                input,
                "{model}"
            );
        }
        assert!(is_openai("https://api.openai.com/v1"));
        assert!(!is_openai("http://127.0.0.1:8080/v1"));
        assert!(!is_openai("https://api.openai.com.evil.example/v1"));
    }
}
