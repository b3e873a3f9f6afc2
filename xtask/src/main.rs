//! infty's developer tasks.
fn main() {}
