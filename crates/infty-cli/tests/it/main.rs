//! End-to-end tests of the `infty` binary against scripted model servers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod config;
mod create;
mod errors;
mod help;
mod inspect;
mod policies;
mod resume;
mod sandbox;
