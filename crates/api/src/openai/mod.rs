//! The OpenAI dialect: chat and text completions, embeddings, model listing, and
//! llama-server's helper routes, all under `/v1`, `/engines/v1` and
//! `/engines/llama.cpp/v1`. `decode` turns requests into the pipeline's; `chat` and
//! `completions` hold the handlers and their encoders; `error` is the envelope.

pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod decode;
pub(crate) mod embeddings;
pub(crate) mod error;
pub(crate) mod helpers;
pub(crate) mod messages;
pub(crate) mod models;
pub(crate) mod prompt;
pub(crate) mod routes;
pub(crate) mod sse;
pub(crate) mod tools;

use axum::http::HeaderMap;
use modelrunner_protocol::{FinishReason, Mode, TokenLogprob, Usage};
use serde_json::{json, Value};

use crate::pipeline::{self, Running};
use crate::{ApiError, AppState};

/// What every OpenAI generation route does before its encoder runs: `None` when the
/// client only asked to load the model (Docker's `X-Preload-Only`), else the started
/// generation.
pub(crate) async fn begin(
    state: &AppState,
    headers: &HeaderMap,
    req: &decode::Decoded,
) -> Result<Option<Running>, ApiError> {
    let g = &req.generation;
    tracing::Span::current().record("model", g.model.as_str());
    if preload_only(headers) {
        pipeline::preload(state, &g.model, Mode::Completion, g.keep_alive).await?;
        return Ok(None);
    }
    pipeline::start(state, g).await.map(Some)
}

/// The chunk that carries a stream's usage: `chunk` with no choices.
pub(crate) fn usage_chunk(mut chunk: Value, usage: &Usage) -> Value {
    chunk["choices"] = json!([]);
    chunk["usage"] = usage_json(usage);
    chunk
}

/// Identity of one response, shared by its chunks.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    pub fn new(prefix: &str, model: &str) -> Meta {
        Meta {
            id: crate::pipeline::unique_id(prefix, '-'),
            created: crate::pipeline::now_secs(),
            model: model.to_string(),
        }
    }

    /// A streamed chunk of `object` with one choice; with `include_usage` it carries
    /// `usage: null` (the last chunk carries the usage).
    pub fn chunk(&self, object: &str, include_usage: bool, choice: Value) -> Value {
        let mut c = json!({
            "id": self.id, "object": object, "created": self.created,
            "model": self.model, "system_fingerprint": null, "choices": [choice],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    }
}

/// OpenAI's `usage`.
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

pub(crate) fn finish(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
    }
}

/// Docker's `X-Preload-Only: true`: load the model and answer 200 with an empty body.
pub(crate) fn preload_only(headers: &HeaderMap) -> bool {
    headers
        .get("x-preload-only")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A chat `logprobs.content` entry.
pub(crate) fn chat_logprob(text: &str, lp: f32, top: &[TokenLogprob]) -> Value {
    json!({
        "token": text,
        "logprob": lp,
        "bytes": text.as_bytes(),
        "top_logprobs": top.iter().map(|t| json!({
            "token": t.text, "logprob": t.logprob, "bytes": t.text.as_bytes()
        })).collect::<Vec<_>>(),
    })
}
