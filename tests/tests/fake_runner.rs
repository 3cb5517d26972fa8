//! A stand-in runner that answers embeddings wrongly, which the real engine never does:
//! the daemon must refuse such an answer with a server error, never pass it on as a 200
//! that pairs the wrong vectors with the inputs. The daemon starts this test binary as
//! its runner program (`--runner-program`) with `runner LAUNCH-JSON` as arguments; the
//! test harness then runs the tests whose names hold "runner" (this one), which finds
//! the launch among its arguments and plays the runner.

use std::sync::Arc;

use modelrunner_e2e::Daemon;
use modelrunner_protocol::server::{serve, Service};
use modelrunner_protocol::{
    Chat, EmbedRequest, Embedding, Event, GenerateRequest, Launch, Props, RerankRequest,
    RunnerError, Score, TokenizeRequest,
};
use serde_json::{json, Value};

/// How the stand-in breaks its answers: `count` (one vector too few) or `width`.
const BROKEN: &str = "MODELRUNNER_TEST_BROKEN_RUNNER";
const WIDTH: usize = 8;

struct Broken {
    launch: Launch,
    how: String,
}

impl Service for Broken {
    fn props(&self) -> Props {
        Props {
            slot_context: 512,
            slots: self.launch.settings.parallel(),
            trained_context: 512,
            n_vocab: 320,
            n_embd: WIDTH as i32,
            n_params: 1,
            model_bytes: 1,
            rss_bytes: 1 << 20,
            threads: 1,
            mode: self.launch.mode,
            chat_template: String::new(),
            chat_format: "generic".into(),
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
        }
    }

    fn generate(
        &self,
        _req: GenerateRequest,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<Event>, RunnerError> {
        Err(RunnerError::internal("this stand-in only embeds"))
    }

    fn apply_template(&self, _chat: &Chat) -> Result<String, RunnerError> {
        Err(RunnerError::internal("this stand-in only embeds"))
    }

    async fn tokenize(&self, _req: TokenizeRequest) -> Result<Vec<i32>, RunnerError> {
        Ok(vec![1])
    }

    async fn detokenize(&self, _tokens: Vec<i32>) -> Result<String, RunnerError> {
        Ok(String::new())
    }

    async fn embed(&self, req: EmbedRequest) -> Result<Vec<Embedding>, RunnerError> {
        let n = req.input.len();
        let (count, width) = match self.how.as_str() {
            "count" => (n - 1, WIDTH),
            _ => (n, WIDTH - 1),
        };
        Ok((0..count)
            .map(|_| Embedding {
                embedding: vec![0.5; width],
                tokens: 1,
            })
            .collect())
    }

    async fn rerank(&self, req: RerankRequest) -> Result<Vec<Score>, RunnerError> {
        // One score too few.
        Ok(req
            .documents
            .iter()
            .skip(1)
            .map(|_| Score {
                score: 0.5,
                tokens: 1,
            })
            .collect())
    }
}

/// Serves the stand-in on the launch's socket until the daemon kills it.
fn play_the_runner(launch: Launch) -> ! {
    let how = std::env::var(BROKEN).unwrap_or_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let listener = tokio::net::UnixListener::bind(&launch.socket).unwrap();
        let service = Arc::new(Broken { launch, how });
        serve(listener, service, std::future::pending())
            .await
            .unwrap();
    });
    std::process::exit(0)
}

#[test]
fn a_runner_answer_that_does_not_pair_with_the_inputs_is_refused() {
    if let Some(launch) = Launch::from_args(&std::env::args().collect::<Vec<_>>()) {
        play_the_runner(launch);
    }
    let me = std::env::current_exe().unwrap();
    for how in ["count", "width"] {
        let d = Daemon::start_env(
            &["--runner-program", me.to_str().unwrap()],
            &[(BROKEN, how)],
        );
        d.package_tiny("m", 1);
        d.package_reranker("r", true);
        let c = reqwest::blocking::Client::new();
        let r = c
            .post(d.u("/v1/embeddings"))
            .json(&json!({"model": "m", "input": ["a", "b", "c"]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 500, "{how}");
        let v: Value = r.json().unwrap();
        assert_eq!(v["error"]["type"], "server_error", "{how}: {v}");
        assert!(v.get("data").is_none(), "{how}: {v}");
        // Scores that do not pair with the documents are refused the same way.
        let r = c
            .post(d.u("/v1/rerank"))
            .json(&json!({"model": "r", "query": "q", "documents": ["a", "b"]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 500, "{how}");
        let v: Value = r.json().unwrap();
        assert!(v.get("results").is_none(), "{how}: {v}");
        // The daemon keeps serving.
        let r = c.get(d.u("/v1/models")).send().unwrap();
        assert_eq!(r.status(), 200);
    }
}
