//! infty-core's integration tests: one binary, one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver;
mod flow;
mod races;
mod session;
mod tools;
