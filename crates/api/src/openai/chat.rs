//! `POST /v1/chat/completions`: the handler, and the encoder of its answer
//! (`chat.completion`, or `chat.completion.chunk` frames).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use modelrunner_protocol::{Event, Usage};
use serde_json::{json, Value};
use tracing::instrument;

use super::decode::{self, Decoded};
use super::{begin, chat_logprob, finish, sse, usage_chunk, usage_json, Meta};
use crate::extract::ApiJson;
use crate::llama::model_or_only;
use crate::pipeline::respond::{respond, Answer, Choice, Encoder};
use crate::{ApiError, AppState};

/// `POST /v1/chat/completions`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let mut req = decode::chat(&body, state.config.reasoning_format)?;
    if body.get("model").is_none_or(Value::is_null) {
        req.generation.model = model_or_only(&state, None).await?;
    }
    let Some(running) = begin(&state, &headers, &req).await? else {
        return Ok(StatusCode::OK.into_response());
    };
    let encoder = ChatEncoder::new(&req);
    respond(running, req.stream, encoder).await
}

/// One `chat.completion.chunk` of choice `i`.
fn chunk(meta: &Meta, include_usage: bool, i: usize, delta: Value, lp: Value, fin: Value) -> Value {
    let choice = json!({"index": i, "delta": delta, "logprobs": lp, "finish_reason": fin});
    meta.chunk("chat.completion.chunk", include_usage, choice)
}

/// Chat's answer.
struct ChatEncoder {
    meta: Meta,
    logprobs: bool,
    include_usage: bool,
    /// A content chunk of choice 0 around the token's text, rendered once.
    plain: sse::Template,
    /// How many choices.
    n: usize,
}

impl ChatEncoder {
    fn new(req: &Decoded) -> ChatEncoder {
        let meta = Meta::new("chatcmpl", &req.generation.model);
        let slot = chunk(
            &meta,
            req.include_usage,
            0,
            json!({ "content": sse::SLOT }),
            Value::Null,
            Value::Null,
        );
        ChatEncoder {
            meta,
            logprobs: req.logprobs,
            include_usage: req.include_usage,
            plain: sse::Template::new(&slot),
            n: req.generation.choices.len(),
        }
    }

    fn chunk(&self, i: usize, delta: Value, lp: Value, fin: Value) -> Value {
        chunk(&self.meta, self.include_usage, i, delta, lp, fin)
    }

    /// A finished choice as `choices[i]`.
    fn choice(&self, i: usize, c: &Choice) -> Value {
        let lps: Vec<Value> = c
            .logprobs
            .iter()
            .map(|t| chat_logprob(&t.text, t.logprob.logprob, &t.logprob.top))
            .collect();
        let mut message = json!({"role": "assistant", "content": c.text});
        if !c.reasoning.is_empty() {
            message["reasoning_content"] = json!(c.reasoning);
        }
        if !c.tool_calls.is_empty() {
            if c.text.is_empty() {
                message["content"] = Value::Null;
            }
            message["tool_calls"] = c
                .tool_calls
                .iter()
                .map(|t| {
                    json!({"id": t.id, "type": "function",
                           "function": {"name": t.name, "arguments": t.arguments}})
                })
                .collect();
        }
        json!({
            "index": i,
            "message": message,
            "logprobs": if self.logprobs { json!({"content": lps}) } else { Value::Null },
            "finish_reason": finish(c.finish_reason),
        })
    }
}

impl Encoder for ChatEncoder {
    fn collected(&self, answer: Answer) -> Response {
        let choices: Vec<Value> = answer
            .choices
            .iter()
            .enumerate()
            .map(|(i, c)| self.choice(i, c))
            .collect();
        axum::Json(json!({
            "id": self.meta.id,
            "object": "chat.completion",
            "created": self.meta.created,
            "model": self.meta.model,
            "system_fingerprint": null,
            "choices": choices,
            "usage": usage_json(&answer.usage),
        }))
        .into_response()
    }

    fn open(&mut self) -> Vec<Bytes> {
        (0..self.n)
            .map(|i| {
                sse::frame(&self.chunk(
                    i,
                    json!({"role": "assistant", "content": ""}),
                    Value::Null,
                    Value::Null,
                ))
            })
            .collect()
    }

    fn event(&mut self, i: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token {
                text, logprobs: lp, ..
            } => match lp {
                Some(lp) if self.logprobs => {
                    let lp = json!({"content": [chat_logprob(&text, lp.logprob, &lp.top)]});
                    vec![sse::frame(&self.chunk(
                        i,
                        json!({"content": text}),
                        lp,
                        Value::Null,
                    ))]
                }
                _ if text.is_empty() => vec![],
                _ if i == 0 => vec![self.plain.render(&text)],
                _ => vec![sse::frame(&self.chunk(
                    i,
                    json!({ "content": text }),
                    Value::Null,
                    Value::Null,
                ))],
            },
            Event::Reasoning { text } => vec![sse::frame(&self.chunk(
                i,
                json!({ "reasoning_content": text }),
                Value::Null,
                Value::Null,
            ))],
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                let delta = json!({ "tool_calls": [call] });
                vec![sse::frame(&self.chunk(i, delta, Value::Null, Value::Null))]
            }
            Event::Done { finish_reason, .. } => vec![sse::frame(&self.chunk(
                i,
                json!({}),
                Value::Null,
                json!(finish(finish_reason)),
            ))],
            Event::Started { .. } | Event::Error { .. } => vec![],
        }
    }

    fn close(&mut self, usage: Usage) -> Vec<Bytes> {
        let chunk = || self.chunk(0, json!({}), Value::Null, Value::Null);
        sse::last(self.include_usage.then(|| usage_chunk(chunk(), &usage)))
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        vec![sse::error_frame(&error)]
    }
}
