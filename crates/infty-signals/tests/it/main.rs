//! The one integration-test binary of infty-signals: data-driven tables with snapshots,
//! hostile inputs, property tests, schemas, payloads and the dependency invariant.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod dependencies;
mod hostile;
mod payloads;
mod properties;
mod schemas;
mod tables;

/// Renders a parse result the way a reader checks it: the value, or the error text that
/// would be sent back to the model.
fn render<T: std::fmt::Debug>(result: &Result<T, infty_signals::SignalError>) -> String {
    match result {
        Ok(value) => format!("ok {value:?}"),
        Err(error) => format!("err {error}"),
    }
}
