//! The OpenAI-compatible API over real HTTP against the real daemon and engine: shapes,
//! streaming, sampling fields, structured output, embeddings, helper routes and errors.

use modelrunner_e2e::{get, post, sse_data, Daemon};
use serde_json::{json, Value};

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test(flavor = "multi_thread")]
async fn chat_and_completions_under_every_prefix() {
    let d = Daemon::start(&[]);
    let stories = d.package_chat_model("stories");
    let c = reqwest::Client::new();
    for prefix in ["/v1", "/engines/v1", "/engines/llama.cpp/v1"] {
        let (s, _, v) = post(
            &c,
            &d.u(&format!("{prefix}/chat/completions")),
            &json!({"model": "stories", "messages": user("Once upon a time"), "max_tokens": 12, "temperature": 0}),
        )
        .await;
        assert_eq!(s, 200, "{prefix}: {v}");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["model"], "stories");
        assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
        let ch = &v["choices"][0];
        assert_eq!(ch["message"]["role"], "assistant");
        assert!(!ch["message"]["content"].as_str().unwrap().is_empty());
        assert_eq!(ch["finish_reason"], "length");
        assert_eq!(v["usage"]["completion_tokens"], 12);
        assert_eq!(
            v["usage"]["total_tokens"].as_u64().unwrap(),
            v["usage"]["prompt_tokens"].as_u64().unwrap() + 12
        );
    }
    // Text completion of a story opening: greedy decoding of a trained model.
    let (s, _, v) = post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": "Once upon a time", "max_tokens": 16, "temperature": 0, "echo": true}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "text_completion");
    let text = v["choices"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Once upon a time"), "echo: {text}");
    if stories {
        assert!(text.contains("there was"), "a story: {text}");
    }
    // Several prompts, token prompts, and the same seed twice.
    let body = json!({"model": "stories", "prompt": ["One day", "A dog"], "max_tokens": 8, "seed": 42, "temperature": 1.0});
    let (s, _, a) = post(&c, &d.u("/v1/completions"), &body).await;
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["choices"].as_array().unwrap().len(), 2);
    assert_eq!(a["choices"][1]["index"], 1);
    let (_, _, b) = post(&c, &d.u("/v1/completions"), &body).await;
    assert_eq!(
        a["choices"][0]["text"], b["choices"][0]["text"],
        "same seed, same text"
    );
    let (s, _, v) = post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": [[1, 400, 300]], "max_tokens": 3}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["usage"]["prompt_tokens"], 3);
    // Stop strings are not emitted; logit bias bans a token.
    let (_, _, v) = post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0, "stop": ["was"]}),
    )
    .await;
    let t = v["choices"][0]["text"].as_str().unwrap();
    assert!(!t.contains("was"), "{t}");
    if stories {
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }
    // Logprobs in both shapes.
    let (_, _, v) = post(
        &c,
        &d.u("/v1/chat/completions"),
        &json!({"model": "stories", "messages": user("Hi"), "max_tokens": 3, "logprobs": true, "top_logprobs": 2}),
    )
    .await;
    let lp = &v["choices"][0]["logprobs"]["content"];
    assert_eq!(lp.as_array().unwrap().len(), 3, "{v}");
    assert!(lp[0]["logprob"].as_f64().unwrap() <= 0.0);
    assert_eq!(lp[0]["top_logprobs"].as_array().unwrap().len(), 2);
    let (_, _, v) = post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": "Hi", "max_tokens": 3, "logprobs": 1}),
    )
    .await;
    assert_eq!(
        v["choices"][0]["logprobs"]["tokens"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn streaming_ends_with_done_and_usage_when_asked() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let r = c
        .post(d.u("/v1/chat/completions"))
        .json(
            // Sampled: EOS is banned so that any model runs to max_tokens.
            &json!({"model": "stories", "messages": user("Tell me a story"), "max_tokens": 10,
                      "logit_bias": {"2": -100},
                      "stream": true, "stream_options": {"include_usage": true}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let data = sse_data(r).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!text.is_empty());
    let fin = &chunks[chunks.len() - 2];
    assert_eq!(fin["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 10);
    // Without include_usage there is no usage chunk.
    let r = c
        .post(d.u("/v1/completions"))
        .json(&json!({"model": "stories", "prompt": "A cat", "max_tokens": 4, "stream": true}))
        .send()
        .await
        .unwrap();
    let data = sse_data(r).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    assert!(data.iter().all(|d| !d.contains("\"usage\"")), "{data:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_schema_output_parses_and_matches() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let schema = json!({"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 3},
        "age": {"type": "integer", "minimum": 1, "maximum": 99}},
        "required": ["name", "age"], "additionalProperties": false});
    let (s, _, v) = post(
        &c,
        &d.u("/v1/chat/completions"),
        &json!({"model": "stories", "messages": user("Describe a girl"), "max_tokens": 400, "seed": 3,
                "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The grammar bounds every string and run of white space, so even a model whose
    // text is noise closes the object well inside max_tokens, and then may only stop.
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let obj: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content}"));
    let name = obj["name"].as_str().unwrap();
    assert!(name.chars().count() <= 3, "maxLength 3: {name:?}");
    let age = obj["age"].as_i64().unwrap();
    assert!((1..=99).contains(&age));
    assert_eq!(obj.as_object().unwrap().len(), 2);
    let (_, _, v) = post(
        &c,
        &d.u("/v1/chat/completions"),
        &json!({"model": "stories", "messages": user("x"), "max_tokens": 40, "response_format": {"type": "json_object"}}),
    )
    .await;
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.trim_start().starts_with('{'), "{content}");
    // llama-server's top-level json_schema, on its unprefixed path.
    let (s, _, v) = post(
        &c,
        &d.u("/chat/completions"),
        &json!({"model": "stories", "messages": user("x"), "max_tokens": 6, "json_schema": {"const": "42"}}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "\"42\"", "{v}");
    let (s, _, v) = post(
        &c,
        &d.u("/v1/chat/completions"),
        &json!({"model": "stories", "messages": user("x"), "json_schema": {"const": "42"},
                "response_format": {"type": "json_object"}}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["param"], "json_schema", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_in_float_and_base64() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let (s, _, v) = post(
        &c,
        &d.u("/v1/embeddings"),
        &json!({"model": "stories", "input": ["a happy dog", "a happy dog", "the moon"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "list");
    let vecs: Vec<Vec<f64>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vecs.len(), 3);
    assert_eq!(
        vecs[0].len(),
        64,
        "stories260K and tiny both embed in 64 dimensions"
    );
    assert_eq!(vecs[0], vecs[1]);
    assert_ne!(vecs[0], vecs[2]);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let (_, _, b) = post(
        &c,
        &d.u("/engines/v1/embeddings"),
        &json!({"model": "stories", "input": "a happy dog", "encoding_format": "base64"}),
    )
    .await;
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let floats: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    assert_eq!(floats.len(), 64);
    for (a, b) in floats.iter().zip(&vecs[0]) {
        assert!((a - b).abs() < 1e-6);
    }
    // A list mixing a text and its token IDs (llama-server's form): one vector each,
    // the same, and without `model` the one model there is.
    let (_, _, t) = post(
        &c,
        &d.u("/tokenize"),
        &json!({"model": "stories", "content": "a happy dog", "add_special": true}),
    )
    .await;
    let (s, _, m) = post(
        &c,
        &d.u("/v1/embeddings"),
        &json!({"input": ["a happy dog", t["tokens"]]}),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["data"][0]["embedding"], m["data"][1]["embedding"], "{m}");
    assert_eq!(m["data"][0]["embedding"], v["data"][0]["embedding"]);
    // Embedding and completion modes are two runners of one model.
    post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": "x", "max_tokens": 1}),
    )
    .await;
    let ps = get(&c, &d.u("/engines/ps")).await;
    let modes: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["completion", "embedding"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn helper_routes_and_model_listing() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let (s, _, v) = post(
        &c,
        &d.u("/tokenize"),
        &json!({"model": "stories", "content": "Once upon a time"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let tokens = v["tokens"].clone();
    assert!(tokens.as_array().unwrap().len() >= 2);
    let (_, _, v) = post(
        &c,
        &d.u("/v1/detokenize"),
        &json!({"model": "stories", "tokens": tokens}),
    )
    .await;
    assert_eq!(v["content"].as_str().unwrap().trim(), "Once upon a time");
    let (_, _, v) = post(
        &c,
        &d.u("/engines/v1/tokenize"),
        &json!({"model": "stories", "content": "Once", "with_pieces": true}),
    )
    .await;
    assert!(v["tokens"][0]["piece"].is_string(), "{v}");
    let (_, _, v) = post(
        &c,
        &d.u("/apply-template"),
        &json!({"model": "stories", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]}),
    )
    .await;
    let prompt = v["prompt"].as_str().unwrap();
    assert!(
        prompt.contains('S') && prompt.contains('U') && prompt.find('S') < prompt.rfind('U'),
        "{prompt}"
    );

    let list = get(&c, &d.u("/v1/models")).await;
    assert_eq!(list["object"], "list");
    let m = &list["data"][0];
    assert_eq!(m["id"], "docker.io/ai/stories:latest");
    assert_eq!(m["object"], "model");
    assert_eq!(m["owned_by"], "docker");
    assert_eq!(m["dmr"]["architecture"], "llama");
    assert!(m["dmr"]["context_window"].as_u64().unwrap() > 0, "{m}");
    let one = get(&c, &d.u("/engines/v1/models/stories")).await;
    assert_eq!(one["id"], m["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_openai_envelopes_with_params() {
    let d = Daemon::start(&["--body-limit", "4096"]);
    d.package_chat_model("stories");
    let c = reqwest::Client::new();
    let chat = d.u("/v1/chat/completions");
    let (s, _, v) = post(&c, &chat, &json!({"model": "nope", "messages": user("x")})).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("modelrunner pull"),
        "{v}"
    );
    for (body, param) in [
        (
            json!({"model": "stories", "messages": user("x"), "temperature": -1}),
            "temperature",
        ),
        (
            json!({"model": "stories", "messages": user("x"), "n": 9}),
            "n",
        ),
        (
            json!({"model": "stories", "messages": user("x"), "logit_bias": {"999999": 5}}),
            "logit_bias",
        ),
        (json!({"model": "stories", "messages": "hello"}), "messages"),
        (json!({"model": "", "messages": user("x")}), "model"),
    ] {
        let (s, _, v) = post(&c, &chat, &body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    let r = c.post(&chat).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c
        .post(&chat)
        .json(&json!({"model": "stories", "messages": user(&"x".repeat(5000))}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
    // Over-long prompt: a small context configured for the model.
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "stories", "context-size": 64}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let (s, _, v) = post(
        &c,
        &chat,
        &json!({"model": "stories", "messages": user(&"tell me a story ".repeat(40))}),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("64"),
        "{v}"
    );
    // The daemon keeps serving.
    let (s, _, _) = post(
        &c,
        &chat,
        &json!({"model": "stories", "messages": user("hi"), "max_tokens": 2}),
    )
    .await;
    assert_eq!(s, 200);
}
