//! Tool calls end to end: stories260K packaged with real tool-calling templates (Qwen 3,
//! Llama 3.2, Mistral Nemo) and our own harmony template (GPT-OSS), over HTTP, streamed
//! and not. The grammar makes even this tiny model's calls valid; `none` gives none; a
//! conversation with a tool's result goes on; bad tool fields are 400s naming them.

use modelrunner_e2e::{post, sse_data, Daemon};
use serde_json::{json, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "maxLength": 10},
            "days": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["city", "days"], "additionalProperties": false}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string", "enum": ["CET", "UTC"]}},
        "required": ["zone"]}}}])
}

fn ask(model: &str, choice: Value, stream: bool, seed: u32) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
        "tools": tools(), "tool_choice": choice, "parallel_tool_calls": false, "stream": stream,
        "max_tokens": 200, "seed": seed, "reasoning_format": "none"})
}

fn check(name: &str, args: &str) {
    let v: Value = serde_json::from_str(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    match name {
        "get_weather" => {
            assert!(
                v["city"].as_str().is_some_and(|c| c.chars().count() <= 10),
                "{v}"
            );
            assert!(
                v["days"].as_i64().is_some_and(|d| (1..=5).contains(&d)),
                "{v}"
            );
        }
        "get_time" => assert!(matches!(v["zone"].as_str(), Some("CET" | "UTC")), "{v}"),
        other => panic!("called {other}"),
    }
}

/// The calls of a streamed answer, put together from OpenAI's deltas, and its finish
/// reason; content deltas must never carry markup.
fn streamed_calls(frames: &[String]) -> (Vec<(String, String, String)>, String) {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = String::new();
    for f in frames.iter().filter(|f| *f != "[DONE]") {
        let v: Value = serde_json::from_str(f).unwrap();
        let Some(c) = v["choices"].get(0) else {
            continue;
        };
        let d = &c["delta"];
        if let Some(text) = d["content"].as_str() {
            assert!(
                !text.contains("<tool_call>") && !text.contains("[TOOL_CALLS]"),
                "{text:?}"
            );
        }
        for tc in d["tool_calls"].as_array().into_iter().flatten() {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(name) = tc["function"]["name"].as_str() {
                assert_eq!(i, calls.len());
                assert_eq!(tc["type"], "function");
                calls.push((
                    tc["id"].as_str().unwrap().to_string(),
                    name.to_string(),
                    String::new(),
                ));
            }
            calls[i]
                .2
                .push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = c["finish_reason"].as_str() {
            finish = f.to_string();
        }
    }
    (calls, finish)
}

#[test]
fn every_family_calls_tools_streamed_and_not() {
    let d = Daemon::start(&[]);
    for family in ["hermes", "llama3", "mistral", "gpt-oss"] {
        d.package_with_template(family, family);
    }
    let c = reqwest::Client::new();
    let url = d.u("/v1/chat/completions");
    rt().block_on(async {
        for family in ["hermes", "llama3", "mistral", "gpt-oss"] {
            let named = json!({"type": "function", "function": {"name": "get_time"}});
            for (choice, want) in [(json!("required"), None), (named, Some("get_time"))] {
                let (s, _, v) = post(&c, &url, &ask(family, choice.clone(), false, 3)).await;
                assert_eq!(s, 200, "{family}: {v}");
                let m = &v["choices"][0];
                assert_eq!(m["finish_reason"], "tool_calls", "{family}: {v}");
                let call = &m["message"]["tool_calls"][0];
                assert!(call["id"].as_str().is_some_and(|i| !i.is_empty()), "{v}");
                let name = call["function"]["name"].as_str().unwrap();
                if let Some(w) = want {
                    assert_eq!(name, w, "{family}");
                }
                check(name, call["function"]["arguments"].as_str().unwrap());
                let r = c
                    .post(&url)
                    .json(&ask(family, choice, true, 3))
                    .send()
                    .await
                    .unwrap();
                let (calls, finish) = streamed_calls(&sse_data(r).await);
                assert_eq!(finish, "tool_calls", "{family} streamed");
                assert_eq!(calls.len(), 1, "{family}: {calls:?}");
                check(&calls[0].1, &calls[0].2);
            }
            let (s, _, v) = post(&c, &url, &ask(family, json!("none"), false, 3)).await;
            assert_eq!(s, 200);
            assert!(
                v["choices"][0]["message"]["tool_calls"].is_null(),
                "{family}: {v}"
            );
            assert_ne!(v["choices"][0]["finish_reason"], "tool_calls");
        }
    });
}

#[test]
fn a_conversation_with_tool_results_goes_on_and_bad_tools_are_named() {
    let d = Daemon::start(&[]);
    for family in ["hermes", "llama3", "mistral", "gpt-oss"] {
        d.package_with_template(family, family);
    }
    let c = reqwest::Client::new();
    let url = d.u("/v1/chat/completions");
    rt().block_on(async {
        for family in ["hermes", "llama3", "mistral", "gpt-oss"] {
            let history = json!([
                {"role": "user", "content": "What is the weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\", \"days\": 1}"}}]},
                {"role": "tool", "tool_call_id": "call_abc123", "name": "get_weather", "content": "{\"temp_c\": 21}"}
            ]);
            let body = json!({"model": family, "messages": history, "tools": tools(), "max_tokens": 8});
            let (s, _, v) = post(&c, &url, &body).await;
            assert_eq!(s, 200, "{family}: {v}");
            // The rendered prompt shows the call and its result.
            let (_, _, p) = post(&c, &d.u("/apply-template"), &body).await;
            let prompt = p["prompt"].as_str().unwrap();
            assert!(prompt.contains("get_weather") && prompt.contains("21"), "{family}: {prompt}");
        }
        for (body, param) in [
            (json!({"tool_choice": {"type": "function", "function": {"name": "nope"}}}), "tool_choice"),
            (json!({"tools": [{"type": "function", "function": {"description": "x"}}]}), "tools[0].function.name"),
            (json!({"tools": [{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}}}}],
                "tool_choice": "required"}), "tools[0].function.parameters"),
            // A schema that converts, into a grammar llama.cpp refuses (too many repetitions).
            (json!({"tools": [{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object", "properties": {"x": {"type": "string", "minLength": 5000}}}}}],
                "tool_choice": "required"}), "tools"),
            (json!({"response_format": {"type": "json_object"}, "tool_choice": "required"}), "response_format"),
        ] {
            let mut req = ask("hermes", json!("auto"), false, 1);
            for (k, v) in body.as_object().unwrap() {
                req[k] = v.clone();
            }
            let (s, _, v) = post(&c, &url, &req).await;
            assert_eq!(s, 400, "{body}: {v}");
            assert_eq!(v["error"]["param"], param, "{v}");
        }
        // The daemon still serves.
        let (s, _, _) = post(&c, &url, &ask("hermes", json!("required"), false, 2)).await;
        assert_eq!(s, 200);
    });
}
