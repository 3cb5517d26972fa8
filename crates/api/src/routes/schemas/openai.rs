//! OpenAI's chat, completions, embeddings and models, the tokenizer helpers, and the
//! error envelopes of the OpenAI and Anthropic dialects.

use serde_json::{json, Value};

use super::{any, arr, bounded, obj, or_null, t, to, with, B, I, N, S};

/// Sampling fields the chat and completions requests share.
fn sampling() -> Value {
    json!({
        "model": t(S),
        "max_tokens": or_null(bounded("max_tokens")),
        "temperature": or_null(bounded("temperature")),
        "top_p": or_null(bounded("top_p")),
        "n": or_null(json!({"type": "integer", "minimum": 1, "maximum": 8})),
        "stream": or_null(t(B)),
        "stream_options": or_null(obj(&[], json!({"include_usage": t(B)}))),
        "stop": or_null(bounded("stop")),
        "presence_penalty": or_null(bounded("presence_penalty")),
        "frequency_penalty": or_null(bounded("frequency_penalty")),
        "seed": or_null(t(I)),
        "logit_bias": or_null(json!({"type": "object", "additionalProperties": t(N)})),
        "user": or_null(t(S)),
    })
}

fn usage() -> Value {
    obj(
        &["prompt_tokens", "total_tokens"],
        json!({"prompt_tokens": t(I), "completion_tokens": t(I), "total_tokens": t(I)}),
    )
}

fn chat_message() -> Value {
    let part = obj(
        &["type"],
        json!({"type": t(S), "text": t(S), "image_url": {}, "input_audio": {}}),
    );
    obj(
        &["role"],
        json!({
            "role": {"enum": ["system", "developer", "user", "assistant", "tool", "function"]},
            "content": or_null(any(json!([t(S), arr(part)]))),
            "name": t(S),
            "tool_call_id": t(S),
            "tool_calls": arr(to("ToolCall")),
            "reasoning_content": or_null(t(S)),
        }),
    )
}

fn tool_call() -> Value {
    obj(
        &["type", "function"],
        json!({
            "id": t(S),
            "type": {"const": "function"},
            "function": obj(&["name", "arguments"], json!({"name": t(S), "arguments": t(S)})),
        }),
    )
}

fn chat_request() -> Value {
    let tool = obj(
        &["type", "function"],
        json!({"type": t(S), "function": obj(&["name"], json!({
            "name": t(S), "description": t(S), "parameters": {"type": "object"}, "strict": t(B),
        }))}),
    );
    let mut r = obj(
        &["model", "messages"],
        with(
            sampling(),
            json!({
                "messages": {"type": "array", "items": to("ChatMessage"), "minItems": 1},
                "max_completion_tokens": or_null(bounded("max_completion_tokens")),
                "logprobs": or_null(t(B)),
                "top_logprobs": or_null(bounded("logprobs")),
                "response_format": or_null(obj(&["type"], json!({"type": t(S), "json_schema": {}}))),
                "tools": or_null(arr(tool)),
                "tool_choice": or_null(any(json!([t(S), {"type": "object"}]))),
                "parallel_tool_calls": or_null(t(B)),
                "reasoning_effort": or_null(t(S)),
            }),
        ),
    );
    r["description"] = json!("OpenAI's chat completion request; llama-server's sampling fields (top_k, min_p, grammar, ...) are read as well");
    r
}

fn chat_completion() -> Value {
    let choice = obj(
        &["index", "message", "finish_reason"],
        json!({
            "index": t(I),
            "message": obj(&["role"], json!({
                "role": {"const": "assistant"},
                "content": or_null(t(S)),
                "reasoning_content": or_null(t(S)),
                "tool_calls": arr(to("ToolCall")),
            })),
            "finish_reason": or_null(t(S)),
            "logprobs": or_null(json!({"type": "object"})),
        }),
    );
    obj(
        &["id", "object", "created", "model", "choices", "usage"],
        json!({
            "id": t(S),
            "object": {"const": "chat.completion"},
            "created": t(I),
            "model": t(S),
            "choices": arr(choice),
            "usage": usage(),
        }),
    )
}

fn completion_request() -> Value {
    let prompt = any(json!([t(S), arr(t(S)), arr(t(I)), arr(arr(t(I)))]));
    obj(
        &["model", "prompt"],
        with(
            sampling(),
            json!({"prompt": prompt, "logprobs": or_null(bounded("logprobs")), "echo": or_null(t(B)),
                   "suffix": or_null(t(S)), "best_of": or_null(t(I))}),
        ),
    )
}

fn completion() -> Value {
    let choice = obj(
        &["index", "text", "finish_reason"],
        json!({"index": t(I), "text": t(S), "finish_reason": or_null(t(S)),
               "logprobs": or_null(json!({"type": "object"}))}),
    );
    obj(
        &["id", "object", "created", "model", "choices", "usage"],
        json!({"id": t(S), "object": {"const": "text_completion"}, "created": t(I),
               "model": t(S), "choices": arr(choice), "usage": usage()}),
    )
}

fn embeddings_request() -> Value {
    obj(
        &["model", "input"],
        json!({
            "model": t(S),
            "input": any(json!([t(S), arr(t(S)), arr(t(I)), arr(arr(t(I)))])),
            "encoding_format": {"enum": ["float", "base64"]},
            "dimensions": t(I),
            "user": t(S),
        }),
    )
}

fn embeddings() -> Value {
    let one = obj(
        &["object", "index", "embedding"],
        json!({"object": {"const": "embedding"}, "index": t(I),
               "embedding": any(json!([arr(t(N)), t(S)]))}),
    );
    obj(
        &["object", "data"],
        json!({"object": {"const": "list"}, "data": arr(one), "model": t(S), "usage": usage()}),
    )
}

fn model() -> Value {
    obj(
        &["id", "object", "created", "owned_by"],
        json!({"id": t(S), "object": {"const": "model"}, "created": t(I), "owned_by": t(S)}),
    )
}

/// The OpenAI envelope, Docker Model Runner's and the daemon's own.
fn error() -> Value {
    obj(
        &["error"],
        json!({"error": obj(&["message", "type"], json!({
            "message": t(S), "type": t(S),
            "param": or_null(t(S)), "code": or_null(t(S)),
        }))}),
    )
}

fn anthropic_error() -> Value {
    obj(
        &["type", "error"],
        json!({
            "type": {"const": "error"},
            "error": obj(&["type", "message"], json!({"type": t(S), "message": t(S)})),
            "request_id": t(S),
        }),
    )
}

/// The schemas of this file.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    let model_field = json!({"model": {"type": "string", "description": "optional on llama-server's paths while one model is loaded"}});
    vec![
        ("ChatMessage", chat_message()),
        ("ToolCall", tool_call()),
        ("ChatCompletionRequest", chat_request()),
        ("ChatCompletion", chat_completion()),
        ("CompletionRequest", completion_request()),
        ("Completion", completion()),
        ("EmbeddingsRequest", embeddings_request()),
        ("Embeddings", embeddings()),
        ("Model", model()),
        (
            "ModelList",
            obj(
                &["object", "data"],
                json!({"object": {"const": "list"}, "data": arr(to("Model"))}),
            ),
        ),
        (
            "TokenizeRequest",
            obj(
                &["content"],
                with(
                    model_field.clone(),
                    json!({"content": t(S), "add_special": t(B), "parse_special": t(B), "with_pieces": t(B)}),
                ),
            ),
        ),
        (
            "Tokens",
            obj(
                &["tokens"],
                json!({"tokens": arr(any(json!([t(I), obj(&["id", "piece"], json!({
                    "id": t(I), "piece": any(json!([t(S), arr(t(I))])),
                }))])))}),
            ),
        ),
        (
            "DetokenizeRequest",
            obj(
                &["tokens"],
                with(model_field.clone(), json!({"tokens": arr(t(I))})),
            ),
        ),
        ("Detokenized", obj(&["content"], json!({"content": t(S)}))),
        (
            "ApplyTemplateRequest",
            obj(
                &["messages"],
                with(model_field, json!({"messages": arr(to("ChatMessage"))})),
            ),
        ),
        ("AppliedTemplate", obj(&["prompt"], json!({"prompt": t(S)}))),
        ("Error", error()),
        ("AnthropicError", anthropic_error()),
    ]
}
