//! Tool calls and reasoning on a real model: stories260K (or the stand-in) with real
//! tool-calling templates. The grammar makes even this tiny model write calls whose
//! arguments parse and match the schema, in every family's syntax.

use std::sync::OnceLock;

use modelrunner_engine::Engine;
use modelrunner_protocol::{
    Chat, Event, FinishReason, GenerateRequest, Launch, RunnerError, Settings, ToolChoice,
};
use modelrunner_testkit::{chat_model, template};
use serde_json::{json, Value};

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

async fn engine(family: &str) -> Engine {
    let (model, _) = chat_model(dir());
    let t = dir().join(format!("{family}.jinja"));
    std::fs::write(&t, template(family).source).unwrap();
    Engine::load(Launch {
        chat_template: Some(t),
        settings: Settings {
            parallel: Some(2),
            context_size: Some(2048),
            threads: Some(2),
            ..Default::default()
        },
        ..Launch::new(model)
    })
    .await
    .unwrap()
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 12},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["CET", "UTC"]}},
        "required": ["zone"], "additionalProperties": false}}}])
}

fn request(choice: ToolChoice, seed: u32) -> GenerateRequest {
    let mut chat = Chat::new(vec![
        json!({"role": "user", "content": "What is the weather in Paris?"}),
    ]);
    chat.tools = Some(tools());
    chat.tool_choice = choice;
    chat.parallel_tool_calls = false;
    // This model would reason without end; the grammar's reasoning block is tested apart.
    chat.reasoning_format = modelrunner_protocol::ReasoningFormat::None;
    let mut r = GenerateRequest::chat(chat);
    r.options.max_tokens = Some(300);
    r.options.sampling.seed = Some(seed);
    r
}

/// (content, calls as (name, arguments text), finish reason).
async fn run(e: &Engine, req: GenerateRequest) -> (String, Vec<(String, String)>, FinishReason) {
    let mut rx = e.generate(req).unwrap();
    let (mut content, mut calls) = (String::new(), Vec::<(String, String)>::new());
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token { text, .. } => content.push_str(&text),
            Event::ToolCall {
                index,
                name,
                arguments,
                id,
            } => {
                if let Some(n) = name {
                    assert_eq!(index, calls.len());
                    assert!(
                        id.is_some_and(|i| !i.is_empty()),
                        "the first delta has an id"
                    );
                    calls.push((n, String::new()));
                }
                calls[index].1.push_str(&arguments);
            }
            Event::Started { .. } | Event::Reasoning { .. } => {}
            Event::Done { finish_reason, .. } => return (content, calls, finish_reason),
            Event::Error { error } => panic!("{error}"),
        }
    }
    panic!("no end");
}

fn valid(name: &str, args: &str) {
    let v: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match name {
        "get_weather" => {
            assert!(
                v["city"].as_str().is_some_and(|c| c.chars().count() <= 12),
                "{v}"
            );
            assert!(
                v["days"].as_i64().is_some_and(|d| (1..=7).contains(&d)),
                "{v}"
            );
            assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        }
        "get_time" => assert!(matches!(v["zone"].as_str(), Some("CET" | "UTC")), "{v}"),
        other => panic!("called {other}"),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn required_and_named_choices_give_valid_calls_in_every_family() {
    rt().block_on(async {
        for family in ["hermes", "llama3", "mistral", "gpt-oss"] {
            let e = engine(family).await;
            for seed in 1..=3 {
                let (content, calls, finish) = run(&e, request(ToolChoice::Required, seed)).await;
                assert_eq!(
                    finish,
                    FinishReason::ToolCalls,
                    "{family} seed {seed}: {content:?} {calls:?}"
                );
                assert_eq!(calls.len(), 1, "{family}: {calls:?}");
                valid(&calls[0].0, &calls[0].1);
                let named = ToolChoice::Function {
                    name: "get_time".into(),
                };
                let (_, calls, finish) = run(&e, request(named, seed)).await;
                assert_eq!(finish, FinishReason::ToolCalls, "{family}");
                assert_eq!(calls[0].0, "get_time", "{family}");
                valid(&calls[0].0, &calls[0].1);
            }
            let (_, calls, finish) = run(&e, request(ToolChoice::None, 1)).await;
            assert!(calls.is_empty(), "{family}: none gave {calls:?}");
            assert_ne!(finish, FinishReason::ToolCalls);
        }
    });
}

#[test]
fn a_schema_that_is_no_grammar_names_its_tool() {
    rt().block_on(async {
        let e = engine("hermes").await;
        let mut r = request(ToolChoice::Required, 1);
        if let modelrunner_protocol::Input::Chat(c) = &mut r.input {
            c.tools = Some(json!([{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}}}]));
        }
        let mut rx = e.generate(r).unwrap();
        match rx.recv().await {
            Some(Event::Error {
                error: RunnerError::InvalidParam { param, .. },
            }) => {
                assert!(param.starts_with("tools[0].function.parameters"), "{param}")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn auto_calls_are_valid_once_they_start() {
    rt().block_on(async {
        // Llama 3.x calls start with `{` at the start of the output: a bias that makes `{`
        // the first token starts one, and from there the lazy grammar must hold the model
        // (the bias goes on pushing `{`, which the grammar no longer allows).
        let e = engine("llama3").await;
        let brace = *e.tokenize("{".into(), false).await.unwrap().last().unwrap();
        for seed in 1..=3 {
            let mut r = request(ToolChoice::Auto, seed);
            r.options.sampling.temperature = 1.0;
            r.options.sampling.logit_bias = vec![(brace, 100.0)];
            let (content, calls, finish) = run(&e, r).await;
            assert_eq!(calls.len(), 1, "seed {seed}: {content:?}");
            valid(&calls[0].0, &calls[0].1);
            assert_eq!(finish, FinishReason::ToolCalls);
            assert!(content.is_empty(), "{content:?}");
        }
        // Without the bias the model writes text, and nothing is constrained or read.
        let (content, calls, finish) = run(&e, request(ToolChoice::Auto, 1)).await;
        assert!(
            calls.is_empty() && !content.is_empty(),
            "{content:?} {calls:?}"
        );
        assert_ne!(finish, FinishReason::ToolCalls);
    });
}
