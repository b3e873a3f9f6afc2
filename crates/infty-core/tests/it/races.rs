//! Hostile file-system tricks against the file tools, on the real kernel: a folder swapped
//! for a symbolic link to outside while the tools work inside it, and hard links to files
//! outside. Nothing outside is ever read or written.

use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use camino::Utf8PathBuf;
use infty_core::tools::{ToolContext, ToolPolicy, ToolSet};
use serde_json::json;

const OUTSIDE: &str = "OUTSIDE SECRET";

struct World {
    _temp: tempfile::TempDir,
    run: Utf8PathBuf,
    outside: Utf8PathBuf,
}

impl World {
    fn new() -> World {
        let temp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(fs::canonicalize(temp.path()).unwrap()).unwrap();
        let run = root.join("run");
        let outside = root.join("outside");
        for folder in [run.join("artifacts"), outside.clone()] {
            fs::create_dir_all(folder).unwrap();
        }
        fs::write(outside.join("inside.txt"), format!("{OUTSIDE}\n")).unwrap();
        fs::write(outside.join("secret.txt"), format!("{OUTSIDE}\n")).unwrap();
        World {
            _temp: temp,
            run,
            outside,
        }
    }

    fn tools(&self) -> ToolSet {
        ToolSet::new(ToolContext::new(self.run.clone()), ToolPolicy::solver())
    }

    fn outside_names(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_swapped_for_a_link_to_outside_never_leads_a_tool_outside() {
    let world = World::new();
    let d = world.run.join("artifacts/d");
    let swap = world.run.join("artifacts/d-swap");
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("inside.txt"), "inside\n").unwrap();
    symlink(&world.outside, &swap).unwrap();

    // Exchanges `d` (a real folder) and `d-swap` (a link to outside) atomically, again and
    // again, so `artifacts/d` is a folder one instant and a link to outside the next.
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps) = (stop.clone(), swaps.clone());
        let (d, swap) = (d.clone(), swap.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    d.as_std_path(),
                    rustix::fs::CWD,
                    swap.as_std_path(),
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .unwrap();
                swaps.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let tools = world.tools();
    let (mut reads_ok, mut writes_ok, mut refused) = (0, 0, 0);
    for i in 0..3000 {
        let read = tools
            .execute(
                "read_file",
                &json!({"path": "artifacts/d/inside.txt"}).to_string(),
            )
            .await;
        assert!(
            !read.output.contains(OUTSIDE),
            "read outside: {}",
            read.output
        );
        if read.ok {
            reads_ok += 1;
        } else {
            refused += 1;
        }
        let write = tools
            .execute(
                "write_file",
                &json!({"path": format!("artifacts/d/new-{i}.txt"), "content": "x"}).to_string(),
            )
            .await;
        if write.ok {
            writes_ok += 1;
        } else {
            refused += 1;
        }
        let edit = tools
            .execute(
                "edit_file",
                &json!({"path": "artifacts/d/inside.txt", "old_string": "inside", "new_string": "inside", "replace_all": null})
                    .to_string(),
            )
            .await;
        assert!(!edit.output.contains(OUTSIDE), "{}", edit.output);
        let list = tools
            .execute(
                "list_dir",
                &json!({"path": "artifacts/d", "depth": null}).to_string(),
            )
            .await;
        assert!(
            !list.output.contains("secret.txt"),
            "listed outside: {}",
            list.output
        );
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();

    // Nothing appeared or changed outside.
    assert_eq!(world.outside_names(), ["inside.txt", "secret.txt"]);
    assert_eq!(
        fs::read_to_string(world.outside.join("inside.txt")).unwrap(),
        format!("{OUTSIDE}\n")
    );
    // Both outcomes happened: the race was real, and work inside still got done.
    assert!(
        swaps.load(Ordering::Relaxed) > 1000,
        "the swapper barely ran"
    );
    assert!(reads_ok > 0 && writes_ok > 0, "no call ever succeeded");
    assert!(refused > 0, "no call ever met the link");
    // Every successful write is in the real folder, whichever name it has now.
    let real = if fs::symlink_metadata(&d).unwrap().is_dir() {
        &d
    } else {
        &swap
    };
    let written = fs::read_dir(real)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("new-")
        })
        .count();
    assert_eq!(written, writes_ok);
}

#[tokio::test]
async fn a_hard_link_to_an_outside_file_is_refused_by_every_file_tool() {
    let world = World::new();
    let link = world.run.join("artifacts/hard.txt");
    fs::hard_link(world.outside.join("secret.txt"), &link).unwrap();
    let tools = world.tools();
    let calls = [
        (
            "read_file",
            json!({"path": "artifacts/hard.txt", "offset": null, "limit": null}),
        ),
        (
            "write_file",
            json!({"path": "artifacts/hard.txt", "content": "overwritten"}),
        ),
        (
            "edit_file",
            json!({"path": "artifacts/hard.txt", "old_string": "OUTSIDE", "new_string": "mine", "replace_all": null}),
        ),
    ];
    let mut out = String::new();
    for (tool, args) in calls {
        let result = tools.execute(tool, &args.to_string()).await;
        assert!(!result.ok, "{tool} accepted a hard link: {}", result.output);
        assert!(!result.output.contains(OUTSIDE), "{}", result.output);
        out.push_str(&format!("{tool}: {}\n", result.output));
    }
    insta::assert_snapshot!(out);
    assert_eq!(
        fs::read_to_string(world.outside.join("secret.txt")).unwrap(),
        format!("{OUTSIDE}\n")
    );
    // The link itself is untouched too: still two names for the outside file.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&link).unwrap().nlink(), 2);
}

#[tokio::test]
async fn a_fifo_in_place_of_a_file_does_not_hang_a_read() {
    let world = World::new();
    let fifo = world.run.join("artifacts/pipe");
    std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    let result = world
        .tools()
        .execute("read_file", &json!({"path": "artifacts/pipe"}).to_string())
        .await;
    assert!(!result.ok);
    assert!(
        result.output.contains("not a regular file"),
        "{}",
        result.output
    );
}
