//! Engine throughput, printed in the shape of llama.cpp's `llama-batched-bench`:
//! prompt processing and generation tokens per second for 1..N parallel sequences.
//!
//! `engine_bench MODEL [NPP] [NTG] [NPL,...]` (defaults 128 128 1,4)

use std::time::Instant;

use modelrunner_engine::Engine;
use modelrunner_protocol::{Event, GenerateRequest, Input, Launch, Prompt, Settings};

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let max = *npls.iter().max().unwrap();
        let engine = Engine::load(Launch {
            settings: Settings {
                parallel: Some(max),
                context_size: Some((npp as u32 + ntg + 16).next_power_of_two()),
                ..Default::default()
            },
            ..Launch::new(model)
        })
        .await
        .expect("load");
        println!("threads {}", engine.props().threads);
        println!("|  PP |  TG |   B |  S_PP t/s |  S_TG t/s |");
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
            for s in &mut streams {
                let mut first = true;
                while let Some(ev) = s.recv().await {
                    match ev {
                        Event::Token { .. } if first => {
                            first = false;
                            first_done.get_or_insert(Instant::now());
                        }
                        Event::Done { usage, .. } => {
                            total_gen += u64::from(usage.completion_tokens);
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
                "| {npp:3} | {ntg:3} | {npl:3} | {:9.2} | {:9.2} |",
                (npp as f64 * f64::from(npl)) / pp_secs,
                total_gen as f64 / tg_secs
            );
        }
    });
}
