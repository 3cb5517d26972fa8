//! Decode speed with a tool-call grammar active against without, in the same run.
//!
//! `grammar_bench MODEL TEMPLATE [TOKENS] [ROUNDS]` (defaults 200 tokens, 7 rounds)
//!
//! Both requests are the same chat and tool (so the same prompt) with end-of-generation
//! banned, so both generate exactly TOKENS tokens; one has `tool_choice: none`, the
//! other `tool_choice: required`, so every token is
//! sampled under the grammar (the tool's one string argument must be longer than the
//! output, so the grammar stays active to the end). Rounds alternate; medians and
//! spreads print.

use std::time::Instant;

use modelrunner_engine::Engine;
use modelrunner_protocol::{Chat, Event, GenerateRequest, Launch, Settings, ToolChoice};
use serde_json::json;

fn request(grammar: bool, tokens: u32, eos: i32) -> GenerateRequest {
    let mut chat = Chat::new(vec![
        json!({"role": "user", "content": "Write about the sea."}),
    ]);
    chat.tools = Some(json!([{"type": "function", "function": {"name": "write",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "minLength": 1500}},
            "required": ["text"]}}}]));
    chat.tool_choice = if grammar {
        ToolChoice::Required
    } else {
        ToolChoice::None
    };
    chat.parallel_tool_calls = false;
    chat.reasoning_format = modelrunner_protocol::ReasoningFormat::None;
    let mut r = GenerateRequest::chat(chat);
    r.options.max_tokens = Some(tokens);
    r.options.sampling.temperature = 0.0;
    r.options.sampling.logit_bias = vec![(eos, -100.0)];
    r
}

/// Decode tokens per second after the first token.
async fn run(e: &Engine, req: GenerateRequest) -> f64 {
    let mut rx = e.generate(req).unwrap();
    let (mut first, mut n) = (None, 0u32);
    while let Some(ev) = rx.recv().await {
        match ev {
            Event::Token { .. } => {
                n += 1;
                first.get_or_insert_with(Instant::now);
            }
            Event::Done { .. } => break,
            Event::Error { error } => panic!("{error}"),
            _ => {}
        }
    }
    let secs = first.expect("tokens").elapsed().as_secs_f64();
    f64::from(n - 1) / secs
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let (model, template) = (a.get(1).expect("MODEL"), a.get(2).expect("TEMPLATE"));
    let tokens: u32 = a.get(3).map_or(200, |s| s.parse().unwrap());
    let rounds: usize = a.get(4).map_or(7, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let e = Engine::load(Launch {
            chat_template: Some(template.into()),
            settings: Settings {
                parallel: Some(1),
                context_size: Some(2048),
                ..Default::default()
            },
            ..Launch::new(model)
        })
        .await
        .expect("load");
        let eos = e
            .tokenize(e.props().eos_token.clone(), false)
            .await
            .unwrap()
            .first()
            .copied()
            .unwrap_or(2);
        run(&e, request(true, 8, eos)).await;
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            without.push(run(&e, request(false, tokens, eos)).await);
            with.push(run(&e, request(true, tokens, eos)).await);
        }
        let (w, wl, wh) = median(with);
        let (o, ol, oh) = median(without);
        println!(
            "chat format {}, threads {}, {tokens} tokens, {rounds} rounds",
            e.props().chat_format,
            e.props().threads
        );
        println!("| decode, 1 stream (t/s) | median | min | max |");
        println!("|---|---:|---:|---:|");
        println!("| without a grammar | {o:.1} | {ol:.1} | {oh:.1} |");
        println!("| with a tool grammar (required) | {w:.1} | {wl:.1} | {wh:.1} |");
        println!("| ratio | {:.2}x | | |", w / o);
    });
}
