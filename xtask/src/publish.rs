//! The rules that keep `cargo install infty-cli` working: every crate `infty-cli` pulls
//! carries the metadata crates.io needs, ships the licence files, uses the one workspace
//! version, and names its infty dependencies with versions; and CI packages the workspace
//! last, so packaging never breaks unnoticed.
//!
//! `cargo package --workspace` checks what only a build can (the prompts travel with
//! `infty-core`, every crate compiles from its package); this module checks the rest quickly,
//! from the manifests alone. It never edits a manifest.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::workspace::read_toml;

/// The licence expression every published crate carries.
pub const LICENSE: &str = "MIT OR Apache-2.0";

/// The licence files every published crate ships (symlinks to the root's texts).
pub const LICENSE_FILES: &[&str] = &["LICENSE-MIT", "LICENSE-APACHE"];

/// The fields crates.io shows and that `cargo publish` wants.
const REQUIRED_FIELDS: &[&str] = &[
    "description",
    "license",
    "repository",
    "readme",
    "keywords",
    "categories",
];

/// The crate people install.
pub const BINARY_CRATE: &str = "infty-cli";

/// `infty-cli` and every infty crate it depends on, directly or not, in name order.
pub fn published_crates(root: &Path) -> Result<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut pending = vec![BINARY_CRATE.to_owned()];
    while let Some(name) = pending.pop() {
        if !found.insert(name.clone()) {
            continue;
        }
        let manifest = read_toml(&root.join("crates").join(&name).join("Cargo.toml"))?;
        for section in ["dependencies", "build-dependencies"] {
            let deps = manifest.get(section).and_then(|deps| deps.as_table());
            for dep in deps.into_iter().flat_map(|deps| deps.keys()) {
                if dep.starts_with("infty-") {
                    pending.push(dep.clone());
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// Checks every published crate; the error lists every problem found, one per line.
pub fn check(root: &Path) -> Result<()> {
    let root_manifest = read_toml(&root.join("Cargo.toml"))?;
    let workspace = root_manifest
        .get("workspace")
        .and_then(|workspace| workspace.as_table())
        .context("the root Cargo.toml has no [workspace]")?;
    let inherited = workspace
        .get("package")
        .and_then(|package| package.as_table())
        .cloned()
        .unwrap_or_default();
    let workspace_deps = workspace
        .get("dependencies")
        .and_then(|deps| deps.as_table())
        .cloned()
        .unwrap_or_default();
    let version = inherited
        .get("version")
        .and_then(|version| version.as_str())
        .context("the root Cargo.toml has no [workspace.package] version")?;

    let mut problems = Vec::new();
    for (name, spec) in &workspace_deps {
        if name.starts_with("infty-") && dependency_version(spec) != Some(version) {
            problems.push(format!(
                "[workspace.dependencies] {name} must carry version = \"{version}\""
            ));
        }
    }
    for name in published_crates(root)? {
        let folder = root.join("crates").join(&name);
        let manifest = read_toml(&folder.join("Cargo.toml"))?;
        let package = manifest
            .get("package")
            .and_then(|package| package.as_table())
            .cloned()
            .unwrap_or_default();
        check_package(&name, &folder, &package, &inherited, &mut problems);
        check_dependencies(&name, &manifest, &workspace_deps, &mut problems);
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!("crates are not publishable:\n  {}", problems.join("\n  "))
    }
}

/// A `[package]` field, following `field.workspace = true` to `[workspace.package]`.
fn field<'a>(
    package: &'a toml::Table,
    inherited: &'a toml::Table,
    key: &str,
) -> Option<&'a toml::Value> {
    let value = package.get(key)?;
    let from_workspace = value
        .get("workspace")
        .and_then(|flag| flag.as_bool())
        .unwrap_or(false);
    if from_workspace {
        inherited.get(key)
    } else {
        Some(value)
    }
}

fn check_package(
    name: &str,
    folder: &Path,
    package: &toml::Table,
    inherited: &toml::Table,
    problems: &mut Vec<String>,
) {
    for key in REQUIRED_FIELDS {
        let present = match field(package, inherited, key) {
            Some(toml::Value::String(text)) => !text.trim().is_empty(),
            Some(toml::Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
            None => false,
        };
        if !present {
            problems.push(format!("{name} has no {key}"));
        }
    }
    if let Some(license) = field(package, inherited, "license").and_then(|v| v.as_str())
        && license != LICENSE
    {
        problems.push(format!("{name} has license {license:?}, not {LICENSE:?}"));
    }
    if package.contains_key("license-file") {
        problems.push(format!(
            "{name} sets license-file; the licence is the expression {LICENSE:?}"
        ));
    }
    let uses_workspace_version = package
        .get("version")
        .and_then(|version| version.get("workspace"))
        .and_then(|flag| flag.as_bool())
        .unwrap_or(false);
    if !uses_workspace_version {
        problems.push(format!(
            "{name} must take its version from the workspace (version.workspace = true)"
        ));
    }
    if package.get("publish").and_then(|publish| publish.as_bool()) == Some(false) {
        problems.push(format!("{name} is publish = false, but infty-cli needs it"));
    }
    if let Some(readme) = field(package, inherited, "readme").and_then(|v| v.as_str())
        && !folder.join(readme).is_file()
    {
        problems.push(format!("{name}'s readme {readme} does not exist"));
    }
    if let Some(keywords) = field(package, inherited, "keywords").and_then(|v| v.as_array()) {
        if keywords.len() > 5 {
            problems.push(format!("{name} has more than 5 keywords"));
        }
        for keyword in keywords {
            let keyword = keyword.as_str().unwrap_or_default();
            if !keyword_is_valid(keyword) {
                problems.push(format!(
                    "{name} has keyword {keyword:?}, which crates.io refuses"
                ));
            }
        }
    }
    for license_file in LICENSE_FILES {
        let shipped = folder.join(license_file);
        let root_text = folder
            .parent()
            .and_then(Path::parent)
            .map(|root| root.join(license_file))
            .and_then(|path| std::fs::read(path).ok());
        match (std::fs::read(&shipped).ok(), root_text) {
            (Some(shipped), Some(root)) if shipped == root => {}
            (Some(_), Some(_)) => problems.push(format!(
                "{name}/{license_file} differs from the workspace's {license_file}"
            )),
            _ => problems.push(format!("{name} does not ship {license_file}")),
        }
    }
}

/// Every infty dependency that ends up in the published manifest needs a version.
fn check_dependencies(
    name: &str,
    manifest: &toml::Table,
    workspace_deps: &toml::Table,
    problems: &mut Vec<String>,
) {
    for section in ["dependencies", "build-dependencies"] {
        let Some(deps) = manifest.get(section).and_then(|deps| deps.as_table()) else {
            continue;
        };
        for (dep, spec) in deps.iter().filter(|(dep, _)| dep.starts_with("infty-")) {
            let inherits = spec
                .get("workspace")
                .and_then(|flag| flag.as_bool())
                .unwrap_or(false);
            let spec = if inherits {
                workspace_deps.get(dep).unwrap_or(spec)
            } else {
                spec
            };
            if dependency_version(spec).is_none() {
                problems.push(format!("{name} depends on {dep} without a version"));
            }
        }
    }
}

/// The version requirement of a dependency spec (`"1.0"` or `{ version = "1.0", … }`).
fn dependency_version(spec: &toml::Value) -> Option<&str> {
    match spec {
        toml::Value::String(version) => Some(version),
        toml::Value::Table(table) => table.get("version").and_then(|version| version.as_str()),
        _ => None,
    }
}

/// crates.io's keyword rule: ASCII, at most 20 characters, starts with a letter, then
/// letters, digits, `_`, `-` or `+`.
pub fn keyword_is_valid(keyword: &str) -> bool {
    let mut chars = keyword.chars();
    keyword.len() <= 20
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
}

/// The last command `.ci/run` runs must package the workspace, so nothing added later
/// can silently skip it.
pub fn check_ci_packages_last(root: &Path) -> Result<()> {
    let script = root.join(".ci").join("run");
    let text = std::fs::read_to_string(&script)
        .with_context(|| format!("cannot read {}", script.display()))?;
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with("echo"))
        .unwrap_or_default();
    if !(last.starts_with("cargo package --workspace") && last.contains("--locked")) {
        bail!(
            "the last step of {} is {last:?}, not `cargo package --workspace --locked`",
            script.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_follow_the_crates_io_rule() {
        let cases = [
            ("llm", true),
            ("command-line", true),
            ("c++", true),
            ("a_b", true),
            ("", false),
            ("1password", false),
            ("-llm", false),
            ("two words", false),
            ("abcdefghijklmnopqrstu", false),
            ("abcdefghijklmnopqrst", true),
            ("ünïcode", false),
        ];
        for (keyword, valid) in cases {
            assert_eq!(keyword_is_valid(keyword), valid, "{keyword:?}");
        }
    }
}
