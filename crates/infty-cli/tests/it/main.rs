//! End-to-end tests of the `infty` binary against scripted model servers, and against a real
//! llama.cpp server (`llama_server`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod config;
mod create;
mod errors;
mod evidence;
mod finish;
mod fleet;
mod fleet_support;
mod help;
mod inspect;
mod llama_server;
mod mcp;
mod output_caps;
mod policies;
mod record;
mod resume;
mod sandbox;
mod telemetry;
mod ui;
