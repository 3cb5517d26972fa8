//! Ollama's `/api/*`.

use serde_json::{json, Value};

use super::{any, arr, bounded, obj, one_or_many, t, to, with, B, I, N, S};

/// What every generating request may carry.
fn common() -> Value {
    json!({
        "model": t(S),
        "stream": t(B),
        "format": any(json!([t(S), {"type": "object"}])),
        "options": to("OllamaOptions"),
        "keep_alive": any(json!([t(S), t(N)])),
        "think": any(json!([t(B), t(S)])),
    })
}

fn options() -> Value {
    let mut o = obj(
        &[],
        json!({
            "num_ctx": bounded("num_ctx"), "num_predict": t(I),
            "temperature": bounded("temperature"), "top_k": bounded("top_k"),
            "top_p": bounded("top_p"), "min_p": bounded("min_p"), "seed": t(I),
            "stop": arr(json!({"type": "string", "minLength": 1})),
            "repeat_penalty": bounded("repeat_penalty"), "repeat_last_n": bounded("repeat_last_n"),
            "presence_penalty": bounded("presence_penalty"),
            "frequency_penalty": bounded("frequency_penalty"), "num_keep": t(I),
        }),
    );
    o["description"] = json!("Ollama's model options; unknown ones are ignored");
    o
}

fn message() -> Value {
    obj(
        &["role"],
        json!({
            "role": t(S), "content": t(S), "thinking": t(S),
            "images": arr(t(S)), "tool_name": t(S),
            "tool_calls": arr(obj(&["function"], json!({"function": obj(&["name"], json!({
                "name": t(S), "arguments": {"type": "object"},
            }))}))),
        }),
    )
}

/// Timings and counts a finished generation reports.
fn done() -> Value {
    json!({
        "model": t(S), "created_at": t(S), "done": t(B), "done_reason": t(S),
        "total_duration": t(I), "load_duration": t(I), "prompt_eval_count": t(I),
        "prompt_eval_duration": t(I), "eval_count": t(I), "eval_duration": t(I),
    })
}

fn model_details() -> Value {
    obj(
        &["format", "family"],
        json!({"parent_model": t(S), "format": t(S), "family": t(S),
               "families": any(json!([arr(t(S)), {"type": "null"}])),
               "parameter_size": t(S), "quantization_level": t(S)}),
    )
}

fn local_model(extra: Value) -> Value {
    obj(
        &["name", "model", "size", "digest", "details"],
        with(
            json!({"name": t(S), "model": t(S), "size": t(I), "digest": t(S),
                   "details": to("OllamaModelDetails")}),
            extra,
        ),
    )
}

/// The schemas of this file.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let named = |extra: Value| obj(&[], with(json!({"model": t(S), "name": t(S)}), extra));
    vec![
        ("OllamaOptions", options()),
        ("OllamaMessage", message()),
        ("OllamaModelDetails", model_details()),
        (
            "OllamaChatRequest",
            obj(
                &["model"],
                with(
                    common(),
                    json!({"messages": arr(to("OllamaMessage")), "tools": arr(json!({"type": "object"}))}),
                ),
            ),
        ),
        (
            "OllamaChatResponse",
            obj(
                &["model", "created_at", "message", "done"],
                with(done(), json!({"message": to("OllamaMessage")})),
            ),
        ),
        (
            "OllamaGenerateRequest",
            obj(
                &["model"],
                with(
                    common(),
                    json!({"prompt": t(S), "suffix": t(S), "system": t(S), "template": t(S),
                           "context": arr(t(I)), "raw": t(B), "images": arr(t(S))}),
                ),
            ),
        ),
        (
            "OllamaGenerateResponse",
            obj(
                &["model", "created_at", "response", "done"],
                with(
                    done(),
                    json!({"response": t(S), "thinking": t(S), "context": arr(t(I))}),
                ),
            ),
        ),
        (
            "OllamaPullRequest",
            named(json!({"insecure": t(B), "stream": t(B)})),
        ),
        (
            "OllamaPushRequest",
            named(json!({"insecure": t(B), "stream": t(B)})),
        ),
        (
            "OllamaCreateRequest",
            named(json!({
                "from": t(S), "files": {"type": "object", "additionalProperties": t(S)},
                "template": t(S), "system": t(S), "license": one_or_many(t(S)),
                "parameters": {"type": "object"}, "messages": arr(to("OllamaMessage")),
                "stream": t(B),
            })),
        ),
        (
            "OllamaProgress",
            obj(
                &["status"],
                json!({"status": t(S), "digest": t(S), "total": t(I), "completed": t(I)}),
            ),
        ),
        (
            "OllamaEmbedRequest",
            obj(
                &["model", "input"],
                json!({"model": t(S), "input": one_or_many(t(S)), "truncate": t(B),
                       "dimensions": t(I), "options": to("OllamaOptions"),
                       "keep_alive": any(json!([t(S), t(N)]))}),
            ),
        ),
        (
            "OllamaEmbedResponse",
            obj(
                &["model", "embeddings"],
                json!({"model": t(S), "embeddings": arr(arr(t(N))), "total_duration": t(I),
                       "load_duration": t(I), "prompt_eval_count": t(I)}),
            ),
        ),
        (
            "OllamaEmbeddingsRequest",
            obj(
                &["model"],
                json!({"model": t(S), "prompt": t(S), "options": to("OllamaOptions"),
                       "keep_alive": any(json!([t(S), t(N)]))}),
            ),
        ),
        (
            "OllamaEmbeddingResponse",
            obj(&["embedding"], json!({"embedding": arr(t(N))})),
        ),
        ("OllamaShowRequest", named(json!({"verbose": t(B)}))),
        (
            "OllamaShowResponse",
            obj(
                &["details", "model_info"],
                json!({"license": t(S), "modelfile": t(S), "parameters": t(S),
                       "template": t(S), "details": to("OllamaModelDetails"),
                       "model_info": {"type": "object"}, "capabilities": arr(t(S))}),
            ),
        ),
        (
            "OllamaCopyRequest",
            obj(
                &["source", "destination"],
                json!({"source": t(S), "destination": t(S)}),
            ),
        ),
        ("OllamaDeleteRequest", named(json!({}))),
        (
            "OllamaTags",
            obj(
                &["models"],
                json!({"models": arr(local_model(json!({"modified_at": t(S)})))}),
            ),
        ),
        (
            "OllamaRunning",
            obj(
                &["models"],
                json!({"models": arr(local_model(json!({"expires_at": t(S), "size_vram": t(I)})))}),
            ),
        ),
        ("OllamaError", obj(&["error"], json!({"error": t(S)}))),
    ]
}
