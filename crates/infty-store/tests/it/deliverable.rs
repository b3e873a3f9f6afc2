//! Deliverable resolution: every way a path can leave the run folder, and the reasons given.

use std::fs;

use camino::Utf8Path;
use infty_store::{DeliverableError, RunStore};

use crate::{sample_run, scratch, settings};

/// Lays out a run with files, folders and links inside and outside it.
fn layout(root: &Utf8Path) -> RunStore {
    let store = sample_run(root, "r");
    let d = store.dir().join("deliverable");
    fs::write(d.join("answer.md"), "# answer").unwrap();
    fs::create_dir_all(d.join("dir")).unwrap();
    fs::write(d.join("dir/part.md"), "part").unwrap();
    fs::write(d.join("résumé 报告.md"), "non-ascii").unwrap();
    fs::write(root.join("outside.txt"), "outside").unwrap();
    fs::create_dir_all(root.join("outside-dir")).unwrap();
    fs::write(root.join("outside-dir/inner.txt"), "inner").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::symlink;
        symlink("answer.md", d.join("link-in")).unwrap();
        symlink("../../outside.txt", d.join("link-out")).unwrap();
        symlink(root.join("outside-dir"), d.join("dirlink-out")).unwrap();
        symlink("nothing-here.md", d.join("dangling")).unwrap();
        std::os::unix::net::UnixListener::bind(d.join("sock")).unwrap();
    }
    store
}

#[test]
fn resolution_table() {
    let s = scratch();
    let store = layout(&s.path);
    let run = store.dir().to_string();
    let mut cases: Vec<String> = [
        "deliverable/answer.md",
        "./deliverable/answer.md",
        "deliverable/dir",
        "deliverable/dir/",
        "deliverable/dir/../answer.md",
        "deliverable/résumé 报告.md",
        "",
        "   ",
        "a\0b",
        "../outside.txt",
        "deliverable/../../outside.txt",
        "/etc/passwd",
        "deliverable/missing.md",
        ".",
        "deliverable/answer.md/x",
    ]
    .map(str::to_owned)
    .into();
    cases.push(format!("{run}/deliverable/answer.md"));
    cases.push(format!("{run}/../outside.txt"));
    cases.push(format!("{}/outside.txt", s.path));
    if cfg!(unix) {
        cases.extend(
            [
                "deliverable/link-in",
                "deliverable/link-out",
                "deliverable/dirlink-out",
                "deliverable/dirlink-out/inner.txt",
                "deliverable/dangling",
                "deliverable/sock",
            ]
            .map(str::to_owned),
        );
    }
    let mut report = String::new();
    for candidate in &cases {
        let outcome = match store.resolve_deliverable(candidate) {
            Ok(path) => {
                assert!(path.is_absolute() && path.exists(), "{path}");
                format!("ok {}", store.relative_to_run(&path).unwrap())
            }
            Err(e) => format!("refused: {e}"),
        };
        let line = format!("{candidate:?} => {outcome}\n");
        report.push_str(&line.replace(&run, "[run]"));
    }
    settings(&s.path).bind(|| insta::assert_snapshot!(report));
}

#[test]
fn refusals_are_typed() {
    let s = scratch();
    let store = layout(&s.path);
    let kind = |candidate: &str| store.resolve_deliverable(candidate).unwrap_err();
    assert_eq!(kind(" "), DeliverableError::Blank);
    assert!(matches!(kind("../x"), DeliverableError::ClimbsOut { .. }));
    assert!(matches!(
        kind("/etc/passwd"),
        DeliverableError::OutsideRunDir { .. }
    ));
    assert!(matches!(
        kind("deliverable/none"),
        DeliverableError::Missing { .. }
    ));
    assert!(matches!(kind("."), DeliverableError::IsRunDir { .. }));
    if cfg!(unix) {
        assert!(matches!(
            kind("deliverable/link-out"),
            DeliverableError::SymlinkLeadsOutside { .. }
        ));
        assert!(matches!(
            kind("deliverable/dangling"),
            DeliverableError::DanglingSymlink { .. }
        ));
        assert!(matches!(
            kind("deliverable/sock"),
            DeliverableError::NotFileOrDir { kind: "socket", .. }
        ));
    }
}

#[test]
fn a_run_dir_reached_through_a_symlink_still_works() {
    let s = scratch();
    let store = layout(&s.path);
    #[cfg(unix)]
    {
        let alias = s.path.join("alias");
        std::os::unix::fs::symlink(store.dir(), &alias).unwrap();
        let via_alias = RunStore::open(&alias).unwrap();
        let resolved = via_alias
            .resolve_deliverable("deliverable/answer.md")
            .unwrap();
        assert_eq!(resolved, store.dir().join("deliverable/answer.md"));
        let absolute = format!("{alias}/deliverable/dir");
        assert_eq!(
            via_alias.resolve_deliverable(&absolute).unwrap(),
            store.dir().join("deliverable/dir")
        );
    }
}

/// Fingerprints of deliverables: what is recorded, and which links are refused.
#[cfg(unix)]
#[test]
fn fingerprint_table() {
    use std::os::unix::fs::symlink;
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let d = store.dir().join("deliverable");
    fs::write(s.path.join("outside.txt"), "outside").unwrap();
    let make = |name: &str| {
        let dir = d.join(name);
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("a.txt"), "alpha").unwrap();
        fs::write(dir.join("sub/b.txt"), "beta").unwrap();
        dir
    };
    let plain = make("plain");
    symlink("a.txt", plain.join("link-in")).unwrap();
    let soft = make("soft");
    symlink("../../../../outside.txt", soft.join("sub/link-out")).unwrap();
    let dangling = make("dangling");
    symlink("../../../not-yet.txt", dangling.join("later")).unwrap();
    let hard = make("hard");
    fs::hard_link(s.path.join("outside.txt"), hard.join("sub/hard")).unwrap();
    let fifo = make("fifo");
    std::process::Command::new("mkfifo")
        .arg(fifo.join("pipe"))
        .status()
        .unwrap();
    let mut report = String::new();
    for name in ["plain", "soft", "dangling", "hard", "fifo"] {
        let candidate = format!("deliverable/{name}");
        let resolved = store.resolve_deliverable(&candidate).unwrap();
        match store.fingerprint_deliverable(&resolved, &candidate) {
            Ok(fp) => {
                for f in fp.files {
                    report.push_str(&format!(
                        "{name}: {} {} {} {:?}\n",
                        f.path, f.size, f.sha256, f.link
                    ));
                }
            }
            Err(e) => report.push_str(&format!("{name}: refused: {e}\n")),
        }
    }
    settings(&s.path).bind(|| insta::assert_snapshot!(report));
    // Changing a byte changes the fingerprint, and names the file.
    let candidate = "deliverable/plain";
    let resolved = store.resolve_deliverable(candidate).unwrap();
    let before = store.fingerprint_deliverable(&resolved, candidate).unwrap();
    fs::write(plain.join("sub/b.txt"), "Beta").unwrap();
    let after = store.fingerprint_deliverable(&resolved, candidate).unwrap();
    assert_eq!(
        before.changed_paths(&after),
        ["deliverable/plain/sub/b.txt"]
    );
    let _: DeliverableError = store
        .fingerprint_deliverable(&store.resolve_deliverable("deliverable/hard").unwrap(), "x")
        .unwrap_err();
}
