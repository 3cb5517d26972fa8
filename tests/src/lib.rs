//! Helpers for end-to-end tests: start `modelrunnerd` on a free port with a temp store,
//! run the `modelrunner` CLI against it.
#![deny(missing_docs)]

pub mod fake_hub;
pub mod fake_registry;
pub mod registry;
pub mod serving;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The digest `modelrunnerd hash-key` gives for `key` (what `--api-key-hash` takes).
pub fn key_hash(key: &str) -> String {
    use std::io::Write;
    let mut c = Command::new(bin("modelrunnerd"))
        .arg("hash-key")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running modelrunnerd hash-key");
    writeln!(c.stdin.take().expect("stdin"), "{key}").expect("writing the key");
    let out = c.wait_with_output().expect("hash-key's output");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

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

    /// Starts a daemon with a fresh store, extra arguments and environment.
    pub fn start_env(extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        Self::start_full(dir, store, extra, env)
    }

    /// Starts a daemon on an existing store.
    pub fn start_in(dir: tempfile::TempDir, store: PathBuf, extra: &[&str]) -> Daemon {
        Self::start_full(dir, store, extra, &[])
    }

    /// Starts a daemon on an existing store with extra environment. `DOCKER_CONFIG`
    /// points into the scratch directory unless `env` sets it, so the user's own
    /// credentials never reach a test; runners use one thread unless `env` says otherwise.
    pub fn start_full(
        dir: tempfile::TempDir,
        store: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut cmd = Command::new(bin("modelrunnerd"));
        cmd.env("DOCKER_CONFIG", dir.path().join("no-docker-config"));
        // One generation thread per runner: tests run side by side on a few cores, and
        // llama.cpp's threads spin at their barriers, so oversubscribed runners slow each
        // other down a hundredfold (a 12-token answer took 9 s in CI). `env` may override.
        cmd.env("MODELRUNNER_THREADS", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
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

    /// Runs the CLI with `input` on stdin; returns its output.
    pub fn cli_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(bin("modelrunner"))
            .args(args)
            .env("MODEL_RUNNER_HOST", &self.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running modelrunner");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("writing stdin");
        let out = child.wait_with_output().expect("modelrunner output");
        eprintln!(
            "$ modelrunner {} < {input:?}\n{}{}",
            args.join(" "),
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

impl Daemon {
    /// The daemon's process ID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: a plain syscall on our own child.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the daemon to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `URL + path`.
    pub fn u(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Packages the trained stories260K model as `tag` when it is present (returns
    /// true), else its generated stand-in (whose text is noise; returns false).
    pub fn package_chat_model(&self, tag: &str) -> bool {
        let (p, trained) = modelrunner_testkit::chat_model(self.dir.path());
        self.ok(&["package", "--gguf", p.to_str().unwrap(), tag]);
        trained
    }

    /// Packages the chat model with the test template of `family` (`hermes`, `llama3`,
    /// `mistral`, `gpt-oss`) as `tag`; returns whether the model is stories260K.
    pub fn package_with_template(&self, tag: &str, family: &str) -> bool {
        let (p, trained) = modelrunner_testkit::chat_model(self.dir.path());
        let t = self.dir.path().join(format!("{family}.jinja"));
        std::fs::write(&t, modelrunner_testkit::template(family).source).unwrap();
        self.ok(&[
            "package",
            "--gguf",
            p.to_str().unwrap(),
            "--chat-template",
            t.to_str().unwrap(),
            tag,
        ]);
        trained
    }

    /// Packages the testkit's reranker (Qwen3-Reranker's shape; with or without its rerank
    /// prompt) as `tag`.
    pub fn package_reranker(&self, tag: &str, prompt: bool) {
        let p = self.dir.path().join(format!("{tag}.gguf"));
        modelrunner_testkit::LlamaSpec::tiny()
            .build_reranker(5, prompt)
            .write_file(&p)
            .unwrap();
        self.ok(&["package", "--gguf", p.to_str().unwrap(), tag]);
    }

    /// Pulls `reference` through `POST /models/create`: the status and the whole body.
    pub fn create(&self, reference: &str) -> (u16, String) {
        let r = reqwest::blocking::Client::new()
            .post(self.u("/models/create"))
            .header("accept", "application/json")
            .json(&serde_json::json!({ "from": reference }))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    }

    /// Packages a generated tiny llama as `tag`.
    pub fn package_tiny(&self, tag: &str, seed: u64) {
        let p = self.dir.path().join(format!("tiny{seed}.gguf"));
        modelrunner_testkit::LlamaSpec::tiny()
            .build(seed)
            .write_file(&p)
            .unwrap();
        self.ok(&["package", "--gguf", p.to_str().unwrap(), tag]);
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Runner processes serving sockets under `store` (their launch description names it).
pub fn runner_pids(store: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ours = modelrunner_protocol::Launch::from_args(&args)
            .is_some_and(|l| l.socket.starts_with(store));
        if ours && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// POSTs JSON; returns status, headers and the JSON answer (`Null` when not JSON).
pub async fn post(
    c: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> (
    reqwest::StatusCode,
    reqwest::header::HeaderMap,
    serde_json::Value,
) {
    let r = c.post(url).json(body).send().await.expect("request");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// GETs JSON.
pub async fn get(c: &reqwest::Client, url: &str) -> serde_json::Value {
    c.get(url)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

/// Reads a whole SSE answer into its `data:` payloads (`[DONE]` included as a string).
pub async fn sse_data(r: reqwest::Response) -> Vec<String> {
    let text = r.text().await.unwrap_or_default();
    text.split("\n\n")
        .filter_map(|ev| ev.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_string)
        .collect()
}

/// Lowercase hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Checks that every file under `store/blobs/sha256` hashes to its name, and that no
/// partial download is visible as a blob. Returns the number of blobs.
pub fn assert_store_sound(store: &Path) -> usize {
    let dir = store.join("blobs/sha256");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("blobs dir").flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let bytes = std::fs::read(e.path()).unwrap();
        assert_eq!(
            sha256_hex(&bytes),
            name,
            "blob {name} does not hash to its name"
        );
        n += 1;
    }
    n
}

/// A model's manifest bytes and blobs, read from the daemon's export.
pub struct Artifact {
    /// The raw manifest.
    pub manifest: Vec<u8>,
    /// Blobs by `sha256:` digest.
    pub blobs: std::collections::HashMap<String, Vec<u8>>,
}

impl Daemon {
    /// Exports `model` and splits the archive into manifest and blobs.
    pub fn artifact(&self, model: &str) -> Artifact {
        let out = Command::new(bin("modelrunner"))
            .args(["export", model])
            .env("MODEL_RUNNER_HOST", &self.url)
            .output()
            .expect("export");
        assert!(out.status.success(), "export failed");
        let mut a = tar::Archive::new(&out.stdout[..]);
        let mut manifest = Vec::new();
        let mut blobs = std::collections::HashMap::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().to_string();
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut buf).unwrap();
            if path == "manifest.json" {
                manifest = buf;
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                if !hex.is_empty() {
                    blobs.insert(format!("sha256:{hex}"), buf);
                }
            }
        }
        Artifact { manifest, blobs }
    }
}

/// This machine's CPU model, for figures printed by tests and benchmarks.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
