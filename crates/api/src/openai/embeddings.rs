//! `POST /v1/embeddings`: runs the model in embedding mode (its own runner).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use modelrunner_protocol::{EmbedRequest, Embedding, Mode, Prompt};
use modelrunner_scheduler::KeepAlive;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::instrument;

use super::decode::PromptInput;
use super::preload_only;
use crate::extract::ApiJson;
use crate::pipeline::{self, on_runner};
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// The request.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingsRequest {
    /// Left out or null: the one model it can mean.
    model: Option<String>,
    input: PromptInput,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
    keep_alive: Option<KeepAlive>,
}

/// `POST /v1/embeddings`.
#[instrument(skip_all, fields(model = ?req.model))]
pub(crate) async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(mut req): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let model = match req.model.take() {
        Some(m) => m,
        None => crate::llama::model_or_only(&state, None).await?,
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("encoding_format must be float or base64, got {other:?}"),
            ))
        }
    };
    let input = req.input.prompts("input")?;
    if input.is_empty() || input.len() > 2048 {
        return Err(ApiError::invalid("input", "give from 1 to 2048 inputs"));
    }
    if input.iter().any(|p| {
        matches!(p, Prompt::Text(t) if t.is_empty())
            || matches!(p, Prompt::Tokens(t) if t.is_empty())
    }) {
        return Err(ApiError::invalid("input", "inputs must not be empty"));
    }
    if preload_only(&headers) {
        pipeline::preload(&state, &model, Mode::Embedding, req.keep_alive).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let (out, width) = embed(&state, &model, input, req.keep_alive).await?;
    if let Some(d) = req.dimensions {
        if i64::from(d) != i64::from(width) {
            return Err(ApiError::invalid(
                "dimensions",
                format!("this model gives {width} dimensions; it cannot shorten them to {d}"),
            ));
        }
    }
    let total: u64 = out.iter().map(|e| u64::from(e.tokens)).sum();
    let data: Vec<Value> = out
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = e.embedding.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(e.embedding)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }))
    .into_response())
}

/// Embeds `input` with `model` in embedding mode: one unit vector per input, in order,
/// and the model's width. A runner that answers with another count or width is refused.
pub(crate) async fn embed(
    state: &AppState,
    model: &str,
    input: Vec<Prompt>,
    keep_alive: Option<KeepAlive>,
) -> Result<(Vec<Embedding>, i32), ApiError> {
    let spec = model_spec(state, model, Mode::Embedding).await?;
    let wanted = input.len();
    let body = EmbedRequest { input };
    let (guard, out) = on_runner(state, &spec, keep_alive, |c| {
        let body = &body;
        async move { c.embed(body).await }
    })
    .await
    // An input over the context is the input's fault, not a conversation's.
    .map_err(|e| {
        e.rename_param(|p| {
            if p == "messages" {
                "input".into()
            } else {
                p.into()
            }
        })
    })?;
    // The width is known once the model is loaded.
    let width = guard.props().n_embd;
    drop(guard);
    // A runner that answers with another count of vectors than inputs is broken; a
    // short list would pair the wrong vectors with the inputs.
    if out.len() != wanted || out.iter().any(|e| e.embedding.len() != width as usize) {
        let widths: std::collections::BTreeSet<usize> =
            out.iter().map(|e| e.embedding.len()).collect();
        return Err(ApiError::internal(format!(
            "the runner gave {} embeddings of widths {widths:?} for {wanted} inputs of a {width}-wide model",
            out.len()
        )));
    }
    Ok((out, width))
}
