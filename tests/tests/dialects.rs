//! Anthropic Messages and OpenAI Responses over real HTTP, for what their SDKs cannot
//! show: every failure under the Anthropic paths (a missing key, an unknown route, bad
//! JSON, a body over the limit) in Anthropic's shape, a runner killed mid-stream ending
//! each dialect's stream with its own error events (Ollama's last NDJSON line included), background responses run and
//! cancelled, and a conversation too large to store refused without losing what was
//! stored.

use std::time::Duration;

use futures::StreamExt;
use modelrunner_e2e::{key_hash, wait_until, Daemon};
use serde_json::{json, Value};

const KEY: &str = "sk-ant-dialect-test";

/// An output schema that keeps the model writing (no end of generation for 1500
/// characters), so a stream is certainly still running when its runner is killed.
fn long() -> Value {
    json!({"type": "object", "properties": {"s": {"type": "string", "minLength": 1500}},
           "required": ["s"], "additionalProperties": false})
}

async fn post(c: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn fetch(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

async fn pid(c: &reqwest::Client, d: &Daemon) -> i32 {
    let ps: Value = c
        .get(d.u("/engines/ps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ps[0]["pid"].as_i64().expect("a running model") as i32
}

#[tokio::test(flavor = "multi_thread")]
async fn every_failure_under_anthropic_paths_has_anthropics_shape() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let (dir, store) = d.stop();
    let d = Daemon::start_in(
        dir,
        store,
        &["--api-key-hash", &key_hash(KEY), "--body-limit", "4096"],
    );
    let c = reqwest::Client::new();
    let msg = json!({"model": "stories", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]});
    let check = |r: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(r.status().as_u16(), status);
        let id = r.headers()["request-id"].to_str().unwrap().to_string();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert_eq!(v["request_id"], id.as_str(), "{v}");
        v["error"]["message"].as_str().unwrap().to_string()
    };
    let url = d.u("/v1/messages");
    let r = c.post(&url).json(&msg).send().await.unwrap();
    let m = check(r, 401, "authentication_error").await;
    assert!(m.contains("missing API key"), "{m}");
    let keyed = |u: &str| c.post(d.u(u)).header("x-api-key", KEY);
    let r = keyed("/anthropic/v1/nothing")
        .json(&msg)
        .send()
        .await
        .unwrap();
    check(r, 404, "not_found_error").await;
    let r = keyed("/v1/messages")
        .body("{not json")
        .send()
        .await
        .unwrap();
    check(r, 400, "invalid_request_error").await;
    let big = json!({"model": "stories", "max_tokens": 4,
                     "messages": [{"role": "user", "content": "x".repeat(5000)}]});
    let r = keyed("/v1/messages").json(&big).send().await.unwrap();
    check(r, 413, "request_too_large").await;
    // Compressed bodies (Codex sends zstd) are read, and the limit holds for what they
    // decompress to.
    let zstd = |v: &Value| zstd::encode_all(v.to_string().as_bytes(), 3).unwrap();
    assert!(zstd(&big).len() < 4096);
    let r = keyed("/v1/messages")
        .header("content-encoding", "zstd")
        .body(zstd(&big))
        .send()
        .await
        .unwrap();
    check(r, 413, "request_too_large").await;
    let r = keyed("/v1/messages")
        .header("content-encoding", "zstd")
        .body(zstd(&msg))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message", "{v}");
    let mut unknown = msg.clone();
    unknown["model"] = json!("no-such-model");
    let r = keyed("/anthropic/v1/messages")
        .json(&unknown)
        .send()
        .await
        .unwrap();
    let m = check(r, 404, "not_found_error").await;
    assert!(m.contains("modelrunner pull"), "{m}");
    let mut no_max = msg.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let r = keyed("/v1/messages/count_tokens")
        .json(&no_max)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let n: Value = r.json().await.unwrap();
    assert!(n["input_tokens"].as_u64().unwrap() > 0, "{n}");
    let r = keyed("/v1/messages").json(&no_max).send().await.unwrap();
    let m = check(r, 400, "invalid_request_error").await;
    assert!(m.contains("max_tokens"), "{m}");
    // A schema llama.cpp cannot compile is refused, named as Anthropic calls it.
    let mut refused = msg.clone();
    let huge = json!({"type": "string", "minLength": 100_000});
    refused["output_config"] = json!({"format": {"type": "json_schema", "schema": huge}});
    let r = keyed("/v1/messages").json(&refused).send().await.unwrap();
    let m = check(r, 400, "invalid_request_error").await;
    assert!(m.starts_with("output_config.format: "), "{m}");
    // The OpenAI routes keep OpenAI's envelope.
    let r = c
        .post(d.u("/v1/chat/completions"))
        .bearer_auth(KEY)
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(v.get("type").is_none(), "{v}");
    // The daemon keeps serving.
    let r = keyed("/v1/messages").json(&msg).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// Starts a stream, reads until `marker` arrives, kills the runner and returns the rest.
async fn killed_stream(
    c: &reqwest::Client,
    d: &Daemon,
    path: &str,
    body: &Value,
    marker: &str,
) -> String {
    let r = c.post(d.u(path)).json(body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let mut s = Box::pin(r.bytes_stream());
    let mut seen = String::new();
    while !seen.contains(marker) {
        let b = s.next().await.expect("the stream goes on").unwrap();
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    let pid = pid(c, d).await;
    // SAFETY: killing the runner we just looked up.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while let Some(Ok(b)) = s.next().await {
        seen.push_str(&String::from_utf8_lossy(&b));
    }
    tokio::task::block_in_place(|| {
        wait_until(
            "the dead runner to leave ps",
            Duration::from_secs(10),
            || {
                let ps: Value = reqwest::blocking::get(d.u("/engines/ps"))
                    .unwrap()
                    .json()
                    .unwrap();
                ps.as_array().unwrap().is_empty()
            },
        )
    });
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_runner_killed_mid_stream_ends_each_dialects_stream_with_its_error_events() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let body = json!({"model": "stories", "max_tokens": 4000, "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
        "output_config": {"format": {"type": "json_schema", "schema": long()}}});
    let rest = killed_stream(&c, &d, "/v1/messages", &body, "content_block_delta").await;
    let last = rest.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: error\ndata: "), "{last}");
    let v: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(v["error"]["type"], "api_error", "{v}");
    assert!(!rest.contains("message_stop"), "{rest}");

    let body = json!({"model": "stories", "max_output_tokens": 4000, "stream": true, "input": "hi",
        "text": {"format": {"type": "json_schema", "name": "long", "schema": long()}}});
    let rest = killed_stream(&c, &d, "/v1/responses", &body, "response.output_text.delta").await;
    let events: Vec<&str> = rest.trim_end().split("\n\n").collect();
    let n = events.len();
    assert!(events[n - 2].starts_with("event: error\n"), "{rest}");
    assert!(
        events[n - 1].starts_with("event: response.failed\n"),
        "{rest}"
    );
    let failed: Value =
        serde_json::from_str(events[n - 1].split_once("data: ").unwrap().1).unwrap();
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "engine_error");
    // The failed response is stored as failed, and the daemon keeps serving.
    let id = failed["response"]["id"].as_str().unwrap();
    let got = fetch(&c, &d.u(&format!("/v1/responses/{id}"))).await;
    assert_eq!(got["status"], "failed", "{got}");
    let (s, v) = post(
        &c,
        &d.u("/v1/responses"),
        &json!({"model": "stories", "input": "hi", "max_output_tokens": 3}),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("incomplete")), "{v}");

    // Ollama's NDJSON ends with one {"error"} line, the status still 200.
    let body = json!({"model": "stories", "messages": [{"role": "user", "content": "hi"}],
        "format": long(), "options": {"num_predict": 4000}});
    let rest = killed_stream(&c, &d, "/api/chat", &body, "\"done\":false").await;
    let last: Value = serde_json::from_str(rest.trim_end().rsplit('\n').next().unwrap()).unwrap();
    assert!(
        last["error"]
            .as_str()
            .is_some_and(|e| e.contains("generation failed")),
        "{last}"
    );
    assert!(!rest.contains("\"done\":true"), "{rest}");
}

#[tokio::test(flavor = "multi_thread")]
async fn background_responses_finish_or_are_cancelled() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let url = d.u("/v1/responses");
    let (s, v) = post(
        &c,
        &url,
        &json!({"model": "stories", "input": "hi", "background": true, "max_output_tokens": 4}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["background"].as_bool()),
        (Some("in_progress"), Some(true)),
        "{v}"
    );
    let id = v["id"].as_str().unwrap().to_string();
    let get = |id: String| {
        let u = d.u(&format!("/v1/responses/{id}"));
        move || reqwest::blocking::get(&u).unwrap().json::<Value>().unwrap()
    };
    let short = get(id.clone());
    tokio::task::block_in_place(|| {
        wait_until(
            "the background response to end",
            Duration::from_secs(60),
            || short()["status"] != "in_progress",
        )
    });
    let done = fetch(&c, &d.u(&format!("/v1/responses/{id}"))).await;
    assert_eq!(done["status"], "incomplete", "{done}");
    assert_eq!(done["usage"]["output_tokens"], 4, "{done}");
    // A long one is cancelled: it stops, and says so.
    let body = json!({"model": "stories", "input": "hi", "background": true, "max_output_tokens": 4000,
        "text": {"format": {"type": "json_schema", "name": "long", "schema": long()}}});
    let (_, v) = post(&c, &url, &body).await;
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = post(&c, &d.u(&format!("/v1/responses/{id}/cancel")), &json!({})).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("cancelled")), "{v}");
    let got = fetch(&c, &d.u(&format!("/v1/responses/{id}"))).await;
    assert_eq!(got["status"], "cancelled", "{got}");
    // Its slot is free again: the model serves no request.
    tokio::task::block_in_place(|| {
        wait_until(
            "the cancelled generation to stop",
            Duration::from_secs(10),
            || {
                let m = reqwest::blocking::get(d.u("/metrics"))
                    .unwrap()
                    .text()
                    .unwrap();
                m.lines()
                    .any(|l| l.starts_with("modelrunner_requests_in_flight{") && l.ends_with(" 0"))
            },
        )
    });
    // Only background responses are cancelled.
    let (_, v) = post(
        &c,
        &url,
        &json!({"model": "stories", "input": "hi", "max_output_tokens": 2}),
    )
    .await;
    let (s, e) = post(
        &c,
        &d.u(&format!(
            "/v1/responses/{}/cancel",
            v["id"].as_str().unwrap()
        )),
        &json!({}),
    )
    .await;
    assert_eq!(s, 400, "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversation_too_large_to_store_is_refused_and_loses_nothing() {
    let d = Daemon::start(&["--responses-max-bytes", "3000"]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let url = d.u("/v1/responses");
    let (s, first) = post(
        &c,
        &url,
        &json!({"model": "stories", "input": "Tom had a ball.", "max_output_tokens": 3}),
    )
    .await;
    assert_eq!(s, 200, "{first}");
    let id = first["id"].as_str().unwrap();
    let big = json!({"model": "stories", "previous_response_id": id, "input": "ball ".repeat(600)});
    let (s, e) = post(&c, &url, &big).await;
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["param"], "previous_response_id", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--responses-max-bytes"),
        "{e}"
    );
    let (s, e) = post(
        &c,
        &url,
        &json!({"model": "stories", "previous_response_id": "resp_none", "input": "x"}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["param"].as_str()),
        (404, Some("previous_response_id")),
        "{e}"
    );
    // What was stored is whole, on disk as in memory.
    let got = fetch(&c, &d.u(&format!("/v1/responses/{id}"))).await;
    assert_eq!(got, first);
    let file = d.store.join("responses").join(format!("{id}.json"));
    let on_disk: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(on_disk["response"], first);
    // Not stored, the same conversation runs.
    let mut unstored = big.clone();
    unstored["store"] = json!(false);
    unstored["max_output_tokens"] = json!(2);
    let (s, v) = post(&c, &url, &unstored).await;
    assert_eq!(s, 200, "{v}");
    let r = c
        .get(d.u(&format!("/v1/responses/{}", v["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
