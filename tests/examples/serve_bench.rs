//! End-to-end serving benchmark: modelrunnerd's OpenAI API against llama.cpp's
//! `llama-server` on the same model, settings and machine, in the same run
//! (`scripts/bench-serve.sh` starts both).
//!
//! `serve_bench hot OURS_URL LLAMA_URL MODEL EOS VOCAB GEN_TOKENS`: `ROUNDS` (default 9)
//! alternating rounds per server (which goes first alternates as well) of 80 short
//! prompts (time to first token, p50 and p99 of the round), three single streams one
//! after another (decode tokens/s, the round's median), 4 and 8 concurrent streams
//! (aggregate tokens/s). Each figure is printed as the medians over the rounds, and the
//! median, lowest and highest of the per-round ratios. Everything goes through `POST /v1/completions` with `stream: true`, greedy,
//! EOS biased away. On a small shared VM single runs vary by 10-20%; the rounds are
//! there to see through that.
//! `serve_bench cold URL MODEL`: seconds until the first token of one request (the daemon
//! loads the model on demand; for llama-server, URL is polled from process start).

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};

struct Run {
    ttft: Duration,
    total: Duration,
    tokens: u32,
}

async fn one(c: &reqwest::Client, url: &str, model: &str, prompt: &[i32], n: u32, eos: i32) -> Run {
    let body = json!({"model": model, "prompt": prompt, "max_tokens": n, "temperature": 0.0,
                      "stream": true, "logit_bias": {eos.to_string(): -100}});
    let start = Instant::now();
    let r = c
        .post(format!("{url}/v1/completions"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    let mut s = r.bytes_stream();
    let (mut buf, mut ttft, mut tokens) = (Vec::new(), None, 0u32);
    while let Some(chunk) = s.next().await {
        buf.extend_from_slice(&chunk.expect("body"));
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let ev: Vec<u8> = buf.drain(..end + 2).collect();
            let ev = String::from_utf8_lossy(&ev);
            let Some(data) = ev.trim().strip_prefix("data: ") else {
                continue;
            };
            let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            if v["choices"][0]["finish_reason"].is_null() && v["choices"][0]["text"].is_string() {
                tokens += 1;
                ttft.get_or_insert_with(|| start.elapsed());
            }
        }
    }
    Run {
        ttft: ttft.unwrap_or_default(),
        total: start.elapsed(),
        tokens,
    }
}

fn prompt(vocab: i32, seed: usize, len: usize) -> Vec<i32> {
    (0..len)
        .map(|j| 3 + ((j * 7 + seed * 131) as i32 % (vocab - 4)))
        .collect()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A fresh connection per request for both servers: llama-server closes idle
/// keep-alive connections, which races with reuse.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client")
}

/// One round's figures of one server: the TTFT samples of 80 short prompts, then the
/// median of three single-stream decode t/s, 4-stream and 8-stream aggregate t/s.
struct Round {
    ttfts: Vec<f64>,
    figures: [f64; 3],
}

/// One server under test: its client, URL, model name, and (EOS, vocabulary, tokens to
/// generate).
struct Server<'a> {
    c: &'a reqwest::Client,
    url: &'a str,
    model: &'a str,
    job: (i32, i32, u32),
}

/// Aggregate tokens/s of `n` concurrent streams.
async fn streams(s: &Server<'_>, n: usize, seed: usize) -> f64 {
    let (eos, vocab, ntg) = s.job;
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (c, url, model) = (s.c.clone(), s.url.to_string(), s.model.to_string());
            let p = prompt(vocab, seed * 100 + 60 + i, 16);
            tokio::spawn(async move { one(&c, &url, &model, &p, ntg, eos).await.tokens })
        })
        .collect();
    let mut tokens = 0;
    for t in tasks {
        tokens += t.await.unwrap();
    }
    f64::from(tokens) / start.elapsed().as_secs_f64()
}

async fn round(s: &Server<'_>, seed: usize) -> Round {
    let (c, url, model) = (s.c, s.url, s.model);
    let (eos, vocab, ntg) = s.job;
    let mut ttfts = Vec::new();
    for i in 0..80 {
        let r = one(c, url, model, &prompt(vocab, seed * 100 + i, 16), 1, eos).await;
        ttfts.push(r.ttft.as_secs_f64() * 1e3);
    }
    let mut single = Vec::new();
    for k in 0..3 {
        let r = one(
            c,
            url,
            model,
            &prompt(vocab, seed * 100 + 50 + k, 16),
            ntg,
            eos,
        )
        .await;
        single.push(f64::from(r.tokens - 1) / (r.total - r.ttft).as_secs_f64());
    }
    let four = streams(s, 4, seed).await;
    let eight = streams(s, 8, seed).await;
    Round {
        ttfts,
        figures: [pct(&mut single, 0.5), four, eight],
    }
}

/// One figure of both servers: medians over the rounds, and the median, lowest and
/// highest of the per-round ratios (above 1: modelrunner is better).
struct Figure {
    ours: f64,
    peer: f64,
    ratio: [f64; 3],
}

fn figure(ours: &[f64], peer: &[f64], higher_is_better: bool) -> Figure {
    let mut r: Vec<f64> = ours
        .iter()
        .zip(peer)
        .map(|(o, p)| if higher_is_better { o / p } else { p / o })
        .collect();
    let (lo, hi) = (pct(&mut r, 0.0), pct(&mut r, 1.0));
    Figure {
        ours: pct(&mut ours.to_vec(), 0.5),
        peer: pct(&mut peer.to_vec(), 0.5),
        ratio: [pct(&mut r, 0.5), lo, hi],
    }
}

/// Both servers over `ROUNDS` alternating rounds (which goes first alternates too).
async fn hot(urls: [&str; 2], model: &str, job: (i32, i32, u32)) -> Vec<(&'static str, Figure)> {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let c = client();
    let mut runs: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for url in urls {
        one(&c, url, model, &prompt(job.1, 999, 16), 4, job.0).await;
    }
    for r in 0..rounds {
        for k in 0..2 {
            let i = (r + k) % 2;
            let server = Server {
                c: &c,
                url: urls[i],
                model,
                job,
            };
            runs[i].push(round(&server, r + 1).await);
        }
    }
    let col = |i: usize, f: &dyn Fn(&Round) -> f64| runs[i].iter().map(f).collect::<Vec<f64>>();
    let mut out = Vec::new();
    for (k, name) in [
        "decode, 1 stream (t/s)",
        "aggregate, 4 streams (t/s)",
        "aggregate, 8 streams (t/s)",
    ]
    .into_iter()
    .enumerate()
    {
        out.push((
            name,
            figure(&col(0, &|r| r.figures[k]), &col(1, &|r| r.figures[k]), true),
        ));
    }
    for (p, name) in [
        (0.5, "time to first token p50 (ms)"),
        (0.99, "time to first token p99 (ms)"),
    ] {
        let f = |r: &Round| pct(&mut r.ttfts.clone(), p);
        out.push((name, figure(&col(0, &f), &col(1, &f), false)));
    }
    out
}

/// Seconds from "nothing loaded" to the first token: the daemon's models are unloaded
/// first; llama-server is started just before this runs.
async fn cold(url: &str, model: &str) -> f64 {
    let c = client();
    let _ = c
        .post(format!("{url}/engines/unload"))
        .json(&json!({"all": true}))
        .send()
        .await;
    let start = Instant::now();
    while !c
        .get(format!("{url}/health"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{url} did not come up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = one(&c, url, model, &[3, 4, 5, 6], 1, 2).await;
    (start.elapsed() - (r.total - r.ttft)).as_secs_f64()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    match a.get(1).map(String::as_str) {
        Some("hot") if a.len() == 8 => {
            let (eos, vocab, ntg) = (
                a[5].parse().unwrap(),
                a[6].parse().unwrap(),
                a[7].parse().unwrap(),
            );
            for (name, f) in hot([&a[2], &a[3]], &a[4], (eos, vocab, ntg)).await {
                let [m, lo, hi] = f.ratio;
                println!(
                    "| {name} | {:.1} | {:.1} | {m:.2}x | {lo:.2}-{hi:.2}x |",
                    f.ours, f.peer
                );
            }
        }
        Some("cold") if a.len() == 4 => println!("{:.3}", cold(&a[2], &a[3]).await),
        _ => {
            eprintln!("usage: serve_bench hot OURS_URL LLAMA_URL MODEL EOS VOCAB GEN_TOKENS | cold URL MODEL");
            std::process::exit(2);
        }
    }
}
