//! End-to-end serving benchmark: modelrunnerd's OpenAI API against llama.cpp's
//! `llama-server` on the same model, settings and machine, in the same run
//! (`scripts/bench-serve.sh` starts both).
//!
//! `serve_bench hot OURS_URL LLAMA_URL MODEL EOS VOCAB GEN_TOKENS`: `ROUNDS` (default 9)
//! alternating rounds per server of 80 short prompts (time to first token; p50 and p99
//! over all of them), three single streams one after another (decode tokens/s) and 8
//! concurrent streams (aggregate tokens/s); throughput figures are medians over all
//! rounds. Everything goes through `POST /v1/completions` with `stream: true`, greedy,
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

/// One round: TTFT samples of 80 short prompts, three single-stream decode t/s, 8-stream
/// aggregate t/s.
async fn round(
    c: &reqwest::Client,
    url: &str,
    model: &str,
    eos: i32,
    vocab: i32,
    ntg: u32,
    seed: usize,
) -> (Vec<f64>, Vec<f64>, f64) {
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
    let start = Instant::now();
    let streams: Vec<_> = (0..8)
        .map(|i| {
            let (c, url, model) = (c.clone(), url.to_string(), model.to_string());
            let p = prompt(vocab, seed * 100 + 60 + i, 16);
            tokio::spawn(async move { one(&c, &url, &model, &p, ntg, eos).await.tokens })
        })
        .collect();
    let mut tokens = 0;
    for s in streams {
        tokens += s.await.unwrap();
    }
    (
        ttfts,
        single,
        f64::from(tokens) / start.elapsed().as_secs_f64(),
    )
}

/// Figures of both servers over `ROUNDS` alternating rounds: medians of the throughput
/// figures, percentiles over all TTFT samples.
async fn hot(urls: [&str; 2], model: &str, eos: i32, vocab: i32, ntg: u32) -> [[f64; 4]; 2] {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    let c = client();
    let mut ttft = [Vec::new(), Vec::new()];
    let mut single = [Vec::new(), Vec::new()];
    let mut agg = [Vec::new(), Vec::new()];
    for url in urls {
        one(&c, url, model, &prompt(vocab, 999, 16), 4, eos).await;
    }
    for r in 0..rounds {
        for (i, url) in urls.iter().enumerate() {
            let (t, s, a) = round(&c, url, model, eos, vocab, ntg, r + 1).await;
            ttft[i].extend(t);
            single[i].extend(s);
            agg[i].push(a);
        }
    }
    let mut out = [[0.0; 4]; 2];
    for i in 0..2 {
        out[i] = [
            pct(&mut single[i], 0.5),
            pct(&mut agg[i], 0.5),
            pct(&mut ttft[i], 0.5),
            pct(&mut ttft[i], 0.99),
        ];
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
            let [ours, llama] = hot([&a[2], &a[3]], &a[4], eos, vocab, ntg).await;
            let names = [
                "decode, 1 stream (t/s)",
                "aggregate, 8 streams (t/s)",
                "time to first token p50 (ms)",
                "time to first token p99 (ms)",
            ];
            for (i, name) in names.iter().enumerate() {
                // Higher is better for throughput; for latency the ratio is inverted.
                let ratio = if i < 2 {
                    ours[i] / llama[i]
                } else {
                    llama[i] / ours[i]
                };
                println!(
                    "| {name} | {:.1} | {:.1} | {ratio:.2}x |",
                    ours[i], llama[i]
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
