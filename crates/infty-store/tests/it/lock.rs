//! run.lock: one driver at a time, and a crashed driver never blocks a resume.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use infty_store::{RunStore, StoreError};

use crate::{sample_run, scratch};

const CHILD_ENV: &str = "INFTY_STORE_TEST_LOCK_CHILD";
const CHILD_READY: &str = "INFTY-STORE-CHILD-LOCKED";

#[test]
fn a_second_driver_is_refused_with_the_holders_pid() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let lock = store.lock().unwrap();
    assert_eq!(lock.path(), store.dir().join("run.lock"));
    let other = RunStore::open(store.dir()).unwrap();
    let err = other.lock().unwrap_err();
    let pid = std::process::id();
    assert!(matches!(err, StoreError::Locked { pid: Some(p), .. } if p == pid));
    assert_eq!(
        err.to_string(),
        format!("run r is being driven by pid {pid}")
    );
    drop(lock);
    other.lock().unwrap();
}

#[test]
fn a_stale_lock_file_does_not_block() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    // What a crashed driver leaves: the file with its pid, but no OS lock.
    fs::write(store.dir().join("run.lock"), "999999\n").unwrap();
    let lock = store.lock().unwrap();
    let pid = fs::read_to_string(lock.path()).unwrap();
    assert_eq!(pid.trim(), std::process::id().to_string());
}

/// The child half of [`a_killed_driver_releases_the_lock`]: holds the lock until killed.
#[test]
#[ignore = "run by a_killed_driver_releases_the_lock in a child process"]
fn child_holds_the_lock() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = camino::Utf8PathBuf::from(dir.into_string().unwrap());
    let store = RunStore::open(&dir).unwrap();
    let _lock = store.lock().unwrap();
    println!("\n{CHILD_READY}");
    // Wait to be killed; stdin closes only if the parent dies first.
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
}

#[test]
fn a_killed_driver_releases_the_lock() {
    let s = scratch();
    let store = sample_run(&s.path, "r");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock::child_holds_the_lock",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, store.dir().as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains(CHILD_READY));
    assert!(ready, "the child never took the lock");
    let err = store.lock().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("run r is being driven by pid {}", child.id())
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // The lock file still names the dead child, and does not matter.
    assert_eq!(
        fs::read_to_string(store.dir().join("run.lock"))
            .unwrap()
            .trim(),
        child.id().to_string()
    );
    store.lock().unwrap();
}
