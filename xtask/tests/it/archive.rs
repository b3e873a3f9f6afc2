//! Archive names, packing, reading back and checksums.

use xtask::archive::{
    Entry, archive_file_name, archive_stem, binary_file_name, checksum_line, list, pack,
    sha256_hex, verify_checksum_file,
};

#[test]
fn archive_names_carry_version_and_target() {
    let cases = [
        (
            "0.1.0",
            "x86_64-unknown-linux-gnu",
            "infty-0.1.0-x86_64-unknown-linux-gnu.tar.gz",
        ),
        (
            "0.1.0",
            "aarch64-apple-darwin",
            "infty-0.1.0-aarch64-apple-darwin.tar.gz",
        ),
        (
            "1.2.3-rc.1",
            "x86_64-unknown-linux-musl",
            "infty-1.2.3-rc.1-x86_64-unknown-linux-musl.tar.gz",
        ),
        (
            "1.0.0+build.5",
            "x86_64-pc-windows-msvc",
            "infty-1.0.0+build.5-x86_64-pc-windows-msvc.tar.gz",
        ),
    ];
    for (version, target, expected) in cases {
        assert_eq!(archive_file_name(version, target).unwrap(), expected);
    }
}

#[test]
fn archive_names_refuse_parts_that_are_paths() {
    let cases = [
        ("", "x86_64-unknown-linux-gnu"),
        ("0.1.0", ""),
        ("0.1.0", "../x86_64-unknown-linux-gnu"),
        ("0.1.0", "x86_64/linux"),
        ("0.1.0", "-x86_64"),
        ("../0.1.0", "x86_64-unknown-linux-gnu"),
        ("0.1.0", "x86 64"),
    ];
    for (version, target) in cases {
        let error = archive_stem(version, target).unwrap_err().to_string();
        assert!(
            error.contains("cannot be part of an archive name"),
            "{version:?} {target:?}: {error}"
        );
    }
}

#[test]
fn the_binary_is_named_for_its_target() {
    let cases = [
        ("x86_64-unknown-linux-gnu", "infty"),
        ("aarch64-apple-darwin", "infty"),
        ("x86_64-pc-windows-msvc", "infty.exe"),
        ("x86_64-pc-windows-gnu", "infty.exe"),
    ];
    for (target, expected) in cases {
        assert_eq!(binary_file_name(target), expected, "{target}");
    }
}

fn sample_entries() -> Vec<Entry> {
    vec![
        Entry::program("infty", b"\x7fELF fake binary".to_vec()),
        Entry::file("README.md", "# infty\n"),
        Entry::file("completions/infty.bash", "# bash\n"),
        Entry::file("completions/_infty", "# zsh\n"),
    ]
}

#[test]
fn packing_then_listing_gives_back_every_file_under_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let packed = pack(
        dir.path(),
        "infty-1.2.3-x86_64-unknown-linux-gnu",
        &sample_entries(),
        0,
    )
    .unwrap();
    assert_eq!(
        packed.archive,
        dir.path()
            .join("infty-1.2.3-x86_64-unknown-linux-gnu.tar.gz")
    );
    assert_eq!(
        packed.checksum_file,
        dir.path()
            .join("infty-1.2.3-x86_64-unknown-linux-gnu.tar.gz.sha256")
    );
    let listing: Vec<String> = list(&packed.archive)
        .unwrap()
        .iter()
        .map(|entry| {
            format!(
                "{:o} {} {}",
                entry.mode,
                entry.path,
                String::from_utf8_lossy(&entry.contents).escape_debug()
            )
        })
        .collect();
    insta::assert_snapshot!(listing.join("\n"), @r#"
    755 infty-1.2.3-x86_64-unknown-linux-gnu/ 
    755 infty-1.2.3-x86_64-unknown-linux-gnu/infty \u{7f}ELF fake binary
    644 infty-1.2.3-x86_64-unknown-linux-gnu/README.md # infty\n
    755 infty-1.2.3-x86_64-unknown-linux-gnu/completions/ 
    644 infty-1.2.3-x86_64-unknown-linux-gnu/completions/infty.bash # bash\n
    644 infty-1.2.3-x86_64-unknown-linux-gnu/completions/_infty # zsh\n
    "#);
}

#[test]
fn the_checksum_file_is_in_sha256sum_format_and_matches_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let packed = pack(
        dir.path(),
        "infty-1.2.3-x86_64-unknown-linux-gnu",
        &sample_entries(),
        0,
    )
    .unwrap();
    let bytes = std::fs::read(&packed.archive).unwrap();
    assert_eq!(packed.sha256, sha256_hex(&bytes));
    assert_eq!(packed.size, bytes.len() as u64);
    assert_eq!(
        std::fs::read_to_string(&packed.checksum_file).unwrap(),
        format!(
            "{}  infty-1.2.3-x86_64-unknown-linux-gnu.tar.gz\n",
            packed.sha256
        )
    );
    assert_eq!(
        verify_checksum_file(&packed.checksum_file).unwrap(),
        packed.archive
    );
    assert!(
        !dir.path()
            .join("infty-1.2.3-x86_64-unknown-linux-gnu.tar.gz.partial")
            .exists()
    );
}

#[test]
fn a_changed_archive_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let packed = pack(
        dir.path(),
        "infty-1.2.3-x86_64-unknown-linux-gnu",
        &sample_entries(),
        0,
    )
    .unwrap();
    let mut bytes = std::fs::read(&packed.archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&packed.archive, bytes).unwrap();
    let error = verify_checksum_file(&packed.checksum_file)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("says {}", packed.sha256)),
        "{error}"
    );
}

#[test]
fn a_malformed_checksum_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.sha256");
    std::fs::write(&file, "not a checksum line\n").unwrap();
    let error = verify_checksum_file(&file).unwrap_err().to_string();
    assert!(error.contains("is not in the sha256sum format"), "{error}");
}

#[test]
fn packing_is_deterministic() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let stem = "infty-1.2.3-x86_64-unknown-linux-gnu";
    let a = pack(first.path(), stem, &sample_entries(), 1_700_000_000).unwrap();
    let b = pack(second.path(), stem, &sample_entries(), 1_700_000_000).unwrap();
    assert_eq!(a.sha256, b.sha256);
    let c = pack(second.path(), stem, &sample_entries(), 0).unwrap();
    assert_ne!(a.sha256, c.sha256, "the entry time is part of the archive");
}

#[test]
fn checksum_lines_follow_sha256sum() {
    assert_eq!(
        checksum_line("ab12", "infty.tar.gz"),
        "ab12  infty.tar.gz\n"
    );
}

#[test]
fn refused_entries_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let entries = [Entry::file("../escape", "x")];
    assert!(
        pack(
            dir.path(),
            "infty-1.2.3-x86_64-unknown-linux-gnu",
            &entries,
            0
        )
        .is_err()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
