//! The runner as a child process: generation and chat over its Unix socket, and crash
//! isolation (a killed runner fails its streams quickly; the parent lives on).

use std::time::{Duration, Instant};

use futures::StreamExt;
use modelrunner_e2e::bin;
use modelrunner_protocol::{
    Chat, Event, GenerateRequest, Launch, RunnerError, Settings, TokenizeRequest,
};
use modelrunner_scheduler::RunnerProcess;
use modelrunner_testkit::chat_model;
use serde_json::json;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn start(dir: &std::path::Path) -> (RunnerProcess, bool) {
    let (model, trained) = chat_model(dir);
    let launch = Launch {
        socket: dir.join("runner.sock"),
        settings: Settings {
            parallel: Some(2),
            context_size: Some(512),
            ..Default::default()
        },
        ..Launch::new(model)
    };
    let p = RunnerProcess::spawn(&bin("modelrunnerd"), &launch, Duration::from_secs(60), "t")
        .await
        .unwrap();
    (p, trained)
}

#[test]
fn generates_and_chats_over_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (runner, trained) = start(dir.path()).await;
        let c = &runner.client;
        let props = c.props().await.unwrap();
        assert_eq!(props.slots, 2);
        assert_eq!(props.slot_context, 512);
        assert!(props.rss_bytes > 0);
        let mut req = GenerateRequest::text("Once upon a time");
        req.options.sampling.temperature = 0.0;
        req.options.max_tokens = Some(20);
        let events: Vec<Event> = c.generate(&req).await.unwrap().collect().await;
        let text: String = events.iter().filter_map(|e| match e { Event::Token { text, .. } => Some(text.as_str()), _ => None }).collect();
        if trained {
            assert!(text.starts_with(", there was a little girl named Lily"), "{text:?}");
        }
        assert!(matches!(events.last(), Some(Event::Done { .. })));
        // stories260K has no template: the ChatML fallback is used.
        let chat = Chat::new(vec![json!({"role": "user", "content": "Hi"})]);
        assert_eq!(
            c.apply_template(&chat).await.unwrap(),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let mut req = GenerateRequest::chat(chat);
        req.options.max_tokens = Some(5);
        let events: Vec<Event> = c.generate(&req).await.unwrap().collect().await;
        assert!(matches!(events.last(), Some(Event::Done { .. })), "{events:?}");
        // What only the model can check is refused with the parameter named, and the
        // runner keeps serving.
        let mut bad = GenerateRequest::text("x");
        bad.options.sampling.logit_bias = vec![(props.n_vocab, 1.0)];
        let events: Vec<Event> = c.generate(&bad).await.unwrap().collect().await;
        assert!(
            matches!(&events[..], [Event::Error { error: RunnerError::InvalidParam { param, .. } }] if param == "logit_bias"),
            "{events:?}"
        );
        let t = c.tokenize(&TokenizeRequest { content: "Once upon".into(), add_special: false, chat: None }).await.unwrap();
        assert!(!t.is_empty());
        assert_eq!(c.detokenize(&t).await.unwrap().trim_start(), "Once upon");
        // An embedding call to a completion runner is refused in words.
        let e = c.embed(&modelrunner_protocol::EmbedRequest { input: vec![] }).await.unwrap_err();
        assert!(e.to_string().contains("completion mode; it gives no embeddings"), "{e}");
        let e = c
            .rerank(&modelrunner_protocol::RerankRequest { query: "q".into(), documents: vec!["d".into()] })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("completion mode; it gives no reranking scores"), "{e}");
    });
}

#[test]
fn a_killed_runner_fails_its_streams_quickly() {
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let (mut runner, _) = start(dir.path()).await;
        let mut req = GenerateRequest::text("Once upon a time");
        req.options.max_tokens = Some(400);
        let mut stream = Box::pin(runner.client.generate(&req).await.unwrap());
        // The prompt's counts come first, then the first token.
        assert!(matches!(stream.next().await, Some(Event::Started { prompt_tokens, .. }) if prompt_tokens > 0));
        assert!(matches!(stream.next().await, Some(Event::Token { .. })));
        let pid = runner.pid().unwrap() as i32;
        unsafe { libc::kill(pid, libc::SIGKILL) };
        // The stream ends (a guard against waiting for ever, not a measure of speed).
        let last = tokio::time::timeout(Duration::from_secs(60), async {
            let mut last = None;
            while let Some(ev) = stream.next().await {
                last = Some(ev);
            }
            last
        })
        .await
        .expect("the stream of a killed runner ends");
        assert!(
            matches!(
                last,
                Some(Event::Error {
                    error: RunnerError::Interrupted { .. }
                })
            ),
            "{last:?}"
        );
        let status = runner.wait().await.unwrap();
        assert!(!status.success());
        // New requests fail cleanly too.
        assert!(runner.client.props().await.is_err());
    });
}

const PARENT_ENV: &str = "MODELRUNNER_RUNNER_PARENT_DIR";

/// The parent's part: run by `runner_dies_with_its_parent` re-executing itself with
/// `PARENT_ENV` set; starts a runner, prints its PID, and dies without cleaning up.
fn be_the_parent(dir: std::ffi::OsString) -> ! {
    rt().block_on(async {
        let (runner, _) = start(std::path::Path::new(&dir)).await;
        println!("RUNNER_PID={}", runner.pid().unwrap());
        std::mem::forget(runner);
        std::process::abort();
    })
}

#[test]
fn runner_dies_with_its_parent() {
    if let Some(dir) = std::env::var_os(PARENT_ENV) {
        be_the_parent(dir);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "runner_dies_with_its_parent",
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
