//! `pull` and `push`: start the transfer in the daemon and show its progress lines,
//! as live bars per layer on a terminal and as plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{bail, Context};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{path_escape, Client};

/// `pull MODEL`.
pub async fn pull(c: &Client, model: &str, json: bool) -> anyhow::Result<()> {
    pull_to(c, model, json, false).await
}

/// A pull whose plain lines go to stderr (when stdout carries something else).
pub async fn pull_to(c: &Client, model: &str, json: bool, stderr: bool) -> anyhow::Result<()> {
    let mut body = json!({ "from": model });
    if let Some(token) = hub_token(model) {
        body["bearer-token"] = json!(token);
    }
    let resp = c
        .send(
            c.request(Method::POST, "/models/create")
                .header("accept", "application/json")
                .json(&body),
        )
        .await?;
    render(resp, json, stderr).await
}

/// The caller's `HF_TOKEN`, for a Hugging Face reference (as Docker's CLI sends it):
/// the daemon sends it to the Hub only, and uses its own token when this is not set.
fn hub_token(model: &str) -> Option<String> {
    let hub = ["hf.co/", "huggingface.co/"].iter().any(|p| {
        model.len() > p.len()
            && model
                .get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p))
    });
    let token = std::env::var("HF_TOKEN").ok()?;
    (hub && !token.trim().is_empty()).then(|| token.trim().to_string())
}

/// `push MODEL`.
pub async fn push(c: &Client, model: &str, json: bool) -> anyhow::Result<()> {
    let resp = c
        .send(
            c.request(
                Method::POST,
                &format!("/models/{}/push", path_escape(model)),
            )
            .header("accept", "application/json"),
        )
        .await?;
    render(resp, json, false).await
}

/// One bar per layer on a terminal; otherwise a line when a layer is done.
enum View {
    Json,
    Bars(MultiProgress, HashMap<String, ProgressBar>),
    Lines(HashMap<String, u64>, Instant, bool),
}

impl View {
    fn new(json: bool, stderr: bool) -> View {
        let terminal = if stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        if json {
            View::Json
        } else if terminal {
            View::Bars(MultiProgress::new(), HashMap::new())
        } else {
            View::Lines(HashMap::new(), Instant::now(), stderr)
        }
    }

    fn progress(&mut self, v: &Value) {
        let id = v["layer"]["id"].as_str().unwrap_or("").to_string();
        let size = v["layer"]["size"].as_u64().unwrap_or(0);
        let current = v["layer"]["current"].as_u64().unwrap_or(0);
        let verb = if v["mode"] == "push" {
            "pushed"
        } else {
            "pulled"
        };
        let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
        match self {
            View::Json => {}
            View::Bars(multi, bars) => {
                let pb = bars.entry(id).or_insert_with(|| {
                    let pb = multi.add(ProgressBar::new(size));
                    pb.set_style(
                        ProgressStyle::with_template(
                            "{msg:12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .expect("template")
                        .progress_chars("=> "),
                    );
                    pb.set_message(short.clone());
                    pb
                });
                pb.set_position(current);
                if current >= size {
                    pb.finish();
                }
            }
            View::Lines(done, started, stderr) => {
                if current >= size && !done.contains_key(&id) {
                    done.insert(id, size);
                    let secs = started.elapsed().as_secs_f64().max(0.001);
                    let line = format!(
                        "{short}: {verb} {} ({:.1} MB/s)",
                        human(size),
                        size as f64 / 1e6 / secs
                    );
                    if *stderr {
                        eprintln!("{line}");
                    } else {
                        println!("{line}");
                    }
                }
            }
        }
    }

    fn finish(&mut self) {
        if let View::Bars(multi, bars) = self {
            for pb in bars.values() {
                pb.abandon();
            }
            let _ = multi.clear();
        }
    }
}

fn human(n: u64) -> String {
    modelrunner_format::gguf::format_bytes(n)
}

/// Reads progress lines until success or error.
async fn render(resp: reqwest::Response, json: bool, stderr: bool) -> anyhow::Result<()> {
    let mut view = View::new(json, stderr);
    let mut body = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut outcome: Option<anyhow::Result<String>> = None;
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk.context("while reading the daemon's progress")?);
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if text.is_empty() {
                continue;
            }
            if json {
                println!("{text}");
            }
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("unreadable progress line {text:?}"))?;
            let message = v["message"].as_str().unwrap_or("").to_string();
            match v["type"].as_str() {
                Some("progress") => view.progress(&v),
                Some("success") => outcome = Some(Ok(message)),
                Some("error") => outcome = Some(Err(anyhow::anyhow!("{message}"))),
                Some("warning") if !json => eprintln!("Warning: {message}"),
                _ => {}
            }
        }
    }
    view.finish();
    match outcome {
        Some(Ok(m)) => {
            match (json, stderr) {
                (true, _) => {}
                (false, true) => eprintln!("{m}"),
                (false, false) => println!("{m}"),
            }
            Ok(())
        }
        Some(Err(e)) => Err(e),
        None => bail!("the daemon ended the transfer without a result"),
    }
}
