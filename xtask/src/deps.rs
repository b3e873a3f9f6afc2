//! The architecture invariants of DESIGN §2 as a check: which infty crate may depend on
//! which, and which crates must stay free of IO dependencies.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

use crate::workspace::read_toml;

/// For each crate: the infty crates it may depend on, and the only external crates it may
/// use (`None` means any).
fn rules() -> BTreeMap<&'static str, (&'static [&'static str], Option<&'static [&'static str]>)> {
    BTreeMap::from([
        (
            "infty-signals",
            (&[][..], Some(&["serde", "serde_json", "thiserror"][..])),
        ),
        (
            "infty-store",
            (
                &["infty-signals"][..],
                Some(
                    &[
                        "serde",
                        "serde_json",
                        "thiserror",
                        "camino",
                        "time",
                        "fastrand",
                        "sha2",
                        "hmac",
                        "rustix",
                    ][..],
                ),
            ),
        ),
        ("infty-model", (&[][..], None)),
        // The platform code (nix, landlock) sits in its Linux-only target table.
        (
            "infty-sandbox",
            (&[][..], Some(&["serde", "serde_json", "thiserror"][..])),
        ),
        (
            "infty-core",
            (
                &[
                    "infty-signals",
                    "infty-store",
                    "infty-model",
                    "infty-sandbox",
                ][..],
                None,
            ),
        ),
        // MCP servers as tools: on top of core's tool-provider seam, beside the CLI.
        (
            "infty-mcp",
            (&["infty-signals", "infty-store", "infty-core"][..], None),
        ),
        (
            "infty-fleet",
            (&["infty-store", "infty-model", "infty-core"][..], None),
        ),
        (
            "infty-ui",
            (&["infty-signals", "infty-store", "infty-core"][..], None),
        ),
        (
            "infty-cli",
            (
                &[
                    "infty-signals",
                    "infty-store",
                    "infty-model",
                    "infty-sandbox",
                    "infty-core",
                    "infty-fleet",
                    "infty-mcp",
                    "infty-ui",
                ][..],
                None,
            ),
        ),
    ])
}

/// Crates no library below the CLI may use directly for IO they must not do.
const FORBIDDEN_BELOW_CORE: &[&str] = &["tokio", "reqwest", "eventsource-stream"];

/// Whether `dep` is an OpenTelemetry crate: the libraries emit `tracing` spans only, and
/// the export is the binary's choice.
fn is_opentelemetry(dep: &str) -> bool {
    dep.starts_with("opentelemetry") || dep == "tracing-opentelemetry"
}

/// Checks every crate's `[dependencies]` against the rules.
pub fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for (name, (allowed_infty, allowed_external)) in rules() {
        let manifest = root.join("crates").join(name).join("Cargo.toml");
        let value = read_toml(&manifest)?;
        let deps = value
            .get("dependencies")
            .and_then(|deps| deps.as_table())
            .cloned()
            .unwrap_or_default();
        for dep in deps.keys() {
            if dep.starts_with("infty-") {
                if !allowed_infty.contains(&dep.as_str()) {
                    problems.push(format!("{name} must not depend on {dep}"));
                }
                continue;
            }
            if let Some(allowed) = allowed_external
                && !allowed.contains(&dep.as_str())
            {
                problems.push(format!(
                    "{name} must depend only on {allowed:?}, not on {dep}"
                ));
            }
            if name != "infty-cli" && is_opentelemetry(dep) {
                problems.push(format!(
                    "{name} must not use {dep} (only infty-cli exports telemetry)"
                ));
            }
            if matches!(name, "infty-signals" | "infty-store" | "infty-sandbox")
                && FORBIDDEN_BELOW_CORE.contains(&dep.as_str())
            {
                problems.push(format!(
                    "{name} must not use {dep} (no async runtime, no HTTP)"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "architecture invariants broken:\n  {}",
            problems.join("\n  ")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::workspace::workspace_root;

    #[test]
    fn workspace_follows_the_dependency_direction() {
        check(&workspace_root()).unwrap();
    }

    #[test]
    fn the_check_catches_a_forbidden_edge() {
        let dir = tempfile_dir();
        for name in rules().keys() {
            let folder = dir.join("crates").join(name);
            std::fs::create_dir_all(&folder).unwrap();
            let deps = if *name == "infty-signals" {
                "[dependencies]\ninfty-store = \"0.1\"\ntokio = \"1\"\n"
            } else if *name == "infty-core" {
                "[dependencies]\nopentelemetry = \"0.33\"\n"
            } else {
                "[dependencies]\n"
            };
            std::fs::write(
                folder.join("Cargo.toml"),
                format!("[package]\nname = \"{name}\"\n{deps}"),
            )
            .unwrap();
        }
        let error = check(&dir).unwrap_err().to_string();
        assert!(
            error.contains("infty-signals must not depend on infty-store"),
            "{error}"
        );
        assert!(
            error.contains("infty-signals must not use tokio"),
            "{error}"
        );
        assert!(
            error.contains("infty-core must not use opentelemetry"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("infty-xtask-deps-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
