//! `modelrunner run MODEL [PROMPT]`: one answer streamed to stdout, or an interactive chat.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{bail, Context};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{path_escape, Client};

const CHAT: &str = "/engines/v1/chat/completions";

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Model name, tag or ID
    pub model: String,
    /// Prompt; without one (and with a terminal on stdin), an interactive chat starts
    pub prompt: Vec<String>,
    /// Load the model in the background and return
    #[arg(short, long)]
    pub detach: bool,
    /// Chat turn by turn from stdin even when it is not a terminal
    #[arg(short, long)]
    pub interactive: bool,
    /// Most tokens per answer (default: until the model stops or the context is full)
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0 is greedy; default: the engine's)
    #[arg(long)]
    pub temperature: Option<f32>,
}

/// Generation options of a `run`.
#[derive(Debug, Clone, Copy)]
struct Options {
    max_tokens: Option<u32>,
    temperature: Option<f32>,
}

/// Makes sure the model is in the store, pulling it when the daemon can.
async fn ensure_model(c: &Client, model: &str) -> anyhow::Result<()> {
    let r = c
        .request(Method::GET, &format!("/models/{}", path_escape(model)))
        .send()
        .await;
    if let Ok(r) = &r {
        if r.status().is_success() {
            return Ok(());
        }
        if r.status() != reqwest::StatusCode::NOT_FOUND {
            c.send(c.request(Method::GET, &format!("/models/{}", path_escape(model))))
                .await?;
        }
    }
    eprintln!("Unable to find model '{model}' locally. Pulling from the registry.");
    crate::transfer::pull_to(c, model, false, true)
        .await
        .with_context(|| {
            format!(
                "while pulling {model} (a local GGUF file can be packaged with `modelrunner package`, an archive loaded with `modelrunner load`)"
            )
        })
}

/// Streams one chat completion to stdout; returns the answer.
async fn chat(c: &Client, model: &str, messages: &[Value], o: Options) -> anyhow::Result<String> {
    let mut body = json!({"model": model, "messages": messages, "stream": true});
    if let Some(m) = o.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if let Some(t) = o.temperature {
        body["temperature"] = json!(t);
    }
    let resp = c.send(c.request(Method::POST, CHAT).json(&body)).await?;
    let mut stream = resp.bytes_stream();
    let mut buf: Vec<u8> = Vec::new();
    let mut answer = String::new();
    let mut out = std::io::stdout();
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk.context("while reading the answer")?);
        while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buf.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if data == "[DONE]" {
                    return Ok(answer);
                }
                let v: Value = serde_json::from_str(data).context("bad event from the daemon")?;
                if let Some(msg) = v["error"]["message"].as_str() {
                    bail!("generation failed: {msg}");
                }
                if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                    out.write_all(t.as_bytes())?;
                    out.flush()?;
                    answer.push_str(t);
                }
            }
        }
    }
    bail!("the answer ended early")
}

/// Reads one user turn: a line, or lines between `"""` markers. `None` at end of input.
fn read_turn(input: &mut impl BufRead) -> anyhow::Result<Option<String>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first = line.trim_end_matches(['\n', '\r']);
    let Some(rest) = first.strip_prefix("\"\"\"") else {
        return Ok(Some(first.to_string()));
    };
    if let Some(one) = rest.strip_suffix("\"\"\"") {
        return Ok(Some(one.to_string()));
    }
    let mut text = rest.to_string();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(Some(text));
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some(last) = l.strip_suffix("\"\"\"") {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(last);
            return Ok(Some(text));
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(l);
    }
}

/// `modelrunner run`.
pub async fn run(c: &Client, args: RunArgs) -> anyhow::Result<()> {
    ensure_model(c, &args.model).await?;
    let o = Options {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
    };
    if args.detach {
        let body = json!({"model": args.model, "messages": [{"role": "user", "content": ""}]});
        c.send(
            c.request(Method::POST, CHAT)
                .header("X-Preload-Only", "true")
                .json(&body),
        )
        .await?;
        println!("Model {} loaded", args.model);
        return Ok(());
    }
    let stdin = std::io::stdin();
    let mut prompt = args.prompt.join(" ");
    if prompt.is_empty() && !stdin.is_terminal() && !args.interactive {
        stdin.lock().read_to_string(&mut prompt)?;
    }
    if !prompt.trim().is_empty() {
        chat(
            c,
            &args.model,
            &[json!({"role": "user", "content": prompt})],
            o,
        )
        .await?;
        println!();
        return Ok(());
    }
    let interactive = stdin.is_terminal();
    if interactive {
        eprintln!("Interactive chat mode started. Type '/bye' to exit; \"\"\" starts and ends a multi-line message.");
    }
    let mut history: Vec<Value> = Vec::new();
    let mut input = stdin.lock();
    loop {
        if interactive {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(turn) = read_turn(&mut input)? else {
            break;
        };
        match turn.trim() {
            "" => continue,
            "/bye" => break,
            _ => {}
        }
        history.push(json!({"role": "user", "content": turn}));
        match chat(c, &args.model, &history, o).await {
            Ok(answer) => {
                println!();
                history.push(json!({"role": "assistant", "content": answer}));
            }
            Err(e) => {
                history.pop();
                eprintln!("\nError: {e:#}");
            }
        }
    }
    if interactive {
        eprintln!("Chat session ended.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_turns() {
        let mut input =
            std::io::Cursor::new("hello\n\"\"\"one\ntwo\nthree\"\"\"\n\"\"\"x\"\"\"\n/bye\n");
        assert_eq!(read_turn(&mut input).unwrap().unwrap(), "hello");
        assert_eq!(read_turn(&mut input).unwrap().unwrap(), "one\ntwo\nthree");
        assert_eq!(read_turn(&mut input).unwrap().unwrap(), "x");
        assert_eq!(read_turn(&mut input).unwrap().unwrap(), "/bye");
        assert_eq!(read_turn(&mut input).unwrap(), None);
    }
}
