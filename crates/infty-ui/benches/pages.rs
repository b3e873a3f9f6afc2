//! Benchmarks of the dashboard's pages (filled in below).
fn main() {}
