//! infty's developer tasks, run as `cargo xtask <task>`.
//!
//! - `ci`: runs `.ci/run`, exactly what CI runs.
//! - `check-deps`: checks the dependency direction of DESIGN §2 (also a test of this crate).

mod deps;

use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = deps::workspace_root();
    match task.as_str() {
        "ci" => {
            let status = Command::new("bash")
                .arg(root.join(".ci/run"))
                .current_dir(&root)
                .status()
                .context("cannot run .ci/run")?;
            if !status.success() {
                bail!(".ci/run failed ({status})");
            }
            Ok(())
        }
        "check-deps" => {
            deps::check(&root)?;
            println!("dependency direction ok");
            Ok(())
        }
        other => bail!("unknown task {other:?}; tasks: ci, check-deps"),
    }
}
