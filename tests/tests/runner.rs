//! The runner as a child process: generation and chat over its Unix socket, and crash
//! isolation (a killed runner fails its streams quickly; the parent lives on).

use std::time::{Duration, Instant};

use futures::StreamExt;
use modelrunner_e2e::bin;
use modelrunner_engine::{Event, GenerateRequest, RunnerProcess};
use modelrunner_testkit::chat_model;
use serde_json::json;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn start(dir: &std::path::Path, extra: &[&str]) -> (RunnerProcess, bool) {
    let (model, trained) = chat_model(dir);
    let socket = dir.join("runner.sock");
    let mut args: Vec<String> = [
        "runner",
        "--model",
        model.to_str().unwrap(),
        "--socket",
        socket.to_str().unwrap(),
        "--slots",
        "2",
        "--ctx-size",
        "512",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = RunnerProcess::spawn(
        &bin("modelrunnerd"),
        &args,
        &socket,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    (p, trained)
}

#[test]
fn generates_and_chats_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (runner, trained) = start(dir.path(), &[]).await;
        let props = runner.client.props().await.unwrap();
        assert_eq!(props.slots, 2);
        assert_eq!(props.slot_context, 512);
        assert!(props.rss_bytes > 0);
        let mut req = GenerateRequest::text("Once upon a time");
        req.options.sampling.temperature = 0.0;
        req.options.max_tokens = Some(20);
        let events: Vec<Event> = runner.client.stream("/generate", &req).await.unwrap().collect().await;
        let text: String = events.iter().filter_map(|e| match e { Event::Token { text, .. } => Some(text.as_str()), _ => None }).collect();
        if trained {
            assert!(text.starts_with(", there was a little girl named Lily"), "{text:?}");
        }
        assert!(matches!(events.last(), Some(Event::Done { .. })));
        // stories260K has no template: the ChatML fallback is used.
        let chat = json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5, "sampling": {"temperature": 0.0}});
        let v: serde_json::Value = runner.client.call(hyper::Method::POST, "/apply-template", Some(&chat)).await.unwrap();
        assert_eq!(v["prompt"], "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        let events: Vec<Event> = runner.client.stream("/chat", &chat).await.unwrap().collect().await;
        assert!(matches!(events.last(), Some(Event::Done { .. })), "{events:?}");
        // Bad input is a clear error, and the runner keeps serving.
        let bad = json!({"prompt": "x", "sampling": {"temperature": -1.0}});
        let err = runner.client.stream("/generate", &bad).await.err().unwrap();
        assert!(err.to_string().contains("temperature"), "{err}");
        let v: serde_json::Value = runner.client.call(hyper::Method::POST, "/tokenize", Some(&json!({"content": "Once upon"}))).await.unwrap();
        assert!(!v["tokens"].as_array().unwrap().is_empty());
    });
}

#[test]
fn a_killed_runner_fails_its_streams_quickly() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut runner, _) = start(dir.path(), &[]).await;
        let mut req = GenerateRequest::text("Once upon a time");
        req.options.max_tokens = Some(400);
        let mut stream = Box::pin(runner.client.stream("/generate", &req).await.unwrap());
        assert!(matches!(stream.next().await, Some(Event::Token { .. })));
        let pid = runner.pid().unwrap() as i32;
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let killed = Instant::now();
        let mut last = None;
        while let Some(ev) = stream.next().await {
            last = Some(ev);
        }
        assert!(matches!(last, Some(Event::Error { .. })), "{last:?}");
        assert!(
            killed.elapsed() < Duration::from_secs(2),
            "took {:?}",
            killed.elapsed()
        );
        let status = runner.wait().await.unwrap();
        assert!(!status.success());
        // New requests fail cleanly too.
        assert!(runner.client.props().await.is_err());
    });
}

const PARENT_ENV: &str = "MODELRUNNER_RUNNER_PARENT_DIR";

/// Helper: started by `runner_dies_with_its_parent` as a separate process; starts a runner,
/// prints its PID, and dies without cleaning up.
#[test]
fn runner_parent_helper() {
    let Some(dir) = std::env::var_os(PARENT_ENV) else {
        return;
    };
    rt().block_on(async {
        let (runner, _) = start(std::path::Path::new(&dir), &[]).await;
        println!("RUNNER_PID={}", runner.pid().unwrap());
        std::mem::forget(runner);
        std::process::abort();
    });
}

#[test]
fn runner_dies_with_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "runner_parent_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PARENT_ENV, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pid: i32 = stdout
        .lines()
        .find_map(|l| l.split_once("RUNNER_PID=").map(|(_, pid)| pid))
        .unwrap_or_else(|| panic!("helper printed no PID: {stdout}"))
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // kill(pid, 0) fails once the process is gone (it is reaped by init).
    while unsafe { libc::kill(pid, 0) } == 0 {
        assert!(
            Instant::now() < deadline,
            "runner {pid} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
