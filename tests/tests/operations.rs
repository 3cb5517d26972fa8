//! Operating the daemon: configuration precedence and errors, API keys on every route
//! group, CORS, request IDs in responses and logs, refusal to listen beyond loopback
//! without keys, the log endpoint. Metrics are in `metrics.rs`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use modelrunner_e2e::bin;
use modelrunner_e2e::key_hash;
use serde_json::Value;

const KEY: &str = "mr-test-key-0123456789abcdef";

/// A daemon whose log goes to a file, for tests that read it.
struct Logged {
    child: Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_logged(extra: &[&str]) -> Logged {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = Command::new(bin("modelrunnerd"))
        .arg("--store")
        .arg(dir.path().join("store"))
        .args(extra)
        .env("RUST_LOG", "info")
        .env("DOCKER_CONFIG", dir.path().join("none"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut r = BufReader::new(stdout);
    while !line.starts_with("listening on http://") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "the daemon exited");
    }
    let url = line.trim().trim_start_matches("listening on ").to_string();
    Logged {
        child,
        url,
        log,
        _dir: dir,
    }
}

#[test]
fn api_keys_guard_every_route_group_and_never_reach_the_log() {
    let hash = key_hash(KEY);
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let d = start_logged(&["--listen", "127.0.0.1:0", "--api-key-hash", &hash]);
    let c = reqwest::blocking::Client::new();
    // Each route with what it answers once the key is right (the model "x" does not
    // exist; the empty message list and the bad reference are refused).
    let routes: [(&str, &str, Option<&str>, u16); 9] = [
        ("GET", "/v1/models", None, 200),
        (
            "POST",
            "/v1/chat/completions",
            Some(r#"{"model":"x","messages":[]}"#),
            400,
        ),
        (
            "POST",
            "/engines/v1/completions",
            Some(r#"{"model":"x","prompt":"a"}"#),
            404,
        ),
        ("GET", "/engines/ps", None, 200),
        ("GET", "/models", None, 200),
        (
            "POST",
            "/models/create",
            Some(r#"{"from":"Bad Ref!"}"#),
            400,
        ),
        ("DELETE", "/models/x", None, 404),
        ("GET", "/version", None, 200),
        ("GET", "/no/such/route", None, 404),
    ];
    for (method, path, body, status) in routes {
        let send = |auth: Option<(&str, &str)>| {
            let mut r = c.request(method.parse().unwrap(), format!("{}{path}", d.url));
            if let Some((h, v)) = auth {
                r = r.header(h, v);
            }
            if let Some(b) = body {
                r = r
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            r.send().unwrap()
        };
        let none = send(None);
        assert_eq!(none.status(), 401, "{method} {path} without a key");
        assert_eq!(none.headers()["www-authenticate"], "Bearer");
        let v: Value = none.json().unwrap();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        let wrong = send(Some((
            "authorization",
            "Bearer mr-wrong-key-0123456789abcdef",
        )));
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong key");
        let bearer = format!("Bearer {KEY}");
        let right = send(Some(("authorization", &bearer)));
        assert_eq!(right.status(), status, "{method} {path} with the key");
        let header = send(Some(("x-api-key", KEY)));
        assert_eq!(header.status(), status, "{method} {path} with x-api-key");
    }
    // The health check needs no key.
    assert_eq!(
        c.get(format!("{}/health", d.url)).send().unwrap().status(),
        200
    );
    // The CLI sends MODEL_RUNNER_API_KEY.
    let cli = |key: Option<&str>| {
        let mut cmd = Command::new(bin("modelrunner"));
        cmd.args(["ls"]).env("MODEL_RUNNER_HOST", &d.url);
        match key {
            Some(k) => cmd.env("MODEL_RUNNER_API_KEY", k),
            None => cmd.env_remove("MODEL_RUNNER_API_KEY"),
        };
        cmd.output().unwrap()
    };
    let out = cli(None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("MODEL_RUNNER_API_KEY"));
    assert!(cli(Some(KEY)).status.success());
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&d.log).unwrap();
    assert!(
        log.contains("invalid API key") && log.contains("missing API key"),
        "{log}"
    );
    assert!(
        !log.contains(KEY) && !log.contains("mr-wrong-key"),
        "a key reached the log"
    );
}

#[test]
fn listening_beyond_loopback_needs_keys_or_an_explicit_opt_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin("modelrunnerd"))
        .args(["--listen", "0.0.0.0:0", "--store"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--insecure-no-auth") && err.contains("hash-key"),
        "{err}"
    );
    let d = start_logged(&["--listen", "0.0.0.0:0", "--insecure-no-auth"]);
    let port = d.url.rsplit(':').next().unwrap();
    let r = reqwest::blocking::get(format!("http://127.0.0.1:{port}/models")).unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn cors_answers_configured_and_loopback_origins_only() {
    let d = start_logged(&[
        "--listen",
        "127.0.0.1:0",
        "--cors-origin",
        "https://app.example.com",
    ]);
    let c = reqwest::blocking::Client::new();
    let preflight = |origin: &str| {
        c.request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/chat/completions", d.url),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .unwrap()
    };
    for origin in [
        "https://app.example.com",
        "http://localhost:5173",
        "http://127.0.0.1:8080",
    ] {
        let r = preflight(origin);
        assert!(r.status().is_success(), "{origin}: {}", r.status());
        assert_eq!(r.headers()["access-control-allow-origin"], origin);
        let methods = r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(methods.contains("POST"), "{methods}");
    }
    for origin in [
        "https://evil.example.com",
        "http://localhost.evil.com",
        "null",
    ] {
        let r = preflight(origin);
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{origin}"
        );
    }
    let r = c
        .get(format!("{}/models", d.url))
        .header("origin", "https://app.example.com")
        .send()
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    // A wildcard is refused at start.
    let out = Command::new(bin("modelrunnerd"))
        .args([
            "--cors-origin",
            "*",
            "--store",
            "/tmp/unused-store",
            "--print-config",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wildcards"));
}

#[test]
fn every_response_carries_a_request_id_that_the_log_shows() {
    let d = start_logged(&["--listen", "127.0.0.1:0"]);
    let c = reqwest::blocking::Client::new();
    let r = c.get(format!("{}/models", d.url)).send().unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let r = c
        .get(format!("{}/models/nosuch", d.url))
        .header("x-request-id", "trace-abc.123")
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "trace-abc.123");
    let r = c
        .get(format!("{}/version", d.url))
        .header("x-request-id", "not ok!")
        .send()
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "not ok!");
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(&d.log).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("trace-abc.123"))
        .unwrap_or_else(|| panic!("no log line with the request ID:\n{log}"));
    assert!(line.contains("/models/nosuch"), "{line}");
    assert!(log.lines().any(|l| l.contains(&id)), "{log}");
}

#[test]
fn configuration_precedence_is_flag_env_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "parallel = 2\nkeep_alive = \"1h\"\n").unwrap();
    let show = |flags: &[&str], env: &[(&str, &str)]| -> String {
        let mut c = Command::new(bin("modelrunnerd"));
        c.args([
            "--config",
            file.to_str().unwrap(),
            "--store",
            "/srv/m",
            "--print-config",
        ])
        .args(flags)
        .env_remove("MODELRUNNER_PARALLEL");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(show(&[], &[]).contains("parallel = 2"));
    assert!(show(&[], &[]).contains("keep_alive = \"1h0m0s\""));
    assert!(show(&[], &[("MODELRUNNER_PARALLEL", "3")]).contains("parallel = 3"));
    assert!(show(&["--parallel", "5"], &[("MODELRUNNER_PARALLEL", "3")]).contains("parallel = 5"));
    let defaults = show(&[], &[]);
    assert!(defaults.contains("max_queue = 64"), "{defaults}");
    // Unknown keys and bad values stop the start, naming the key and the file.
    std::fs::write(&file, "paralel = 2\n").unwrap();
    let out = Command::new(bin("modelrunnerd"))
        .args(["--config", file.to_str().unwrap(), "--print-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("paralel") && err.contains("c.toml"), "{err}");
    std::fs::write(&file, "[registries]\ninsecure = 5\n").unwrap();
    let out = Command::new(bin("modelrunnerd"))
        .args(["--config", file.to_str().unwrap(), "--print-config"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("insecure") && err.contains("c.toml"), "{err}");
    std::fs::write(&file, "api_keys = [\"hunter2-plaintext\"]\n").unwrap();
    let out = Command::new(bin("modelrunnerd"))
        .args([
            "--config",
            file.to_str().unwrap(),
            "--print-config",
            "--store",
            "/s",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api_keys") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn logs_show_requests_and_runner_output_and_follow() {
    use modelrunner_e2e::Daemon;
    let d = Daemon::start(&[]);
    d.package_tiny("tiny", 22);
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(d.u("/v1/completions"))
        .header("x-request-id", "logs-test-1")
        .json(&serde_json::json!({"model": "tiny", "prompt": "a", "max_tokens": 2}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let all = d.ok(&["logs"]);
    assert!(
        all.lines()
            .any(|l| l.contains("logs-test-1") && l.contains("/v1/completions")),
        "{all}"
    );
    // llama.cpp's output, from the runner process, tagged with the model.
    assert!(
        all.lines()
            .any(|l| l.contains(" runner:") && l.contains("model=docker.io/ai/tiny:latest")),
        "{all}"
    );
    assert!(!all.contains('\u{1b}'), "no terminal colours in the log");
    let tail = d.ok(&["logs", "-n", "3"]);
    assert_eq!(tail.lines().count(), 3, "{tail}");
    // Following: a new request appears while the CLI is running.
    let mut follow = Command::new(bin("modelrunner"))
        .args(["logs", "-f", "-n", "0"])
        .env("MODEL_RUNNER_HOST", &d.url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    c.get(d.u("/models"))
        .header("x-request-id", "follow-me-2")
        .send()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut seen = false;
    while std::time::Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if l.contains("follow-me-2") {
                seen = true;
                break;
            }
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(seen, "the followed log did not show the new request");
}
