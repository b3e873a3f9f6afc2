//! `cargo xtask <task>`: infty's developer tasks (see `cargo xtask --help`).
//!
//! This binary only parses arguments and prints; the tasks live in the `xtask` library.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use xtask::{deps, dist, publish, workspace};

/// infty's developer tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
enum Task {
    /// Run `.ci/run`: exactly what CI runs.
    Ci,
    /// Build `infty` with the release profile and package it as
    /// `<target-dir>/dist/infty-<version>-<target>.tar.gz` with a `.sha256` beside it.
    Dist {
        /// Build for this target triple (its standard library must be installed).
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
        /// Where to put the archive [default: `<target-dir>/dist`].
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
        /// Package this already-built binary instead of building one.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Check the dependency direction between the crates (DESIGN §2).
    CheckDeps,
    /// Check that every crate `infty-cli` pulls can be published, and that CI packages them.
    CheckPublish,
}

fn main() -> Result<()> {
    let root = workspace::workspace_root();
    match Task::parse() {
        Task::Ci => {
            let status = Command::new("bash")
                .arg(root.join(".ci").join("run"))
                .current_dir(&root)
                .status()
                .context("cannot run .ci/run")?;
            if !status.success() {
                bail!(".ci/run failed ({status})");
            }
        }
        Task::Dist {
            target,
            out_dir,
            binary,
        } => {
            let host = workspace::host_triple()?;
            let target_triple = target.clone().unwrap_or_else(|| host.clone());
            let binary = match binary {
                Some(binary) => {
                    println!("packaging {} (not built by this task)", binary.display());
                    binary
                }
                None => {
                    let started = Instant::now();
                    let binary = dist::build_release(&root, target.as_deref())?;
                    println!(
                        "built    {} in {}s",
                        binary.display(),
                        started.elapsed().as_secs()
                    );
                    binary
                }
            };
            let out_dir = match out_dir {
                Some(dir) => dir,
                None => workspace::target_dir(&root)?.join("dist"),
            };
            let report = dist::package(&dist::PackageInput {
                version: workspace::workspace_version(&root)?,
                runnable: target_triple == host,
                target: target_triple,
                root,
                binary,
                out_dir,
            })?;
            print!("{report}");
        }
        Task::CheckDeps => {
            deps::check(&root)?;
            println!("dependency direction ok");
        }
        Task::CheckPublish => {
            publish::check(&root)?;
            publish::check_ci_packages_last(&root)?;
            println!(
                "publishable: {}",
                publish::published_crates(&root)?.join(", ")
            );
        }
    }
    Ok(())
}
