//! Helpers of the serving tests (`lifecycle.rs`, `supervision.rs`): requests that load,
//! touch and hold models.

use futures::StreamExt;
use serde_json::{json, Value};

use crate::{get, post, Daemon};

/// A chat request for `model`, greedy.
pub fn chat(model: &str, max_tokens: u32, stream: bool) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Tell me a story"}],
           "max_tokens": max_tokens, "stream": stream, "temperature": 0})
}

/// A one-token completion; returns status and answer.
pub async fn touch(c: &reqwest::Client, d: &Daemon, model: &str) -> (reqwest::StatusCode, Value) {
    let body = json!({"model": model, "prompt": "x", "max_tokens": 1});
    let (s, _, v) = post(c, &d.u("/v1/completions"), &body).await;
    (s, v)
}

/// What `/engines/ps` lists.
pub async fn ps(c: &reqwest::Client, d: &Daemon) -> Vec<Value> {
    get(c, &d.u("/engines/ps"))
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// Starts a streaming chat with end-of-generation banned (token 2, stories260K's) and
/// reads until its first content chunk, so it certainly holds a slot until its context
/// is full or its client leaves; returns the rest of the body stream.
pub async fn streaming(
    c: &reqwest::Client,
    d: &Daemon,
    model: &str,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> {
    let mut body = chat(model, 100_000, true);
    body["logit_bias"] = json!({"2": -100});
    let r = c
        .post(d.u("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut s = Box::pin(r.bytes_stream());
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 2 {
        seen.push_str(&String::from_utf8_lossy(&s.next().await.unwrap().unwrap()));
    }
    s
}
