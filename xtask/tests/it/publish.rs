//! The publishability rules, on the real workspace and on a broken one.

use std::path::Path;

use xtask::publish::{check, check_ci_packages_last, published_crates};
use xtask::workspace::workspace_root;

use crate::copy_fixture;

#[test]
fn infty_cli_pulls_every_library_crate() {
    assert_eq!(
        published_crates(&workspace_root()).unwrap(),
        [
            "infty-cli",
            "infty-core",
            "infty-fleet",
            "infty-mcp",
            "infty-model",
            "infty-sandbox",
            "infty-signals",
            "infty-store",
            "infty-ui"
        ]
    );
}

#[test]
fn the_workspace_is_publishable() {
    check(&workspace_root()).unwrap();
}

#[test]
fn ci_packages_the_workspace_last() {
    check_ci_packages_last(&workspace_root()).unwrap();
}

/// Lays out `tests/fixtures/unpublishable` as a workspace.
fn unpublishable_workspace(dir: &Path) {
    copy_fixture("unpublishable/root.toml", &dir.join("Cargo.toml"));
    copy_fixture("docs/LICENSE-MIT", &dir.join("LICENSE-MIT"));
    copy_fixture("docs/LICENSE-APACHE", &dir.join("LICENSE-APACHE"));
    let crates = dir.join("crates");
    for name in ["infty-cli", "infty-core", "infty-store"] {
        copy_fixture(
            &format!("unpublishable/{name}.toml"),
            &crates.join(name).join("Cargo.toml"),
        );
    }
    for name in ["infty-cli", "infty-store"] {
        copy_fixture("docs/README.md", &crates.join(name).join("README.md"));
        copy_fixture("docs/LICENSE-MIT", &crates.join(name).join("LICENSE-MIT"));
    }
    copy_fixture(
        "docs/LICENSE-APACHE",
        &crates.join("infty-store/LICENSE-APACHE"),
    );
    copy_fixture("docs/LICENSE-MIT", &crates.join("infty-cli/LICENSE-APACHE"));
}

#[test]
fn every_problem_of_an_unpublishable_workspace_is_named() {
    let dir = tempfile::tempdir().unwrap();
    unpublishable_workspace(dir.path());
    assert_eq!(
        published_crates(dir.path()).unwrap(),
        ["infty-cli", "infty-core", "infty-store"],
        "dev-dependencies are not published"
    );
    insta::assert_snapshot!(check(dir.path()).unwrap_err().to_string());
}

#[test]
fn the_ci_script_must_end_by_packaging() {
    let cases = [
        (
            "cargo test --workspace --locked\ncargo package --workspace --locked\n",
            true,
        ),
        (
            "cargo package --workspace --locked --exclude xtask\n\n# done\necho ok\n",
            true,
        ),
        (
            "cargo package --workspace --locked\ncargo test --workspace\n",
            false,
        ),
        ("cargo package --workspace\n", false),
        ("cargo package -p infty-cli --locked\n", false),
        ("", false),
    ];
    for (script, ok) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".ci")).unwrap();
        std::fs::write(dir.path().join(".ci/run"), script).unwrap();
        assert_eq!(check_ci_packages_last(dir.path()).is_ok(), ok, "{script:?}");
    }
}
