//! infty's developer tasks as a library, so `cargo xtask` and this crate's tests share them.
//!
//! - [`deps`]: the dependency direction of DESIGN §2.
//! - [`publish`]: what keeps the crates publishable and `cargo install infty-cli` working.
//! - [`dist`]: the release build and its archive; [`archive`] packs and reads archives.
//! - [`workspace`]: facts about the workspace and toolchain.
//!
//! Nothing here is part of infty itself; no infty crate may depend on this one.

pub mod archive;
pub mod deps;
pub mod dist;
pub mod publish;
pub mod workspace;
