//! llama-server's native routes over real HTTP: `/completion` collected and streamed
//! (the same greedy text, `data:` frames without `[DONE]`), its token counts, stop
//! types, `return_tokens`, `n_probs` and `timings`, token-ID prompts, `/props` and
//! `/slots` agreeing, native embeddings with `embd_normalize`, the unprefixed chat path,
//! `model` optional only while one model can be meant, `/v1/health` without a key, and
//! fill-in-the-middle (`/infill`, `suffix` on `/v1/completions` and `/api/generate`)
//! built from a GGUF's FIM tokens.

use modelrunner_e2e::{key_hash, Daemon};
use serde_json::{json, Value};

fn post(d: &Daemon, path: &str, body: &Value) -> (u16, String) {
    let r = reqwest::blocking::Client::new()
        .post(d.u(path))
        .json(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn ok(d: &Daemon, path: &str, body: &Value) -> Value {
    let (s, text) = post(d, path, body);
    assert_eq!(s, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

fn get(d: &Daemon, path: &str) -> Value {
    reqwest::blocking::get(d.u(path)).unwrap().json().unwrap()
}

#[test]
fn native_completion_props_slots_and_embeddings() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let base = json!({"prompt": "Once upon a time", "n_predict": 8, "temperature": 0,
                      "return_tokens": true, "n_probs": 2});
    let v = ok(&d, "/completion", &base);
    assert_eq!(v["stop_type"], "limit", "{v}");
    assert_eq!(v["tokens_predicted"], 8);
    let tokens = v["tokens"].as_array().unwrap().clone();
    assert_eq!(tokens.len(), 8);
    let text = ok(&d, "/detokenize", &json!({"tokens": tokens}));
    assert_eq!(text["content"], v["content"], "tokens and content agree");
    let probs = v["completion_probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), 8);
    assert_eq!(probs[0]["id"], tokens[0]);
    assert_eq!(probs[0]["top_logprobs"].as_array().unwrap().len(), 2);
    assert_eq!(v["timings"]["predicted_n"], 8, "{v}");
    assert!(v["timings"]["predicted_per_second"].as_f64().unwrap() > 0.0);

    // Streamed: data frames, the same text, the last frame with stop and the counts.
    let mut s = base.clone();
    s["stream"] = json!(true);
    let (status, body) = post(&d, "/completions", &s);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    let frames: Vec<Value> = body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let streamed: String = frames
        .iter()
        .map(|f| f["content"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, v["content"].as_str().unwrap());
    let last = frames.last().unwrap();
    assert_eq!(
        (last["stop"].as_bool(), last["tokens_predicted"].as_u64()),
        (Some(true), Some(8)),
        "{last}"
    );
    assert!(frames[..frames.len() - 1]
        .iter()
        .all(|f| f["stop"] == false));

    // A stop word, and the prompt as token IDs.
    let word = streamed.split_whitespace().nth(1).unwrap().to_string();
    let w = ok(
        &d,
        "/completion",
        &json!({"prompt": "Once upon a time", "n_predict": 8, "temperature": 0, "stop": [word]}),
    );
    assert_eq!(
        (w["stop_type"].as_str(), w["stopping_word"].as_str()),
        (Some("word"), Some(word.as_str())),
        "{w}"
    );
    let ids = ok(
        &d,
        "/tokenize",
        &json!({"content": "Once upon a time", "add_special": true}),
    )["tokens"]
        .clone();
    let t = ok(
        &d,
        "/completion",
        &json!({"prompt": ids, "n_predict": 8, "temperature": 0}),
    );
    assert_eq!(
        t["content"], v["content"],
        "a token prompt reads as its text"
    );
    assert_eq!(t["tokens_evaluated"], v["tokens_evaluated"]);

    let props = get(&d, "/props");
    let slots = get(&d, "/slots");
    assert_eq!(
        slots.as_array().unwrap().len() as u64,
        props["total_slots"].as_u64().unwrap(),
        "{props}"
    );
    assert_eq!(
        props["default_generation_settings"]["n_ctx"],
        slots[0]["n_ctx"]
    );
    assert!(props["chat_template"].is_string());

    let e = ok(&d, "/embedding", &json!({"content": "a cat"}));
    let vec: Vec<f64> = e[0]["embedding"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!((vec.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-3);
    let m = ok(
        &d,
        "/embeddings",
        &json!({"content": ["a cat"], "embd_normalize": 0}),
    );
    let top = m[0]["embedding"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap().abs())
        .fold(0.0, f64::max);
    assert!((top - 1.0).abs() < 1e-6, "max-abs normalisation: {top}");

    let chat = ok(
        &d,
        "/chat/completions",
        &json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "model": "stories"}),
    );
    assert_eq!(chat["object"], "chat.completion");
    // ignore_eos: an EOS pushed to the top ends the answer at once, unless it is banned.
    for (path, body) in [
        (
            "/completion",
            json!({"prompt": "Once", "n_predict": 5, "logit_bias": [[2, 30.0]]}),
        ),
        (
            "/v1/completions",
            json!({"prompt": "Once", "max_tokens": 5, "logit_bias": {"2": 30}}),
        ),
    ] {
        let early = ok(&d, path, &body);
        let mut banned = body.clone();
        banned["ignore_eos"] = json!(true);
        let full = ok(&d, path, &banned);
        if path == "/completion" {
            assert_eq!(early["stop_type"], "eos", "{early}");
            assert_eq!(
                (full["stop_type"].clone(), full["tokens_predicted"].clone()),
                (json!("limit"), json!(5)),
                "{full}"
            );
            assert_eq!(full["generation_settings"]["ignore_eos"], true);
        } else {
            assert_eq!(early["choices"][0]["finish_reason"], "stop", "{early}");
            assert_eq!(full["choices"][0]["finish_reason"], "length", "{full}");
            assert_eq!(full["usage"]["completion_tokens"], 5, "{full}");
        }
    }
    // As llama-server's clients send them, without a model: the one there is, by name.
    for path in ["/v1/chat/completions", "/v1/completions"] {
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "prompt": "hi", "max_tokens": 2});
        let v = ok(&d, path, &body);
        assert_eq!(v["model"], "docker.io/ai/stories:latest", "{path}: {v}");
    }

    // With two models and neither loaded, the request must say which.
    d.package_tiny("other", 1);
    d.ok(&["unload", "--all"]);
    let (s, text) = post(&d, "/completion", &json!({"prompt": "x", "n_predict": 1}));
    assert_eq!(s, 400, "{text}");
    assert!(text.contains("\"param\":\"model\""), "{text}");
    let (s, text) = post(
        &d,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(s, 400, "{text}");
    assert!(
        text.contains("\"param\":\"model\"") && text.contains("must say which"),
        "{text}"
    );
    for (body, param) in [
        (
            json!({"prompt": "x", "model": "stories", "samplers": ["magic"]}),
            "samplers",
        ),
        (
            json!({"prompt": "x", "model": "stories", "n_probs": 50}),
            "n_probs",
        ),
        (json!({"model": "stories"}), "prompt"),
    ] {
        let (s, text) = post(&d, "/completion", &body);
        assert_eq!(s, 400, "{text}");
        assert!(text.contains(&format!("\"param\":\"{param}\"")), "{text}");
    }
}

/// Token IDs of `text` as the model reads it without special tokens.
fn ids(d: &Daemon, model: &str, text: &str) -> usize {
    let v = ok(d, "/tokenize", &json!({"model": model, "content": text}));
    v["tokens"].as_array().unwrap().len()
}

#[test]
fn fill_in_the_middle_on_every_route_that_takes_it() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let coder = d.dir.path().join("coder.gguf");
    modelrunner_testkit::LlamaSpec::tiny()
        .build_fim(3)
        .write_file(&coder)
        .unwrap();
    d.ok(&["package", "--gguf", coder.to_str().unwrap(), "coder"]);
    let (pre, suf) = ("def add(a, b", "    return a + b");
    // BOS, FIM_PRE, the prefix, FIM_SUF, the suffix, FIM_MID, the prompt.
    let want = 4 + ids(&d, "coder", pre) + ids(&d, "coder", suf) + ids(&d, "coder", "):");
    let v = ok(
        &d,
        "/infill",
        &json!({"model": "coder", "input_prefix": pre, "input_suffix": suf,
        "prompt": "):", "n_predict": 3, "temperature": 0}),
    );
    assert_eq!(v["tokens_evaluated"].as_u64(), Some(want as u64), "{v}");
    assert_eq!(v["tokens_predicted"], 3);
    // Extra context without repository tokens comes first, as text.
    let x = ok(
        &d,
        "/infill",
        &json!({"model": "coder", "input_prefix": pre, "input_suffix": suf,
        "prompt": "):", "input_extra": [{"filename": "a.py", "text": "import os"}], "n_predict": 1}),
    );
    assert_eq!(
        x["tokens_evaluated"].as_u64(),
        Some((want + ids(&d, "coder", "import os")) as u64)
    );
    let want = want - ids(&d, "coder", "):");
    let o = ok(
        &d,
        "/v1/completions",
        &json!({"model": "coder", "prompt": pre, "suffix": suf, "max_tokens": 3}),
    );
    assert_eq!(
        o["usage"]["prompt_tokens"].as_u64(),
        Some(want as u64),
        "{o}"
    );
    let g = ok(
        &d,
        "/api/generate",
        &json!({"model": "coder", "prompt": pre, "suffix": suf, "stream": false,
        "options": {"num_predict": 3}}),
    );
    assert_eq!(g["prompt_eval_count"].as_u64(), Some(want as u64), "{g}");
    let caps = ok(&d, "/api/show", &json!({"model": "coder"}))["capabilities"].clone();
    assert!(
        caps.as_array().unwrap().contains(&json!("insert")),
        "{caps}"
    );
    // Malformed extra chunks are 400s naming the chunk's field.
    for (extra, param) in [
        (json!({}), "input_extra[0].text"),
        (
            json!({"filename": 123, "text": "abc"}),
            "input_extra[0].filename",
        ),
        (json!({"filename": "a", "text": 456}), "input_extra[0].text"),
    ] {
        let body = json!({"model": "coder", "input_prefix": "a", "input_suffix": "b", "input_extra": [extra]});
        let (s, text) = post(&d, "/infill", &body);
        assert_eq!(s, 400, "{text}");
        assert!(text.contains(&format!("\"param\":\"{param}\"")), "{text}");
    }
    // A model without FIM tokens is a 400 naming the field.
    for (path, body, param) in [
        (
            "/infill",
            json!({"model": "stories", "input_prefix": "a", "input_suffix": "b"}),
            "input_suffix",
        ),
        (
            "/v1/completions",
            json!({"model": "stories", "prompt": "a", "suffix": "b"}),
            "suffix",
        ),
    ] {
        let (s, text) = post(&d, path, &body);
        assert_eq!(s, 400, "{text}");
        assert!(
            text.contains(&format!("\"param\":\"{param}\"")) && text.contains("fill-in-the-middle"),
            "{text}"
        );
    }
}

/// Embeddings pool as the GGUF says, or as `--pooling` says. The model is causal, so CLS
/// pooling (the first token's state, always BOS here) gives every input the same vector,
/// while mean and last pooling tell inputs apart.
#[test]
fn embeddings_follow_the_models_pooling_type() {
    let d = Daemon::start(&[]);
    for (name, pooling) in [
        ("mean", None),
        ("cls", Some(2)),
        ("last", Some(3)),
        ("rank", Some(4)),
    ] {
        let mut w = modelrunner_testkit::LlamaSpec::tiny().build(5);
        if let Some(p) = pooling {
            w = w.set("llama.pooling_type", modelrunner_testkit::Kv::U32(p));
        }
        let f = d.dir.path().join(format!("{name}.gguf"));
        w.write_file(&f).unwrap();
        d.ok(&["package", "--gguf", f.to_str().unwrap(), name]);
    }
    let pair = |model: &str| {
        let v = ok(
            &d,
            "/v1/embeddings",
            &json!({"model": model, "input": ["a cat", "the dog ran"]}),
        );
        (
            v["data"][0]["embedding"].clone(),
            v["data"][1]["embedding"].clone(),
        )
    };
    let (m0, m1) = pair("mean");
    assert_ne!(m0, m1);
    let (c0, c1) = pair("cls");
    assert_eq!(c0, c1, "CLS of a causal model is the BOS token's state");
    assert_ne!(c0, m0);
    let (l0, l1) = pair("last");
    assert_ne!(l0, l1);
    assert_ne!(l0, m0);
    let (s, text) = post(
        &d,
        "/v1/embeddings",
        &json!({"model": "rank", "input": "a cat"}),
    );
    // Refused before a runner is started for it, naming the model.
    assert_eq!(s, 400, "{text}");
    assert!(
        text.contains("is a reranker") && text.contains("\"param\":\"model\""),
        "{text}"
    );
    // `--pooling` stands in for the GGUF's: the mean model pooled by CLS.
    let (s, text) = post(
        &d,
        "/engines/_configure",
        &json!({"model": "mean", "mode": "embedding", "runtime-flags": ["--pooling", "cls"]}),
    );
    assert_eq!(s, 202, "{text}");
    let (o0, o1) = pair("mean");
    assert_eq!(o0, o1, "--pooling cls reached the runner");
    assert_eq!(o0, c0);
}

#[test]
fn health_needs_no_key_on_either_path() {
    let d = Daemon::start(&["--api-key-hash", &key_hash("sk-llama-server-health")]);
    for path in ["/health", "/v1/health"] {
        let r = reqwest::blocking::get(d.u(path)).unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.json::<Value>().unwrap()["status"], "ok");
    }
    let r = reqwest::blocking::get(d.u("/props")).unwrap();
    assert_eq!(r.status(), 401);
}
