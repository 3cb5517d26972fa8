//! Starting a runner process and talking to it over its Unix socket.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::EngineError;
use crate::protocol::{Event, Props};

/// A client of one runner's socket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RunnerClient {
    socket: PathBuf,
}

/// The connection half of a request to the runner: it does the socket I/O and must be
/// polled while the response is read.
type Conn = std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Result<()>> + Send>>;

/// Sends one request on a fresh connection; returns the response head and the
/// connection, which the caller polls (itself, or on a task) while it reads the body.
async fn send_on(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, Conn), EngineError> {
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        EngineError::Stopped(format!(
            "cannot connect to the runner at {}: {e}",
            socket.display()
        ))
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| EngineError::Runner(e.to_string()))?;
    let mut conn: Conn = Box::pin(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "runner")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request builds");
    let gone = |e: hyper::Error| EngineError::Stopped(format!("the runner went away: {e}"));
    let response = sender.send_request(req);
    tokio::pin!(response);
    let resp = tokio::select! {
        r = &mut response => r.map_err(gone)?,
        r = &mut conn => {
            r.map_err(gone)?;
            return Err(EngineError::Stopped("the runner closed the connection".into()));
        }
    };
    Ok((resp, conn))
}

/// [`send_on`] with the connection polled on its own task.
async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<hyper::Response<hyper::body::Incoming>, EngineError> {
    let (resp, conn) = send_on(socket, method, path, body).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(resp)
}

async fn error_from(resp: hyper::Response<hyper::body::Incoming>) -> EngineError {
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let msg = v["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    let e = &v["error"];
    match (status.as_u16(), e["code"].as_str()) {
        (400, Some("context_length_exceeded")) => EngineError::ContextLength {
            prompt: e["prompt_tokens"].as_u64().unwrap_or(0) as u32,
            context: e["context_tokens"].as_u64().unwrap_or(0) as u32,
        },
        (400, Some("invalid_param")) => EngineError::InvalidParam {
            param: e["param"].as_str().unwrap_or("request").to_string(),
            message: e["detail"].as_str().map(str::to_string).unwrap_or(msg),
        },
        (400, _) => EngineError::InvalidParam {
            param: "request".into(),
            message: msg,
        },
        (503, _) => EngineError::Busy { queued: 0 },
        _ => EngineError::Runner(msg),
    }
}

impl RunnerClient {
    /// A client for the runner at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        RunnerClient {
            socket: socket.into(),
        }
    }

    /// Calls a JSON route.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, EngineError> {
        let body = body.map(|b| serde_json::to_vec(b).expect("serialises"));
        let resp = send(&self.socket, method, path, body).await?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| EngineError::Stopped(e.to_string()))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| EngineError::Runner(format!("bad answer: {e}")))
    }

    /// The runner's facts.
    pub async fn props(&self) -> Result<Props, EngineError> {
        self.call(Method::GET, "/props", None::<&()>).await
    }

    /// Streams a generation (`/generate`) or chat (`/chat`). If the runner dies mid-way
    /// the stream ends with an `Error` event.
    pub async fn stream(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, EngineError> {
        let (resp, conn) = send_on(
            &self.socket,
            Method::POST,
            path,
            Some(serde_json::to_vec(body).expect("serialises")),
        )
        .await?;
        if !resp.status().is_success() {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            return Err(error_from(resp).await);
        }
        let body = resp.into_body();
        // The connection is polled by the stream itself, not on a task of its own: each
        // token then wakes one task instead of two (this runs for every token).
        Ok(futures::stream::unfold(
            (body, Vec::new(), false, Some(conn)),
            |(mut body, mut buf, done, mut conn)| async move {
                if done {
                    return None;
                }
                loop {
                    if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let ev = serde_json::from_slice::<Event>(&line).unwrap_or_else(|e| {
                            Event::failure(format!("bad event from the runner: {e}"))
                        });
                        let end = !matches!(ev, Event::Token { .. });
                        return Some((ev, (body, buf, end, conn)));
                    }
                    let frame = match conn.as_mut() {
                        Some(c) => tokio::select! {
                            biased;
                            f = body.frame() => f,
                            _ = c => {
                                // The connection is done; the body holds what is left.
                                conn = None;
                                continue;
                            }
                        },
                        None => body.frame().await,
                    };
                    match frame {
                        Some(Ok(f)) => {
                            if let Some(d) = f.data_ref() {
                                buf.extend_from_slice(d);
                            }
                        }
                        Some(Err(e)) => {
                            return Some((
                                Event::failure(format!("the runner stopped mid-stream: {e}")),
                                (body, buf, true, conn),
                            ));
                        }
                        None => {
                            return Some((
                                Event::failure("the runner stopped mid-stream"),
                                (body, buf, true, conn),
                            ));
                        }
                    }
                }
            },
        ))
    }
}

/// Passes the runner's stderr into the daemon's log line by line, tagged with `tag`
/// (the model), remembering the last error line (a llama.cpp `ERROR` log or the runner's
/// own failure message) for load errors.
fn forward_stderr(
    stderr: Option<tokio::process::ChildStderr>,
    tag: String,
) -> std::sync::Arc<std::sync::Mutex<Option<String>>> {
    let last = std::sync::Arc::new(std::sync::Mutex::new(None));
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
                    *keep.lock().expect("stderr lock") = Some(msg);
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

/// The message of a runner's error line (colours already stripped), without timestamps
/// and targets.
fn error_line(plain: &str) -> Option<String> {
    if let Some(rest) = plain.strip_prefix("modelrunnerd runner: ") {
        return Some(rest.trim().to_string());
    }
    let (_, after) = plain.split_once(" ERROR ")?;
    // "target: message key=value": keep the message.
    let msg = after.split_once(": ").map_or(after, |(_, m)| m);
    let msg = msg.split(" module=").next().unwrap_or(msg);
    Some(msg.trim().to_string())
}

/// A runner child process; killed when dropped.
pub struct RunnerProcess {
    child: tokio::process::Child,
    /// Its client.
    pub client: RunnerClient,
}

impl RunnerProcess {
    /// Starts `program args...` (which must serve on `socket`), makes the kernel kill it
    /// if this process dies, and waits until it answers `/health` (or exits).
    ///
    /// The death signal follows the *thread* that forks, so call this from a long-lived
    /// thread (a tokio worker), never from a `spawn_blocking` thread that may retire.
    pub async fn spawn(
        program: &Path,
        args: &[String],
        socket: &Path,
        timeout: Duration,
    ) -> Result<RunnerProcess, EngineError> {
        Self::spawn_tagged(program, args, socket, timeout, "runner").await
    }

    /// Like [`RunnerProcess::spawn`]; the runner's log lines are tagged with `tag`.
    pub async fn spawn_tagged(
        program: &Path,
        args: &[String],
        socket: &Path,
        timeout: Duration,
        tag: &str,
    ) -> Result<RunnerProcess, EngineError> {
        let mut cmd = std::process::Command::new(program);
        cmd.args(args)
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
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| EngineError::Load(format!("starting {}: {e}", program.display())))?;
        let last_error = forward_stderr(child.stderr.take(), tag.to_string());
        let client = RunnerClient::new(socket);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                // Let the forwarder read the last lines the runner wrote.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let why = last_error.lock().expect("stderr lock").clone();
                return Err(EngineError::Load(match why {
                    Some(line) => format!("{line} (the runner exited: {status})"),
                    None => format!("the runner exited while loading ({status})"),
                }));
            }
            // The runner binds its socket once the model is loaded: until the file
            // exists a cheap stat is enough, so readiness is seen within milliseconds.
            if socket.exists()
                && client
                    .call::<Value>(Method::GET, "/health", None::<&()>)
                    .await
                    .is_ok()
            {
                return Ok(RunnerProcess { child, client });
            }
            if start.elapsed() > timeout {
                let _ = child.kill().await;
                return Err(EngineError::Load(format!(
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

impl RunnerClient {
    /// Whether the runner answers `/health` within `timeout`.
    pub async fn healthy(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(
                timeout,
                self.call::<Value>(Method::GET, "/health", None::<&()>)
            )
            .await,
            Ok(Ok(_))
        )
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
    }
}
