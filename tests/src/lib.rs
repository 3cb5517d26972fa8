//! Helpers for end-to-end tests: start `modelrunnerd` on a free port with a temp store,
//! run the `modelrunner` CLI against it.
#![deny(missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary. `scripts/test.sh` builds them (`cargo build --bins`)
/// before the tests run; a nested `cargo build` from a test would rebuild llama.cpp,
/// because cargo's test environment differs from a plain build's.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing; run `cargo build --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A running daemon; killed on drop.
pub struct Daemon {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Store directory.
    pub store: PathBuf,
    /// Scratch directory for the test (holds the store).
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts a daemon with a fresh store and extra arguments.
    pub fn start(extra: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        Self::start_in(dir, store, extra)
    }

    /// Starts a daemon on an existing store.
    pub fn start_in(dir: tempfile::TempDir, store: PathBuf, extra: &[&str]) -> Daemon {
        let mut child = Command::new(bin("modelrunnerd"))
            .args(["--listen", "127.0.0.1:0", "--store"])
            .arg(&store)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning modelrunnerd");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("modelrunnerd did not report its address within 30 s");
        Daemon {
            child,
            url,
            store,
            dir,
        }
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        let start = Instant::now();
        let out = Command::new(bin("modelrunner"))
            .args(args)
            .env("MODEL_RUNNER_HOST", &self.url)
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null())
            .output()
            .expect("running modelrunner");
        eprintln!(
            "$ modelrunner {} ({:?})\n{}{}",
            args.join(" "),
            start.elapsed(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs the CLI and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "modelrunner {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs the CLI and expects failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "modelrunner {args:?} succeeded unexpectedly"
        );
        String::from_utf8(out.stderr).expect("utf-8 output")
    }

    /// Stops the daemon and returns its scratch dir and store, for a restart.
    pub fn stop(mut self) -> (tempfile::TempDir, PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        (dir, self.store.clone())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir`, recursively, with its size (to compare store states).
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if !p.ends_with("index") {
                    stack.push(p);
                }
            } else {
                out.push((p.clone(), e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    out
}
