//! GGUF files llama.cpp would refuse or choke on: `package` refuses malformed ones with
//! the byte offset and the reason; a model with impossible hyper-parameters is stored
//! (as Docker's tools store it) but refused with a 422 naming the fact before any runner
//! starts; a model that still fails in llama.cpp gives the client llama.cpp's reason in
//! words, without the server's file paths.

use modelrunner_e2e::{post, Daemon};
use modelrunner_testkit::{GgufWriter, Kv, LlamaSpec, TensorData};
use serde_json::json;

#[test]
fn package_refuses_malformed_files_and_loads_refuse_impossible_models() {
    let d = Daemon::start(&[]);
    let malformed: Vec<(&str, GgufWriter, &str)> = vec![
        (
            "a tensor twice",
            LlamaSpec::tiny()
                .build(1)
                .tensor_f32("output_norm.weight", &[8], TensorData::OnesF32),
            "duplicate tensor name \"output_norm.weight\"",
        ),
        (
            "a key twice",
            GgufWriter::new()
                .kv("general.architecture", Kv::Str("llama".into()))
                .kv("general.architecture", Kv::Str("llama".into())),
            "duplicate metadata key",
        ),
        (
            "an empty key",
            GgufWriter::new().kv("", Kv::U32(1)),
            "empty metadata key",
        ),
    ];
    for (what, gguf, needle) in malformed {
        let p = d.dir.path().join("bad.gguf");
        gguf.write_file(&p).unwrap();
        let out = d.fails(&["package", "--gguf", p.to_str().unwrap(), "bad"]);
        assert!(
            out.contains(needle) && out.contains("at byte"),
            "{what}: {out}"
        );
    }
    let listed = d.ok(&["list"]);
    assert!(!listed.contains("bad"), "{listed}");
    let impossible: Vec<(&str, GgufWriter, &str)> = vec![
        (
            "layers",
            LlamaSpec::tiny()
                .build(1)
                .set("llama.block_count", Kv::U32(0)),
            "llama.block_count is 0",
        ),
        (
            "context",
            LlamaSpec::tiny()
                .build(1)
                .set("llama.context_length", Kv::U32(0)),
            "llama.context_length is 0",
        ),
        (
            "scores",
            LlamaSpec::tiny()
                .build(1)
                .set("tokenizer.ggml.scores", Kv::F32s(vec![0.5])),
            "tokenizer.ggml.scores has 1 entries",
        ),
        (
            "eos",
            LlamaSpec::tiny()
                .build(1)
                .set("tokenizer.ggml.eos_token_id", Kv::U32(99_999)),
            "tokenizer.ggml.eos_token_id is 99999, outside the vocabulary",
        ),
    ];
    let c = reqwest::blocking::Client::new();
    for (tag, gguf, needle) in impossible {
        let p = d.dir.path().join(format!("{tag}.gguf"));
        gguf.write_file(&p).unwrap();
        d.ok(&["package", "--gguf", p.to_str().unwrap(), tag]);
        let r = c
            .post(d.u("/v1/chat/completions"))
            .json(&json!({"model": tag, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 422, "{tag}");
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["error"]["param"], "model", "{v}");
        assert_eq!(v["error"]["code"], "invalid_model", "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{tag}: {msg}");
    }
    // No runner was started for any of them.
    assert!(modelrunner_e2e::runner_pids(&d.store).is_empty());
}

#[test]
fn a_model_llama_cpp_refuses_gets_its_reason_without_paths() {
    let d = Daemon::start(&[]);
    let p = d.dir.path().join("odd.gguf");
    LlamaSpec::tiny()
        .build(1)
        .set("general.architecture", Kv::Str("nonesuch".into()))
        .set("nonesuch.block_count", Kv::U32(2))
        .write_file(&p)
        .unwrap();
    d.ok(&["package", "--gguf", p.to_str().unwrap(), "odd"]);
    let c = reqwest::Client::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let body = json!({"model": "odd", "messages": [{"role": "user", "content": "hi"}]});
        let (s, _, v) = post(&c, &d.u("/v1/chat/completions"), &body).await;
        assert_eq!(s, 500, "{v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("unknown model architecture: 'nonesuch'"),
            "{msg}"
        );
        assert!(!msg.contains("null result"), "{msg}");
        let store = d.store.to_string_lossy();
        assert!(
            !msg.contains(store.as_ref()) && !msg.contains("/tmp/"),
            "{msg}"
        );
        // The daemon keeps serving.
        let (s, _, _) = post(&c, &d.u("/v1/chat/completions"), &body).await;
        assert_eq!(s, 500);
    });
    assert_eq!(
        reqwest::blocking::get(d.u("/health")).unwrap().status(),
        200
    );
}
