//! Serving benchmark: our runner (Unix socket, the runner protocol's client) against
//! llama.cpp's `llama-server` (TCP, `/completion`), same model, settings and machine,
//! same run.
//!
//! `server_bench OURS_SOCKET LLAMA_ADDR EOS_TOKEN VOCAB [PROMPT_TOKENS] [GEN_TOKENS]`
//!
//! Figures per server: prompt processing tokens/s (one long prompt), time to first token
//! (short prompt), single-stream decode tokens/s, and aggregate decode tokens/s with 4 and
//! 8 concurrent streams. EOS is biased away on both so every stream generates exactly
//! GEN_TOKENS tokens; sampling is greedy; llama-server's prompt cache is off.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use modelrunner_protocol::{Event, GenerateRequest, Input, Prompt, RunnerClient};
use serde_json::{json, Value};

#[derive(Clone)]
enum Target {
    Ours(String),
    Llama(String),
}

struct Run {
    ttft: Duration,
    total: Duration,
    tokens: u32,
}

/// Tokens counted as they arrive.
struct Tally {
    start: Instant,
    ttft: Option<Duration>,
    tokens: u32,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            start: Instant::now(),
            ttft: None,
            tokens: 0,
        }
    }

    fn token(&mut self) {
        self.tokens += 1;
        let start = self.start;
        self.ttft.get_or_insert_with(|| start.elapsed());
    }

    fn run(self) -> Run {
        Run {
            ttft: self.ttft.unwrap_or_default(),
            total: self.start.elapsed(),
            tokens: self.tokens,
        }
    }
}

/// One generation on our runner.
async fn ours(socket: &str, prompt: &[i32], n: u32, eos: i32) -> Run {
    let mut req = GenerateRequest {
        input: Input::Prompt {
            prompt: Prompt::Tokens(prompt.to_vec()),
            add_special: false,
        },
        ..GenerateRequest::text("")
    };
    req.options.max_tokens = Some(n);
    req.options.sampling.temperature = 0.0;
    req.options.sampling.logit_bias = vec![(eos, -100.0)];
    let mut tally = Tally::new();
    let mut events = Box::pin(
        RunnerClient::new(socket)
            .generate(&req)
            .await
            .expect("generate"),
    );
    while let Some(ev) = events.next().await {
        if let Event::Token { .. } = ev {
            tally.token();
        }
    }
    tally.run()
}

async fn one(target: &Target, prompt: &[i32], n: u32, eos: i32) -> Run {
    let addr = match target {
        Target::Ours(sock) => return ours(sock, prompt, n, eos).await,
        Target::Llama(addr) => addr,
    };
    let (path, body) = (
        "/completion",
        json!({"prompt": prompt, "n_predict": n, "stream": true, "temperature": 0.0,
               "cache_prompt": false, "logit_bias": [[eos, -100.0]], "samplers": ["top_k"], "top_k": 1}),
    );
    let mut tally = Tally::new();
    let mut sender = {
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect llama-server");
        s.set_nodelay(true).unwrap();
        let (tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
            .await
            .unwrap();
        tokio::spawn(conn);
        tx
    };
    let req = Request::post(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.unwrap();
        let Some(d) = frame.data_ref() else { continue };
        buf.extend_from_slice(d);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            let json = line.strip_prefix("data: ").unwrap_or(line);
            if json.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            if v["stop"] == false {
                tally.token();
            }
        }
    }
    tally.run()
}

async fn figures(target: &Target, vocab: i32, eos: i32, npp: usize, ntg: u32) -> Vec<f64> {
    let prompt = |seed: usize, len: usize| -> Vec<i32> {
        (0..len)
            .map(|j| 3 + ((j * 7 + seed * 131) as i32 % (vocab - 4)))
            .collect()
    };
    // Warm up.
    one(target, &prompt(99, 16), 4, eos).await;
    let mut out = Vec::new();
    // Prompt processing: one long prompt, one token out.
    let mut best = f64::MAX;
    for i in 0..3 {
        let r = one(target, &prompt(i, npp), 1, eos).await;
        best = best.min(r.ttft.as_secs_f64());
    }
    out.push(npp as f64 / best);
    // Time to first token on a short prompt.
    let mut best = f64::MAX;
    for i in 0..5 {
        best = best.min(
            one(target, &prompt(10 + i, 8), 1, eos)
                .await
                .ttft
                .as_secs_f64(),
        );
    }
    out.push(best * 1e3);
    // Single-stream decode.
    let r = one(target, &prompt(20, 8), ntg, eos).await;
    out.push(f64::from(r.tokens - 1) / (r.total - r.ttft).as_secs_f64());
    // Aggregate with 4 and 8 concurrent streams.
    for n in [4usize, 8] {
        let start = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let t = target.clone();
                let p = prompt(30 + i, 8);
                tokio::spawn(async move { one(&t, &p, ntg, eos).await })
            })
            .collect();
        let mut tokens = 0;
        for h in handles {
            tokens += h.await.unwrap().tokens;
        }
        out.push(f64::from(tokens) / start.elapsed().as_secs_f64());
    }
    out
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 5 {
        eprintln!("usage: server_bench OURS_SOCKET LLAMA_ADDR EOS_TOKEN VOCAB [PROMPT_TOKENS] [GEN_TOKENS]");
        std::process::exit(2);
    }
    let (eos, vocab): (i32, i32) = (a[3].parse().unwrap(), a[4].parse().unwrap());
    let npp: usize = a.get(5).map_or(256, |s| s.parse().unwrap());
    let ntg: u32 = a.get(6).map_or(64, |s| s.parse().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ours = figures(&Target::Ours(a[1].clone()), vocab, eos, npp, ntg).await;
        let llama = figures(&Target::Llama(a[2].clone()), vocab, eos, npp, ntg).await;
        let names = [
            "prompt processing (t/s)",
            "time to first token (ms)",
            "decode, 1 stream (t/s)",
            "aggregate, 4 streams (t/s)",
            "aggregate, 8 streams (t/s)",
        ];
        println!("| figure | modelrunner | llama-server | ratio |");
        println!("|---|---:|---:|---:|");
        for (i, name) in names.iter().enumerate() {
            // Higher is better everywhere except latency, where the ratio is inverted.
            let ratio = if i == 1 {
                llama[i] / ours[i]
            } else {
                ours[i] / llama[i]
            };
            println!(
                "| {name} | {:.1} | {:.1} | {ratio:.2}x |",
                ours[i], llama[i]
            );
        }
    });
}
