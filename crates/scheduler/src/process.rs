//! Starting a runner process from its launch description, watching its stderr, and
//! stopping it.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modelrunner_protocol::{Launch, RunnerClient, RunnerError};

/// Passes the runner's stderr into the daemon's log line by line, tagged with `tag`
/// (the model), remembering the last error line (a llama.cpp `ERROR` log or the runner's
/// own failure message) for load errors.
fn forward_stderr(
    stderr: Option<tokio::process::ChildStderr>,
    tag: String,
) -> Arc<Mutex<Option<String>>> {
    let last = Arc::new(Mutex::new(None));
    let Some(stderr) = stderr else {
        return last;
    };
    let keep = last.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let plain = strip_ansi(&line);
            match error_line(&plain) {
                Some(msg) => {
                    tracing::warn!(target: "runner", model = %tag, "{plain}");
                    let mut kept = keep.lock().expect("stderr lock");
                    // The first error says why; the ones after it ("failed to load
                    // model", llama-cpp-2's "null result") only that it failed.
                    if kept.as_deref().is_none_or(generic) {
                        *kept = Some(msg);
                    }
                }
                None => tracing::info!(target: "runner", model = %tag, "{plain}"),
            }
        }
    });
    last
}

/// The line without terminal colour codes.
pub fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

/// The prefix of the runner's own failure line (the daemon binary prints it).
pub const RUNNER_FAILURE_PREFIX: &str = "modelrunnerd runner: ";

/// The message of a runner's error line (colours already stripped), without timestamps
/// and targets.
fn error_line(plain: &str) -> Option<String> {
    if let Some(rest) = plain.strip_prefix(RUNNER_FAILURE_PREFIX) {
        return Some(without_paths(rest.trim()));
    }
    let (_, after) = plain.split_once(" ERROR ")?;
    // "target: message key=value": keep the message.
    let msg = after.split_once(": ").map_or(after, |(_, m)| m);
    let msg = msg.split(" module=").next().unwrap_or(msg);
    Some(without_paths(msg.trim()))
}

/// An error line that says only that loading failed, not why.
fn generic(msg: &str) -> bool {
    msg.contains("null result") || msg.ends_with("failed to load model")
}

/// The message with absolute file paths (the store's layout, the server's directories)
/// replaced by `<file>`: clients get the reason, never where the server keeps things.
fn without_paths(msg: &str) -> String {
    msg.split(' ')
        .map(|word| {
            let bare = word.trim_matches(|c: char| "'\"`(),;:".contains(c));
            if bare.starts_with('/') && bare.len() > 1 {
                word.replace(bare, "<file>")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A runner child process; killed when dropped.
pub struct RunnerProcess {
    child: tokio::process::Child,
    /// Its client.
    pub client: RunnerClient,
}

impl RunnerProcess {
    /// Starts `program` with the launch description (it must serve on the launch's
    /// socket), makes the kernel kill it if this process dies, and waits until it
    /// answers (or exits). The runner's log lines are tagged with `tag`.
    ///
    /// The death signal follows the *thread* that forks, so call this from a long-lived
    /// thread (a tokio worker), never from a `spawn_blocking` thread that may retire.
    pub async fn spawn(
        program: &Path,
        launch: &Launch,
        timeout: Duration,
        tag: &str,
    ) -> Result<RunnerProcess, RunnerError> {
        let mut cmd = std::process::Command::new(program);
        cmd.args(launch.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        // SAFETY: prctl and setpgid are async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let load = |message: String| RunnerError::Load { message };
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                tracing::warn!(program = %program.display(), cause = %e, "cannot start a runner");
                load(format!("cannot start the runner process: {e}"))
            })?;
        let last_error = forward_stderr(child.stderr.take(), tag.to_string());
        let client = RunnerClient::new(&launch.socket);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the forwarder read the last lines the runner wrote.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let why = last_error.lock().expect("stderr lock").clone();
                return Err(load(match why {
                    Some(line) => format!("{line} (the runner exited: {status})"),
                    None => format!("the runner exited while loading ({status})"),
                }));
            }
            // The runner binds its socket once the model is loaded: until the file
            // exists a cheap stat is enough, so readiness is seen within milliseconds.
            if launch.socket.exists() && client.healthy(Duration::from_secs(1)).await {
                return Ok(RunnerProcess { child, client });
            }
            if start.elapsed() > timeout {
                let _ = child.kill().await;
                return Err(load(format!(
                    "the runner did not become ready within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The child's process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the child to exit.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Stops the runner: SIGTERM to its process group, then SIGKILL after `grace`; waits
    /// for the exit so no zombie is left.
    pub async fn stop(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: plain syscalls on the group this child leads (setpgid at spawn).
            unsafe { libc::kill(-pid, libc::SIGTERM) };
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        let _ = self.child.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{error_line, strip_ansi};

    #[test]
    fn error_lines_are_cleaned() {
        let l = "\u{1b}[2m2026-11-28T23:38:41Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m \u{1b}[2mllama-cpp-2\u{1b}[0m: llama_model_load: error loading model: unknown model architecture: 'x' module=\"llama.cpp::llama\"";
        assert_eq!(
            error_line(&strip_ansi(l)).as_deref(),
            Some("llama_model_load: error loading model: unknown model architecture: 'x'")
        );
        assert_eq!(
            error_line("modelrunnerd runner: cannot load the model: boom").as_deref(),
            Some("cannot load the model: boom")
        );
        assert_eq!(error_line("2026 INFO loaded"), None);
        let with_path = "2026 ERROR llama-cpp-2: llama_model_load: failed to open '/var/lib/modelrunner/blobs/sha256/ab': no such file";
        assert_eq!(
            error_line(with_path).as_deref(),
            Some("llama_model_load: failed to open '<file>': no such file")
        );
    }
}
