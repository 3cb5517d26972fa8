//! Engine throughput, printed in the shape of llama.cpp's `llama-batched-bench`:
//! prompt processing and generation tokens per second for 1..N parallel sequences.
//!
//! `engine_bench MODEL [NPP] [NTG] [NPL,...]` (defaults 128 128 1,4). `RUNTIME_FLAGS`
//! takes llama-server flags as the daemon's `--runtime-flags` does (`--flash-attn on`,
//! `--threads 1`, ...). `DRAIN_MS` makes the consumer poll every so many milliseconds
//! instead of waiting for each event (no wakeup per token; first-token figures then
//! include up to that delay).

use std::time::Instant;

use modelrunner_engine::Engine;
use modelrunner_protocol::{Event, GenerateRequest, Input, Launch, Prompt, Settings};

/// The next event; with `drain`, the consumer sleeps between polls instead of waiting,
/// so that the engine thread wakes no one per token (to measure what a wakeup costs).
async fn next(
    s: &mut tokio::sync::mpsc::UnboundedReceiver<Event>,
    drain: Option<std::time::Duration>,
) -> Option<Event> {
    let Some(d) = drain else {
        return s.recv().await;
    };
    loop {
        match s.try_recv() {
            Ok(ev) => return Some(ev),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => tokio::time::sleep(d).await,
            Err(_) => return None,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let model = args
        .get(1)
        .expect("usage: engine_bench MODEL [NPP] [NTG] [NPL,...]");
    let npp: usize = args.get(2).map_or(128, |s| s.parse().unwrap());
    let ntg: u32 = args.get(3).map_or(128, |s| s.parse().unwrap());
    let npls: Vec<u32> = args.get(4).map_or(vec![1, 4], |s| {
        s.split(',').map(|x| x.parse().unwrap()).collect()
    });
    let drain = std::env::var("DRAIN_MS")
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| std::time::Duration::from_millis(v.parse().expect("DRAIN_MS")));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let max = *npls.iter().max().unwrap();
        let mut settings = Settings {
            parallel: Some(max),
            context_size: Some((npp as u32 + ntg + 16).next_power_of_two()),
            ..Default::default()
        };
        let flags: Vec<String> = std::env::var("RUNTIME_FLAGS")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        settings.apply_flags(&flags).expect("RUNTIME_FLAGS");
        let engine = Engine::load(Launch {
            settings,
            ..Launch::new(model)
        })
        .await
        .expect("load");
        println!("threads {}", engine.props().threads);
        // S_TG: tokens over the time the consumer saw them in; engine t/s: each stream's
        // own rate as the engine timed it (first to last token), summed.
        println!("|  PP |  TG |   B |  S_PP t/s |  S_TG t/s | engine t/s |");
        for npl in npls {
            // Distinct token prompts so no slot reuses another's cache.
            let reqs: Vec<GenerateRequest> = (0..npl)
                .map(|i| {
                    let mut r = GenerateRequest {
                        input: Input::Prompt {
                            prompt: Prompt::Tokens(
                                (0..npp)
                                    .map(|j| 3 + ((j * 7 + i as usize * 13) % 250) as i32)
                                    .collect(),
                            ),
                            add_special: false,
                        },
                        ..GenerateRequest::text("")
                    };
                    r.options.sampling.temperature = 0.0;
                    r.options.max_tokens = Some(ntg);
                    r
                })
                .collect();
            let start = Instant::now();
            let mut streams: Vec<_> = reqs
                .into_iter()
                .map(|r| engine.generate(r).unwrap())
                .collect();
            let mut first_done = None;
            let mut total_gen = 0u64;
            let mut engine_rate = 0.0;
            for s in &mut streams {
                let mut first = true;
                while let Some(ev) = next(s, drain).await {
                    match ev {
                        Event::Token { .. } if first => {
                            first = false;
                            first_done.get_or_insert(Instant::now());
                        }
                        Event::Done { usage, timings, .. } => {
                            total_gen += u64::from(usage.completion_tokens);
                            engine_rate += timings.tokens_per_second;
                            break;
                        }
                        Event::Error { error } => panic!("{error}"),
                        _ => {}
                    }
                }
            }
            let end = Instant::now();
            let pp_secs = first_done.unwrap().duration_since(start).as_secs_f64();
            let tg_secs = end.duration_since(first_done.unwrap()).as_secs_f64();
            println!(
                "| {npp:3} | {ntg:3} | {npl:3} | {:9.2} | {:9.2} | {engine_rate:10.2} |",
                (npp as f64 * f64::from(npl)) / pp_secs,
                total_gen as f64 / tg_secs
            );
        }
    });
}
