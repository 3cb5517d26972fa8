//! One running model: its process, its client, its use counts, and the task that
//! supervises it (exit, health checks, stop requests).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use modelrunner_protocol::{Launch, Mode, Props, RunnerClient};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::keepalive::KeepAlive;
use crate::memory::Estimate;
use crate::process::RunnerProcess;

/// A runner's identity: one process per model and mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// Model ID.
    pub model_id: String,
    /// Mode.
    pub mode: Mode,
}

/// Use counts; changed under the scheduler's state lock (increments) or alone (releases).
#[derive(Debug)]
pub(crate) struct Use {
    pub in_use: usize,
    pub last_used: Instant,
    pub last_used_wall: SystemTime,
    pub keep_alive: KeepAlive,
}

/// A loaded runner.
pub(crate) struct Runner {
    pub instance: u64,
    pub key: Key,
    pub name: String,
    pub pid: u32,
    pub client: RunnerClient,
    pub props: Props,
    pub estimate: Estimate,
    /// Slots plus queue places; a request holds one while it runs or waits.
    pub permits: Arc<Semaphore>,
    pub max_queue: usize,
    pub usage: Mutex<Use>,
    /// Cancelled by the scheduler to stop the process; the supervisor does the stopping.
    pub stop: CancellationToken,
    /// Becomes true when the process has exited and its files are gone.
    pub exited: watch::Receiver<bool>,
    pub dead: AtomicBool,
    pub loaded_at: Instant,
}

impl Runner {
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Stops the process and waits until it is gone.
    pub async fn stop_and_wait(&self) {
        self.stop.cancel();
        let mut rx = self.exited.clone();
        let _ = rx.wait_for(|e| *e).await;
    }
}

/// How the supervisor saw the runner end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Asked to stop.
    Stopped,
    /// Exited by itself (a crash).
    Crashed,
    /// Stopped answering health checks and was killed.
    Hung,
}

/// Health-check settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Health {
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before the runner is killed.
    pub failures: u32,
}

/// Watches `process` until it exits or is stopped; returns how it ended. Removes the
/// runner's socket and pid file and marks the runner dead before `exited` turns true.
pub(crate) async fn supervise(
    runner: Arc<Runner>,
    mut process: RunnerProcess,
    health: Health,
    files: RunnerFiles,
    exited: watch::Sender<bool>,
) -> Ending {
    let mut failed = 0;
    let ending = loop {
        tokio::select! {
            status = process.wait() => {
                warn!(model = %runner.name, pid = runner.pid, status = ?status, "runner exited unexpectedly");
                break Ending::Crashed;
            }
            () = runner.stop.cancelled() => {
                process.stop(Duration::from_secs(3)).await;
                info!(model = %runner.name, pid = runner.pid, "runner stopped");
                break Ending::Stopped;
            }
            () = tokio::time::sleep(health.interval) => {
                if runner.client.healthy(health.timeout).await {
                    failed = 0;
                    continue;
                }
                failed += 1;
                warn!(model = %runner.name, pid = runner.pid, failed, "runner failed a health check");
                if failed >= health.failures {
                    process.stop(Duration::ZERO).await;
                    break Ending::Hung;
                }
            }
        }
    };
    runner.dead.store(true, Ordering::SeqCst);
    files.remove();
    let _ = exited.send(true);
    ending
}

/// A runner's socket and pid file, in the run directory.
#[derive(Debug, Clone)]
pub(crate) struct RunnerFiles {
    pub socket: PathBuf,
    pub pid_file: PathBuf,
}

impl RunnerFiles {
    pub fn new(run_dir: &Path, instance: u64) -> Self {
        let stem = format!("runner-{}-{instance}", std::process::id());
        RunnerFiles {
            socket: run_dir.join(format!("{stem}.sock")),
            pid_file: run_dir.join(format!("{stem}.pid")),
        }
    }

    /// Records the runner's PID and socket, so a daemon restarted after a crash can
    /// find and stop runners left behind.
    pub fn write_pid(&self, pid: u32) {
        let text = format!("{pid}\n{}\n", self.socket.display());
        if let Err(e) = std::fs::write(&self.pid_file, text) {
            warn!(file = %self.pid_file.display(), cause = %e, "cannot write the runner's pid file");
        }
    }

    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Kills runners that an earlier daemon left behind (after `kill -9` the kernel's parent
/// death signal normally does this; this catches the rest) and removes their files.
/// Returns how many processes were killed.
pub(crate) fn reap_leftovers(run_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(run_dir) else {
        return 0;
    };
    let mut killed = 0;
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("runner-") {
            continue;
        }
        if name.ends_with(".pid") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let mut lines = text.lines();
            let pid = lines.next().and_then(|l| l.trim().parse::<i32>().ok());
            let socket = lines.next().unwrap_or("").to_string();
            if let Some(pid) = pid.filter(|p| *p > 1) {
                if is_our_runner(pid, &socket) {
                    warn!(pid, "stopping a runner left behind by an earlier daemon");
                    // SAFETY: a plain syscall; the PID was checked to be our runner.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed += 1;
                }
            }
        }
        if name.ends_with(".pid") || name.ends_with(".sock") {
            let _ = std::fs::remove_file(&path);
        }
    }
    killed
}

/// Whether `pid` is a runner serving `socket` (PIDs get reused).
fn is_our_runner(pid: i32, socket: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    !socket.is_empty() && Launch::from_args(&args).is_some_and(|l| l.socket.as_os_str() == socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_files_are_removed_and_strangers_spared() {
        let dir = tempfile::tempdir().unwrap();
        // Our own PID is alive but is not a runner for that socket: it must survive.
        std::fs::write(
            dir.path().join("runner-1-1.pid"),
            format!("{}\n/nowhere.sock\n", std::process::id()),
        )
        .unwrap();
        std::fs::write(dir.path().join("runner-1-1.sock"), "").unwrap();
        std::fs::write(dir.path().join("other.txt"), "keep").unwrap();
        assert_eq!(reap_leftovers(dir.path()), 0);
        assert!(!dir.path().join("runner-1-1.pid").exists());
        assert!(!dir.path().join("runner-1-1.sock").exists());
        assert!(dir.path().join("other.txt").exists());
    }
}
