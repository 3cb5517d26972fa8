//! `POST /v1/embeddings`: runs the model in embedding mode (its own runner).

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use modelrunner_engine::Prompt;
use modelrunner_scheduler::{KeepAlive, Mode};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::instrument;

use super::request::PromptInput;
use super::{on_runner, preload_only};
use crate::extract::ApiJson;
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// The request.
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingsRequest {
    model: String,
    input: PromptInput,
    encoding_format: Option<String>,
    dimensions: Option<u32>,
    keep_alive: Option<KeepAlive>,
}

fn bad(param: &str, msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg).param(param)
}

fn to_i32(v: &[i64]) -> Result<Vec<i32>, ApiError> {
    v.iter()
        .map(|t| i32::try_from(*t).map_err(|_| bad("input", format!("token {t} is out of range"))))
        .collect()
}

/// `POST /v1/embeddings`.
#[instrument(skip_all, fields(model = %req.model))]
pub(crate) async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<EmbeddingsRequest>,
) -> Result<Response, ApiError> {
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(bad(
                "encoding_format",
                format!("encoding_format must be float or base64, got {other:?}"),
            ))
        }
    };
    let inputs: Vec<Prompt> = match &req.input {
        PromptInput::Text(t) => vec![Prompt::Text(t.clone())],
        PromptInput::Texts(v) => v.iter().cloned().map(Prompt::Text).collect(),
        PromptInput::Tokens(t) => vec![Prompt::Tokens(to_i32(t)?)],
        PromptInput::TokenLists(v) => v
            .iter()
            .map(|t| to_i32(t).map(Prompt::Tokens))
            .collect::<Result<_, _>>()?,
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return Err(bad("input", "give from 1 to 2048 inputs"));
    }
    if inputs.iter().any(|p| {
        matches!(p, Prompt::Text(t) if t.is_empty())
            || matches!(p, Prompt::Tokens(t) if t.is_empty())
    }) {
        return Err(bad("input", "inputs must not be empty"));
    }
    let spec = model_spec(&state, &req.model, Mode::Embedding).await?;
    if preload_only(&headers) {
        state.scheduler.acquire(&spec, req.keep_alive).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let body = json!({ "input": inputs });
    let (guard, out) = on_runner(&state, &spec, req.keep_alive, |c| {
        let body = body.clone();
        async move {
            c.call::<Value>(Method::POST, "/embeddings", Some(&body))
                .await
        }
    })
    .await?;
    // The width is known once the model is loaded.
    if let Some(d) = req.dimensions {
        if i64::from(d) != i64::from(guard.props().n_embd) {
            return Err(bad(
                "dimensions",
                format!(
                    "this model gives {} dimensions; it cannot shorten them to {d}",
                    guard.props().n_embd
                ),
            ));
        }
    }
    drop(guard);
    let mut total = 0u64;
    let data: Vec<Value> = out["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            total += d["tokens"].as_u64().unwrap_or(0);
            let embedding = if base64 {
                let floats = d["embedding"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let mut bytes = Vec::with_capacity(floats.len() * 4);
                for f in floats {
                    bytes.extend_from_slice(&(f.as_f64().unwrap_or(0.0) as f32).to_le_bytes());
                }
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                d["embedding"].clone()
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": total, "total_tokens": total},
    }))
    .into_response())
}
