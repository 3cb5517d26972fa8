//! Anthropic Messages and OpenAI Responses.

use serde_json::{json, Value};

use super::{any, arr, bounded, obj, or_null, t, to, with, B, I, S};

fn block() -> Value {
    obj(
        &["type"],
        json!({"type": t(S), "text": t(S), "source": {"type": "object"}, "id": t(S),
               "name": t(S), "input": {"type": "object"}, "tool_use_id": t(S),
               "content": any(json!([t(S), arr(json!({"type": "object"}))])),
               "thinking": t(S), "signature": t(S)}),
    )
}

fn anthropic_tool() -> Value {
    obj(
        &["name"],
        json!({"name": t(S), "description": t(S), "input_schema": {"type": "object"}, "type": t(S)}),
    )
}

fn conversation() -> Value {
    json!({
        "model": t(S),
        "messages": {"type": "array", "minItems": 1, "items": obj(&["role", "content"], json!({
            "role": {"enum": ["user", "assistant"]},
            "content": any(json!([t(S), arr(to("ContentBlock"))])),
        }))},
        "system": any(json!([t(S), arr(to("ContentBlock"))])),
        "tools": arr(anthropic_tool()),
        "tool_choice": obj(&["type"], json!({"type": t(S), "name": t(S)})),
        "thinking": obj(&["type"], json!({"type": t(S), "budget_tokens": t(I)})),
    })
}

fn message_request() -> Value {
    let props = with(
        conversation(),
        json!({
        "max_tokens": bounded("max_tokens"),
        "stream": t(B),
        "stop_sequences": arr(json!({"type": "string", "minLength": 1})),
        "temperature": bounded("temperature"),
        "top_p": bounded("top_p"),
        "top_k": bounded("top_k"),
        "metadata": {"type": "object"},
        }),
    );
    obj(&["model", "max_tokens", "messages"], props)
}

fn message() -> Value {
    obj(
        &[
            "id",
            "type",
            "role",
            "model",
            "content",
            "stop_reason",
            "usage",
        ],
        json!({
            "id": t(S),
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": t(S),
            "content": arr(to("ContentBlock")),
            "stop_reason": or_null(t(S)),
            "stop_sequence": or_null(t(S)),
            "usage": obj(&["input_tokens", "output_tokens"],
                json!({"input_tokens": t(I), "output_tokens": t(I)})),
        }),
    )
}

fn response_request() -> Value {
    let item = json!({"type": "object"});
    obj(
        &["model"],
        json!({
            "model": t(S),
            "input": any(json!([t(S), arr(item)])),
            "instructions": or_null(t(S)),
            "max_output_tokens": or_null(bounded("max_output_tokens")),
            "temperature": or_null(bounded("temperature")),
            "top_p": or_null(bounded("top_p")),
            "stream": or_null(t(B)),
            "store": or_null(t(B)),
            "background": or_null(t(B)),
            "previous_response_id": or_null(t(S)),
            "tools": or_null(arr(json!({"type": "object"}))),
            "tool_choice": or_null(any(json!([t(S), {"type": "object"}]))),
            "parallel_tool_calls": or_null(t(B)),
            "text": or_null(json!({"type": "object"})),
            "reasoning": or_null(json!({"type": "object"})),
            "metadata": or_null(json!({"type": "object"})),
            "truncation": or_null(t(S)),
            "user": or_null(t(S)),
        }),
    )
}

fn response() -> Value {
    obj(
        &["id", "object", "created_at", "status", "model", "output"],
        json!({
            "id": t(S),
            "object": {"const": "response"},
            "created_at": t(I),
            "status": {"enum": ["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]},
            "model": t(S),
            "output": arr(obj(&["type"], json!({"type": t(S), "id": t(S)}))),
            "usage": or_null(obj(&["input_tokens", "output_tokens", "total_tokens"], json!({
                "input_tokens": t(I), "output_tokens": t(I), "total_tokens": t(I),
            }))),
            "error": or_null(json!({"type": "object"})),
        }),
    )
}

/// The schemas of this file.
pub(super) fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        ("ContentBlock", block()),
        ("MessageCreateRequest", message_request()),
        ("AnthropicMessage", message()),
        (
            "CountTokensRequest",
            obj(&["model", "messages"], conversation()),
        ),
        (
            "TokenCount",
            obj(&["input_tokens"], json!({"input_tokens": t(I)})),
        ),
        ("ResponseCreateRequest", response_request()),
        ("Response", response()),
        (
            "ResponseDeleted",
            obj(
                &["id", "object", "deleted"],
                json!({"id": t(S), "object": {"const": "response.deleted"}, "deleted": {"const": true}}),
            ),
        ),
        (
            "InputItems",
            obj(
                &["object", "data", "has_more"],
                json!({"object": {"const": "list"}, "data": arr(json!({"type": "object"})),
                       "first_id": or_null(t(S)), "last_id": or_null(t(S)), "has_more": t(B)}),
            ),
        ),
    ]
}
