//! llama-server's native routes, Docker Model Runner's model and engine API, and the
//! daemon's own.

use serde_json::{json, Value};

use super::{any, arr, bounded, obj, one_or_many, t, to, with, B, I, N, S};

fn native_sampling() -> Value {
    json!({
        "model": t(S), "n_predict": t(I), "temperature": bounded("temperature"),
        "top_k": bounded("top_k"), "top_p": bounded("top_p"), "min_p": bounded("min_p"),
        "typical_p": t(N), "repeat_penalty": bounded("repeat_penalty"),
        "repeat_last_n": bounded("repeat_last_n"),
        "presence_penalty": bounded("presence_penalty"),
        "frequency_penalty": bounded("frequency_penalty"), "seed": t(I),
        "stop": arr(json!({"type": "string", "minLength": 1})), "stream": t(B),
        "n_probs": bounded("logprobs"), "grammar": t(S),
        "json_schema": {"type": "object"}, "cache_prompt": t(B), "ignore_eos": t(B),
        "samplers": one_or_many(t(S)), "id_slot": t(I), "return_tokens": t(B),
    })
}

fn native_completion() -> Value {
    let one = obj(
        &["content", "stop"],
        json!({"index": t(I), "content": t(S), "tokens": arr(t(I)), "stop": t(B),
               "model": t(S), "tokens_predicted": t(I), "tokens_evaluated": t(I),
               "stop_type": t(S), "generation_settings": {"type": "object"},
               "timings": {"type": "object"}}),
    );
    any(json!([one.clone(), arr(one)]))
}

fn rerank_request() -> Value {
    obj(
        &[],
        json!({"model": t(S), "query": t(S),
               "documents": arr(any(json!([t(S), {"type": "object"}]))),
               "texts": arr(t(S)), "top_n": t(I), "return_documents": t(B),
               "return_text": t(B), "raw_scores": t(B)}),
    )
}

fn reranked() -> Value {
    let scored = obj(
        &["index", "relevance_score"],
        json!({"index": t(I), "relevance_score": t(N), "document": {}}),
    );
    let tei = obj(
        &["index", "score"],
        json!({"index": t(I), "score": t(N), "text": t(S)}),
    );
    any(json!([
        obj(
            &["results"],
            json!({"model": t(S), "results": arr(scored), "usage": {"type": "object"}})
        ),
        arr(tei),
    ]))
}

fn running_model() -> Value {
    obj(
        &["backend_name", "model_name", "mode"],
        json!({"backend_name": t(S), "model_name": t(S), "model_id": t(S), "mode": t(S),
               "last_used": any(json!([t(S), {"type": "null"}])), "in_use": t(B),
               "loading": t(B)}),
    )
}

fn configure_request() -> Value {
    obj(
        &["model"],
        json!({
            "model": t(S),
            "mode": {"enum": ["completion", "embedding", "reranking", ""]},
            "context-size": t(I),
            "runtime-flags": arr(t(S)),
            "raw-runtime-flags": t(S),
            "keep_alive": any(json!([t(S), t(I)])),
            "parallel": t(I),
            "speculative": {"type": "object"},
        }),
    )
}

fn local_model() -> Value {
    obj(
        &["id", "tags", "created", "config"],
        json!({"id": t(S), "tags": arr(t(S)), "created": t(I), "config": obj(&[], json!({
            "format": t(S), "quantization": t(S), "parameters": t(S), "architecture": t(S),
            "size": t(S), "gguf": {"type": "object"},
        }))}),
    )
}

/// The schemas of this file.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "NativeCompletionRequest",
            obj(
                &["prompt"],
                with(
                    native_sampling(),
                    json!({"prompt": any(json!([t(S), arr(any(json!([t(S), t(I)])))]))}),
                ),
            ),
        ),
        ("NativeCompletion", native_completion()),
        (
            "InfillRequest",
            obj(
                &["input_prefix", "input_suffix"],
                with(
                    native_sampling(),
                    json!({"input_prefix": t(S), "input_suffix": t(S), "prompt": t(S),
                           "input_extra": arr(obj(&["text"], json!({"filename": t(S), "text": t(S)})))}),
                ),
            ),
        ),
        (
            "NativeEmbeddingRequest",
            obj(
                &["content"],
                json!({"model": t(S), "content": one_or_many(t(S)), "embd_normalize": t(I)}),
            ),
        ),
        (
            "NativeEmbeddings",
            arr(obj(
                &["index", "embedding"],
                json!({"index": t(I), "embedding": arr(arr(t(N)))}),
            )),
        ),
        ("RerankRequest", rerank_request()),
        ("Reranked", reranked()),
        (
            "Props",
            obj(
                &["default_generation_settings"],
                json!({"default_generation_settings": {"type": "object"}, "total_slots": t(I),
                       "chat_template": t(S), "model_path": t(S)}),
            ),
        ),
        (
            "Slots",
            arr(obj(
                &["id"],
                json!({"id": t(I), "n_ctx": t(I), "is_processing": t(B)}),
            )),
        ),
        ("Health", obj(&["status"], json!({"status": t(S)}))),
        (
            "Loading",
            obj(
                &["error"],
                json!({"error": obj(&["code", "message", "type"], json!({
                    "code": t(I), "message": t(S), "type": t(S),
                }))}),
            ),
        ),
        ("RunningModel", running_model()),
        ("RunningModels", arr(to("RunningModel"))),
        (
            "EngineStatus",
            json!({"type": "object", "additionalProperties": t(S)}),
        ),
        (
            "UnloadRequest",
            obj(
                &[],
                json!({"all": t(B), "models": arr(t(S)), "backend": t(S)}),
            ),
        ),
        (
            "Unloaded",
            obj(&["unloaded_runners"], json!({"unloaded_runners": t(I)})),
        ),
        ("ConfigureRequest", configure_request()),
        ("Message", obj(&["message"], json!({"message": t(S)}))),
        ("Configurations", arr(json!({"type": "object"}))),
        (
            "DiskUsage",
            obj(
                &["models_disk_usage", "default_backend_disk_usage"],
                json!({"models_disk_usage": t(I), "default_backend_disk_usage": t(I)}),
            ),
        ),
        ("LocalModel", local_model()),
        ("LocalModels", arr(to("LocalModel"))),
        (
            "CreateRequest",
            obj(&["from"], json!({"from": t(S), "bearer-token": t(S)})),
        ),
        ("PushRequest", obj(&[], json!({"bearer-token": t(S)}))),
        (
            "Tagged",
            obj(
                &["message", "target"],
                json!({"message": t(S), "target": t(S)}),
            ),
        ),
        (
            "Removed",
            arr(any(json!([
                obj(&["Untagged"], json!({"Untagged": t(S)})),
                obj(&["Deleted"], json!({"Deleted": t(S)})),
            ]))),
        ),
        (
            "Loaded",
            obj(
                &["type", "message", "id", "linked"],
                json!({"type": t(S), "message": t(S), "id": t(S), "linked": {
                    "type": "array",
                    "items": obj(
                        &["path", "digest", "size", "kind"],
                        json!({"path": t(S), "digest": t(S), "size": {"type": "integer"}, "kind": {
                            "type": "string",
                            "enum": ["reflink", "hard_link", "copy", "already_stored"]
                        }}),
                    ),
                }}),
            ),
        ),
        ("Version", obj(&["version"], json!({"version": t(S)}))),
        (
            "OpenApi",
            obj(
                &["openapi", "info", "paths"],
                json!({"openapi": t(S), "info": {"type": "object"}, "paths": {"type": "object"}}),
            ),
        ),
    ]
}
