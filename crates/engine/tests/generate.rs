//! The engine on real models: stories260K (trained) and the project's generated fixture.

use std::path::PathBuf;
use std::sync::OnceLock;

use modelrunner_engine::{collect, Engine};
use modelrunner_protocol::{
    Event, FinishReason, GenerateRequest, Launch, Mode, Prompt, RunnerError, Settings,
};
use modelrunner_testkit::{chat_model, LlamaSpec};

/// `GenerateRequest::text("a")` changed by `f`.
fn with(f: impl FnOnce(&mut GenerateRequest)) -> GenerateRequest {
    let mut r = GenerateRequest::text("a");
    f(&mut r);
    r
}

fn greedy(prompt: &str, max: u32) -> GenerateRequest {
    let mut r = GenerateRequest::text(prompt);
    r.options.sampling.temperature = 0.0;
    r.options.max_tokens = Some(max);
    r
}

/// stories260K when present, else a generated stand-in (then text checks are skipped).
fn model() -> (PathBuf, bool) {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    chat_model(DIR.get_or_init(|| tempfile::tempdir().unwrap()).path())
}

/// A launch of `model` with `slots` slots and otherwise default settings.
fn launch(model: PathBuf, slots: u32) -> Launch {
    Launch {
        settings: Settings {
            parallel: Some(slots),
            ..Default::default()
        },
        ..Launch::new(model)
    }
}

async fn engine(slots: u32) -> Engine {
    let (path, _) = model();
    let mut l = launch(path, slots);
    l.settings.context_size = Some(512);
    l.settings.threads = Some(2);
    Engine::load(l).await.unwrap()
}

/// The model's end-of-generation token.
async fn eos(e: &Engine) -> i32 {
    let t = e
        .tokenize(e.props().eos_token.clone(), false)
        .await
        .unwrap();
    t[0]
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn stories_continues_once_upon_a_time() {
    let (_, trained) = model();
    rt().block_on(async {
        let e = engine(2).await;
        let (text, done) = collect(e.generate(greedy("Once upon a time", 30)).unwrap())
            .await
            .unwrap();
        if trained {
            assert!(
                text.starts_with(
                    ", there was a little girl named Lily. She loved to play outside in the park."
                ),
                "{text:?}"
            );
        }
        let Event::Done {
            finish_reason,
            usage,
            ..
        } = done
        else {
            unreachable!()
        };
        assert_eq!(usage.completion_tokens, 30);
        assert_eq!(finish_reason, FinishReason::Length);
        assert!(usage.prompt_tokens >= 4);
    });
}

#[test]
fn generated_fixture_loads_in_llama_cpp() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tiny.gguf");
    LlamaSpec::tiny().build(3).write_file(&p).unwrap();
    rt().block_on(async {
        let e = Engine::load(launch(p, 1)).await.unwrap();
        assert_eq!(e.props().n_vocab, 320);
        assert_eq!(e.props().trained_context, 512);
        let (_, done) = collect(e.generate(greedy("hello world", 8)).unwrap())
            .await
            .unwrap();
        assert!(matches!(done, Event::Done { usage, .. } if usage.completion_tokens > 0));
    });
}

#[test]
fn q8_0_fixture_loads_and_generates() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("tiny-q8.gguf");
    LlamaSpec::tiny().build_q8_0(3).write_file(&p).unwrap();
    let facts = modelrunner_format::gguf::GgufFile::open(&p)
        .unwrap()
        .facts();
    assert_eq!(facts.quantization, "Q8_0");
    rt().block_on(async {
        let e = Engine::load(launch(p, 1)).await.unwrap();
        let (_, done) = collect(e.generate(greedy("hello", 8)).unwrap())
            .await
            .unwrap();
        assert!(matches!(done, Event::Done { usage, .. } if usage.completion_tokens == 8));
    });
}

#[test]
fn malformed_and_truncated_models_fail_to_load_clearly() {
    let d = tempfile::tempdir().unwrap();
    let bytes = LlamaSpec::tiny().build(2).to_bytes();
    let cut = d.path().join("cut.gguf");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let junk = d.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    rt().block_on(async {
        for p in [cut, junk, d.path().join("missing.gguf")] {
            let err = Engine::load(launch(p.clone(), 1))
                .await
                .err()
                .expect("loaded garbage");
            let msg = err.to_string();
            assert!(
                msg.starts_with("cannot load the model")
                    && msg.contains(p.file_name().unwrap().to_str().unwrap()),
                "{msg}"
            );
        }
    });
}

#[test]
fn batched_greedy_equals_sequential() {
    let prompts = [
        "Once upon a time",
        "The cat",
        "Lily and Tom went",
        "One day, a big dog",
        "The sun was shining and",
        "Tim had a red ball",
        "In the park there was",
        "Mom said",
    ];
    rt().block_on(async {
        let e = engine(8).await;
        let mut alone = Vec::new();
        for p in prompts {
            alone.push(collect(e.generate(greedy(p, 40)).unwrap()).await.unwrap().0);
        }
        let streams: Vec<_> = prompts
            .iter()
            .map(|p| e.generate(greedy(p, 40)).unwrap())
            .collect();
        let together = futures_join(streams).await;
        assert_eq!(alone, together);
        assert!(
            alone.iter().collect::<std::collections::HashSet<_>>().len() > 1,
            "all outputs identical: {alone:?}"
        );
    });
}

async fn futures_join(streams: Vec<tokio::sync::mpsc::UnboundedReceiver<Event>>) -> Vec<String> {
    let handles: Vec<_> = streams
        .into_iter()
        .map(|s| tokio::spawn(collect(s)))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap().0);
    }
    out
}

#[test]
fn follow_up_reuses_the_cached_prefix() {
    rt().block_on(async {
        let e = engine(1).await;
        let first = "Once upon a time, there was a little girl";
        let (text, _) = collect(e.generate(greedy(first, 16)).unwrap())
            .await
            .unwrap();
        let (_, done) = collect(
            e.generate(greedy(&format!("{first}{text} And then"), 8))
                .unwrap(),
        )
        .await
        .unwrap();
        let Event::Done { usage, .. } = done else {
            unreachable!()
        };
        assert!(usage.cached_tokens >= 10, "{usage:?}");
        assert!(usage.cached_tokens < usage.prompt_tokens);
    });
}

#[test]
fn stop_strings_are_never_emitted() {
    let (_, trained) = model();
    if !trained {
        return;
    }
    rt().block_on(async {
        let e = engine(1).await;
        let mut req = greedy("Once upon a time", 60);
        req.options.stop = vec!["named L".into()];
        let (text, done) = collect(e.generate(req).unwrap()).await.unwrap();
        assert_eq!(text, ", there was a little girl ");
        assert!(matches!(
            done,
            Event::Done {
                finish_reason: FinishReason::Stop,
                ..
            }
        ));
    });
}

#[test]
fn seeds_make_sampling_repeatable() {
    rt().block_on(async {
        let e = engine(2).await;
        let req = |seed| {
            let mut r = GenerateRequest::text("Once upon a time");
            r.options.sampling.temperature = 1.0;
            r.options.sampling.seed = Some(seed);
            r.options.max_tokens = Some(40);
            r
        };
        let a = collect(e.generate(req(7)).unwrap()).await.unwrap().0;
        let b = collect(e.generate(req(7)).unwrap()).await.unwrap().0;
        let c = collect(e.generate(req(8)).unwrap()).await.unwrap().0;
        let d = collect(e.generate(req(9)).unwrap()).await.unwrap().0;
        assert_eq!(a, b);
        assert!(a != c || a != d, "three seeds gave the same text");
    });
}

#[test]
fn bad_parameters_and_long_prompts_are_errors_not_crashes() {
    rt().block_on(async {
        let e = engine(1).await;
        let n = e.props().n_vocab;
        // What only the model can check; the rest is checked where requests enter
        // (`GenerateRequest::validate`, tested in the protocol crate).
        let cases: Vec<(GenerateRequest, &str)> = vec![
            (
                with(|r| r.options.sampling.logit_bias = vec![(n, 1.0)]),
                "logit_bias",
            ),
            (
                GenerateRequest::prompt(Prompt::Tokens(vec![1, n + 5])),
                "not in the vocabulary",
            ),
            (
                with(|r| r.options.json_schema = Some(serde_json::json!({"type": 12}))),
                "json_schema",
            ),
        ];
        for (req, needle) in cases {
            let err = collect(e.generate(req).unwrap())
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{err:?} lacks {needle:?}");
        }
        let long = "once upon a time ".repeat(400);
        let err = collect(e.generate(greedy(&long, 4)).unwrap())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("tokens but the context holds 512"),
            "{err}"
        );
        // max_tokens is clamped to the room left (a prompt of 300 to 400 tokens).
        let unit = "once upon a time ";
        let per = e.tokenize(unit.into(), false).await.unwrap().len();
        let (_, done) = collect(e.generate(greedy(&unit.repeat(400 / per), 5000)).unwrap())
            .await
            .unwrap();
        let Event::Done { usage, .. } = done else {
            unreachable!()
        };
        assert!(
            usage.prompt_tokens + usage.completion_tokens <= 512,
            "{usage:?}"
        );
        // The engine still serves.
        assert!(collect(e.generate(greedy("The cat", 3)).unwrap())
            .await
            .is_ok());
    });
}

#[test]
fn cancelled_requests_free_their_slot() {
    rt().block_on(async {
        let e = engine(1).await;
        // End-of-generation banned: left alone it runs until its 512-token context is full.
        let mut long = greedy("Once upon a time", 1500);
        long.options.sampling.logit_bias = vec![(eos(&e).await, -100.0)];
        let mut rx = e.generate(long).unwrap();
        let _ = rx.recv().await;
        assert_eq!(e.stats().await.unwrap().busy_slots, 1);
        drop(rx);
        // The one slot frees (the engine answers between steps, so a few steps may pass).
        let mut stats = e.stats().await.unwrap();
        while stats.busy_slots != 0 {
            tokio::task::yield_now().await;
            stats = e.stats().await.unwrap();
        }
        assert!(
            stats.generated_tokens < 100,
            "{} tokens generated after the client left",
            stats.generated_tokens
        );
        let (_, done) = collect(e.generate(greedy("The cat", 4)).unwrap())
            .await
            .unwrap();
        assert!(matches!(done, Event::Done { .. }));
        assert_eq!(
            e.stats().await.unwrap().generated_tokens,
            stats.generated_tokens + 4
        );
    });
}

#[test]
fn grammar_and_json_schema_constrain_output() {
    rt().block_on(async {
        let e = engine(1).await;
        let mut req = greedy("Once upon a time", 20);
        req.options.sampling.temperature = 0.8;
        req.options.sampling.seed = Some(1);
        req.options.grammar = Some("root ::= (\"yes\" | \"no\") \".\"".into());
        let (text, _) = collect(e.generate(req).unwrap()).await.unwrap();
        assert!(text == "yes." || text == "no.", "{text:?}");
        let mut req = greedy("Once upon a time", 60);
        req.options.json_schema = Some(serde_json::json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}));
        let (text, _) = collect(e.generate(req).unwrap()).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
        assert!(v["ok"].is_boolean(), "{v}");
        let mut bad = greedy("x", 2);
        bad.options.grammar = Some("root ::= (".into());
        let err = collect(e.generate(bad).unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("grammar"), "{err}");
    });
}

#[test]
fn logprobs_list_top_alternatives() {
    rt().block_on(async {
        let e = engine(1).await;
        let mut req = greedy("Once upon a time", 3);
        req.options.logprobs = Some(3);
        let mut rx = e.generate(req).unwrap();
        assert!(matches!(rx.recv().await, Some(Event::Started { .. })));
        let Some(Event::Token {
            token,
            logprobs: Some(lp),
            ..
        }) = rx.recv().await
        else {
            panic!("no logprobs")
        };
        let alts = lp.top;
        assert_eq!(alts.len(), 3);
        assert!(lp.logprob <= 0.0);
        assert_eq!(alts[0].token, token, "greedy picks the most likely token");
        assert!(alts.windows(2).all(|w| w[0].logprob >= w[1].logprob));
    });
}

#[test]
fn tokenize_round_trips_and_checks_tokens() {
    rt().block_on(async {
        let e = engine(1).await;
        let t = e.tokenize("Once upon a time".into(), false).await.unwrap();
        assert!(!t.is_empty());
        assert_eq!(
            e.detokenize(t).await.unwrap().trim_start(),
            "Once upon a time"
        );
        assert!(matches!(
            e.detokenize(vec![-1]).await,
            Err(RunnerError::InvalidParam { .. })
        ));
    });
}

#[test]
fn embeddings_are_unit_vectors() {
    let (path, _) = model();
    rt().block_on(async {
        let e = Engine::load(Launch {
            mode: Mode::Embedding,
            ..launch(path, 1)
        })
        .await
        .unwrap();
        let out = e
            .embed(vec![
                Prompt::Text("The cat".into()),
                Prompt::Text("The cat".into()),
                Prompt::Text("A dog ran".into()),
            ])
            .await
            .unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[0].embedding.len(),
            e.props().n_embd as usize,
            "embedding width is the model's"
        );
        let norm: f32 = out[0].embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3);
        assert_eq!(out[0].embedding, out[1].embedding);
        assert_ne!(out[0].embedding, out[2].embedding);
    });
}
