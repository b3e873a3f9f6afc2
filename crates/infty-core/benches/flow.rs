//! Benchmarks (placeholder until the crate lands).
fn main() {}
