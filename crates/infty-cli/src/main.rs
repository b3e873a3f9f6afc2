//! The `infty` command.
fn main() {}
