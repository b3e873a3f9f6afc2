//! The packaging half of `cargo xtask dist`, driven with small fake `infty` scripts instead
//! of a release build.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xtask::archive::{list, verify_checksum_file};
use xtask::dist::{DOCUMENT_FILES, DistReport, PackageInput, package};

use crate::copy_fixture;

/// A workspace root holding the document files, and a copy of the fake binary `script`.
fn setup(dir: &Path, script: &str) -> PackageInput {
    let root = dir.join("root");
    for name in DOCUMENT_FILES {
        copy_fixture(&format!("docs/{name}"), &root.join(name));
    }
    let binary = dir.join("bin").join("infty");
    copy_fixture(script, &binary);
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    PackageInput {
        root,
        binary,
        version: "9.9.9".to_owned(),
        target: "x86_64-unknown-linux-gnu".to_owned(),
        out_dir: dir.join("dist"),
        runnable: true,
    }
}

fn snapshot_text(report: &DistReport, dir: &Path) -> String {
    report
        .to_string()
        .replace(&dir.display().to_string(), "[TMP]")
        .replace(&report.packed.sha256, "[SHA256]")
        .replace(
            &format!("size     {} bytes", report.packed.size),
            "size     [SIZE]",
        )
}

#[test]
fn dist_packs_binary_documents_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let input = setup(dir.path(), "fake-infty.sh");
    let report = package(&input).unwrap();
    insta::assert_snapshot!(snapshot_text(&report, dir.path()));

    let archive = dir
        .path()
        .join("dist/infty-9.9.9-x86_64-unknown-linux-gnu.tar.gz");
    assert_eq!(report.packed.archive, archive);
    assert_eq!(
        verify_checksum_file(&report.packed.checksum_file).unwrap(),
        archive
    );
    let listed = list(&archive).unwrap();
    let binary = listed
        .iter()
        .find(|entry| entry.path == "infty-9.9.9-x86_64-unknown-linux-gnu/infty")
        .unwrap();
    assert_eq!(binary.contents, std::fs::read(&input.binary).unwrap());
    assert_eq!(binary.mode, 0o755);
    for name in DOCUMENT_FILES {
        let packed = listed
            .iter()
            .find(|entry| entry.path == format!("infty-9.9.9-x86_64-unknown-linux-gnu/{name}"))
            .unwrap();
        assert_eq!(
            packed.contents,
            std::fs::read(input.root.join(name)).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn dist_without_the_completions_subcommand_skips_them_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let report = package(&setup(dir.path(), "fake-infty-without-completions.sh")).unwrap();
    insta::assert_snapshot!(snapshot_text(&report, dir.path()));
    assert!(
        report
            .contents
            .iter()
            .all(|entry| !entry.path.contains("completions"))
    );
}

#[test]
fn dist_fails_when_the_completions_subcommand_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let error = package(&setup(dir.path(), "fake-infty-broken-completions.sh"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("completions zsh failed"), "{error}");
    assert!(
        error.contains("cannot write completions for zsh"),
        "{error}"
    );
    assert!(
        !dir.path().join("dist").exists(),
        "no archive after a failure"
    );
}

#[test]
fn dist_fails_when_the_binary_reports_another_version() {
    let dir = tempfile::tempdir().unwrap();
    let error = package(&setup(dir.path(), "fake-infty-wrong-version.sh"))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(r#"--version printed "infty 0.0.1", expected "infty 9.9.9""#),
        "{error}"
    );
}

#[test]
fn dist_for_a_foreign_target_packs_without_running_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = setup(dir.path(), "fake-infty-wrong-version.sh");
    input.target = "x86_64-pc-windows-msvc".to_owned();
    input.runnable = false;
    let report = package(&input).unwrap();
    insta::assert_snapshot!(snapshot_text(&report, dir.path()));
}

#[test]
fn dist_names_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = setup(dir.path(), "fake-infty.sh");
    std::fs::remove_file(input.root.join("CHANGELOG.md")).unwrap();
    let error = package(&input).unwrap_err().to_string();
    assert!(
        error.starts_with("cannot read ") && error.ends_with("CHANGELOG.md"),
        "{error}"
    );
    input.binary = PathBuf::from("/nonexistent/infty");
    let error = package(&input).unwrap_err().to_string();
    assert_eq!(error, "cannot read /nonexistent/infty");
}
